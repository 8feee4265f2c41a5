"""``pyzk.workers=N``: one standalone server on several cores.

Python runs one thread of bytecode at a time, so a pyzk process uses one
core however many clients it has. With ``pyzk.workers=N`` in zoo.cfg the
server keeps its one process that orders writes (this module's
:class:`OrdererShell`, the standalone server with its log, snapshots, session
expiry and AdminServer) and starts N worker processes
(pyzk.shell.workerproc). Each worker holds a replica of the tree fed by the
orderer's commit stream and serves a share of the client port's
connections: reads, watches and sessions locally, writes forwarded to the
orderer. It is an observer of the orderer, on Zab's own learner protocol and
packets (pyzk.zab.follower's LearnerCore as an observer, pyzk.core's
LearnerServer in front of the clients); the orderer speaks the leader's side
of that protocol for observers only (:class:`WorkerFeed`).

Why ZooKeeper's guarantees hold:

* one process numbers, logs (fsynced) and commits every write, in one
  order, exactly as without workers; a worker applies the same txns in the
  same order (INFORM packets on one FIFO connection) and answers its
  client's write only when the txn comes back committed;
* the kernel hands each new connection to one process (SO_REUSEPORT on the
  client port) and a session's requests all arrive on that connection, so
  per-session FIFO order is the one process's: reads wait behind the
  session's writes still on their way, as on an observer;
* ``sync`` from a worker's session goes to the orderer and comes back after
  every txn proposed before it was committed and sent down the same
  connection: a read after ``sync`` sees every write acknowledged before the
  ``sync`` (to any session, on any process);
* a session belongs to the process its client is connected to (LeaderServer's
  owners): a client that reconnects elsewhere revalidates its session with
  the orderer and moves, and a write through the process it left is
  SessionMoved, as between ensemble members.

A worker writes nothing to disk (no txn log, no snapshot): the orderer's log
is the durable copy, and a worker that starts or restarts is sent a
snapshot (SNAP) of the orderer's tree. The orderer restarts a worker that
dies (with a growing pause) and stops its workers when it stops; a worker
ends when its connection to the orderer does. The epoch and zxids are the
standalone server's, so clients see the same zxids, modes and ports as
without workers.

Four-letter words and the AdminServer: the AdminServer and the Prometheus
endpoint run in the orderer only. A four-letter word on the client port is
answered by whichever process the connection landed on, from that
process's own counters, connections and replica: ``srvr``/``stat`` say
``Mode: standalone`` everywhere (Zxid and Node count are the process's
replica's, which may trail the orderer by the txns in flight), and ``mntr``
adds ``zk_pyzk_worker_id`` (0 in the orderer, 1..N in the workers) and
``zk_pyzk_workers`` (N), plus ``zk_pyzk_workers_serving`` in the orderer.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import hmac
import logging
import os
import pickle
import secrets
import signal
import socket
import sys
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyzk.core.roleservers import LeaderServer
from pyzk.jute.codec import JuteError
from pyzk.jute.constants import OpCode
from pyzk.jute.records import QuorumPacket, TxnHeader
from pyzk.shell.fourletter import FourLetterWords
from pyzk.shell.packetlink import PacketLink
from pyzk.shell.standalone import StandaloneShell
from pyzk.shell.timers import now_ms
from pyzk.zab import packets as P
from pyzk.zab.packets import PacketError, PacketStream, PacketType
from pyzk.zab.snapstream import encode_wire_snapshot
from pyzk.zab.zxid import epoch_of, make_zxid

if TYPE_CHECKING:
    from pyzk.config import ServerConfig

log = logging.getLogger(__name__)

#: Bytes of the secret a worker sends first on its connection to the orderer
#: (the orderer's feed port is on loopback; the secret keeps other local
#: processes from posing as a worker).
TOKEN_BYTES = 32
#: How long the orderer waits for its workers to serve before it opens the
#: client port itself (it opens it then anyway and keeps restarting them).
WORKER_START_TIMEOUT_S = 30.0
#: Ticks a worker may take to sync, and may then stay silent, before the
#: orderer drops it (initLimit/syncLimit of this internal link; standalone
#: zoo.cfg files have neither).
WORKER_INIT_TICKS = 10
WORKER_SYNC_TICKS = 5
#: Pauses between restarts of a worker that keeps dying (doubling up to the last).
RESTART_PAUSE_S = 0.2
RESTART_PAUSE_MAX_S = 5.0
#: A worker that ran this long before it died is restarted after the shortest pause.
RESTART_RESET_S = 10.0
#: How long a stopping orderer waits for its workers to exit before SIGKILL.
STOP_WORKERS_S = 5.0
#: The session tracker id of worker ``i`` is FIRST_WORKER_SID + i - 1: session
#: ids carry it in their top byte, so no two processes hand out the same one
#: (the orderer is 1, as a standalone server).
FIRST_WORKER_SID = 2


@dataclass
class WorkerSpec:
    """What the orderer hands a worker process (pickled on its stdin: the
    configuration holds passwords, which must not show in argv or environ)."""

    cfg: ServerConfig
    index: int
    feed_port: int
    token: bytes
    parent_pid: int

    @property
    def sid(self) -> int:
        return FIRST_WORKER_SID + self.index - 1


class ProcessFourLetterWords(FourLetterWords):
    """The four-letter words of one process of a server with workers: mntr
    says which process answered (``zk_pyzk_worker_id``: 0 for the orderer)."""

    def __init__(self, shell: Any, *, worker_id: int, workers: int,
                 serving: Any = None) -> None:
        super().__init__(shell)
        self.worker_id = worker_id
        self.workers = workers
        self._serving = serving

    def mntr(self, conn: Any) -> str:
        text = super().mntr(conn)
        if not text.endswith("\n"):
            return text  # "not currently serving"
        text += f"zk_pyzk_worker_id\t{self.worker_id}\nzk_pyzk_workers\t{self.workers}\n"
        if self._serving is not None:
            text += f"zk_pyzk_workers_serving\t{self._serving()}\n"
        return text


# ---------------------------------------------------------------------- orderer


class OrdererServer(LeaderServer):
    """The standalone server's request core, plus what a leader does for its
    learners: prepare the writes they forward (``forwarded``), keep their
    sessions alive (``touch``), revalidate reconnecting sessions, and refuse
    a write through a process the session left (SessionMoved). It serves
    from the start and calls itself standalone, as the server it is."""

    state = "standalone"

    def __init__(self, cfg: ServerConfig, **kw: Any) -> None:
        super().__init__(cfg, self._commit_now, **kw)
        self.running = True


class _FeedLink(PacketLink):
    """The orderer's end of one worker's connection: the secret, then Zab
    packets as a leader reads them from a learner."""

    #: written at once: an INFORM must leave before the orderer answers the
    #: client that wrote (pyzk.shell.packetlink)
    gather = False

    def __init__(self, feed: WorkerFeed) -> None:
        self.feed = feed
        self.stream = PacketStream()
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.authenticated = False
        self._head = bytearray()
        self.state = "token"
        self.sid = 0
        self.index = 0
        #: INFORMs go to this worker (its snapshot has been sent).
        self.fed = False
        self.last_heard = now_ms()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.feed.links.add(self)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        if not self.authenticated:
            self._head += data
            if len(self._head) < TOKEN_BYTES:
                return
            if not hmac.compare_digest(bytes(self._head[:TOKEN_BYTES]), self.feed.token):
                log.warning("Closing a connection to the worker port that is not from a worker")
                self.close()
                return
            self.authenticated = True
            self.state = "info"
            data, self._head = bytes(self._head[TOKEN_BYTES:]), bytearray()
        try:
            packets = self.stream.feed(data)
        except (JuteError, PacketError) as e:
            log.warning("Bad data from worker %d: %s", self.index, e)
            self.close()
            return
        self.last_heard = now_ms()
        for packet in packets:
            if self.closed:
                break
            self.feed.on_packet(self, packet)

    def connection_lost(self, exc: Exception | None) -> None:
        was_closed, self.closed = self.closed, True
        self.feed.lost(self)
        if not was_closed and self.state != "token":
            log.log(logging.INFO if self.feed.closing else logging.WARNING,
                    "Worker %d disconnected", self.index)

    def __repr__(self) -> str:
        return f"<worker {self.index} link {self.state}>"


class WorkerFeed:
    """The leader's side of Zab's learner protocol, for observers only, on a
    standalone server: each worker is synced by SNAP, then sent an INFORM
    for every txn the orderer commits, in commit order. Writes, syncs,
    revalidations and session touches come back on the same connection.

    The epoch is the one the server's zxids are in (0 for a server that was
    always standalone): a worker starts with nothing accepted, so it accepts
    it, and no epoch file is written anywhere.
    """

    def __init__(self, shell: OrdererShell) -> None:
        self.shell = shell
        self.loop = shell.loop
        self.cfg = shell.cfg
        self.token = secrets.token_bytes(TOKEN_BYTES)
        self.links: set[_FeedLink] = set()
        #: worker sid -> its link, once it serves
        self.serving: dict[int, _FeedLink] = {}
        self._serving_changed = asyncio.Event()
        #: Encoded txns proposed and not yet committed, by zxid.
        self._txns: dict[int, bytes] = {}
        #: (zxid that must be committed first, link): SYNCs to answer (Leader.processSync).
        self._syncs: deque[tuple[int, _FeedLink]] = deque()
        self._server: asyncio.base_events.Server | None = None
        self._pinger: asyncio.TimerHandle | None = None
        self.port = 0
        self.closing = False
        #: The orderer listens on the client port: a worker in sync opens it
        #: too at its first PING (see workerproc.WorkerShell._start_serving).
        self.open = False

    @property
    def server(self) -> OrdererServer:
        return self.shell.server  # type: ignore[return-value]

    async def start(self) -> None:
        self._server = await self.loop.create_server(lambda: _FeedLink(self), "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        log.info("Worker feed on 127.0.0.1:%d", self.port)
        self._ping()

    def close(self) -> None:
        self.closing = True
        if self._pinger is not None:
            self._pinger.cancel()
            self._pinger = None
        if self._server is not None:
            self._server.close()
        for link in list(self.links):
            link.close()

    def go(self) -> None:
        """The orderer listens: PING the workers in sync, which opens their client ports."""
        self.open = True
        now = now_ms()
        for link in self.links:
            link.last_heard = now  # nothing was asked of them until now
        self._ping(again=False)

    async def wait_serving(self, count: int, timeout: float) -> bool:
        """Whether ``count`` workers serve within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while len(self.serving) < count:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._serving_changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._serving_changed.wait(), left)
        return True

    # -- the commit stream ---------------------------------------------------------

    def proposed(self, zxid: int, data: bytes) -> None:
        self._txns[zxid] = data

    def committed(self, zxids: list[int]) -> None:
        """The orderer committed ``zxids`` (and answered its own clients):
        INFORM every fed worker, then answer the SYNCs that waited for them."""
        txns = self._txns
        parts = [P.inform_packet(z, txns.pop(z)).to_bytes() for z in zxids if z in txns]
        if parts:
            data = b"".join(parts)
            for link in self.links:
                if link.fed:
                    link.send(data)
        last = self.server.tree.last_processed_zxid
        syncs = self._syncs
        while syncs and syncs[0][0] <= last:
            _zxid, link = syncs.popleft()
            link.send(P.sync_packet().to_bytes())

    def log_failed(self) -> None:
        """The log failed: nothing proposed will be committed."""
        self._txns.clear()

    # -- the learner protocol ----------------------------------------------------

    def on_packet(self, link: _FeedLink, packet: QuorumPacket) -> None:
        state = link.state
        t = packet.type
        if state == "active":
            self._active(link, packet)
        elif state == "info":
            if t != PacketType.OBSERVERINFO:
                log.warning("Worker sent %s instead of OBSERVERINFO", P.packet_to_string(packet))
                link.close()
                return
            link.sid = P.parse_learner_info(packet.data).sid
            link.index = link.sid - FIRST_WORKER_SID + 1
            epoch = epoch_of(self.server.zxid)
            link.send(P.leader_info_packet(epoch).to_bytes())
            link.state = "ackepoch"
        elif state == "ackepoch":
            if t != PacketType.ACKEPOCH:
                link.close()
                return
            self._sync(link)
        elif state in ("newleader-ack", "uptodate-ack"):
            if t != PacketType.ACK:
                log.warning("Worker %d sent %s instead of ACK", link.index,
                            P.packet_to_string(packet))
                link.close()
                return
            if state == "newleader-ack":
                link.send(P.uptodate_packet().to_bytes())
                link.state = "uptodate-ack"
            else:
                link.state = "active"
                old = self.serving.get(link.sid)
                if old is not None and old is not link:
                    old.close()
                self.serving[link.sid] = link
                self._serving_changed.set()
                log.info("Worker %d is in sync", link.index)
                if self.open:
                    link.send(P.ping_packet(self.server.tree.last_processed_zxid).to_bytes())

    def _sync(self, link: _FeedLink) -> None:
        """SNAP of the tree as committed now, NEWLEADER; INFORMs follow from
        the next commit on, so the worker misses nothing and repeats nothing."""
        server = self.server
        tree = server.tree
        zxid = tree.last_processed_zxid
        newleader = make_zxid(epoch_of(server.zxid), 0)
        log.info("Syncing worker %d with a snapshot at 0x%x", link.index, zxid)
        link.send(P.snap_packet(zxid).to_bytes()
                  + encode_wire_snapshot(tree, server.session_timeouts())
                  + P.new_leader_packet(newleader, None).to_bytes())
        link.fed = True
        link.state = "newleader-ack"

    def _active(self, link: _FeedLink, packet: QuorumPacket) -> None:
        t = packet.type
        server = self.server
        try:
            if t == PacketType.REQUEST:
                req = P.parse_request(packet)
                if req.type == OpCode.sync:
                    self._sync_request(link)
                else:
                    server.forwarded(req, server.now_ms(), owner=link)
            elif t == PacketType.PING:
                touches = P.decode_touches(packet.data)
                if touches:
                    server.touch(touches, server.now_ms())
            elif t == PacketType.REVALIDATE:
                session_id, timeout = P.parse_revalidate(packet)
                valid = server.revalidate(session_id, timeout, server.now_ms(), owner=link)
                link.send(P.revalidate_reply_packet(packet, session_id, valid).to_bytes())
            elif t == PacketType.ACK:
                pass
            else:
                log.warning("Unexpected packet from worker %d: %s", link.index,
                            P.packet_to_string(packet))
        except PacketError as e:
            log.warning("Bad packet from worker %d: %s", link.index, e)
            link.close()

    def _sync_request(self, link: _FeedLink) -> None:
        server = self.server
        if server.proposed:
            self._syncs.append((server.zxid, link))
        else:
            link.send(P.sync_packet().to_bytes())

    def lost(self, link: _FeedLink) -> None:
        self.links.discard(link)
        if self.serving.get(link.sid) is link:
            del self.serving[link.sid]
            self._serving_changed.set()
        if any(lk is link for _z, lk in self._syncs):
            self._syncs = deque((z, lk) for z, lk in self._syncs if lk is not link)

    def _ping(self, again: bool = True) -> None:
        """Leader.lead's loop, twice a tick: PING every synced worker (its
        answer carries its sessions' touches) and drop the silent ones. No
        PING goes out before the orderer listens (the first one opens a
        worker's client port)."""
        tick = self.cfg.tick_time
        if again:
            self._pinger = self.loop.call_later(tick / 2000, self._ping)
        if not self.open:
            return
        now = now_ms()
        ping = P.ping_packet(self.server.tree.last_processed_zxid).to_bytes()
        for link in list(self.links):
            if link.state == "active":
                if now - link.last_heard > WORKER_SYNC_TICKS * tick:
                    log.warning("Worker %d is silent: dropping it", link.index)
                    link.close()
                else:
                    link.send(ping)
            elif link.state != "token" and now - link.last_heard > WORKER_INIT_TICKS * tick:
                log.warning("Worker %d did not sync in time: dropping it", link.index)
                link.close()


class WorkerSupervisor:
    """Starts the worker processes, restarts one that exits while the server
    runs, and stops them all (SIGTERM, then SIGKILL) when it stops."""

    def __init__(self, shell: OrdererShell) -> None:
        self.shell = shell
        self.loop = shell.loop
        self.count = shell.cfg.workers
        self.procs: dict[int, asyncio.subprocess.Process] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False

    def start(self) -> None:
        for index in range(1, self.count + 1):
            self._tasks.append(self.loop.create_task(self._keep(index)))

    def pids(self) -> list[int]:
        """The worker processes running now (for tests and benchmarks)."""
        return [p.pid for p in self.procs.values() if p.returncode is None]

    def _environment(self) -> dict[str, str]:
        env = dict(os.environ)
        # importable from a checkout too, as the server itself was
        root = str(Path(__file__).resolve().parents[2])
        path = env.get("PYTHONPATH")
        env["PYTHONPATH"] = root + (os.pathsep + path if path else "")
        env["PYZK_DIE_WITH_PARENT"] = str(os.getpid())
        return env

    async def _spawn(self, index: int) -> asyncio.subprocess.Process:
        feed = self.shell.feed
        spec = WorkerSpec(self.shell.cfg, index, feed.port, feed.token, os.getpid())
        proc = await asyncio.create_subprocess_exec(
            # the index on the command line is only for ps and tests (the spec has it)
            sys.executable, "-m", "pyzk.shell.workerproc", "--index", str(index),
            stdin=asyncio.subprocess.PIPE, env=self._environment())
        assert proc.stdin is not None
        proc.stdin.write(pickle.dumps(spec))
        with contextlib.suppress(ConnectionError):
            await proc.stdin.drain()
        proc.stdin.close()
        log.info("Started worker %d (pid %d)", index, proc.pid)
        return proc

    async def _keep(self, index: int) -> None:
        pause = RESTART_PAUSE_S
        while not self._stopping:
            started = time.monotonic()
            try:
                proc = await self._spawn(index)
            except OSError as e:
                log.error("Cannot start worker %d: %s", index, e)
            else:
                self.procs[index] = proc
                code = await proc.wait()
                if self._stopping:
                    return
                log.warning("Worker %d (pid %d) exited with %s; restarting it", index,
                            proc.pid, code)
            if time.monotonic() - started >= RESTART_RESET_S:
                pause = RESTART_PAUSE_S
            await asyncio.sleep(pause)
            pause = min(pause * 2, RESTART_PAUSE_MAX_S)

    async def stop(self) -> None:
        self._stopping = True
        procs = [p for p in self.procs.values() if p.returncode is None]
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                p.send_signal(signal.SIGTERM)
        if procs:
            _done, pending = await asyncio.wait([asyncio.ensure_future(p.wait()) for p in procs],
                                                timeout=STOP_WORKERS_S)
            if pending:
                for p in procs:
                    if p.returncode is None:
                        log.warning("Worker pid %d ignored SIGTERM: killing it", p.pid)
                        with contextlib.suppress(ProcessLookupError):
                            p.kill()
                await asyncio.wait(pending, timeout=STOP_WORKERS_S)
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t


def _check_port_free(host: str | None, port: int) -> None:
    """Fail as a plain bind would when ``host:port`` is taken: with
    SO_REUSEPORT a second server of the same user would otherwise share the
    port silently instead of failing with "address in use"."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                               flags=socket.AI_PASSIVE)
    family, kind, proto, _name, addr = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(addr)
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise OSError(e.errno, f"[Errno {e.errno}] error while attempting to bind "
                              f"on address {addr!r}: address already in use") from None
            raise


class OrdererShell(StandaloneShell):
    """A standalone server with ``pyzk.workers=N``: the server itself orders,
    logs and commits every write and serves its share of the clients; its
    workers serve the rest (see the module docstring)."""

    server_class = OrdererServer
    reuse_port = True

    def __init__(self, cfg: ServerConfig, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(cfg, loop)
        self.feed = WorkerFeed(self)
        self.supervisor = WorkerSupervisor(self)
        self.fourlw = ProcessFourLetterWords(self, worker_id=0, workers=cfg.workers,
                                             serving=lambda: len(self.feed.serving))

    def _propose(self, hdr: TxnHeader, data: bytes) -> None:
        self.feed.proposed(hdr.zxid, data)
        super()._propose(hdr, data)

    def _durable(self, zxids: list[int]) -> None:
        super()._durable(zxids)
        self.feed.committed(zxids)

    def _log_failed(self, exc: BaseException) -> None:
        self.feed.log_failed()
        super()._log_failed(exc)

    async def listen(self) -> None:
        """The workers are started and synced first; then the server listens
        and tells them to (WorkerFeed.go), so that the client port takes
        connections in every process at about the same time. A worker not in
        sync after WORKER_START_TIMEOUT_S joins when it is."""
        cfg = self.cfg
        if cfg.client_port is not None:
            _check_port_free(cfg.client_port_address, cfg.client_port)
        if cfg.secure_client_port:
            _check_port_free(cfg.secure_client_port_address, cfg.secure_client_port)
        await self.feed.start()
        self.supervisor.start()
        if not await self.feed.wait_serving(cfg.workers, WORKER_START_TIMEOUT_S):
            log.error("Only %d of %d workers serve after %.0f s; serving without the others "
                      "while they are restarted", len(self.feed.serving), cfg.workers,
                      WORKER_START_TIMEOUT_S)
        await super().listen()
        self.feed.go()

    async def stop(self) -> None:
        self.feed.closing = True  # the workers' links end now: no warnings
        await self.supervisor.stop()
        self.feed.close()
        await super().stop()
