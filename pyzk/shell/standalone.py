"""The asyncio shell around the server core: listening socket, the log stage,
timers (session expiry, container reaping) and four-letter words.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from typing import Any

from pyzk.core.zkserver import Entry, ZooKeeperServer
from pyzk.shell.connection import ClientConnection
from pyzk.shell.fourletter import FOUR_LETTER_WORDS, FourLetterWords
from pyzk.shell.store import Store

log = logging.getLogger(__name__)


class MemoryLog:
    """The log stage without persistence: every txn submitted during one
    loop iteration is committed as one group at the end of it.

    It keeps the pipeline's shape (prepare, log, commit) so a durable log
    can take its place without touching the request path.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, server: ZooKeeperServer) -> None:
        self.loop = loop
        self.server = server
        self.pending: list[Entry] = []
        self.scheduled = False

    def submit(self, entry: Entry) -> None:
        self.pending.append(entry)
        if not self.scheduled:
            self.scheduled = True
            self.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.scheduled = False
        batch, self.pending = self.pending, []
        apply = self.server.apply
        for e in batch:
            apply(e)
        if batch:
            self.server.stats.fsyncs += 1
            self.server.stats.fsynced_txns += len(batch)


class ClientPortHost:
    """What a ClientConnection asks of the shell that accepted it: admission
    (maxClientCnxns per IP, as Apache's NIOServerCnxnFactory) and
    four-letter words. Shared by the standalone and the quorum shells; they
    provide ``cfg``, ``server`` and ``fourlw``."""

    cfg: Any
    server: Any
    fourlw: Any

    def admit(self, conn: ClientConnection) -> bool:
        limit = self.cfg.max_client_cnxns
        count = sum(1 for c in self.server.connections if c.remote_ip == conn.remote_ip)
        if limit > 0 and count >= limit:
            log.warning("Too many connections from %s - max is %d", conn.remote, limit)
            return False
        return True

    def is_four_letter_word(self, word: bytes) -> bool:
        return word in FOUR_LETTER_WORDS

    def four_letter(self, conn: ClientConnection, cmd: str) -> None:
        text = self.fourlw.run(cmd, conn)
        conn.handshake_seen = True
        if text:
            conn.send(text.encode("utf-8"))
        conn.close()


class ServerShell(ClientPortHost):
    def __init__(self, cfg: Any, loop: asyncio.AbstractEventLoop, *,
                 persistent: bool = True) -> None:
        self.cfg = cfg
        self.loop = loop
        self.store: Store | None = None
        tree, sessions, zxid = None, None, 0
        if persistent:
            self.store = Store(cfg)
            tree, sessions, zxid = self.store.recover()
        self.server = ZooKeeperServer(
            cfg,
            now_ms=lambda: time.monotonic() * 1000.0,
            wall_ms=lambda: int(time.time() * 1000),
            server_id=1, tree=tree, sessions=sessions, zxid=zxid,
        )
        if self.store is not None:
            self.log: Any = self.store.durable_log(loop, self.server)
        else:
            self.log = MemoryLog(loop, self.server)
        self.server.submit = self.log.submit
        self.listeners: list[asyncio.base_events.Server] = []
        self.fourlw = FourLetterWords(self)
        self.per_ip: dict[str, int] = {}
        self.stopping = asyncio.Event()
        self._timers: list[asyncio.TimerHandle] = []


    # -- lifecycle --------------------------------------------------------------------

    async def start(self) -> None:
        cfg = self.cfg
        host = cfg.client_port_address or None
        if cfg.client_port is None:
            raise ValueError("clientPort is not set")
        srv = await self.loop.create_server(
            lambda: ClientConnection(self), host=host, port=cfg.client_port,
            reuse_address=True, backlog=1024)
        self.listeners.append(srv)
        addrs = ", ".join(f"{s.getsockname()[0]}:{s.getsockname()[1]}" for s in srv.sockets)
        log.info("binding to port %s", addrs)
        if getattr(cfg, "secure_client_port", None):
            log.warning("secureClientPort=%s: TLS client connections are not supported yet; "
                        "only clientPort is served", cfg.secure_client_port)
        self._schedule_expiry()
        self._schedule_containers()
        self._schedule_purge()

    def _schedule_expiry(self) -> None:
        server = self.server
        server.expire_sessions()
        delay = max(0.0, (server.sessions.next_expiration - server.now_ms()) / 1000.0)
        self._timers.append(self.loop.call_later(delay + 0.001, self._schedule_expiry))

    def _schedule_containers(self) -> None:
        interval = max(1, self.cfg.container_check_interval_ms) / 1000.0
        self.server.reap_containers(self.cfg.container_max_per_minute,
                                    self.cfg.container_max_never_used_interval_ms)
        self._timers.append(self.loop.call_later(interval, self._schedule_containers))

    def _schedule_purge(self) -> None:
        """autopurge.purgeInterval (hours) > 0: keep autopurge.snapRetainCount
        snapshots and the logs they need, as Apache's DatadirCleanupManager."""
        hours = self.cfg.autopurge_purge_interval
        if self.store is None or hours <= 0:
            return
        self._timers.append(self.loop.call_later(hours * 3600.0, self._purge_now))

    def _purge_now(self) -> None:
        assert self.store is not None
        self.loop.run_in_executor(None, self.store.purge)
        self._schedule_purge()

    async def stop(self) -> None:
        for t in self._timers:
            t.cancel()
        for srv in self.listeners:
            srv.close()
        if self.store is not None:
            await self.log.drain()
        for c in list(self.server.connections):
            c.close()
        for srv in self.listeners:
            await srv.wait_closed()
        if self.store is not None:
            self.store.close()

    @property
    def port(self) -> int:
        return self.listeners[0].sockets[0].getsockname()[1]


async def run_server(cfg: Any) -> int:
    loop = asyncio.get_running_loop()
    shell = ServerShell(cfg, loop)
    await shell.start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    await shell.stop()
    return 0
