"""Leading, following and observing: the Zab cores' shell on the quorum port.

A role lives from the end of one election to the core's Shutdown. It owns
the quorum-port connections, a fresh transaction log writer (pyzk.shell.zablog),
a tick timer, and the role's ZooKeeperServer (pyzk.core.roleservers), and
carries out the core's actions in order (pyzk.zab.actions says what each
means). The database it starts from is the one the election shell holds.
When a role that reached broadcast ends, :meth:`_Role.handoff` gives its
tree back and the shell replays only the log after the last applied txn
(ZooKeeperServer.shutdown's fastForwardDataBase in Apache), so proposals
logged but never committed count for the next election, and a failover
costs the log tail, not a reload of the whole tree. A role that never got
in sync (a SNAP or TRUNC may be half done) or whose log failed hands back
nothing and the database is loaded from disk again, as a restart would.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections import deque
from typing import Any

from pyzk.config import ConfigError, ServerConfig
from pyzk.core.reconfig import ReconfigPreparer
from pyzk.core.roleservers import LeaderServer, LearnerServer
from pyzk.jute.codec import JuteError
from pyzk.jute.constants import OpCode
from pyzk.jute.records import TxnHeader
from pyzk.quorum.election import Decided
from pyzk.quorum.verifier import QuorumMaj
from pyzk.shell import quorumauth, quorumtls
from pyzk.shell.datadir import sorted_files, version_dir
from pyzk.shell.logstage import LogStage
from pyzk.shell.packetlink import PacketLink
from pyzk.shell.snapfiles import find_snapshots
from pyzk.shell.timers import ServerTimers
from pyzk.shell.txnlogfiles import iter_txns, log_files, truncate_log
from pyzk.txnlog.names import LOG_PREFIX, SNAPSHOT_PREFIX, zxid_from_name
from pyzk.zab import actions as A
from pyzk.zab.follower import SYNCHRONIZATION, LearnerCore
from pyzk.zab.history import DEFAULT_COMMIT_LOG_COUNT, CommittedLog
from pyzk.zab.leader import LeaderCore, newleader_config
from pyzk.zab.packets import (
    LearnerStream,
    PacketError,
    PacketStream,
    encode_committed,
    encode_packet,
)
from pyzk.zab.reconfigleader import ActivateConfig, ReconfigLeaderCore, SeeConfig
from pyzk.zab.snapstream import encode_wire_snapshot
from pyzk.zab.zxid import make_zxid

log = logging.getLogger(__name__)

#: How long a learner keeps trying to reach the leader's quorum port, in ticks
#: of initLimit (Apache's connectToLeader retries within initLimit ticks too).
CONNECT_RETRY_S = 0.1


def commit_log_count(cfg: ServerConfig) -> int:
    """zookeeper.commitLogCount; Apache raises values below 500 to 500."""
    try:
        n = int(cfg.system_properties.get("zookeeper.commitLogCount",
                                          str(DEFAULT_COMMIT_LOG_COUNT)))
    except ValueError:
        n = DEFAULT_COMMIT_LOG_COUNT
    return max(n, DEFAULT_COMMIT_LOG_COUNT)


def read_recent_txns(log_dir: str, want: int) -> deque[A.Entry]:
    """The last ``want`` txns of the log, read from the newest files (newest
    first until the window is full): never every log on disk."""
    files = log_files(log_dir, 0)
    recent: deque[A.Entry] = deque(maxlen=want)
    for start in range(len(files) - 1, -1, -1):
        recent.clear()
        first = zxid_from_name(files[start].name, LOG_PREFIX)
        for e in iter_txns(log_dir, max(first, 0), headers_only=True):
            recent.append(A.Entry(e.hdr.zxid, e.entry))
        if len(recent) >= want or start == 0:
            break
    return recent


class _Link(PacketLink):
    """One quorum-port connection (either side); packets go to ``role.on_packet``."""

    def __init__(self, role: Any, stream: PacketStream) -> None:
        self.role = role
        self.stream = stream
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.remote = "?"

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.remote = f"{peer[0]}:{peer[1]}"
        self.role.on_connect(self)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        try:
            items = self.stream.feed(data)
        except (JuteError, PacketError) as e:
            log.warning("Bad data on the quorum connection with %s: %s", self.remote, e)
            self.close()
            # close() marks the link closed, so connection_lost will not report
            # it: the core drops the peer now, not at its read deadline
            self.role.on_disconnect(self)
            return
        self.role.on_packets(self, items)

    def connection_lost(self, exc: Exception | None) -> None:
        was_closed = self.closed
        self.closed = True
        if not was_closed:
            self.role.on_disconnect(self)

    def __repr__(self) -> str:
        return f"<quorum link {self.remote}>"


class _Role:
    """What leader and learner roles share: log, timers, lifecycle."""

    server: Any

    def __init__(self, host: Any, decision: Decided) -> None:
        self.host = host
        self.peer = host.peer
        self.cfg: ServerConfig = host.cfg
        self.loop: asyncio.AbstractEventLoop = host.loop
        self.decision = decision
        self.my_id: int = self.peer.my_id
        self.done: asyncio.Future[str] = self.loop.create_future()
        self.log: LogStage | None = None
        self.timers = ServerTimers(self.loop, self.cfg)
        self._ticker: asyncio.TimerHandle | None = None
        self.tick_interval = max(0.01, self.cfg.tick_time / 4000.0)
        self._tick_due = self.loop.time()  # when the next tick should run
        self._tick_cpu = time.thread_time()  # this thread's CPU time then
        #: The zxid of the database the role started from (its last txn).
        self.start_zxid: int = host.db[2]
        #: The role reached broadcast: its tree is in step with its log.
        self.serving = False
        self.log_failed = False
        #: The disk failure (log write or fsync, epoch file) that ended the role.
        self.disk_error: BaseException | None = None
        #: A learner's actions waiting behind a long run of commits (execute).
        self._waiting: deque[A.Action] | None = None

    def handoff(self) -> tuple[Any, dict[int, int], int] | None:
        """(tree, sessions, last applied zxid) this ended role leaves for the
        next election, or None when the database must be loaded from disk:
        the role never reached broadcast (a SNAP or TRUNC may be half done,
        the tree may not match the log), its log failed (the tree may hold
        txns that are not on disk) or commits were still waiting to be applied."""
        if not self.serving or self.log_failed or self.log is not None or self._waiting:
            return None
        tree = self.server.tree
        return tree, self.server.session_timeouts(), self._last_applied(tree.last_processed_zxid)

    def _last_applied(self, processed: int) -> int:
        return processed

    def now(self) -> float:
        return self.host.now_ms()

    def _open_log(self) -> None:
        store = self.host.store
        self.log = LogStage(
            self.loop, store.open_log(self.server, self.loop), self._logged,
            stats=self.server.stats, store=store,
            on_failure=self._log_failed)

    def _log_failed(self, exc: BaseException) -> None:
        self.disk_error = exc
        self.finish(f"transaction log failed: {exc!r}")

    def _logged(self, zxids: list[int]) -> None:
        self.execute(self.core.on_logged(zxids[-1]))  # type: ignore[attr-defined]

    def _tick(self) -> None:
        self._ticker = None
        if self.done.done():
            return
        # A tick more than one interval late means a callback held the loop
        # and no socket was read meanwhile: the core's read deadlines move on
        # by that stall (see LeaderCore.on_tick) rather than expire on peers
        # whose packets are waiting in the kernel. Only by the CPU this thread
        # spent meanwhile, though: a process that was frozen (SIGSTOP, a VM
        # pause) used none, and must find its deadlines passed at once, before
        # it answers a client from a tree the ensemble has moved past.
        late = self.loop.time() - self._tick_due
        busy = time.thread_time() - self._tick_cpu
        stalled = min(late, busy) * 1000.0 if late > self.tick_interval else 0.0
        if stalled:
            log.log(logging.INFO if stalled >= self.cfg.tick_time else logging.DEBUG,
                    "The event loop was held for %.0f ms; quorum read deadlines move on "
                    "by as much", stalled)
        self.execute(self.core.on_tick(self.now(), stalled))  # type: ignore[attr-defined]
        if not self.done.done():
            self._tick_due = self.loop.time() + self.tick_interval
            self._tick_cpu = time.thread_time()
            self._ticker = self.loop.call_later(self.tick_interval, self._tick)

    def finish(self, reason: str) -> None:
        if not self.done.done():
            log.info("Leaving the %s role: %s", self.server.state, reason)
            self.done.set_result(reason)
            self.server.close_all()

    def _persist_epoch(self, a: A.PersistEpoch) -> bool:
        """Write an epoch file. When the disk refuses (EIO, ENOSPC) the role
        ends and nothing after it is carried out, as the IOException of
        Apache's setAcceptedEpoch/setCurrentEpoch ends lead() and
        followLeader(): no txn of an epoch is ever logged before its epoch
        file, which the next start checks the log against."""
        try:
            self.peer.persist_epoch(a.name, a.epoch)
        except OSError as e:
            log.error("Cannot write %s %d: %s", a.name, a.epoch, e)
            self.disk_error = e
            self.finish(f"cannot write {a.name}: {e}")
            return False
        return True

    def stop(self) -> None:
        self.finish("server shutting down")

    def execute(self, actions: list[A.Action]) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    async def _cleanup(self) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
        self.timers.cancel()
        self.server.close_all()
        if self.log is not None:
            await self.log.close()
            self.log_failed = self.log.failed is not None
            self.log = None
        self.host.store.log_closed()


# ---------------------------------------------------------------------- leader


class LeaderRole(_Role):
    """Leader.lead: LeaderCore behind the quorum port, LeaderServer in front of clients."""

    def __init__(self, host: Any, decision: Decided) -> None:
        super().__init__(host, decision)
        tree, sessions, last_zxid = host.db
        cfg = self.cfg
        self.server = LeaderServer(cfg, self._propose, now_ms=host.now_ms, wall_ms=host.wall_ms,
                                   server_id=self.my_id, tree=tree, sessions=sessions,
                                   zxid=last_zxid)
        verifier = self.peer.verifier
        kw: dict[str, Any] = dict(
            accepted_epoch=self.peer.accepted_epoch,
            current_epoch=self.peer.current_epoch, last_zxid=last_zxid, now=self.now(),
            tick_time=cfg.tick_time, init_limit=cfg.init_limit, sync_limit=cfg.sync_limit,
            committed=self._recent_committed(), txnlog=self._read_log, read_log_async=True,
            force_snap=self._sysprop("zookeeper.forceSnapshotSync", "").lower() == "true",
            config=self._newleader_config)
        self.core: LeaderCore
        if cfg.reconfig_enabled:
            core = ReconfigLeaderCore(self.my_id, verifier, last_seen=self.peer.last_seen, **kw)
            self.server.prep.reconfig = ReconfigPreparer(
                self.peer, core.is_quorum_synced,
                standalone_enabled=bool(cfg.standalone_enabled))
            self.core = core
        else:
            self.core = LeaderCore(self.my_id, verifier, **kw)
        self.links: set[_Link] = set()
        self._listener: Any = None  # an asyncio Server or a quorumtls UnifiedListener
        self.started_ms = 0.0
        self.proposal_sizes: list[int] = []  # last, min, max (BufferStats)

    _epoch_start = -1

    def _last_applied(self, processed: int) -> int:
        """Serving starts the tree's zxid at (epoch, 0), which is no txn: if
        nothing was committed since, the last txn is the one it started from."""
        return self.start_zxid if processed == self._epoch_start else processed

    def _newleader_config(self, zxid: int) -> bytes:
        """What NEWLEADER carries: the last seen configuration as it is when the
        learner is synced (LearnerHandler reads it then)."""
        reconfig = bool(self.cfg.reconfig_enabled)
        verifier = self.peer.last_seen if reconfig else self.peer.verifier
        return newleader_config(verifier, zxid, reconfig_enabled=reconfig)

    def _recent_committed(self) -> CommittedLog:
        """ZKDatabase's committedLog: the last commitLogCount txns of the log,
        so a new leader can DIFF or TRUNC a learner instead of sending it a
        whole snapshot. The election shell keeps them in memory across roles
        (as Apache's ZKDatabase does); only when it has none (a TRUNC just
        reloaded the database) are they read from the newest log files."""
        count = commit_log_count(self.cfg)
        recent = self.host.recent_txns
        where = "kept in memory"
        if recent is None:
            recent = read_recent_txns(self.cfg.data_log_dir or self.cfg.data_dir, count + 1)
            where = "read from the log"
        committed = CommittedLog(count, entries=recent)
        log.info("Committed log 0x%x..0x%x (%d txns) %s", committed.min_zxid,
                 committed.max_zxid, len(committed), where)
        return committed

    def _sysprop(self, name: str, default: str) -> str:
        return self.cfg.system_properties.get(name, default)

    def _log_size_limit(self) -> int:
        """ZKDatabase.calculateTxnLogSizeLimit: newest snapshot size times
        zookeeper.snapshotSizeFactor (0.33); negative turns log sync off."""
        try:
            factor = float(self._sysprop("zookeeper.snapshotSizeFactor", "0.33"))
        except ValueError:
            factor = 0.33
        if factor < 0:
            return -1
        snaps = find_snapshots(self.cfg.data_dir, 1)
        size = snaps[0].stat().st_size if snaps else 0
        return int(size * factor)

    def _read_log(self, peer_zxid: int) -> Any:
        """ZKDatabase.getProposalsFromTxnLog: entries from the file holding
        ``peer_zxid``, or none (so the learner gets a SNAP) when log sync is
        off, the log does not reach back to ``peer_zxid``, or the log files
        to send are larger than the size limit, as Apache decides."""
        limit = self._log_size_limit()
        if limit < 0:
            return
        log_dir = self.cfg.data_log_dir or self.cfg.data_dir
        it = iter(iter_txns(log_dir, peer_zxid, headers_only=True))
        first = None
        for e in it:
            if e.hdr.zxid >= peer_zxid:
                first = e
                break
        if first is None:
            return
        if first.hdr.zxid > peer_zxid:
            log.warning("Unable to find proposals from txnlog for zxid: 0x%x", peer_zxid)
            return
        if limit > 0:
            # FileTxnIterator.getStorageSize: the files after the one being read.
            size = sum(f.stat().st_size for f in log_files(log_dir, peer_zxid)[1:])
            if size > limit:
                log.info("Txnlog size: %d exceeds sizeLimit: %d", size, limit)
                return
        yield A.Entry(first.hdr.zxid, first.entry)
        for e in it:
            yield A.Entry(e.hdr.zxid, e.entry)

    def _read_log_off_loop(self, a: A.ReadLog) -> None:
        """ReadLog: the learner's txns read in a thread, so the loop keeps
        pinging the other learners and serving clients meanwhile (the reader
        is mostly file reads and struct calls; it shares the GIL, which the
        loop gets back every switch interval)."""
        def read() -> list[A.Entry]:
            return list(self._read_log(a.zxid))

        def done(fut: asyncio.Future[list[A.Entry]]) -> None:
            if self.done.done():
                return
            try:
                entries = fut.result()
            except Exception as e:  # an unreadable log: the learner gets a SNAP
                log.warning("Cannot read proposals for zxid 0x%x from the txnlog: %r", a.zxid, e)
                entries = []
            self.execute(self.core.on_log_read(a.peer, entries))

        self.loop.run_in_executor(None, read).add_done_callback(done)

    async def run(self) -> str:
        me = self.cfg.servers[self.my_id]
        self._open_log()
        # Leader.lead: zk.loadData() ends with a clean snapshot. Apache writes it
        # before it accepts learners; here a forked child writes the tree as it
        # is now while the quorum port opens (the log holds every txn it covers
        # until it is on disk), so the election's critical path does not grow
        # with the size of the tree.
        self.host.store.take_snapshot_in_background()
        try:
            self._listener = await quorumtls.create_server(
                # UnifiedServerSocket with quorum TLS (pyzk.shell.quorumtls), then
                # LearnerHandler authenticates each learner first (quorum SASL)
                self.peer.quorum_tls, self.loop,
                quorumauth.server_gate(self.peer.quorum_auth,
                                       lambda: _Link(self, PacketStream())),
                me.host, me.quorum_port, "quorum port")
        except OSError as e:
            log.error("Cannot listen on the quorum port %s:%d: %s", me.host, me.quorum_port, e)
            await self._cleanup()
            return "quorum port unavailable"
        self.execute(self.core.initial_actions())
        self._tick_due = self.loop.time()  # the first tick is never late
        self._tick_cpu = time.thread_time()
        self._tick()
        try:
            return await self.done
        finally:
            self._listener.close()
            for link in list(self.links):
                link.close()
            self.timers.cancel()
            await self._cleanup()

    # -- the quorum port -------------------------------------------------------------

    def on_connect(self, link: _Link) -> None:
        if self.done.done():
            link.close()
            return
        self.links.add(link)
        self.execute(self.core.on_connect(link))

    def on_packet(self, link: _Link, packet: Any) -> None:
        if not self.done.done():  # an ended role logs and answers nothing more
            self.execute(self.core.on_packet(link, packet))

    def on_packets(self, link: _Link, items: list[Any]) -> None:
        for item in items:
            if link.closed:
                break
            self.on_packet(link, item)

    def on_disconnect(self, link: _Link) -> None:
        self.links.discard(link)
        if not self.done.done():
            self.execute(self.core.on_disconnect(link))

    # -- the pipeline ------------------------------------------------------------------

    def _propose(self, hdr: TxnHeader, data: bytes) -> None:
        entry = A.Entry(hdr.zxid, data)
        if not self.core.established:
            log.warning("Dropping proposal 0x%x: not leading", entry.zxid)
            return
        size = len(entry.data)
        self.proposal_sizes = [size, min(self.proposal_sizes[1], size) if self.proposal_sizes
                               else size, max(self.proposal_sizes[2], size)
                               if self.proposal_sizes else size]
        self.execute(self.core.propose(entry))

    def execute(self, actions: list[A.Action]) -> None:
        # Packets to a learner are queued on its link in the core's order and
        # written once per loop iteration (pyzk.shell.packetlink): a DIFF is a
        # PROPOSAL and a COMMIT per txn, a write load two or three packets per
        # write per follower, from separate core calls.
        # A PROPOSAL or COMMIT goes to every follower as one packet object:
        # encoded once, its bytes reused for the next Send of the same object.
        last_packet: Any = None
        last_bytes = b""
        for a in actions:
            t = type(a)
            if t is A.Send:
                if a.packet is last_packet:
                    data = last_bytes
                else:
                    last_packet = a.packet
                    data = last_bytes = encode_packet(last_packet)
                a.peer.send(data)
                continue
            if t is A.SendCommitted:
                a.peer.send(encode_committed(a.entries))
                continue
            if t is A.LogTxn:
                assert self.log is not None
                self.log.append_encoded(a.entry.zxid, a.entry.data)
                self.host.txn_logged(a.entry)
            elif t is A.Commit:
                self.server.committed(a.entry.zxid)
            elif t is A.ReadLog:
                self._read_log_off_loop(a)
            elif t is A.SendSnapshot:
                a.peer.send(encode_wire_snapshot(self.server.tree,
                                                 self.server.session_timeouts()))
            elif t is A.PersistEpoch:
                if not self._persist_epoch(a):
                    return
            elif t is A.StartServing:
                self._start_serving(a.epoch)
            elif t is A.TouchSessions:
                self.server.touch(a.touches, self.now())
            elif t is A.SubmitRequest:
                if a.request.type == OpCode.sync:
                    self.execute(self.core.process_sync(a.peer))
                else:
                    self.server.forwarded(a.request, self.now(), owner=a.peer)
            elif t is A.CheckSession:
                valid = self.server.revalidate(a.session_id, a.timeout, self.now(),
                                               owner=a.peer)
                self.execute(self.core.revalidated(a.peer, a.packet, a.session_id, valid))
            elif t is A.Disconnect:
                a.peer.close()
                self.links.discard(a.peer)
            elif t is A.Shutdown:
                self.finish(a.reason)
            elif t is SeeConfig:
                self.peer.set_last_seen(a.verifier)
            elif t is ActivateConfig:
                # Leader.tryToCommit: the leader goes on (answering this reconfig);
                # if it is no longer the designated leader the core stops committing
                # and the role ends once its followers have left for the new leader.
                self.peer.process_reconfig(a.verifier, a.designated_leader, a.zxid)
            elif t is A.ConfigSeen:
                pass

    def _activate_initial_config(self, epoch: int) -> None:
        """Leader.lead and startZkServer with reconfigEnabled (ZOOKEEPER-1783): a
        never-reconfigured configuration (version 0) takes the new epoch's first
        zxid as its version, which the NEWLEADER already carried, and is committed
        on every member once a quorum acked it."""
        peer = self.peer
        zxid = make_zxid(epoch, 0)
        if peer.verifier.version == 0 and peer.last_seen.version == 0:
            peer.set_last_seen(QuorumMaj(peer.verifier.members, zxid))
        peer.process_reconfig(peer.last_seen, self.my_id, zxid)
        self.core.quorum = peer.verifier

    def _start_serving(self, epoch: int) -> None:
        if self.cfg.reconfig_enabled:
            self._activate_initial_config(epoch)
        server = self.server
        server.zxid = make_zxid(epoch, 0)
        server.tree.last_processed_zxid = server.zxid
        self._epoch_start = server.zxid
        server.running = True
        self.serving = True
        self.started_ms = self.now()
        self.peer.established(epoch)
        log.info("LEADING - LEADER ELECTION TOOK - %.0f ms; epoch %d",
                 self.peer.last_election_ms, epoch)
        # Only the leader expires sessions and reaps containers.
        self.timers.expire_sessions(server)
        self.timers.reap_containers(server)

    def learner_counts(self) -> dict[str, int]:
        """What mntr reports about learners (Leader's learner lists)."""
        voting = self.peer.verifier.voting
        forwarding = self.core.forwarding
        return {
            "learners": len(self.core.handlers),
            "synced_followers": len(forwarding),
            "synced_non_voting_followers": sum(1 for h in forwarding if h.sid not in voting),
            "synced_observers": len(self.core.observing),
            "pending_syncs": sum(len(v) for v in self.core.pending_syncs.values()),
        }


# ---------------------------------------------------------------------- learners


#: A learner writes its gathered packets at least every this many: the ACKs
#: of a 100k-txn DIFF come in one batch right behind NEWLEADER's, which the
#: leader waits initLimit ticks for and should not wait behind the rest.
_SEND_RUN = 256
#: Commits a learner applies per loop iteration (see LearnerRole.execute).
_APPLY_RUN = 2000


class LearnerRole(_Role):
    """Follower.followLeader / Observer.observeLeader."""

    def __init__(self, host: Any, decision: Decided, *, observer: bool) -> None:
        super().__init__(host, decision)
        self.observer = observer
        self.leader_id = decision.vote.leader
        self.link: _Link | None = None
        tree, sessions, last_zxid = host.db
        cfg = self.cfg
        self.core = LearnerCore(
            self.my_id, "leader", accepted_epoch=self.peer.accepted_epoch,
            current_epoch=self.peer.current_epoch, last_logged_zxid=last_zxid, now=self.now(),
            config_version=self.peer.verifier.version, observer=observer,
            tick_time=cfg.tick_time, init_limit=cfg.init_limit, sync_limit=cfg.sync_limit)
        self._new_server(tree, sessions, last_zxid)

    def _new_server(self, tree: Any, sessions: dict[int, int], zxid: int) -> None:
        self.server = LearnerServer(
            self.cfg, observer=self.observer, server_id=self.my_id, forward=self._forward,
            revalidate=self._revalidate, touch=self.core.touch, now_ms=self.host.now_ms,
            wall_ms=self.host.wall_ms, tree=tree, sessions=sessions, zxid=zxid)
        # Learner.syncWithLeader: after DIFF, SNAP or TRUNC the config node is ours
        self.host.init_config_node(tree)
        if self.host.store is not None:
            self.host.store.attach(self.server)

    async def run(self) -> str:
        spec = self.cfg.servers.get(self.leader_id)
        if spec is None:
            return f"leader {self.leader_id} is not a known server"
        self._open_log()
        deadline = self.now() + self.cfg.init_limit * self.cfg.tick_time
        while True:
            try:
                _t, link = await quorumtls.create_connection(
                    self.peer.quorum_tls, self.loop,
                    quorumauth.learner_gate(self.peer.quorum_auth, spec.host,
                                            lambda: _Link(self, LearnerStream())),
                    spec.host, spec.quorum_port, "quorum port")
                break
            except OSError as e:
                if self.now() >= deadline or self.done.done():
                    log.warning("Cannot connect to leader %d at %s:%d: %s", self.leader_id,
                                spec.host, spec.quorum_port, e)
                    await self._cleanup()
                    return "leader unreachable"
                await asyncio.sleep(CONNECT_RETRY_S)
        try:
            # Learner.connectToLeader: quorum SASL before FOLLOWERINFO
            link = await quorumauth.learner_ready(link)
        except quorumauth.QuorumAuthError:
            await self._cleanup()
            return "quorum authentication failed"
        self.link = link
        self.core.now = self.now()
        self.execute(self.core.start())
        self._tick_due = self.loop.time()  # the first tick is never late
        self._tick_cpu = time.thread_time()
        self._tick()
        try:
            return await self.done
        finally:
            link.close()
            await self._cleanup()

    def on_connect(self, link: _Link) -> None:
        pass

    def on_packet(self, link: _Link, packet: Any) -> None:
        if not self.done.done():
            self.core.now = self.now()
            self.execute(self.core.on_packet(packet))

    def on_packets(self, link: _Link, items: list[Any]) -> None:
        """A read's packets; a DIFF's run of them goes to the core in one call
        (LearnerCore.on_sync_packets), anything else one by one."""
        i = 0
        n = len(items)
        core = self.core
        while i < n and not link.closed and not self.done.done():
            core.now = self.now()
            if core.phase == SYNCHRONIZATION:
                actions, j = core.on_sync_packets(items, i)
                if j > i:
                    i = j
                    self.execute(actions)
                    continue
            self.execute(core.on_packet(items[i]))
            i += 1

    def on_disconnect(self, link: _Link) -> None:
        if not self.done.done():
            self.execute(self.core.on_disconnect())

    # -- the pipeline ------------------------------------------------------------------

    def _forward(self, session_id: int, cxid: int, op: int, body: bytes,
                 auth: list[Any] | None) -> None:
        self.execute(self.core.forward_request(session_id, cxid, op, body, auth))

    def _revalidate(self, session_id: int, timeout: int) -> None:
        self.execute(self.core.revalidate(session_id, timeout))

    def execute(self, actions: list[A.Action]) -> None:
        """Carry out the core's actions in order.

        A long run of commits (a DIFF's, at UPTODATE) is applied
        ``_APPLY_RUN`` at a time, one loop iteration each, so the loop keeps
        reading the leader's PINGs and answering them meanwhile (Apache
        applies in its CommitProcessor thread; applying 100k txns in one go
        outlasted syncLimit and the leader dropped us). Until the rest is
        applied, every later action but a Send or a LogTxn waits behind it,
        in order: Sends (PING replies, ACKs, forwarded requests) and logging
        a new proposal (its ACK is due within syncLimit) need nothing applied.
        """
        waiting = self._waiting
        if waiting is not None:
            for a in actions:
                t = type(a)
                if t is A.Send:
                    self._send_all([encode_packet(a.packet)])
                elif t is A.LogTxn:
                    self._execute([a])
                else:
                    waiting.append(a)
            return
        rest = self._execute(actions)
        if rest:
            self._waiting = deque(rest)
            self.loop.call_soon(self._apply_waiting)

    def _apply_waiting(self) -> None:
        waiting, self._waiting = self._waiting, None
        if waiting is None or self.done.done():
            self._waiting = waiting  # an ended role hands off no half-applied tree
            return
        rest = self._execute(list(waiting))
        if rest:
            self._waiting = deque(rest)
            self.loop.call_soon(self._apply_waiting)

    def _execute(self, actions: list[A.Action]) -> list[A.Action]:
        """execute's work; returns the actions left after ``_APPLY_RUN`` commits."""
        # The packets to the leader (an ACK per txn after a sync or a batch)
        # go out in one write, flushed before any action but a log append (a
        # commit may forward a client's request from inside it), so their
        # order is the core's and nothing that ends the role outruns them.
        sends: list[bytes] = []
        commits = 0
        for i, a in enumerate(actions):
            t = type(a)
            if t is A.Send:
                sends.append(encode_packet(a.packet))
                if len(sends) >= _SEND_RUN:
                    self._send_all(sends, now=True)
                continue
            if sends and t is not A.LogTxn:
                self._send_all(sends)
            if t is A.LogTxn:
                assert self.log is not None
                self.log.append_encoded(a.entry.zxid, a.entry.data)
                self.host.txn_logged(a.entry)
            elif t is A.Commit:
                if commits == _APPLY_RUN:
                    return actions[i:]
                commits += 1
                self.server.commit(a.entry)
            elif t is A.SessionValidated:
                self.server.session_validated(a.session_id, a.valid)
            elif t is A.SyncDone:
                self.server.sync_done()
            elif t is A.PersistEpoch:
                if not self._persist_epoch(a):
                    return []
            elif t is A.LoadSnapshot:
                snap = a.snapshot.to_snapshot(
                    digest_enabled=bool(self.cfg.digest_enabled),
                    extended_types=bool(self.cfg.extended_types_enabled))
                snap.tree.last_processed_zxid = snap.zxid
                self._new_server(snap.tree, snap.sessions, snap.zxid)
                # the log before the snapshot is another history (and is deleted)
                self.host.forget_recent_txns(keep_window=True)
            elif t is A.Truncate:
                if not self._on_disk(self._truncate, a.zxid, what="truncate the log"):
                    return []
            elif t is A.TakeSnapshot:
                if not self._on_disk(self._snapshot, a.sync, what="write a snapshot"):
                    return []
            elif t is A.StartServing:
                self.server.running = True
                self.serving = True
                self.peer.established(a.epoch)
                log.info("%s - LEADER ELECTION TOOK - %.0f ms; leader %d, epoch %d",
                         "OBSERVING" if self.observer else "FOLLOWING",
                         self.peer.last_election_ms, self.leader_id, a.epoch)
            elif t is A.Shutdown:
                self.finish(a.reason)
            elif t is A.ConfigSeen:
                self._config_seen(a)
        if sends:
            self._send_all(sends)
        return []

    def _send_all(self, sends: list[bytes], now: bool = False) -> None:
        """Queue the gathered packets to the leader (written at the end of the
        loop iteration, or ``now``), and forget them."""
        if self.link is not None:
            self.link.send(sends[0] if len(sends) == 1 else b"".join(sends))
            if now:
                self.link.flush()
        sends.clear()

    def _config_seen(self, a: A.ConfigSeen) -> None:
        """Learner: NEWLEADER/PROPOSAL (last seen) or UPTODATE/COMMITANDACTIVATE/
        INFORMANDACTIVATE (activate) configurations; a major change ends the role."""
        if not self.cfg.reconfig_enabled:
            return
        try:
            qv = QuorumMaj.from_string(a.config.decode("utf-8"))
        except (ConfigError, UnicodeDecodeError) as e:
            log.error("Bad configuration from the leader: %s", e)
            return
        if not a.activate:
            self.peer.set_last_seen(qv)
        elif self.peer.process_reconfig(qv, a.designated_leader, None):
            self.finish("changes proposed in reconfig")

    def _on_disk(self, step: Any, arg: Any, *, what: str) -> bool:
        """Run a sync step that writes the data directory; when the disk
        refuses, the role ends before anything after it (the ACK of
        NEWLEADER above all: the leader would count this learner as holding
        a history it could not write). Apache exits there (takeSnapshot:
        "Severe unrecoverable error, exiting"); the member stops too."""
        try:
            step(arg)
        except OSError as e:
            log.error("Cannot %s: %s", what, e)
            self.disk_error = e
            self.finish(f"cannot {what}: {e}")
            return False
        return not self.done.done()

    def _truncate(self, zxid: int) -> None:
        """ZKDatabase.truncateLog: cut the log after ``zxid`` and reload from disk."""
        log_dir = self.cfg.data_log_dir or self.cfg.data_dir
        log.warning("Truncating log to get in sync with the leader 0x%x", zxid)
        if not truncate_log(log_dir, zxid):
            # Apache exits the JVM here (ExitCode.QUORUM_PACKET_ERROR).
            log.error("Not able to truncate the log 0x%x", zxid)
            self.finish("unable to truncate the log")
            return
        tree, sessions, last = self.host.store.recover()
        self.host.forget_recent_txns(keep_window=False)
        tree.last_processed_zxid = zxid
        self._new_server(tree, sessions, zxid if last > zxid else last)

    def _snapshot(self, sync: bool) -> None:
        store = self.host.store
        store.attach(self.server)
        path = store.take_snapshot()
        if not sync:
            return
        # After a SNAP the older logs are not contiguous with what is logged next
        # (and may hold another history's txns): drop them, and any snapshot
        # beyond this one, so neither recovery nor a later DIFF reads them.
        zxid = self.server.tree.last_processed_zxid
        log_dir = version_dir(self.cfg.data_log_dir or self.cfg.data_dir)
        current = self.log.writer.current_path if self.log is not None else None
        for f in sorted_files(log_dir, LOG_PREFIX):
            if f != current:
                with contextlib.suppress(OSError):
                    os.unlink(f)
        for f in sorted_files(version_dir(self.cfg.data_dir), SNAPSHOT_PREFIX):
            with contextlib.suppress(ValueError, OSError):
                if f != path and zxid_from_name(f.name, SNAPSHOT_PREFIX) > zxid:
                    os.unlink(f)
