"""A seeded, deterministic simulator for Fast Leader Election cores.

N :class:`~pyzk.quorum.election.FastLeaderElection` cores talk over a fake
network that loses, delays (and so reorders) messages, partitions servers
and crashes and restarts them.  Everything random comes from one
``random.Random(seed)``, so a failing seed replays exactly.

FLE alone does not make a leader safe: two servers can both decide to lead
in the same election round when votes change while others finalize (Apache
has the same property).  Zab resolves that: a leader that cannot gather a
quorum of followers within initLimit, or a follower whose leader never
answers, goes back to LOOKING.  The simulator therefore models the *outcome*
of Zab's discovery and synchronisation (:class:`_ZabModel`): who establishes
an epoch, followers copying the leader's log position, writes committed by a
quorum.  That model is test scaffolding, not pyzk's Zab.

Invariants checked after every step (:class:`InvariantViolation` on failure):

* every vote a decision counted was really sent by that voter in that round;
* a leader chosen by LOOKING votes has the greatest (epoch, zxid, id) among
  its supporters as they were when they voted (no supporter knew more);
* every established leader holds every committed transaction, and each
  epoch is established at most once;
* at most one established leader has a quorum of synced followers;
* liveness, at the end: once faults stop and the network heals, a leader is
  established within a bounded time and all live voters follow it.

Decisions for different leaders in the same election epoch are counted in
:attr:`Simulation.split_decisions` rather than treated as a failure, because
Apache's algorithm permits them.
"""

from __future__ import annotations

import heapq
import logging
import random
from collections import deque
from dataclasses import dataclass, field

from pyzk.config import ServerSpec
from pyzk.quorum.election import (
    CancelTimer,
    ConnectAll,
    Decided,
    FastLeaderElection,
    NewerConfig,
    Send,
    ServerState,
    SetTimer,
)
from pyzk.quorum.verifier import QuorumMaj
from pyzk.quorum.wire import Notification, decode_notification, encode_notification

log = logging.getLogger(__name__)


class InvariantViolation(AssertionError):
    """An invariant failed; the message names the seed and the recent trace."""


@dataclass
class SimConfig:
    """Shape of one simulated run; times are milliseconds."""

    voters: int = 3
    observers: int = 0
    loss: float = 0.0
    min_delay: int = 1
    max_delay: int = 30
    #: Mean time between injected faults while chaos is on (0: none).
    fault_interval: int = 0
    fault_duration: int = 3000
    crash_weight: float = 1.0
    partition_weight: float = 1.0
    chaos_time: int = 20000
    #: Time allowed after the chaos for a leader to be established.
    settle_time: int = 150000
    init_limit: int = 2000
    sync_limit: int = 1000
    write_interval: int = 200
    #: Round-trip every notification through the byte codec.
    encode: bool = True


@dataclass
class _Node:
    sid: int
    role: str
    zxid: int
    current_epoch: int
    accepted_epoch: int
    core: FastLeaderElection | None = None
    alive: bool = True
    timer_token: int = 0
    zab_token: int = 0
    #: Leader only: established epoch, or None.
    established: int | None = None
    #: Follower/observer: the epoch it synced to with its leader.
    synced_epoch: int | None = None
    last_decision: Decided | None = None


@dataclass(order=True)
class _Event:
    time: int
    seq: int
    kind: str = field(compare=False)
    data: tuple = field(compare=False)


class Simulation:
    """One seeded run.  Use :meth:`run` or drive :meth:`step` yourself."""

    def __init__(self, seed: int, cfg: SimConfig | None = None) -> None:
        self.seed = seed
        self.cfg = cfg or SimConfig()
        self.rng = random.Random(seed)
        self.now = 0
        self._seq = 0
        self._events: list[_Event] = []
        self.trace: deque[str] = deque(maxlen=60)
        n = self.cfg.voters + self.cfg.observers
        specs = [
            ServerSpec(
                sid, "127.0.0.1", 20000 + sid, 30000 + sid,
                "participant" if sid <= self.cfg.voters else "observer",
            )
            for sid in range(1, n + 1)
        ]  # fmt: skip
        self.verifier = QuorumMaj(specs)
        self.nodes: dict[int, _Node] = {}
        for spec in specs:
            epoch = self.rng.randint(0, 2)
            zxid = (epoch << 32) | self.rng.randint(0, 3) if epoch else self.rng.randint(0, 3)
            self.nodes[spec.sid] = _Node(spec.sid, spec.role, zxid, epoch, epoch)
        #: partition group of each sid (all 0: connected)
        self.group: dict[int, int] = dict.fromkeys(self.nodes, 0)
        self.chaos = self.cfg.fault_interval > 0
        self.loss = self.cfg.loss
        #: every (sender, round, vote...) actually sent, with the sender's
        #: (epoch, zxid, id) at the time: what decisions may count.
        self.sent: dict[tuple[int, int, int, int, int, int], tuple[int, int, int]] = {}
        self.committed_zxid = 0
        self.established_epochs: dict[int, int] = {}
        self.split_decisions = 0
        self.decisions: dict[int, set[int]] = {}
        self.messages = 0
        self.steps = 0
        for node in self.nodes.values():
            self._boot(node)
        if self.chaos:
            self._schedule_fault()
        self._push(self.cfg.write_interval, "write", ())

    # ------------------------------------------------------------------
    # plumbing

    def _push(self, delay: int, kind: str, data: tuple) -> None:
        self._seq += 1
        heapq.heappush(self._events, _Event(self.now + delay, self._seq, kind, data))

    def _note(self, text: str) -> None:
        self.trace.append(f"t={self.now} {text}")

    def fail(self, message: str) -> None:
        trace = "\n  ".join(self.trace)
        raise InvariantViolation(
            f"seed {self.seed}: {message} (t={self.now} ms)\n  recent events:\n  {trace}"
        )

    def reachable(self, a: int, b: int) -> bool:
        return self.nodes[a].alive and self.nodes[b].alive and self.group[a] == self.group[b]

    def _boot(self, node: _Node) -> None:
        node.alive = True
        node.core = FastLeaderElection(
            node.sid, self.verifier, last_zxid=node.zxid, current_epoch=node.current_epoch
        )
        node.established = None
        node.synced_epoch = None
        self._note(f"boot {node.sid} epoch={node.current_epoch} zxid={node.zxid:#x}")
        self._apply(node, node.core.start())

    def _apply(self, node: _Node, actions: list) -> None:
        for a in actions:
            if isinstance(a, Send):
                self._send(node, a)
            elif isinstance(a, SetTimer):
                node.timer_token += 1
                self._push(a.delay_ms, "timer", (node.sid, node.timer_token))
            elif isinstance(a, CancelTimer):
                node.timer_token += 1
            elif isinstance(a, Decided):
                self._decided(node, a)
            elif isinstance(a, (ConnectAll, NewerConfig)):
                pass
            else:  # pragma: no cover - a new action type
                self.fail(f"unknown action {a!r}")

    def _send(self, node: _Node, a: Send) -> None:
        n = a.notification
        self.messages += 1
        if n.state == ServerState.LOOKING and a.to in self.verifier.voting:
            key = (node.sid, n.election_epoch, n.leader, n.zxid, n.peer_epoch, n.state)
            creds = (node.current_epoch, node.zxid, node.sid)
            self.sent[key] = max(creds, self.sent.get(key, creds))
        if a.to == node.sid:
            # Apache loops messages to itself back without a socket.
            self._push(0, "deliver", (node.sid, node.sid, n))
            return
        if not self.reachable(node.sid, a.to) or self.rng.random() < self.loss:
            return
        delay = self.rng.randint(self.cfg.min_delay, self.cfg.max_delay)
        self._push(delay, "deliver", (node.sid, a.to, n))

    # ------------------------------------------------------------------
    # events

    def step(self) -> bool:
        """Handle the next event; False when none is left."""
        if not self._events:
            return False
        ev = heapq.heappop(self._events)
        self.now = ev.time
        self.steps += 1
        getattr(self, f"_on_{ev.kind}")(*ev.data)
        self._check_global()
        return True

    def run(self, until: int | None = None) -> None:
        """Chaos for ``chaos_time``, then heal and require a stable leader
        within ``settle_time``."""
        end_chaos = self.cfg.chaos_time if until is None else until
        while self._events and self._events[0].time <= end_chaos:
            self.step()
        self.heal()
        deadline = self.now + self.cfg.settle_time
        while self._events and self._events[0].time <= deadline:
            self.step()
            if self.stable_leader() is not None:
                return
        self.fail(f"no stable leader {self.cfg.settle_time} ms after healing: {self.describe()}")

    def heal(self) -> None:
        """Stop injecting faults, join all partitions, restart crashed servers."""
        self.chaos = False
        self.loss = 0.0
        self.group = dict.fromkeys(self.nodes, 0)
        self._note("heal")
        for node in self.nodes.values():
            if not node.alive:
                self._boot(node)

    def _on_deliver(self, frm: int, to: int, n: Notification) -> None:
        node = self.nodes[to]
        if node.core is None or not node.alive:
            return
        if frm != to and not self.reachable(frm, to):
            return
        if self.cfg.encode:
            n = decode_notification(encode_notification(n))
        self._apply(node, node.core.receive(frm, n))

    def _on_timer(self, sid: int, token: int) -> None:
        node = self.nodes[sid]
        if not node.alive or node.core is None or token != node.timer_token:
            return
        self._apply(node, node.core.timeout())

    # ------------------------------------------------------------------
    # decisions and the Zab outcome model

    def _decided(self, node: _Node, d: Decided) -> None:
        self._note(f"{node.sid} decided {d.state.name} {d.vote} round={d.vote.election_epoch}")
        node.last_decision = d
        leaders = self.decisions.setdefault(d.vote.election_epoch, set())
        if leaders and d.vote.leader not in leaders:
            self.split_decisions += 1
        leaders.add(d.vote.leader)
        core = node.core
        assert core is not None
        # Every counted LOOKING vote was really sent, and none knew more
        # than the leader it chose.
        counted = d.vote if node.role == "participant" else None
        for sid in d.supporters if counted is not None else ():
            v = core.recvset.get(sid)
            if v is None or v.state != ServerState.LOOKING or not v.agrees(counted):
                continue  # not counted as a LOOKING vote of this round
            key = (sid, v.election_epoch, v.leader, v.zxid, v.peer_epoch, 0)
            creds = self.sent.get(key)
            if creds is None:
                self.fail(f"{node.sid} counted a vote {v} from {sid} that was never sent")
            if (v.peer_epoch, v.zxid, v.leader) < creds:
                self.fail(f"{node.sid} elected {v} though supporter {sid} had {creds}")
        node.zab_token += 1
        self._push(self.cfg.init_limit, "zab", (node.sid, node.zab_token))

    def _back_to_looking(self, node: _Node, why: str) -> None:
        self._note(f"{node.sid} LOOKING again: {why}")
        node.established = None
        node.synced_epoch = None
        node.zab_token += 1
        assert node.core is not None
        self._apply(node, node.core.start(node.zxid, node.current_epoch))

    def _followers_of(self, leader: _Node, *, synced: bool) -> list[_Node]:
        out = []
        for n in self.nodes.values():
            if n is leader or n.core is None or not self.reachable(leader.sid, n.sid):
                continue
            if n.core.state not in (ServerState.FOLLOWING, ServerState.OBSERVING):
                continue
            if n.core.current_vote.leader != leader.sid:
                continue
            if synced and n.synced_epoch != leader.established:
                continue
            out.append(n)
        return out

    def _on_zab(self, sid: int, token: int) -> None:
        node = self.nodes[sid]
        core = node.core
        if not node.alive or core is None or token != node.zab_token:
            return
        if core.state == ServerState.LEADING:
            if node.established is None:
                self._establish(node)
            else:
                voters = [n.sid for n in self._followers_of(node, synced=True)] + [node.sid]
                if not self.verifier.contains_quorum(voters):
                    self._back_to_looking(node, "lost its quorum of followers")
                    return
        elif core.state in (ServerState.FOLLOWING, ServerState.OBSERVING):
            leader = self.nodes[core.current_vote.leader]
            ok = (
                self.reachable(sid, leader.sid)
                and leader.core is not None
                and leader.core.state == ServerState.LEADING
                and leader.established is not None
            )
            if not ok:
                self._back_to_looking(node, f"leader {leader.sid} not leading it")
                return
            if node.synced_epoch != leader.established:
                self._sync(leader, node)
        else:
            return
        node.zab_token += 1
        self._push(self.cfg.sync_limit, "zab", (sid, node.zab_token))

    def _establish(self, leader: _Node) -> None:
        followers = self._followers_of(leader, synced=False)
        voters = [n.sid for n in followers if n.role == "participant"] + [leader.sid]
        if not self.verifier.contains_quorum(voters):
            self._back_to_looking(leader, "no quorum of followers within initLimit")
            return
        quorum = [leader] + [n for n in followers if n.role == "participant"]
        epoch = max(n.accepted_epoch for n in quorum) + 1
        if epoch in self.established_epochs:
            self.fail(f"epoch {epoch} established twice ({self.established_epochs[epoch]}, "
                      f"{leader.sid})")  # fmt: skip
        if leader.zxid < self.committed_zxid:
            self.fail(
                f"leader {leader.sid} (zxid {leader.zxid:#x}) lacks committed zxid "
                f"{self.committed_zxid:#x}"
            )
        self.established_epochs[epoch] = leader.sid
        for n in quorum:
            n.accepted_epoch = epoch
        leader.current_epoch = epoch
        leader.established = epoch
        assert leader.core is not None
        leader.core.update_peer_epoch(epoch)
        self._note(f"{leader.sid} established epoch {epoch} with {sorted(voters)}")
        for n in followers:
            self._sync(leader, n)

    def _sync(self, leader: _Node, node: _Node) -> None:
        assert leader.established is not None and node.core is not None
        node.zxid = leader.zxid
        node.accepted_epoch = max(node.accepted_epoch, leader.established)
        node.current_epoch = leader.established
        node.synced_epoch = leader.established
        node.core.update_peer_epoch(leader.established)

    def _on_write(self) -> None:
        self._push(self.cfg.write_interval, "write", ())
        for leader in self.nodes.values():
            if leader.established is None or leader.core is None:
                continue
            if leader.core.state != ServerState.LEADING:
                continue
            epoch = leader.established
            zxid = max(leader.zxid, epoch << 32) + 1
            acked = [leader.sid]
            for f in self._followers_of(leader, synced=True):
                if self.rng.random() < 0.8:
                    f.zxid = zxid
                    if f.role == "participant":
                        acked.append(f.sid)
            leader.zxid = zxid
            if self.verifier.contains_quorum(acked):
                self.committed_zxid = max(self.committed_zxid, zxid)

    # ------------------------------------------------------------------
    # faults

    def _schedule_fault(self) -> None:
        self._push(self.rng.randint(1, 2 * self.cfg.fault_interval), "fault", ())

    def _on_fault(self) -> None:
        if not self.chaos:
            return
        self._schedule_fault()
        total = self.cfg.crash_weight + self.cfg.partition_weight
        if self.rng.random() * total < self.cfg.crash_weight:
            sid = self.rng.choice(sorted(self.nodes))
            node = self.nodes[sid]
            if node.alive:
                self._note(f"crash {sid}")
                node.alive = False
                node.core = None
                node.established = None
                node.synced_epoch = None
                node.zab_token += 1
                node.timer_token += 1
                self._push(self.rng.randint(100, self.cfg.fault_duration), "restart", (sid,))
        else:
            sids = sorted(self.nodes)
            self.rng.shuffle(sids)
            cut = self.rng.randint(1, len(sids) - 1)
            self.group = {sid: int(i >= cut) for i, sid in enumerate(sids)}
            self._note(f"partition {sorted(sids[:cut])} | {sorted(sids[cut:])}")
            self._push(self.rng.randint(100, self.cfg.fault_duration), "heal_partition", ())

    def _on_restart(self, sid: int) -> None:
        node = self.nodes[sid]
        if not node.alive:
            self._boot(node)

    def _on_heal_partition(self) -> None:
        self.group = dict.fromkeys(self.nodes, 0)
        self._note("partition healed")

    # ------------------------------------------------------------------
    # global invariants and views

    def _check_global(self) -> None:
        quorate = []
        for node in self.nodes.values():
            if node.established is not None and node.core is not None:
                voters = [n.sid for n in self._followers_of(node, synced=True)] + [node.sid]
                if self.verifier.contains_quorum(voters):
                    quorate.append(node.sid)
        if len(quorate) > 1:
            self.fail(f"several leaders with a quorum of followers: {quorate}")

    def stable_leader(self) -> int | None:
        """The established leader every live server follows, if there is one."""
        leaders = [
            n for n in self.nodes.values()
            if n.alive and n.core is not None and n.established is not None
        ]  # fmt: skip
        if len(leaders) != 1:
            return None
        leader = leaders[0]
        for n in self.nodes.values():
            if n is leader:
                continue
            if not n.alive or n.core is None or n.synced_epoch != leader.established:
                return None
            if n.core.current_vote.leader != leader.sid:
                return None
        return leader.sid

    def describe(self) -> str:
        parts = []
        for n in self.nodes.values():
            if n.core is None:
                parts.append(f"{n.sid}:down")
            else:
                parts.append(
                    f"{n.sid}:{n.core.state.name}->{n.core.current_vote.leader}"
                    f"@{n.core.logical_clock} est={n.established} sync={n.synced_epoch}"
                )
        return ", ".join(parts)
