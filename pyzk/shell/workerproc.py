"""A worker process of a server with ``pyzk.workers=N`` (see pyzk.shell.workers).

Started by the orderer as ``python -m pyzk.shell.workerproc`` with a pickled
:class:`~pyzk.shell.workers.WorkerSpec` on stdin. It connects to the
orderer's feed port, sends the secret, and is an observer from then on: Zab's
learner core (pyzk.zab.follower, observer) syncs it by SNAP and applies the
INFORMs; its :class:`~pyzk.core.roleservers.LearnerServer` serves the clients
the kernel hands this process on the shared client port (SO_REUSEPORT),
which it opens only once it is in sync, and closes with the process.

A worker keeps nothing on disk: its log actions (LogTxn, TakeSnapshot,
PersistEpoch) are dropped, since the orderer's log is the durable copy and a
restarted worker is sent a new snapshot. It ends when the orderer's
connection ends or goes silent (the learner core's read timeout), on
SIGTERM (SIGINT is ignored: the orderer stops it), and when the orderer's
process is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import pickle
import signal
import sys
import time
from typing import Any

from pyzk.core.roleservers import LearnerServer
from pyzk.jute.codec import JuteError
from pyzk.jute.records import ConnectRequest
from pyzk.shell.clientport import ClientPortHost
from pyzk.shell.main import PARENT_CHECK_S
from pyzk.shell.packetlink import PacketLink
from pyzk.shell.timers import now_ms, wall_ms
from pyzk.shell.workers import (
    WORKER_INIT_TICKS,
    WORKER_SYNC_TICKS,
    ProcessFourLetterWords,
    WorkerSpec,
)
from pyzk.zab import actions as A
from pyzk.zab.follower import LearnerCore
from pyzk.zab.packets import LearnerStream, PacketError, PacketType, encode_packet

log = logging.getLogger(__name__)

#: The worker's exit code when it stops on its own (the orderer restarts it).
EXIT_LOST = 1


#: How long a worker holds the ConnectRequest of a client that has seen a
#: zxid its replica has not applied yet (the txns are on their way), before
#: it refuses it as any server behind the client does.
CATCH_UP_WAIT_MS = 2000


class WorkerServer(LearnerServer):
    """A worker's LearnerServer. One difference from an observer's: a client
    reconnecting from a process that was a few txns ahead (its old worker,
    or the orderer) is not refused at once ("client must try another
    server": there is no other address to try, the port is the same) but
    answered once the replica has caught up, within CATCH_UP_WAIT_MS."""

    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        #: (zxid the client saw, deadline ms, connection, ConnectRequest frame)
        self.parked: list[tuple[int, float, Any, bytes]] = []

    def connect(self, conn: Any, frame: bytes) -> None:
        if self.running:
            try:
                req, _pos = ConnectRequest.decode(frame, 0, self.maxbuf)
            except JuteError:
                req = None
            if req is not None and req.lastZxidSeen > self.tree.last_processed_zxid:
                self.parked.append((req.lastZxidSeen, self.now_ms() + CATCH_UP_WAIT_MS, conn,
                                    frame))
                return
        super().connect(conn, frame)

    def caught_up(self) -> None:
        """Answer the parked handshakes the replica has caught up with (or
        whose wait is over: those are refused)."""
        last = self.tree.last_processed_zxid
        now = self.now_ms()
        parked, self.parked = self.parked, []
        for item in parked:
            zxid, deadline, conn, frame = item
            if conn.closed:
                continue
            if zxid <= last or now >= deadline:
                super().connect(conn, frame)
            else:
                self.parked.append(item)


class _OrdererLink(PacketLink):
    """The worker's end of its connection to the orderer."""

    #: written at once, as the orderer's end is (pyzk.shell.packetlink)
    gather = False

    def __init__(self, shell: WorkerShell) -> None:
        self.shell = shell
        self.stream = LearnerStream()
        self.transport: asyncio.Transport | None = None
        self.closed = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            items = self.stream.feed(data)
        except (JuteError, PacketError) as e:
            log.warning("Bad data from the orderer: %s", e)
            self.close()
            self.shell.finish(f"bad data from the orderer: {e}")
            return
        for item in items:
            if self.closed:
                break
            self.shell.on_packet(item)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.shell.on_disconnect()



class WorkerShell(ClientPortHost):
    """One worker: an observer core fed by the orderer, a LearnerServer in
    front of its share of the clients."""

    reuse_port = True

    def __init__(self, spec: WorkerSpec, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.spec = spec
        self.cfg = spec.cfg
        self.loop = loop
        self.sid = spec.sid
        cfg = self.cfg
        self.core = LearnerCore(
            self.sid, "orderer", accepted_epoch=0, current_epoch=0, last_logged_zxid=0,
            now=now_ms(), observer=True, tick_time=cfg.tick_time, init_limit=WORKER_INIT_TICKS,
            sync_limit=WORKER_SYNC_TICKS)
        self._server = self._new_server(None, {}, 0)
        self._fourlw: tuple[Any, ProcessFourLetterWords] | None = None
        self.link: _OrdererLink | None = None
        self.done: asyncio.Future[str] = loop.create_future()
        #: In sync, the client port not open yet (see _start_serving).
        self._awaiting_go = False
        self._ticker: asyncio.TimerHandle | None = None
        self._tick_due = 0.0  # when the next tick should run (0: the first one)
        self._tick_cpu = 0.0  # this thread's CPU time then
        self.serving = False

    # -- what connections and 4lw see ----------------------------------------------------

    @property
    def server(self) -> WorkerServer:
        return self._server

    @property
    def fourlw(self) -> ProcessFourLetterWords:
        server = self._server
        if self._fourlw is None or self._fourlw[0] is not server:
            self._fourlw = (server, ProcessFourLetterWords(
                self, worker_id=self.spec.index, workers=self.cfg.workers))
        return self._fourlw[1]

    def _new_server(self, tree: Any, sessions: dict[int, int], zxid: int) -> WorkerServer:
        server = WorkerServer(
            self.cfg, observer=True, server_id=self.sid, forward=self._forward,
            revalidate=self._revalidate, touch=self.core.touch, now_ms=now_ms, wall_ms=wall_ms,
            tree=tree, sessions=sessions, zxid=zxid)
        server.state = "standalone"  # what the server as a whole is, for srvr and clients
        return server

    # -- the link --------------------------------------------------------------------

    async def run(self) -> str:
        """Serve until the orderer goes away or we are stopped; the reason."""
        try:
            _t, link = await self.loop.create_connection(
                lambda: _OrdererLink(self), "127.0.0.1", self.spec.feed_port)
        except OSError as e:
            return f"cannot reach the orderer: {e}"
        self.link = link
        link.send(self.spec.token)
        self.core.now = now_ms()
        self.execute(self.core.start())
        self._tick_due = self.loop.time()  # the first tick is never late
        self._tick_cpu = time.thread_time()
        self._tick()
        try:
            return await self.done
        finally:
            if self._ticker is not None:
                self._ticker.cancel()
            link.close()
            self.close_listeners()
            self._server.close_all()
            for srv in self.listeners:
                with contextlib.suppress(Exception):
                    await srv.wait_closed()

    def finish(self, reason: str) -> None:
        if not self.done.done():
            self.done.set_result(reason)

    def on_packet(self, item: Any) -> None:
        if self._awaiting_go and getattr(item, "type", None) == PacketType.PING:
            # the orderer pings once it listens itself and every worker is in sync
            self._awaiting_go = False
            self.loop.create_task(self._open_client_port())
        if not self.done.done():
            self.core.now = now_ms()
            self.execute(self.core.on_packet(item))

    def on_disconnect(self) -> None:
        if not self.done.done():
            self.execute(self.core.on_disconnect())
            self.finish("the orderer closed the connection")

    def _tick(self) -> None:
        self._ticker = None
        if self.done.done():
            return
        interval = max(0.01, self.cfg.tick_time / 4000)
        # late by more than an interval: the loop was held (a big INFORM batch,
        # the first snapshot); the orderer's packets may be waiting unread
        # (by the CPU spent meanwhile: a frozen process gets no grace)
        late = self.loop.time() - self._tick_due
        busy = time.thread_time() - self._tick_cpu
        stalled = min(late, busy) * 1000.0 if late > interval else 0.0
        if not self._awaiting_go:  # the orderer does not PING before it listens
            self.execute(self.core.on_tick(now_ms(), stalled))
        if not self.done.done():
            self._tick_due = self.loop.time() + interval
            self._tick_cpu = time.thread_time()
            self._ticker = self.loop.call_later(interval, self._tick)

    def _forward(self, session_id: int, cxid: int, op: int, body: bytes,
                 auth: list[Any] | None) -> None:
        self.execute(self.core.forward_request(session_id, cxid, op, body, auth))

    def _revalidate(self, session_id: int, timeout: int) -> None:
        self.execute(self.core.revalidate(session_id, timeout))

    def _send(self, data: bytes) -> None:
        if self.link is not None:
            self.link.send(data)

    def execute(self, actions: list[A.Action]) -> None:
        self._execute(actions)
        if self._server.parked:
            self._server.caught_up()

    def _execute(self, actions: list[A.Action]) -> None:
        for a in actions:
            t = type(a)
            if t is A.Commit:
                self._server.commit(a.entry)
            elif t is A.Send:
                self._send(encode_packet(a.packet))
            elif t is A.SessionValidated:
                self._server.session_validated(a.session_id, a.valid)
            elif t is A.SyncDone:
                self._server.sync_done()
            elif t is A.LoadSnapshot:
                snap = a.snapshot.to_snapshot(
                    digest_enabled=bool(self.cfg.digest_enabled),
                    extended_types=bool(self.cfg.extended_types_enabled))
                snap.tree.last_processed_zxid = snap.zxid
                self._server = self._new_server(snap.tree, snap.sessions, snap.zxid)
            elif t is A.StartServing:
                self._start_serving()
            elif t is A.Shutdown:
                self.finish(a.reason)
            elif t is A.Truncate:
                # the orderer always sends a snapshot; a TRUNC means a stranger
                self.finish("the orderer asked for a TRUNC")
            # LogTxn, TakeSnapshot, PersistEpoch, ConfigSeen: nothing is kept on disk

    def _start_serving(self) -> None:
        """In sync. The client port opens at the orderer's next PING: the
        orderer sends it once it listens itself and every worker is in sync,
        so that the processes start taking connections together and the
        first clients of a new server are spread over all of them, not over
        the first worker to get ready."""
        self._server.running = True
        self._awaiting_go = True

    async def _open_client_port(self) -> None:
        try:
            await self.listen()
        except (OSError, ValueError) as e:
            log.error("Worker %d cannot listen on the client port: %s", self.spec.index, e)
            self.finish(f"client port: {e}")
            return
        self.serving = True
        log.info("Worker %d serving (sid %d, zxid 0x%x)", self.spec.index, self.sid,
                 self._server.tree.last_processed_zxid)


async def _watch_parent(parent: int, shell: WorkerShell) -> None:
    """End with the orderer even if its connection somehow stays open."""
    while os.getppid() == parent:
        await asyncio.sleep(PARENT_CHECK_S)
    shell.finish("the orderer's process is gone")


async def serve(spec: WorkerSpec) -> int:
    loop = asyncio.get_running_loop()
    shell = WorkerShell(spec, loop)
    stopping = False

    def stop() -> None:
        nonlocal stopping
        stopping = True
        shell.finish("stopped")

    with contextlib.suppress(NotImplementedError, RuntimeError):
        loop.add_signal_handler(signal.SIGTERM, stop)
    # Ctrl-C reaches the whole foreground process group: the orderer stops
    # the workers itself (SIGTERM), and restarts none of them meanwhile
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    watch = loop.create_task(_watch_parent(spec.parent_pid, shell))
    try:
        reason = await shell.run()
    finally:
        watch.cancel()
    log.info("Worker %d stops: %s", spec.index, reason)
    return 0 if stopping else EXIT_LOST


def main() -> int:
    """``python -m pyzk.shell.workerproc``: the spec on stdin, logs on stderr."""
    spec: WorkerSpec = pickle.load(sys.stdin.buffer)
    from pyzk.shell.main import _event_loop_policy

    # the layout of the server's own lines (pyzk.cli), with the worker as myid
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(
        f"%(asctime)s [myid:worker{spec.index}] - %(levelname)-5s "
        "[%(threadName)s:%(module)s@%(lineno)d] - %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    level = logging.getLevelName(os.environ.get("PYZK_LOG_LEVEL", "INFO").upper())
    root.setLevel(level if isinstance(level, int) else logging.INFO)
    _event_loop_policy()
    return asyncio.run(serve(spec))


if __name__ == "__main__":
    raise SystemExit(main())
