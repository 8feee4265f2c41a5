"""A seeded simulator of a Zab ensemble: N cores, a fake network, crashes.

Everything is driven from one ``random.Random(seed)``, so a failing seed
replays exactly. Each simulated server has a "disk" (durable log, snapshots,
acceptedEpoch/currentEpoch), a page cache (log entries written but not yet
fsynced, lost on a crash) and an in-memory tree, here the sequence of zxids
it applied. The network carries QuorumPackets over connections that behave
like TCP: FIFO per direction with random delay; a lost packet is a broken
connection, which both ends notice. Partitions split the servers into groups
that cannot connect.

Leader election is a stand-in (:class:`HighestVoteOracle`): a quorum of
LOOKING voters that can reach each other elects the one with the highest
(current epoch, last zxid, sid), as FLE's vote order does; a LOOKING server
that can reach a running leader follows it. The real FLE core can replace it
behind :class:`ElectionOracle`.

Invariants checked after every step (a violation raises
:class:`InvariantViolation` naming the seed):

* at most one leader is established (StartServing) per epoch;
* there is one global committed sequence: every established leader's
  history begins with it (no committed txn lost, whatever crashed), and
  every Commit on a serving server extends a prefix of it, in the same order
  with the same bytes;
* an observer or follower applies only a prefix of that sequence.
"""

from __future__ import annotations

import logging
import random
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Protocol, cast

from pyzk.jute.constants import OpCode
from pyzk.jute.records import QuorumPacket, SetDataTxn, TxnHeader
from pyzk.quorum.verifier import QuorumMaj
from pyzk.zab import actions as A
from pyzk.zab.follower import LearnerCore
from pyzk.zab.history import CommittedLog
from pyzk.zab.leader import LeaderCore
from pyzk.zab.packets import PacketType, SnapTransfer
from pyzk.zab.zxid import hexz, make_zxid

log = logging.getLogger(__name__)

LOOKING, LEADING, FOLLOWING, DOWN = "LOOKING", "LEADING", "FOLLOWING", "DOWN"


class InvariantViolation(AssertionError):
    """A safety property failed; the message names the seed and step."""


class ElectionOracle(Protocol):
    """Chooses a leader among servers that can talk to each other."""

    def elect(self, votes: dict[int, tuple[int, int]], quorum: QuorumMaj) -> int | None:
        """``votes``: sid -> (current epoch, last zxid) of LOOKING voters; None if no quorum."""
        ...


class HighestVoteOracle:
    """FLE's outcome without its messages: the highest (epoch, zxid, sid) of a quorum."""

    def elect(self, votes: dict[int, tuple[int, int]], quorum: QuorumMaj) -> int | None:
        if not quorum.contains_quorum(votes):
            return None
        return max(votes, key=lambda s: (*votes[s], s))


@dataclass
class SimConfig:
    voters: int = 3
    observers: int = 0
    steps: int = 3000
    step_ms: int = 10
    tick_time: int = 100
    init_limit: int = 10
    sync_limit: int = 5
    commit_log_count: int = 4
    max_delay_ms: int = 30
    propose_p: float = 0.15
    fsync_p: float = 0.3
    break_p: float = 0.002      # per step: one random connection breaks (a lost packet)
    crash_p: float = 0.003      # per step: one live server crashes
    restart_p: float = 0.02     # per step: one crashed server restarts
    partition_p: float = 0.002  # per step: the network splits in two
    heal_p: float = 0.01        # per step: a partition heals
    snapshot_p: float = 0.003   # per step: a server snapshots and purges its old log
    quiet_steps: int = 600      # fault-free steps at the end, then convergence is required


@dataclass
class Disk:
    log: list[A.Entry] = field(default_factory=list)
    snapshots: list[tuple[int, tuple[int, ...]]] = field(default_factory=list)
    accepted_epoch: int = 0
    current_epoch: int = 0


@dataclass(slots=True)
class SimSnapshot:
    zxid: int
    applied: tuple[int, ...]


class Conn:
    """One quorum connection: learner ``learner`` to leader ``leader``."""

    __slots__ = ("cid", "leader", "learner", "queues", "last", "open", "pending_snap")

    def __init__(self, cid: int, leader: int, learner: int) -> None:
        self.cid = cid
        self.leader = leader
        self.learner = learner
        self.queues: dict[int, deque[tuple[int, object]]] = {leader: deque(), learner: deque()}
        self.last = {leader: 0, learner: 0}
        self.open = True
        self.pending_snap: QuorumPacket | None = None


class Server:
    def __init__(self, sid: int, observer: bool) -> None:
        self.sid = sid
        self.observer = observer
        self.disk = Disk()
        self.cache: list[A.Entry] = []  # written, not yet durable
        self.applied: list[int] = []
        self.last_processed = 0
        self.role = LOOKING
        self.core: LeaderCore | LearnerCore | None = None
        self.conn: Conn | None = None   # learner's connection to its leader
        self.serving = False
        self.loaded_snapshot = False
        self.reload()

    def log_tail(self) -> int:
        entries = self.cache or self.disk.log
        return entries[-1].zxid if entries else 0

    def reload(self) -> None:
        """ZKDatabase.loadDataBase: the newest snapshot, then every logged txn after it."""
        snap = self.disk.snapshots[-1] if self.disk.snapshots else (0, ())
        self.applied = list(snap[1])
        self.last_processed = snap[0]
        for e in self.disk.log:
            if e.zxid > snap[0]:
                self.applied.append(e.zxid)
                self.last_processed = e.zxid


def txn_bytes(zxid: int, payload: bytes) -> bytes:
    """A marshalled setData txn (TxnHeader + SetDataTxn) as a proposal carries it."""
    hdr = TxnHeader(0x5EED, zxid & 0xFFFF, zxid, 0, int(OpCode.setData))
    return hdr.to_bytes() + SetDataTxn("/sim", payload, zxid & 0xFFFF).to_bytes()


class Simulation:
    def __init__(self, seed: int, cfg: SimConfig | None = None,
                 oracle: ElectionOracle | None = None) -> None:
        from pyzk.config import ServerSpec

        self.seed = seed
        self.cfg = cfg or SimConfig()
        self.rng = random.Random(seed)
        self.oracle = oracle or HighestVoteOracle()
        n = self.cfg.voters + self.cfg.observers
        self.servers = {
            sid: Server(sid, sid > self.cfg.voters) for sid in range(1, n + 1)
        }
        specs = [ServerSpec(sid, "127.0.0.1", 2000 + sid, 3000 + sid,
                            "observer" if s.observer else "participant")
                 for sid, s in self.servers.items()]
        self.quorum = QuorumMaj(specs)
        self.now = 0
        self.step_no = 0
        self.conns: dict[int, Conn] = {}
        self._cid = 0
        self.groups: dict[int, int] = {sid: 0 for sid in self.servers}
        self.established: dict[int, int] = {}   # epoch -> leader sid
        self.committed: list[int] = []          # the global committed sequence
        self.data: dict[int, bytes] = {}        # zxid -> txn bytes, once committed
        self.proposed = 0
        self.faults = True
        self.trace: list[str] = []
        self.stats: Counter[str] = Counter()  # sync kinds, role changes, faults

    # ------------------------------------------------------------------ invariants

    def _fail(self, msg: str) -> None:
        tail = "\n".join(self.trace[-30:])
        raise InvariantViolation(f"seed {self.seed} step {self.step_no}: {msg}\n{tail}")

    def _check_prefix(self, s: Server, what: str) -> None:
        seq = s.applied
        if len(seq) > len(self.committed) or seq != self.committed[: len(seq)]:
            self._fail(f"{what}: server {s.sid} applied {list(map(hexz, seq))[-8:]} is not a "
                       f"prefix of committed {list(map(hexz, self.committed))[-8:]}")

    def _on_commit(self, s: Server, entry: A.Entry) -> None:
        if entry.zxid in self.data and self.data[entry.zxid] != entry.data:
            self._fail(f"zxid 0x{hexz(entry.zxid)} committed with different bytes")
        s.applied.append(entry.zxid)
        s.last_processed = entry.zxid
        if not s.serving:
            return
        i = len(s.applied) - 1
        if s.role == LEADING and i == len(self.committed):
            self.committed.append(entry.zxid)
            self.data[entry.zxid] = entry.data
        self._check_prefix(s, "commit")

    def _on_start_serving(self, s: Server, epoch: int) -> None:
        if s.role == LEADING:
            other = self.established.get(epoch)
            if other is not None and other != s.sid:
                self._fail(f"two leaders established in epoch {epoch}: {other} and {s.sid}")
            self.established[epoch] = s.sid
            n = len(self.committed)
            if s.applied[:n] != self.committed:
                self._fail(f"leader {s.sid} of epoch {epoch} lost committed txns: has "
                           f"{list(map(hexz, s.applied))[-8:]}, committed "
                           f"{list(map(hexz, self.committed))[-8:]}")
            for z in s.applied[n:]:
                self.committed.append(z)
            for e in s.disk.log + s.cache:
                self.data.setdefault(e.zxid, e.data)
            s.last_processed = make_zxid(epoch, 0)
        s.serving = True
        if isinstance(s.core, LearnerCore):
            self.stats[("observer " if s.observer else "") + "sync " + s.core.sync_kind] += 1
        self._check_prefix(s, "start serving")
        self.trace.append(f"{self.now}: {s.sid} serving epoch {epoch} as {s.role}")

    # ------------------------------------------------------------------ roles

    def _reachable(self, a: int, b: int) -> bool:
        return self.groups[a] == self.groups[b]

    def _drop_links(self, s: Server) -> None:
        """Close the quorum links ``s`` has: all its learners' if it leads, else its own."""
        if s.role == LEADING:
            for c in list(self.conns.values()):
                if c.leader == s.sid:
                    self._close(c)
        elif s.conn is not None:
            self._close(s.conn)
        s.conn = None

    def _to_looking(self, s: Server, reason: str) -> None:
        if s.role == DOWN:
            return
        self.trace.append(f"{self.now}: {s.sid} {s.role} -> LOOKING ({reason})")
        self.stats["looking: " + reason.split(",")[0].split(":")[0]] += 1
        self._drop_links(s)
        s.core = None
        s.serving = False
        s.role = LOOKING
        # the process lives on: what it wrote reaches the disk; then it reloads
        self._flush(s, notify=False)
        s.reload()

    def _crash(self, s: Server) -> None:
        self.trace.append(f"{self.now}: {s.sid} crashes (loses {len(s.cache)} unsynced)")
        self.stats["crash"] += 1
        self.stats["lost unsynced"] += len(s.cache)
        self._drop_links(s)
        s.cache.clear()
        s.core = None
        s.serving = False
        s.role = DOWN

    def _restart(self, s: Server) -> None:
        self.trace.append(f"{self.now}: {s.sid} restarts")
        s.role = LOOKING
        s.reload()

    def _elect(self) -> None:
        looking = [s for s in self.servers.values() if s.role == LOOKING]
        for s in looking:
            if s.role != LOOKING:
                continue
            leader = next((x for x in self.servers.values() if x.role == LEADING
                           and self._reachable(x.sid, s.sid)), None)
            if leader is not None:
                self._follow(s, leader)
                continue
            if s.observer:
                continue
            group = {v.sid: (v.disk.current_epoch, v.last_processed)
                     for v in self.servers.values()
                     if v.role == LOOKING and not v.observer and self._reachable(v.sid, s.sid)}
            winner = self.oracle.elect(group, self.quorum)
            if winner is None:
                continue
            self._lead(self.servers[winner])
            for sid in sorted(group):
                if sid != winner:
                    self._follow(self.servers[sid], self.servers[winner])

    def _lead(self, s: Server) -> None:
        self.trace.append(f"{self.now}: {s.sid} LEADING (epoch {s.disk.current_epoch}, "
                          f"zxid 0x{hexz(s.last_processed)})")
        s.role = LEADING
        snap_zxid = s.disk.snapshots[-1][0] if s.disk.snapshots else 0
        committed = CommittedLog(self.cfg.commit_log_count,
                                 [e for e in s.disk.log if e.zxid > snap_zxid])
        disk = s.disk

        def txnlog(start: int) -> list[A.Entry]:
            if not disk.log or disk.log[0].zxid > start:
                return []
            return list(disk.log)

        core = LeaderCore(
            s.sid, self.quorum, accepted_epoch=disk.accepted_epoch,
            current_epoch=disk.current_epoch, last_zxid=s.last_processed, now=self.now,
            tick_time=self.cfg.tick_time, init_limit=self.cfg.init_limit,
            sync_limit=self.cfg.sync_limit, committed=committed,
            txnlog=txnlog if self.rng.random() < 0.8 else None,
        )
        s.core = core
        self._apply(s, core.initial_actions())

    def _follow(self, s: Server, leader: Server) -> None:
        if not self._reachable(s.sid, leader.sid):
            return
        self._cid += 1
        c = Conn(self._cid, leader.sid, s.sid)
        self.conns[c.cid] = c
        s.role = FOLLOWING
        s.conn = c
        s.core = LearnerCore(
            s.sid, c.cid, accepted_epoch=s.disk.accepted_epoch,
            current_epoch=s.disk.current_epoch, last_logged_zxid=s.last_processed,
            now=self.now, observer=s.observer, tick_time=self.cfg.tick_time,
            init_limit=self.cfg.init_limit, sync_limit=self.cfg.sync_limit,
        )
        assert isinstance(leader.core, LeaderCore)
        self._apply(leader, leader.core.on_connect(c.cid))
        self._apply(s, s.core.start())

    # ------------------------------------------------------------------ network

    def _close(self, c: Conn) -> None:
        if not c.open:
            return
        c.open = False
        self.conns.pop(c.cid, None)
        leader = self.servers[c.leader]
        learner = self.servers[c.learner]
        if leader.role == LEADING and isinstance(leader.core, LeaderCore):
            self._apply(leader, leader.core.on_disconnect(c.cid))
        if learner.conn is c and isinstance(learner.core, LearnerCore):
            learner.conn = None
            self._apply(learner, learner.core.on_disconnect())

    def _enqueue(self, c: Conn, dst: int, item: object) -> None:
        at = max(c.last[dst], self.now + self.rng.randint(0, self.cfg.max_delay_ms))
        c.last[dst] = at
        c.queues[dst].append((at, item))

    def _deliver(self) -> None:
        for cid in sorted(self.conns):
            c = self.conns.get(cid)
            for dst in (c.leader, c.learner) if c else ():
                q = c.queues[dst]
                while c.open and q and q[0][0] <= self.now:
                    _, item = q.popleft()
                    s = self.servers[dst]
                    if s.core is None:
                        break
                    if dst == c.leader:
                        assert isinstance(s.core, LeaderCore) and isinstance(item, QuorumPacket)
                        self._apply(s, s.core.on_packet(c.cid, item))
                    else:
                        assert isinstance(s.core, LearnerCore)
                        self._apply(s, s.core.on_packet(item))  # type: ignore[arg-type]

    # ------------------------------------------------------------------ the shell

    def _flush(self, s: Server, notify: bool = True) -> None:
        if not s.cache:
            return
        last = s.cache[-1].zxid
        s.disk.log.extend(s.cache)
        s.cache.clear()
        if notify and s.core is not None:
            self._apply(s, s.core.on_logged(last))

    def _apply(self, s: Server, actions: list[A.Action]) -> None:
        for a in actions:
            if s.core is None:
                return
            if isinstance(a, A.SendCommitted):
                c = self.conns.get(a.peer)  # type: ignore[arg-type]
                if c is not None and c.open:
                    for packet in a.packets():
                        self._enqueue(c, c.learner, packet)
            elif isinstance(a, A.Send):
                c = self.conns.get(a.peer) if s.role == LEADING else s.conn  # type: ignore[arg-type]
                if c is None or not c.open:
                    continue
                dst = c.learner if s.role == LEADING else c.leader
                if a.packet.type == PacketType.SNAP and s.role == LEADING:
                    c.pending_snap = a.packet
                else:
                    self._enqueue(c, dst, a.packet)
            elif isinstance(a, A.SendSnapshot):
                c = self.conns.get(a.peer)  # type: ignore[arg-type]
                if c is None or c.pending_snap is None:
                    continue
                if a.zxid != s.last_processed:
                    self._fail(f"SendSnapshot at 0x{hexz(a.zxid)} but tree is at "
                               f"0x{hexz(s.last_processed)}")
                snap = SimSnapshot(s.last_processed, tuple(s.applied))
                self._enqueue(c, c.learner, SnapTransfer(c.pending_snap, snap))  # type: ignore[arg-type]
                c.pending_snap = None
            elif isinstance(a, A.LogTxn):
                s.cache.append(a.entry)
            elif isinstance(a, A.Commit):
                self._on_commit(s, a.entry)
            elif isinstance(a, A.LoadSnapshot):
                snap = cast(SimSnapshot, a.snapshot)  # what SendSnapshot above handed over
                s.applied = list(snap.applied)
                s.last_processed = snap.zxid
                s.loaded_snapshot = True
            elif isinstance(a, A.Truncate):
                self._flush(s, notify=False)
                s.disk.log = [e for e in s.disk.log if e.zxid <= a.zxid]
                s.disk.snapshots = [x for x in s.disk.snapshots if x[0] <= a.zxid]
                s.reload()
            elif isinstance(a, A.TakeSnapshot):
                s.disk.snapshots.append((s.last_processed, tuple(s.applied)))
                if s.loaded_snapshot:  # older log files are not contiguous with what follows
                    self._flush(s, notify=False)
                    s.disk.log = [e for e in s.disk.log if e.zxid > s.last_processed]
                    s.loaded_snapshot = False
            elif isinstance(a, A.PersistEpoch):
                setattr(s.disk, "accepted_epoch" if a.name == "acceptedEpoch"
                        else "current_epoch", a.epoch)
            elif isinstance(a, A.StartServing):
                self._on_start_serving(s, a.epoch)
            elif isinstance(a, A.Disconnect):
                c = self.conns.get(a.peer)  # type: ignore[arg-type]
                if c is not None:
                    self._close(c)
            elif isinstance(a, A.Shutdown):
                self._to_looking(s, a.reason)
                return

    # ------------------------------------------------------------------ the loop

    def _faults(self) -> None:
        cfg, rng = self.cfg, self.rng
        live = [s for s in self.servers.values() if s.role != DOWN]
        if self.conns and rng.random() < cfg.break_p:
            c = self.conns[rng.choice(sorted(self.conns))]
            self.trace.append(f"{self.now}: connection {c.learner}->{c.leader} breaks")
            self._close(c)
        if live and rng.random() < cfg.crash_p:
            self._crash(rng.choice(live))
        down = [s for s in self.servers.values() if s.role == DOWN]
        if down and rng.random() < cfg.restart_p:
            self._restart(rng.choice(down))
        if rng.random() < cfg.partition_p:
            sids = sorted(self.servers)
            side = set(rng.sample(sids, rng.randint(1, len(sids) - 1)))
            self._partition({sid: int(sid in side) for sid in sids})
        elif len(set(self.groups.values())) > 1 and rng.random() < cfg.heal_p:
            self._partition({sid: 0 for sid in self.servers})
        if live and rng.random() < cfg.snapshot_p:
            s = rng.choice(live)
            if s.serving:
                s.disk.snapshots.append((s.last_processed, tuple(s.applied)))
                keep = rng.randint(0, 3)
                cut = [e for e in s.disk.log if e.zxid <= s.last_processed]
                if len(cut) > keep:
                    drop = {e.zxid for e in cut[: len(cut) - keep]}
                    s.disk.log = [e for e in s.disk.log if e.zxid not in drop]

    def _partition(self, groups: dict[int, int]) -> None:
        self.groups = groups
        self.trace.append(f"{self.now}: partition {groups}")
        for c in list(self.conns.values()):
            if not self._reachable(c.leader, c.learner):
                self._close(c)

    def step(self) -> None:
        self.step_no += 1
        self.now += self.cfg.step_ms
        if self.faults:
            self._faults()
        self._elect()
        for s in list(self.servers.values()):
            if (s.role == LEADING and isinstance(s.core, LeaderCore) and s.core.established
                    and self.rng.random() < self.cfg.propose_p):
                core = s.core
                zxid = core.next_zxid()
                self.proposed += 1
                self._apply(s, core.propose(A.Entry(zxid, txn_bytes(zxid, b"v%d" % self.proposed))))
        self._deliver()
        for s in list(self.servers.values()):
            if s.cache and self.rng.random() < self.cfg.fsync_p:
                self._flush(s)
        for sid in sorted(self.servers):
            s = self.servers[sid]
            if s.core is not None:
                self._apply(s, s.core.on_tick(self.now))

    def run(self) -> Simulation:
        for _ in range(self.cfg.steps):
            self.step()
        # quiet period: heal everything, then the ensemble must converge
        self.faults = False
        self._partition({sid: 0 for sid in self.servers})
        for s in self.servers.values():
            if s.role == DOWN:
                self._restart(s)
        for _ in range(self.cfg.quiet_steps):
            self.step()
        for _ in range(200):  # let the last proposals commit everywhere
            self.cfg.propose_p = 0.0
            self.step()
        self._check_converged()
        return self

    def _check_converged(self) -> None:
        leaders = [s for s in self.servers.values() if s.role == LEADING and s.serving]
        if len(leaders) != 1:
            self._fail(f"no single serving leader after the quiet period: "
                       f"{[(s.sid, s.role, s.serving) for s in self.servers.values()]}")
        for s in self.servers.values():
            if not s.serving:
                self._fail(f"server {s.sid} is {s.role} and not serving after the quiet period")
            if s.applied != self.committed:
                self._fail(f"server {s.sid} did not converge: {len(s.applied)} applied, "
                           f"{len(self.committed)} committed")


def run_seed(seed: int, cfg: SimConfig | None = None) -> Simulation:
    """Run one seeded simulation; raises InvariantViolation on a safety or liveness failure."""
    return Simulation(seed, cfg).run()
