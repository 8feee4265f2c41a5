"""Fast Leader Election (Apache's FastLeaderElection.lookForLeader) as a pure
state machine.

Apache runs the election on three threads around two queues: WorkerReceiver
answers some messages at once and queues the rest, lookForLeader polls the
queue with a timeout that doubles (200 ms .. 60 s) and, once a quorum agrees
with its proposal, keeps polling with ``finalizeWait`` (200 ms) until no
better vote comes.  Here each of those steps is a method call:

* :meth:`FastLeaderElection.receive` is one message arriving (WorkerReceiver
  followed at once by lookForLeader's handling of it);
* :meth:`FastLeaderElection.timeout` is a poll that returned nothing;
* :meth:`FastLeaderElection.start` is a call of lookForLeader.

They return actions: :class:`Send` (to a sid, *including our own sid*:
Apache's QuorumCnxManager loops those back to the receive queue, so the driver
must feed them to :meth:`receive`), :class:`SetTimer` (replaces the single
pending timer; when it fires call :meth:`timeout`), :class:`CancelTimer`,
:class:`ConnectAll` (the poll timed out while messages were still queued for
peers: Apache reconnects instead of resending), :class:`Decided` and
:class:`NewerConfig`.  No clocks, sockets or threads.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import IntEnum

from pyzk.quorum.verifier import QuorumMaj
from pyzk.quorum.wire import NOTIFICATION_VERSION, Notification

log = logging.getLogger(__name__)

#: Java's Long.MIN_VALUE: what observers vote with (getInitId and friends).
LONG_MIN = -(2**63)
#: FastLeaderElection.finalizeWait, ms.
FINALIZE_WAIT = 200
#: Default zookeeper.fastleader.minNotificationInterval, ms.
MIN_NOTIFICATION_INTERVAL = FINALIZE_WAIT
#: Default zookeeper.fastleader.maxNotificationInterval, ms.
MAX_NOTIFICATION_INTERVAL = 60000


class ServerState(IntEnum):
    """QuorumPeer.ServerState; the int is what notifications carry (ordinal)."""

    LOOKING = 0
    FOLLOWING = 1
    LEADING = 2
    OBSERVING = 3


@dataclass(frozen=True, slots=True)
class Vote:
    """Apache's Vote: a proposed leader with its zxid and epochs.

    ``state``/``version`` matter only to :meth:`agrees`, which is Vote.equals.
    """

    leader: int
    zxid: int
    election_epoch: int = -1
    peer_epoch: int = -1
    state: ServerState = ServerState.LOOKING
    version: int = 0

    def agrees(self, other: Vote) -> bool:
        """Vote.equals: all four numbers while either side is LOOKING; for
        votes out of election only the leader and its epoch (ZOOKEEPER-1805),
        just the leader when one side predates ZOOKEEPER-1732 (version 0)."""
        if self.state == ServerState.LOOKING or other.state == ServerState.LOOKING:
            return (
                self.leader == other.leader
                and self.zxid == other.zxid
                and self.election_epoch == other.election_epoch
                and self.peer_epoch == other.peer_epoch
            )
        if (self.version > 0) != (other.version > 0):
            return self.leader == other.leader
        return self.leader == other.leader and self.peer_epoch == other.peer_epoch

    def __str__(self) -> str:
        return f"({self.leader}, {self.zxid & 0xFFFFFFFFFFFFFFFF:x}, {self.peer_epoch:x})"


# --------------------------------------------------------------------------
# Actions


@dataclass(frozen=True, slots=True)
class Send:
    """Send ``notification`` to server ``to`` (our own id: loop it back)."""

    to: int
    notification: Notification


@dataclass(frozen=True, slots=True)
class SetTimer:
    """Call :meth:`FastLeaderElection.timeout` after ``delay_ms`` unless another
    SetTimer or a CancelTimer comes first."""

    delay_ms: int


@dataclass(frozen=True, slots=True)
class CancelTimer:
    """No election timer is pending any more."""


@dataclass(frozen=True, slots=True)
class ConnectAll:
    """QuorumCnxManager.connectAll: (re)connect to every voter with no connection."""


@dataclass(frozen=True, slots=True)
class Decided:
    """The election ended: we are ``state`` and ``vote.leader`` leads.

    ``supporters`` are the voters whose votes made the quorum (Apache's
    SyncedLearnerTracker ack set; the leader keeps it as its leadingVoteSet).
    """

    vote: Vote
    state: ServerState
    supporters: frozenset[int]


@dataclass(frozen=True, slots=True)
class NewerConfig:
    """A LOOKING peer saw a configuration with a higher version than ours.

    Apache then runs processReconfig and restarts the election if the member
    list changed; that belongs to the server (it writes the dynamic config
    file), so the core reports it and carries on with the current verifier.
    """

    verifier: QuorumMaj
    from_sid: int


Action = Send | SetTimer | CancelTimer | ConnectAll | Decided | NewerConfig


def total_order_predicate(
    new: tuple[int, int, int], cur: tuple[int, int, int], verifier: QuorumMaj
) -> bool:
    """Whether vote ``new`` beats ``cur``; both are (leader, zxid, peer_epoch).

    Higher peer epoch wins, then higher zxid, then higher server id; a
    candidate of weight 0 never wins (FastLeaderElection.totalOrderPredicate).
    """
    if verifier.get_weight(new[0]) == 0:
        return False
    return (new[2], new[1], new[0]) > (cur[2], cur[1], cur[0])


class FastLeaderElection:
    """The election of one server.

    ``last_zxid`` and ``current_epoch`` describe our log when the server
    started; pass fresh values to :meth:`start` before each later election.
    ``learner_type`` defaults to "observer" when the verifier lists us as one.
    ``last_seen`` is a pending next configuration (Apache's
    lastSeenQuorumVerifier): its voters count too and, when its version is
    higher, a decision needs a quorum of both.
    """

    def __init__(
        self,
        my_id: int,
        verifier: QuorumMaj,
        *,
        last_zxid: int = 0,
        current_epoch: int = 0,
        learner_type: str | None = None,
        last_seen: QuorumMaj | None = None,
        min_notification_interval: int = MIN_NOTIFICATION_INTERVAL,
        max_notification_interval: int = MAX_NOTIFICATION_INTERVAL,
        finalize_wait: int = FINALIZE_WAIT,
    ) -> None:
        self.my_id = my_id
        self.verifier = verifier
        self.last_seen = last_seen
        if learner_type is None:
            learner_type = "observer" if my_id in verifier.observing else "participant"
        if learner_type not in ("participant", "observer"):
            raise ValueError(f"unknown learner type {learner_type!r}")
        self.learner_type = learner_type
        self.last_zxid = last_zxid
        self.current_epoch = current_epoch
        self.min_notification_interval = min_notification_interval
        self.max_notification_interval = max_notification_interval
        self.finalize_wait = finalize_wait
        self.state = ServerState.LOOKING
        #: QuorumPeer.currentVote: what we answer with once the election is over.
        self.current_vote = Vote(my_id, last_zxid, -1, current_epoch)
        self.logical_clock = 0
        self.proposed_leader = -1
        self.proposed_zxid = -1
        self.proposed_epoch = 0
        self.recvset: dict[int, Vote] = {}
        self.outofelection: dict[int, Vote] = {}
        self.supporters: frozenset[int] = frozenset()
        self._running = False
        self._finalizing = False
        self._not_timeout = min_notification_interval
        self._queued: list[tuple[int, Notification]] = []

    # ------------------------------------------------------------------
    # views

    @property
    def running(self) -> bool:
        """True while lookForLeader would be running."""
        return self._running

    def voters(self) -> frozenset[int]:
        """QuorumPeer.getCurrentAndNextConfigVoters."""
        if self.last_seen is None:
            return self.verifier.voting
        return self.verifier.voting | self.last_seen.voting

    def proposal(self) -> Vote:
        """FastLeaderElection.getVote."""
        return Vote(self.proposed_leader, self.proposed_zxid, -1, self.proposed_epoch)

    def _init_id(self) -> int:
        return self.my_id if self.my_id in self.verifier.voting else LONG_MIN

    def _init_zxid(self) -> int:
        return self.last_zxid if self.learner_type == "participant" else LONG_MIN

    def _init_epoch(self) -> int:
        return self.current_epoch if self.learner_type == "participant" else LONG_MIN

    def _config(self) -> bytes:
        return self.verifier.to_bytes()

    # ------------------------------------------------------------------
    # events

    def start(self, last_zxid: int | None = None, current_epoch: int | None = None) -> list[Action]:
        """Begin an election round (lookForLeader): we are LOOKING again.

        Our logical clock advances, we propose ourselves and tell every voter.
        Messages that arrived while LOOKING before this call are handled now,
        as Apache's receive queue holds them for lookForLeader.
        """
        if last_zxid is not None:
            self.last_zxid = last_zxid
        if current_epoch is not None:
            self.current_epoch = current_epoch
        self.state = ServerState.LOOKING
        self._running = True
        self._finalizing = False
        self.recvset = {}
        self.outofelection = {}
        self.supporters = frozenset()
        self._not_timeout = self.min_notification_interval
        self.logical_clock += 1
        self._update_proposal(self._init_id(), self._init_zxid(), self._init_epoch())
        log.info("New election. My id = %d, proposed zxid=0x%x", self.my_id, self.proposed_zxid)
        actions: list[Action] = self._send_notifications()
        actions.append(SetTimer(self._not_timeout))
        queued, self._queued = self._queued, []
        for sid, n in queued:
            if not self._running:
                break
            actions.extend(self._look(sid, n))
        return actions

    def receive(self, from_sid: int, n: Notification) -> list[Action]:
        """One notification from ``from_sid`` (our own loop-backs included)."""
        actions: list[Action] = []
        if n.version > 0x1 and n.config is not None:
            self._check_config(from_sid, n.config, actions)
        if from_sid not in self.voters():
            # A non-voter (observer): answer at once with our current vote.
            cur = self.current_vote
            actions.append(
                Send(
                    from_sid,
                    Notification(
                        int(self.state), cur.leader, cur.zxid, self.logical_clock,
                        cur.peer_epoch, NOTIFICATION_VERSION, self._config(),
                    ),
                )
            )  # fmt: skip
            return actions
        if not 0 <= n.state <= 3:
            return actions
        if self.state == ServerState.LOOKING:
            if n.state == ServerState.LOOKING and n.election_epoch < self.logical_clock:
                # The sender lags behind: tell it our round and proposal.
                actions.append(
                    Send(
                        from_sid,
                        Notification(
                            int(ServerState.LOOKING), self.proposed_leader, self.proposed_zxid,
                            self.logical_clock, self.proposed_epoch, NOTIFICATION_VERSION,
                            self._config(),
                        ),
                    )
                )  # fmt: skip
            if self._running:
                actions.extend(self._look(from_sid, n))
            else:
                self._queued.append((from_sid, n))
        elif n.state == ServerState.LOOKING:
            # Out of election: tell the looking peer who leads.
            cur = self.current_vote
            actions.append(
                Send(
                    from_sid,
                    Notification(
                        int(self.state), cur.leader, cur.zxid, cur.election_epoch,
                        cur.peer_epoch, NOTIFICATION_VERSION, self._config(),
                    ),
                )
            )  # fmt: skip
        return actions

    def timeout(self, have_delivered: bool = True) -> list[Action]:
        """The pending timer fired: a poll of the receive queue came back empty.

        ``have_delivered`` is QuorumCnxManager.haveDelivered(); when false
        Apache reconnects rather than resending.
        """
        if not self._running:
            return []
        if self._finalizing:
            return self._decide(
                self.proposed_leader,
                Vote(
                    self.proposed_leader, self.proposed_zxid, self.logical_clock,
                    self.proposed_epoch,
                ),
                self.supporters,
            )  # fmt: skip
        actions: list[Action] = self._send_notifications() if have_delivered else [ConnectAll()]
        self._not_timeout = min(self._not_timeout << 1, self.max_notification_interval)
        log.info("Notification time out: %d ms", self._not_timeout)
        actions.append(SetTimer(self._not_timeout))
        return actions

    def update_peer_epoch(self, new_epoch: int) -> None:
        """QuorumPeer.updateElectionVote: the new leader established an epoch,
        so answers to looking peers carry it (ZOOKEEPER-1732)."""
        cur = self.current_vote
        self.current_vote = Vote(cur.leader, cur.zxid, cur.election_epoch, new_epoch, cur.state)

    # ------------------------------------------------------------------
    # lookForLeader

    def _look(self, sid: int, n: Notification) -> list[Action]:
        """lookForLeader's handling of one polled notification."""
        if self._finalizing:
            if not total_order_predicate(
                (n.leader, n.zxid, n.peer_epoch),
                (self.proposed_leader, self.proposed_zxid, self.proposed_epoch),
                self.verifier,
            ):
                # Not better: consumed, and the finalize wait starts again.
                return [SetTimer(self.finalize_wait)]
            self._finalizing = False
        voters = self.voters()
        actions: list[Action] = []
        if sid not in voters or n.leader not in voters:
            if n.leader not in voters:
                log.warning("Ignoring notification for non-cluster member sid %d from sid %d",
                            n.leader, sid)  # fmt: skip
            else:
                log.warning("Ignoring notification for sid %d from non-quorum member sid %d",
                            n.leader, sid)  # fmt: skip
        elif n.state == ServerState.LOOKING:
            if self._looking_vote(sid, n, actions):
                return actions
        elif n.state in (ServerState.FOLLOWING, ServerState.LEADING):
            decided = self._following_notification(sid, n)
            if decided:
                return decided
        actions.append(SetTimer(self._not_timeout))
        return actions

    def _looking_vote(self, sid: int, n: Notification, actions: list[Action]) -> bool:
        """A LOOKING notification; True when it started the finalize wait."""
        if self._init_zxid() == -1 or n.zxid == -1:
            return False
        if n.election_epoch > self.logical_clock:
            self.logical_clock = n.election_epoch
            self.recvset.clear()
            if total_order_predicate(
                (n.leader, n.zxid, n.peer_epoch),
                (self._init_id(), self._init_zxid(), self._init_epoch()),
                self.verifier,
            ):
                self._update_proposal(n.leader, n.zxid, n.peer_epoch)
            else:
                self._update_proposal(self._init_id(), self._init_zxid(), self._init_epoch())
            actions.extend(self._send_notifications())
        elif n.election_epoch < self.logical_clock:
            return False
        elif total_order_predicate(
            (n.leader, n.zxid, n.peer_epoch),
            (self.proposed_leader, self.proposed_zxid, self.proposed_epoch),
            self.verifier,
        ):
            self._update_proposal(n.leader, n.zxid, n.peer_epoch)
            actions.extend(self._send_notifications())
        self.recvset[sid] = Vote(n.leader, n.zxid, n.election_epoch, n.peer_epoch)
        mine = Vote(
            self.proposed_leader, self.proposed_zxid, self.logical_clock, self.proposed_epoch
        )
        acks = self._acks(self.recvset, mine)
        if self._has_all_quorums(acks):
            self.supporters = acks
            self._finalizing = True
            actions.append(SetTimer(self.finalize_wait))
            return True
        return False

    def _following_notification(self, sid: int, n: Notification) -> list[Action] | None:
        """receivedFollowingNotification (LEADING adds only an oracle check,
        which majority quorums never need)."""
        state = ServerState(n.state)
        theirs = Vote(n.leader, n.zxid, n.election_epoch, n.peer_epoch, state, n.version)
        end = Vote(n.leader, n.zxid, n.election_epoch, n.peer_epoch)
        if n.election_epoch == self.logical_clock:
            # Stored with version 0, as Apache's five-argument Vote constructor does.
            self.recvset[sid] = Vote(n.leader, n.zxid, n.election_epoch, n.peer_epoch, state)
            acks = self._acks(self.recvset, theirs)
            if self._has_all_quorums(acks) and self._check_leader(
                self.recvset, n.leader, n.election_epoch
            ):
                return self._decide(n.leader, end, acks)
        self.outofelection[sid] = theirs
        acks = self._acks(self.outofelection, theirs)
        if self._has_all_quorums(acks) and self._check_leader(
            self.outofelection, n.leader, n.election_epoch
        ):
            self.logical_clock = n.election_epoch
            return self._decide(n.leader, end, acks)
        return None

    def _check_leader(self, votes: dict[int, Vote], leader: int, election_epoch: int) -> bool:
        """checkLeader: someone else must have told us it is LEADING; if the
        quorum names us, it must be this round."""
        if leader != self.my_id:
            v = votes.get(leader)
            return v is not None and v.state == ServerState.LEADING
        return self.logical_clock == election_epoch

    def _acks(self, votes: dict[int, Vote], vote: Vote) -> frozenset[int]:
        return frozenset(sid for sid, v in votes.items() if vote.agrees(v))

    def _has_all_quorums(self, acks: frozenset[int]) -> bool:
        """SyncedLearnerTracker.hasAllQuorums over the current and, when newer,
        the last seen configuration."""
        if not self.verifier.contains_quorum(acks):
            return False
        seen = self.last_seen
        return seen is None or seen.version <= self.verifier.version or seen.contains_quorum(acks)

    def _decide(self, leader: int, vote: Vote, supporters: frozenset[int]) -> list[Action]:
        if leader == self.my_id:
            state = ServerState.LEADING
        elif self.learner_type == "participant":
            state = ServerState.FOLLOWING
        else:
            state = ServerState.OBSERVING
        self.state = state
        self.current_vote = vote
        self.supporters = supporters
        self._running = False
        self._finalizing = False
        self._queued = []
        log.info("Election over: %s of %d (vote %s)", state.name, leader, vote)
        return [CancelTimer(), Decided(vote, state, supporters)]

    def _update_proposal(self, leader: int, zxid: int, epoch: int) -> None:
        self.proposed_leader = leader
        self.proposed_zxid = zxid
        self.proposed_epoch = epoch

    def _send_notifications(self) -> list[Action]:
        config = self._config()
        n = Notification(
            int(ServerState.LOOKING), self.proposed_leader, self.proposed_zxid,
            self.logical_clock, self.proposed_epoch, NOTIFICATION_VERSION, config,
        )  # fmt: skip
        return [Send(sid, n) for sid in sorted(self.voters())]

    def _check_config(self, sid: int, config: bytes, actions: list[Action]) -> None:
        if self.state != ServerState.LOOKING:
            return
        try:
            rqv = QuorumMaj.from_string(config.decode("utf-8", "replace"))
        except ValueError as e:
            log.error("Something went wrong while processing config received from %d: %s", sid, e)
            return
        if rqv.version > self.verifier.version:
            log.info("%d Received version: %x my version: %x",
                     self.my_id, rqv.version, self.verifier.version)  # fmt: skip
            actions.append(NewerConfig(rqv, sid))
