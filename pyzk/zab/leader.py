"""The leader role: Leader.lead and one LearnerHandler per learner, as one core.

Apache runs a thread per learner that blocks in several places (waiting for
an epoch quorum, for a quorum of epoch acks, for a quorum of NEWLEADER
acks). Here each learner is a :class:`_Handler` record with an explicit
state; where Apache's thread would block the handler parks, and packets that
arrive meanwhile wait in its backlog exactly as they would wait unread in
the socket. The leader's own thread is the core itself.

Events: :meth:`LeaderCore.on_connect`, :meth:`on_packet`,
:meth:`on_disconnect`, :meth:`on_tick` (the shell calls it at least every
tickTime/2 ms), :meth:`on_logged` (our log is durable up to a zxid),
:meth:`propose`, :meth:`process_sync`, :meth:`revalidated`. Each returns the
list of actions (pyzk.zab.actions) to carry out in order.

Phases (QuorumPeer.ZabState): DISCOVERY (FOLLOWERINFO, LEADERINFO,
ACKEPOCH; the new epoch is one more than the largest accepted epoch among a
quorum), SYNCHRONIZATION (DIFF/TRUNC/SNAP then NEWLEADER, until a quorum
acked NEWLEADER), BROADCAST (PROPOSAL, ACK, COMMIT in zxid order, INFORM to
observers, PING every half tick, and the tick checks that drop a learner past
syncLimit and give up leadership without a synced quorum).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Hashable, Iterable
from typing import Protocol

from pyzk.jute.records import QuorumPacket
from pyzk.zab import packets as P
from pyzk.zab.actions import (
    Action,
    CheckSession,
    Commit,
    Disconnect,
    Entry,
    LogTxn,
    PersistEpoch,
    ReadLog,
    Send,
    SendCommitted,
    SendSnapshot,
    Shutdown,
    StartServing,
    SubmitRequest,
    TouchSessions,
)
from pyzk.zab.history import CommittedLog, TxnLogReader, needs_txnlog, plan_sync
from pyzk.zab.packets import PacketType
from pyzk.zab.zxid import COUNTER_MASK, epoch_of, hexz, is_epoch_start, make_zxid

# Plain ints for comparisons on hot paths: an IntEnum member costs an
# attribute lookup through its metaclass each time it is named.
_PT_ACK = int(PacketType.ACK)
_PT_ACKEPOCH = int(PacketType.ACKEPOCH)
_PT_FOLLOWERINFO = int(PacketType.FOLLOWERINFO)
_PT_OBSERVERINFO = int(PacketType.OBSERVERINFO)
_PT_PING = int(PacketType.PING)
_PT_PROPOSAL = int(PacketType.PROPOSAL)
_PT_REQUEST = int(PacketType.REQUEST)
_PT_REVALIDATE = int(PacketType.REVALIDATE)

log = logging.getLogger(__name__)


class Quorum(Protocol):
    """What the core needs of a QuorumVerifier (pyzk.quorum.verifier.QuorumMaj fits)."""

    voting: frozenset[int]
    version: int

    def contains_quorum(self, acks: Iterable[int]) -> bool: ...


def newleader_config(verifier: object, new_leader_zxid: int, *, reconfig_enabled: bool = False
                     ) -> bytes:
    """The config text NEWLEADER carries (Leader.getQuorumVerifierBytes).

    With reconfigEnabled, a never-reconfigured config (version 0) is sent with
    the version set to the NEWLEADER zxid (ZOOKEEPER-1783); without it (the
    default) QuorumPeer.setLastSeenQuorumVerifier ignores that and version 0
    goes out, as a real Apache 3.8 leader shows.
    """
    from pyzk.quorum.verifier import QuorumMaj

    assert isinstance(verifier, QuorumMaj)
    if reconfig_enabled and verifier.version == 0:
        verifier = QuorumMaj(verifier.members, new_leader_zxid)
    return verifier.to_bytes()


# Handler states. PARKED_* are where LearnerHandler's thread blocks (no reads).
AWAIT_INFO = "await-info"
PARKED_EPOCH = "parked-epoch"              # in getEpochToPropose
AWAIT_ACKEPOCH = "await-ackepoch"
PARKED_EPOCH_ACK = "parked-epoch-ack"      # in waitForEpochAck
AWAIT_NEWLEADER_ACK = "await-newleader-ack"
AWAIT_LOG = "await-log"                    # its txns being read from disk (ReadLog)
PARKED_NEWLEADER = "parked-newleader"      # in waitForNewLeaderAck / waitForStartup
ACTIVE = "active"
DEAD = "dead"
_PARKED = (PARKED_EPOCH, PARKED_EPOCH_ACK, PARKED_NEWLEADER, AWAIT_LOG)

DISCOVERY = "DISCOVERY"
SYNCHRONIZATION = "SYNCHRONIZATION"
BROADCAST = "BROADCAST"
SHUT_DOWN = "SHUTDOWN"


class _SyncLimitCheck:
    """LearnerHandler.SyncLimitCheck: the age of the oldest unacked proposal.

    It tracks two proposals at most, as Apache does: the one being waited
    for and the latest one sent after it. (Apache uses time 0 for "none";
    None here, since the shell's clock may well start at 0.)
    """

    __slots__ = ("started", "cur_zxid", "cur_time", "next_zxid", "next_time")

    def __init__(self) -> None:
        self.started = False
        self.cur_zxid = self.next_zxid = 0
        self.cur_time: float | None = None
        self.next_time: float | None = None

    def update_proposal(self, zxid: int, now: float) -> None:
        if not self.started:
            return
        if self.cur_time is None:
            self.cur_time, self.cur_zxid = now, zxid
        else:
            self.next_time, self.next_zxid = now, zxid

    def update_ack(self, zxid: int) -> None:
        if self.cur_zxid == zxid:
            self.cur_time, self.cur_zxid = self.next_time, self.next_zxid
            self.next_time, self.next_zxid = None, 0
        elif self.next_zxid == zxid:
            log.warning("ACK for 0x%s received before ACK for 0x%s", hexz(zxid),
                        hexz(self.cur_zxid))
            self.next_time, self.next_zxid = None, 0

    def check(self, now: float, timeout_ms: int) -> bool:
        return self.cur_time is None or now - self.cur_time < timeout_ms


class _Handler:
    """One connected learner (LearnerHandler's state)."""

    __slots__ = (
        "peer", "state", "sid", "version", "observer", "accepted_epoch", "first_zxid",
        "peer_last_zxid", "tick_deadline", "read_deadline", "park_deadline", "backlog",
        "sending", "limit", "needs_snap",
    )

    def __init__(self, peer: Hashable, tick_deadline: int) -> None:
        self.peer = peer
        self.state = AWAIT_INFO
        self.sid = 0
        self.version = 0x1
        self.observer = False
        self.accepted_epoch = -1
        self.first_zxid = 0
        self.peer_last_zxid = 0
        self.tick_deadline = tick_deadline
        self.read_deadline: float | None = None
        self.park_deadline: float | None = None
        self.backlog: list[QuorumPacket] = []
        self.sending = False  # Apache's sendingThreadStarted: pings allowed
        self.limit = _SyncLimitCheck()
        self.needs_snap = False


class _Proposal:
    __slots__ = ("entry", "acks", "self_acked")

    def __init__(self, entry: Entry) -> None:
        self.entry = entry
        self.acks: set[int] = set()
        self.self_acked = False


class LeaderCore:
    """A leader for one epoch, from the end of election until it shuts down.

    ``last_zxid`` is the last zxid the loaded database has processed (every
    txn in our log counts, as ZKDatabase.loadDataBase replays them all);
    ``committed`` the committed-log window filled during that replay;
    ``txnlog`` reads older proposals from disk (None disables it);
    ``config`` gives the NEWLEADER config bytes for the new epoch's zxid.
    Times are milliseconds on any monotonic clock, passed in by the shell.
    """

    def __init__(
        self,
        sid: int,
        quorum: Quorum,
        *,
        accepted_epoch: int,
        current_epoch: int,
        last_zxid: int,
        now: float,
        tick_time: int = 2000,
        init_limit: int = 10,
        sync_limit: int = 5,
        committed: CommittedLog | None = None,
        txnlog: TxnLogReader | None = None,
        config: Callable[[int], bytes | None] | None = None,
        force_snap: bool = False,
        read_log_async: bool = False,
    ) -> None:
        self.sid = sid
        self.quorum = quorum
        self.accepted_epoch = accepted_epoch
        self.current_epoch = current_epoch
        self.summary = (current_epoch, last_zxid)  # leaderStateSummary
        self.last_processed = last_zxid
        self.committed = committed if committed is not None else CommittedLog()
        self.txnlog = txnlog
        #: ReadLog the learner's txns instead of calling ``txnlog`` inline.
        self.read_log_async = read_log_async and txnlog is not None
        self.config = config
        self.force_snap = force_snap
        self.tick_time = tick_time
        self.init_limit = init_limit
        self.sync_limit = sync_limit
        self.now = now
        self.phase = DISCOVERY
        self.tick = 0
        self._tick_skip = True
        self._next_half_tick = 0.0
        self.handlers: dict[Hashable, _Handler] = {}
        self.forwarding: list[_Handler] = []
        self.observing: list[_Handler] = []
        self._follower_counter = -1
        # discovery bookkeeping (Leader.getEpochToPropose / waitForEpochAck / waitForNewLeaderAck)
        self.epoch = -1
        self.waiting_for_new_epoch = True
        self.connecting: set[int] = set()
        self.electing: set[int] = set()
        self.election_finished = False
        self.newleader_acks: set[int] = set()
        self.quorum_formed = False
        self._self_deadline: float | None = None
        # broadcast bookkeeping
        self.last_proposed = 0
        self.last_committed = -1
        self.outstanding: dict[int, _Proposal] = {}
        self._logged = -1
        self.pending_syncs: dict[int, list[Hashable]] = {}
        self._out: list[Action] = []
        self._get_epoch_to_propose(self.sid, accepted_epoch, None)

    # ------------------------------------------------------------------ helpers

    @property
    def newleader_zxid(self) -> int:
        return make_zxid(self.epoch, 0)

    @property
    def established(self) -> bool:
        return self.phase == BROADCAST

    def _ms(self, limit: int) -> int:
        return limit * self.tick_time

    def _take(self) -> list[Action]:
        out, self._out = self._out, []
        return out

    def _send(self, h: _Handler, packet: QuorumPacket) -> None:
        if packet.type == _PT_PROPOSAL:
            h.limit.update_proposal(packet.zxid, self.now)
        self._out.append(Send(h.peer, packet))

    def _is_participant(self, sid: int) -> bool:
        return sid in self.quorum.voting

    def _shutdown(self, reason: str) -> None:
        if self.phase == SHUT_DOWN:
            return
        log.info("Shutting down leader %d: %s", self.sid, reason)
        self.phase = SHUT_DOWN
        for h in self.handlers.values():
            h.state = DEAD
        self.handlers.clear()
        self.forwarding.clear()
        self.observing.clear()
        self._out.append(Shutdown(reason))

    def _kill(self, h: _Handler, reason: str, notify: bool = True) -> None:
        """LearnerHandler.shutdown: stop sending, forget the learner, close its socket."""
        if h.state == DEAD:
            return
        log.warning("Dropping learner %s (sid %d): %s", h.peer, h.sid, reason)
        h.state = DEAD
        self.handlers.pop(h.peer, None)
        if h in self.forwarding:
            self.forwarding.remove(h)
        if h in self.observing:
            self.observing.remove(h)
        if notify:
            self._out.append(Disconnect(h.peer, reason))

    # ------------------------------------------------------------------ events

    def initial_actions(self) -> list[Action]:
        """Actions from construction (a one-voter ensemble is established at once)."""
        return self._take()

    def on_connect(self, peer: Hashable) -> list[Action]:
        """A learner connected to the quorum port (LearnerCnxAcceptor)."""
        if self.phase == SHUT_DOWN:
            return []
        h = _Handler(peer, self.tick + self.init_limit + self.sync_limit)
        h.read_deadline = self.now + self._ms(self.init_limit)
        self.handlers[peer] = h
        return self._take()

    def on_disconnect(self, peer: Hashable) -> list[Action]:
        h = self.handlers.get(peer)
        if h is not None:
            self._kill(h, "connection closed", notify=False)
        return self._take()

    def on_packet(self, peer: Hashable, packet: QuorumPacket) -> list[Action]:
        h = self.handlers.get(peer)
        if h is None or self.phase == SHUT_DOWN:
            return []
        if h.state in _PARKED:
            h.backlog.append(packet)
        else:
            self._handle(h, packet)
        return self._take()

    def on_tick(self, now: float, stalled: float = 0.0) -> list[Action]:
        """Time passes: deadlines, and in BROADCAST the half-tick loop of Leader.lead.

        ``stalled`` is how long (ms) before this tick the shell read no socket
        (one long callback: a sync's plan and encoding). Every read deadline
        moves on by that much first. Apache's read timeouts are per-learner
        socket timeouts that run in their own threads, so a leader busy with
        one learner never times out another whose pings sat unread in the
        kernel, nor counts its own busy time against the learner it synced.
        """
        self.now = now
        if stalled > 0:
            self._skip(stalled)
        if self.phase == SHUT_DOWN:
            return []
        if self._self_deadline is not None and now >= self._self_deadline:
            if self.waiting_for_new_epoch:
                self._shutdown("Timeout while waiting for epoch from quorum")
            elif not self.election_finished:
                self._shutdown("Timeout while waiting for epoch to be acked by quorum")
            else:
                self._shutdown("Waiting for a quorum of followers, only synced with sids: [ "
                               f"{','.join(map(str, sorted(self.newleader_acks)))} ]")
            return self._take()
        for h in list(self.handlers.values()):
            if h.park_deadline is not None and now >= h.park_deadline:
                self._kill(h, f"timed out while parked in {h.state}")
            elif h.read_deadline is not None and now >= h.read_deadline:
                self._kill(h, "Read timed out")
        while self.phase == BROADCAST and now >= self._next_half_tick:
            self._next_half_tick += self.tick_time / 2
            self._half_tick()
        return self._take()

    def _skip(self, stalled: float) -> None:
        """Count ``stalled`` ms as time that did not pass for every wait: read
        and park deadlines, the proposal-age checks, the leader's own wait and
        Leader.lead's half ticks (else a stall of 5 ticks would run them all
        at once and find no learner synced)."""
        if self._self_deadline is not None:
            self._self_deadline += stalled
        for h in self.handlers.values():
            if h.read_deadline is not None:
                h.read_deadline += stalled
            if h.park_deadline is not None:
                h.park_deadline += stalled
            lim = h.limit
            if lim.cur_time is not None:
                lim.cur_time += stalled
            if lim.next_time is not None:
                lim.next_time += stalled
        if self.phase == BROADCAST:
            self._next_half_tick += stalled

    def on_logged(self, zxid: int) -> list[Action]:
        """Our log is durable through ``zxid``: the leader acks its own proposals
        (AckRequestProcessor)."""
        if self.phase == SHUT_DOWN:
            return []
        for z in sorted(self.outstanding):
            if z > zxid:
                break
            p = self.outstanding.get(z)
            if p is not None and not p.self_acked:
                p.self_acked = True
                self._process_ack(self.sid, z)
        self._logged = max(self._logged, zxid)
        return self._take()

    def propose(self, entry: Entry) -> list[Action]:
        """Leader.propose: send PROPOSAL to every forwarding follower and log it here.

        ``entry.zxid`` must follow the last proposed one; a counter of
        0xffffffff makes the leader step down (ZOOKEEPER-1277) instead.
        """
        if self.phase != BROADCAST:
            raise RuntimeError(f"cannot propose in phase {self.phase}")
        if entry.zxid <= self.last_proposed:
            raise ValueError(
                f"zxid 0x{hexz(entry.zxid)} does not follow 0x{hexz(self.last_proposed)}")
        if entry.zxid & COUNTER_MASK == COUNTER_MASK:
            self._shutdown("zxid lower 32 bits have rolled over, forcing re-election, "
                           "and therefore new epoch start")
            return self._take()
        p = _Proposal(entry)
        self.last_proposed = entry.zxid
        self.outstanding[entry.zxid] = p
        packet = P.proposal_packet(entry.zxid, entry.data)
        for h in self.forwarding:
            self._send(h, packet)
        self._out.append(LogTxn(entry))
        return self._take()

    def next_zxid(self) -> int:
        """The zxid the next proposal must carry (ZooKeeperServer.getNextZxid)."""
        return self.last_proposed + 1

    def process_sync(self, peer: Hashable) -> list[Action]:
        """Leader.processSync: SYNC goes back once everything proposed so far is committed."""
        h = self.handlers.get(peer)
        if h is None:
            return []
        if not self.outstanding:
            self._send(h, P.sync_packet())
        else:
            self.pending_syncs.setdefault(self.last_proposed, []).append(peer)
        return self._take()

    def revalidated(self, peer: Hashable, packet: QuorumPacket, session_id: int, valid: bool
                    ) -> list[Action]:
        """Answer a CheckSession (Leader.revalidateSession)."""
        h = self.handlers.get(peer)
        if h is not None:
            self._send(h, P.revalidate_reply_packet(packet, session_id, valid))
        return self._take()

    # ------------------------------------------------------------------ discovery

    def _get_epoch_to_propose(self, sid: int, last_accepted: int, h: _Handler | None) -> None:
        if not self.waiting_for_new_epoch:
            if h is not None:
                self._after_epoch(h)
            return
        if last_accepted >= self.epoch:
            self.epoch = last_accepted + 1
        if self._is_participant(sid):
            self.connecting.add(sid)
        if self.sid in self.connecting and self.quorum.contains_quorum(self.connecting):
            self.waiting_for_new_epoch = False
            self.accepted_epoch = self.epoch
            self._out.append(PersistEpoch("acceptedEpoch", self.epoch))
            self.last_proposed = make_zxid(self.epoch, 0)
            # the leader thread goes on to waitForEpochAck
            self._self_deadline = None
            self._wait_for_epoch_ack(self.sid, self.summary, None)
            for other in list(self.handlers.values()):
                if other.state == PARKED_EPOCH:
                    self._after_epoch(other)
            if h is not None and h.state != DEAD:
                self._after_epoch(h)
        else:
            if h is None:
                self._self_deadline = self.now + self._ms(self.init_limit)
            else:
                h.state = PARKED_EPOCH
                h.park_deadline = self.now + self._ms(self.init_limit)
                h.read_deadline = None

    def _after_epoch(self, h: _Handler) -> None:
        """getEpochToPropose returned: LEADERINFO, or a faked epoch ack for old learners."""
        h.park_deadline = None
        if h.version < P.PROTOCOL_VERSION:
            epoch = epoch_of(h.first_zxid)
            self._wait_for_epoch_ack(h.sid, (epoch, h.first_zxid), h)
            return
        self._send(h, P.leader_info_packet(self.epoch))
        h.state = AWAIT_ACKEPOCH
        h.read_deadline = self.now + self._ms(self.init_limit)
        self._drain(h)

    def _wait_for_epoch_ack(self, sid: int, ss: tuple[int, int], h: _Handler | None) -> None:
        if not self.election_finished:
            cur_epoch, last_zxid = ss
            if cur_epoch != -1:
                if ss > self.summary:  # StateSummary.isMoreRecentThan
                    assert h is not None
                    self._kill(h, "Follower is ahead of the leader, leader summary: "
                               f"{self.summary[0]} (current epoch), {self.summary[1]} (last zxid)")
                    return
                if last_zxid != -1 and self._is_participant(sid):
                    self.electing.add(sid)
            if self.sid in self.electing and self.quorum.contains_quorum(self.electing):
                self.election_finished = True
                self._epoch_acked()
            elif h is None:
                self._self_deadline = self.now + self._ms(self.init_limit)
                return
            else:
                h.state = PARKED_EPOCH_ACK
                h.park_deadline = self.now + self._ms(self.init_limit)
                h.read_deadline = None
                return
        if h is not None and h.state != DEAD:
            self._sync_learner(h)

    def _epoch_acked(self) -> None:
        """A quorum acked the epoch: the leader thread moves to SYNCHRONIZATION, then
        every parked handler goes on to sync its learner."""
        self.current_epoch = self.epoch
        self._out.append(PersistEpoch("currentEpoch", self.epoch))
        self.phase = SYNCHRONIZATION
        self._self_deadline = None
        self._wait_for_newleader_ack(self.sid, self.newleader_zxid, None)
        for other in list(self.handlers.values()):
            if other.state == PARKED_EPOCH_ACK:
                other.park_deadline = None
                self._sync_learner(other)

    # ------------------------------------------------------------------ synchronisation

    def _sync_learner(self, h: _Handler) -> None:
        """syncFollower, startForwarding, SNAP if needed, then NEWLEADER.

        With ``read_log_async``, a learner behind the committed window first
        waits (AWAIT_LOG) for its txns from the disk: :meth:`on_log_read`.
        """
        if self.read_log_async and needs_txnlog(h.peer_last_zxid, self.committed,
                                                self.last_processed, force_snap=self.force_snap):
            h.state = AWAIT_LOG
            h.park_deadline = self.now + self._ms(self.init_limit)
            self._out.append(ReadLog(h.peer, h.peer_last_zxid))
            return
        self._plan_sync(h, self.txnlog)

    def on_log_read(self, peer: Hashable, entries: list[Entry]) -> list[Action]:
        """The txns a ReadLog asked for (an empty list: the log had none to
        give, so the learner gets a SNAP). Commits made while they were read
        are in the committed window, which :func:`plan_sync` sends after
        them; if the window has moved past them, its gap check picks SNAP."""
        h = self.handlers.get(peer)
        if h is None or h.state != AWAIT_LOG or self.phase == SHUT_DOWN:
            return self._take()
        h.park_deadline = None
        self._plan_sync(h, lambda _zxid: entries)
        self._drain(h)
        return self._take()

    def _plan_sync(self, h: _Handler, txnlog: TxnLogReader | None) -> None:
        plan = plan_sync(h.peer_last_zxid, self.committed, self.last_processed, txnlog,
                         force_snap=self.force_snap)
        log.info("Syncing learner sid %d (last zxid 0x%s) with %s", h.sid,
                 hexz(h.peer_last_zxid), plan.kind)
        h.needs_snap = plan.snap
        if plan.snap:
            self._out.append(Send(h.peer, P.snap_packet(self.last_processed)))
            self._out.append(SendSnapshot(h.peer, self.last_processed))
        old_learner = h.version < P.PROTOCOL_VERSION
        if old_learner:  # pre-Zab-1.0: NEWLEADER is written at once, without a config
            self._send(h, P.new_leader_packet(self.newleader_zxid, None))
        for packet in plan.packets:
            self._send(h, packet)
        if plan.txns:  # a learner's limit starts at UPTODATE: no proposal ages to note
            self._out.append(SendCommitted(h.peer, plan.txns))
        # startForwarding: committed-but-unapplied proposals cannot exist here (a
        # Commit action is applied before the next event), outstanding ones can.
        if self.last_proposed > plan.forward_from and not h.observer:
            for z in sorted(self.outstanding):
                if z > plan.forward_from:
                    self._send(h, P.proposal_packet(z, self.outstanding[z].entry.data))
        (self.observing if h.observer else self.forwarding).append(h)
        if not old_learner:
            config = self.config(self.newleader_zxid) if self.config is not None else None
            self._send(h, P.new_leader_packet(self.newleader_zxid, config))
        h.sending = True
        h.state = AWAIT_NEWLEADER_ACK
        h.read_deadline = self.now + self._ms(self.init_limit)
        self._drain(h)

    def _wait_for_newleader_ack(self, sid: int, zxid: int, h: _Handler | None) -> None:
        if not self.quorum_formed:
            if zxid != self.newleader_zxid:
                log.error("NEWLEADER ACK from sid: %d is from a different epoch - current 0x%s "
                          "received 0x%s", sid, hexz(self.newleader_zxid), hexz(zxid))
            else:
                if self._is_participant(sid):
                    self.newleader_acks.add(sid)
                if self.quorum.contains_quorum(self.newleader_acks):
                    self.quorum_formed = True
                    self._start_serving()
                    if h is not None and h.state != DEAD:
                        self._uptodate(h)
                    return
                if h is None:
                    self._self_deadline = self.now + self._ms(self.init_limit)
                    return
            if h is not None:
                h.state = PARKED_NEWLEADER
                h.park_deadline = self.now + self._ms(self.init_limit)
                h.read_deadline = None
                return
        if h is not None and h.state != DEAD:
            self._uptodate(h)

    def _start_serving(self) -> None:
        """Leader.startZkServer after the NEWLEADER quorum, then wake parked handlers."""
        self._self_deadline = None
        self.last_committed = self.newleader_zxid
        self.last_processed = self.newleader_zxid
        self.phase = BROADCAST
        self.tick = 0
        self._tick_skip = True
        self._next_half_tick = self.now + self.tick_time / 2
        self._out.append(StartServing(self.epoch))
        for other in list(self.handlers.values()):
            if other.state == PARKED_NEWLEADER:
                other.park_deadline = None
                self._uptodate(other)

    def _uptodate(self, h: _Handler) -> None:
        h.limit.started = True
        self._send(h, P.uptodate_packet())
        h.state = ACTIVE
        h.read_deadline = self.now + self._ms(self.sync_limit)
        self._drain(h)

    def _drain(self, h: _Handler) -> None:
        while h.backlog and h.state not in _PARKED and h.state != DEAD:
            self._handle(h, h.backlog.pop(0))

    # ------------------------------------------------------------------ packets

    def _handle(self, h: _Handler, packet: QuorumPacket) -> None:
        t = packet.type
        if h.state == AWAIT_INFO:
            self._on_learner_info(h, packet)
        elif h.state == AWAIT_ACKEPOCH:
            if t != _PT_ACKEPOCH:
                self._kill(h, f"{P.packet_to_string(packet)} is not ACKEPOCH")
                return
            try:
                ss = P.parse_ack_epoch(packet)
            except P.PacketError as e:
                self._kill(h, str(e))
                return
            h.peer_last_zxid = ss[1]
            h.read_deadline = None
            self._wait_for_epoch_ack(h.sid, ss, h)
        elif h.state == AWAIT_NEWLEADER_ACK:
            if t != _PT_ACK:
                self._kill(h, "Next packet was supposed to be an ACK, but received packet: "
                           + P.packet_to_string(packet))
                return
            h.read_deadline = None
            self._wait_for_newleader_ack(h.sid, packet.zxid, h)
        elif h.state == ACTIVE:
            self._on_active(h, packet)

    def _on_learner_info(self, h: _Handler, packet: QuorumPacket) -> None:
        t = packet.type
        if t not in (_PT_FOLLOWERINFO, _PT_OBSERVERINFO):
            self._kill(h, f"First packet {packet!r} is not FOLLOWERINFO or OBSERVERINFO!")
            return
        info = P.parse_learner_info(packet.data)
        if info.config_version is not None and info.config_version > self.quorum.version:
            self._kill(h, "Follower is ahead of the leader (has a later activated configuration)")
            return
        if info.sid is None:
            h.sid = self._follower_counter
            self._follower_counter -= 1
        else:
            h.sid = info.sid
        h.version = info.protocol_version
        h.observer = t == _PT_OBSERVERINFO
        h.first_zxid = packet.zxid
        h.peer_last_zxid = packet.zxid
        h.read_deadline = None
        self._get_epoch_to_propose(h.sid, epoch_of(packet.zxid), h)

    def _on_active(self, h: _Handler, packet: QuorumPacket) -> None:
        h.tick_deadline = self.tick + self.sync_limit
        h.read_deadline = self.now + self._ms(self.sync_limit)
        t = packet.type
        try:
            if t == _PT_ACK:
                h.limit.update_ack(packet.zxid)
                self._process_ack(h.sid, packet.zxid)
            elif t == _PT_PING:
                touches = P.decode_touches(packet.data)
                if touches:
                    self._out.append(TouchSessions(h.peer, touches))
            elif t == _PT_REVALIDATE:
                session_id, timeout = P.parse_revalidate(packet)
                self._out.append(CheckSession(h.peer, session_id, timeout, packet))
            elif t == _PT_REQUEST:
                self._out.append(SubmitRequest(h.peer, P.parse_request(packet)))
            else:
                log.warning("unexpected quorum packet, type: %s", P.packet_to_string(packet))
        except P.PacketError as e:
            self._kill(h, f"Unexpected exception in LearnerHandler: {e}")

    # ------------------------------------------------------------------ broadcast

    def _process_ack(self, sid: int, zxid: int) -> None:
        """Leader.processAck."""
        if is_epoch_start(zxid):
            return  # the ack of UPTODATE; NEWLEADER acks are handled apart
        if not self.outstanding:
            return
        if self.last_committed >= zxid:
            return
        p = self.outstanding.get(zxid)
        if p is None:
            log.warning("Trying to commit future proposal: zxid 0x%s from %d", hexz(zxid), sid)
            return
        if self._is_participant(sid):
            p.acks.add(sid)
        self._try_to_commit(p, zxid)

    def _try_to_commit(self, p: _Proposal, zxid: int) -> bool:
        """Leader.tryToCommit: in zxid order, once a quorum acked."""
        if zxid - 1 in self.outstanding:
            return False
        if not self.quorum.contains_quorum(p.acks):
            return False
        if zxid != self.last_committed + 1:
            log.warning("Commiting zxid 0x%s not first! First is 0x%s", hexz(zxid),
                        hexz(self.last_committed + 1))
        del self.outstanding[zxid]
        self.last_committed = zxid
        inform = P.inform_packet(zxid, p.entry.data) if self.observing else None
        self._broadcast_commit(p, zxid, P.commit_packet(zxid), inform)
        return True

    def _broadcast_commit(self, p: _Proposal, zxid: int, commit: QuorumPacket,
                          inform: QuorumPacket | None) -> None:
        """Leader.commit/inform: COMMIT to followers, INFORM to observers, apply
        here, and answer the syncs that waited for this zxid."""
        for h in self.forwarding:
            self._send(h, commit)
        for h in self.observing:
            self._send(h, inform)
        self._out.append(Commit(p.entry))
        self.committed.add(p.entry)
        self.last_processed = zxid
        for peer in self.pending_syncs.pop(zxid, ()):
            h = self.handlers.get(peer)
            if h is not None:
                self._send(h, P.sync_packet())

    def _half_tick(self) -> None:
        """One iteration of Leader.lead's loop (it runs twice a tick)."""
        if not self._tick_skip:
            self.tick += 1
        synced = {self.sid}
        for h in self.handlers.values():
            if self.tick <= h.tick_deadline:
                synced.add(h.sid)
        if not self._tick_skip and not self.quorum.contains_quorum(synced):
            self._shutdown("Not sufficient followers synced, only synced with sids: [ "
                           f"{','.join(map(str, sorted(synced)))} ]")
            return
        self._tick_skip = not self._tick_skip
        timeout = self._ms(self.sync_limit)
        for h in list(self.handlers.values()):
            if not h.sending:
                continue
            if h.limit.check(self.now, timeout):
                self._send(h, P.ping_packet(self.last_proposed))
            else:
                self._kill(h, "Closing connection to peer due to transaction timeout.")

    # ------------------------------------------------------------------ introspection

    def learners(self) -> dict[Hashable, tuple[int, str]]:
        """peer -> (sid, handler state), for tests and 4lw."""
        return {p: (h.sid, h.state) for p, h in self.handlers.items()}
