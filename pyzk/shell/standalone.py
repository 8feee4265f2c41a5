"""A standalone server: the client port, the data directory, the log stage and
the timers around one ZooKeeperServer.

Standalone is a quorum of one. The server proposes each txn to this shell's
:class:`~pyzk.shell.logstage.LogStage`; the only vote is the log's own fsync,
after which the txn is committed through the same ``committed`` path an
ensemble's leader uses when a quorum has acked. (The leader's Zab core is not
put in between: with no followers it would only add a proposal record, an
ack count and a commit packet per txn to what this stage already decides.)
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from pyzk.core.zkserver import ZooKeeperServer
from pyzk.jute.records import TxnHeader
from pyzk.shell.admin import AdminServer
from pyzk.shell.clientport import ClientPortHost
from pyzk.shell.fourletter import FourLetterWords
from pyzk.shell.logstage import LogStage
from pyzk.shell.prometheus import PrometheusEndpoint
from pyzk.shell.store import Store
from pyzk.shell.timers import ServerTimers, now_ms, wall_ms

if TYPE_CHECKING:
    from pyzk.config import ServerConfig

log = logging.getLogger(__name__)


class StandaloneShell(ClientPortHost):
    #: The request core it runs (pyzk.shell.workers' orderer runs one that
    #: also takes the writes its worker processes forward).
    server_class: type[ZooKeeperServer] = ZooKeeperServer

    def __init__(self, cfg: ServerConfig, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.cfg = cfg
        self.loop = loop
        self.store = Store(cfg)
        tree, sessions, zxid = self.store.recover()
        self.server = self.server_class(cfg, now_ms=now_ms, wall_ms=wall_ms, server_id=1,
                                        tree=tree, sessions=sessions, zxid=zxid)
        self.log = LogStage(loop, self.store.open_log(self.server, loop), self._durable,
                            stats=self.server.stats, store=self.store,
                            on_failure=self._log_failed)
        self.server.propose = self._propose
        self.fourlw = FourLetterWords(self)
        self.timers = ServerTimers(loop, cfg)
        self.admin = AdminServer(self, cfg)
        self.metrics = PrometheusEndpoint(self, cfg)
        #: Fails if the server must end on its own: its transaction log could
        #: not be written or synced (see :meth:`_log_failed`).
        self.fatal: asyncio.Future[None] = loop.create_future()

    def _propose(self, hdr: TxnHeader, data: bytes) -> None:
        self.log.append(hdr, data, hdr.zxid)

    def _log_failed(self, exc: BaseException) -> None:
        """A write or fsync of the log failed (EIO, ENOSPC): nothing from then
        on can be acknowledged, so the server stops, as Apache's standalone
        server does when its SyncThread dies (it shuts down and the JVM
        exits). Restarted once the disk is usable again, it recovers every
        acknowledged write from the log; the txns of the failed batch were
        never acknowledged and may or may not be there."""
        self.server.on_log_failure(exc)
        log.critical("Transaction log failed (%s): stopping the server; restart it once "
                     "the disk under %s is writable again", exc, self.store.log_dir)
        if not self.fatal.done():
            self.fatal.set_exception(exc)

    def _durable(self, zxids: list[int]) -> None:
        committed = self.server.committed
        for zxid in zxids:
            committed(zxid)

    async def start(self) -> None:
        # ZooKeeperServerMain starts the metrics provider first (a failure stops
        # the start), then the AdminServer, then the client port
        await self.metrics.start()
        await self.admin.start()
        await self.listen()
        self.store.snapshot_after_recovery()
        self.timers.expire_sessions(self.server)
        self.timers.reap_containers(self.server)
        self.timers.purge(self.store)

    async def stop(self) -> None:
        await self.admin.stop()
        self.timers.cancel()
        self.close_listeners()
        await self.log.drain()
        for c in list(self.server.connections):
            c.close()
        for srv in self.listeners:
            await srv.wait_closed()
        await self.log.close()
        self.store.log_closed()
        await self.metrics.stop()
