"""What the Zab cores ask their shell to do, in the order returned.

The shell must carry out the actions of one call in order before feeding
the core its next event (a later action may rely on an earlier one: a
PersistEpoch must be durable before the Send that follows it, a Commit
before a SendSnapshot, and so on). Each class says exactly what is meant.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from pyzk.jute.records import QuorumPacket
from pyzk.zab.packets import ForwardedRequest, commit_packet, proposal_packet
from pyzk.zab.snapstream import WireSnapshot


@dataclass(frozen=True, slots=True)
class Entry:
    """One transaction: its zxid and its marshalled bytes (TxnHeader, record,
    digest; Util.marshallTxnEntry), as the log holds it and PROPOSAL carries it."""

    zxid: int
    data: bytes


@dataclass(frozen=True, slots=True)
class Send:
    """Write ``packet`` (QuorumPacket.encode) on the connection to ``peer``."""

    peer: Hashable
    packet: QuorumPacket


@dataclass(frozen=True, slots=True)
class SendCommitted:
    """Write a PROPOSAL and then a COMMIT for each of ``entries``, in order,
    on the connection to ``peer`` (the body of a DIFF), exactly as that many
    Sends would (pyzk.zab.packets.encode_committed). One action for the lot:
    two Sends per txn made a 100k-txn DIFF 200k objects on the leader's loop."""

    peer: Hashable
    entries: Sequence[Entry]

    def packets(self) -> list[QuorumPacket]:
        """The packets meant, one by one (for the simulator and tests)."""
        out: list[QuorumPacket] = []
        for e in self.entries:
            out.append(proposal_packet(e.zxid, e.data))
            out.append(commit_packet(e.zxid))
        return out


@dataclass(frozen=True, slots=True)
class ReadLog:
    """Leader: read the committed txns from the on-disk log for the learner on
    ``peer``, whose last zxid is ``zxid`` (the core's ``txnlog`` reader), off
    the event loop, and hand them to ``LeaderCore.on_log_read``. Apache reads
    them in that learner's own LearnerHandler thread; read on the loop, a
    100k-txn log held every other learner's pings past syncLimit."""

    peer: Hashable
    zxid: int


@dataclass(frozen=True, slots=True)
class SendSnapshot:
    """Leader: right after the SNAP packet just sent to ``peer``, stream the
    current tree and session table (pyzk.zab.snapstream.encode_wire_snapshot).
    The tree has applied exactly every Commit returned so far; ``zxid`` is its
    last processed zxid, for checking."""

    peer: Hashable
    zxid: int


@dataclass(frozen=True, slots=True)
class LogTxn:
    """Append ``entry`` to the transaction log (group commit allowed) and call
    the core's ``on_logged(zxid)`` once it and everything before it is durable."""

    entry: Entry


@dataclass(frozen=True, slots=True)
class Commit:
    """Apply ``entry`` to the data tree now (it is committed): fire watches,
    answer the client if this server owns the request."""

    entry: Entry


@dataclass(frozen=True, slots=True)
class LoadSnapshot:
    """Learner: replace the tree and sessions with the leader's snapshot
    (WireSnapshot.to_snapshot) whose last processed zxid is ``snapshot.zxid``.
    Nothing is written to disk yet: a TakeSnapshot follows at NEWLEADER."""

    snapshot: WireSnapshot


@dataclass(frozen=True, slots=True)
class Truncate:
    """Learner: truncate the transaction log after ``zxid`` and reload the
    database from disk (ZKDatabase.truncateLog). If that is impossible the
    server must exit, as Apache does."""

    zxid: int


@dataclass(frozen=True, slots=True)
class TakeSnapshot:
    """Learner: write a snapshot of the current tree now (``sync``: fsync it
    before going on, as after a SNAP transfer).

    After a SNAP transfer the log files older than this snapshot are not
    contiguous with the txns logged next: once the snapshot is durable the
    shell must stop offering them to a leader's TxnLogReader (delete them),
    or a later DIFF from that gapped log would skip txns (Apache 3.8 keeps
    them and can do exactly that)."""

    sync: bool


@dataclass(frozen=True, slots=True)
class PersistEpoch:
    """Write ``epoch`` to the ``acceptedEpoch`` or ``currentEpoch`` file
    (``name``) durably before doing anything that follows."""

    name: str
    epoch: int


@dataclass(frozen=True, slots=True)
class StartServing:
    """The role is established for ``epoch``: the leader has a quorum of
    NEWLEADER acks, a learner got UPTODATE. Start serving clients."""

    epoch: int


@dataclass(frozen=True, slots=True)
class ConfigSeen:
    """A quorum configuration text from the leader: with ``activate`` false it is
    the last *seen* config (NEWLEADER, a reconfig proposal), with ``activate``
    true it becomes the current one; ``designated_leader`` as COMMITANDACTIVATE
    names it. Dynamic reconfiguration itself is the shell's business."""

    config: bytes
    activate: bool
    designated_leader: int | None = None


@dataclass(frozen=True, slots=True)
class TouchSessions:
    """Leader: a learner's PING touched these (session id, timeout) pairs."""

    peer: Hashable
    touches: list[tuple[int, int]]


@dataclass(frozen=True, slots=True)
class SubmitRequest:
    """Leader: a learner forwarded a client request; run it through the request
    pipeline (for a sync, call ``LeaderCore.process_sync(peer)`` when it
    reaches the proposal stage)."""

    peer: Hashable
    request: ForwardedRequest


@dataclass(frozen=True, slots=True)
class CheckSession:
    """Leader: a learner asks whether a session is valid; answer with
    ``LeaderCore.revalidated(peer, packet, session_id, valid)``."""

    peer: Hashable
    session_id: int
    timeout: int
    packet: QuorumPacket


@dataclass(frozen=True, slots=True)
class SessionValidated:
    """Learner: the leader's answer to a REVALIDATE."""

    session_id: int
    valid: bool


@dataclass(frozen=True, slots=True)
class SyncDone:
    """Learner: the leader says the oldest pending sync request is done."""


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Leader: close the connection to ``peer`` (its learner handler is gone)."""

    peer: Hashable
    reason: str


@dataclass(frozen=True, slots=True)
class Shutdown:
    """Leave this role: close every quorum connection and go back to LOOKING
    (leader election). The core accepts no further events."""

    reason: str


Action = (
    Send | SendCommitted | ReadLog | SendSnapshot | LogTxn | Commit | LoadSnapshot | Truncate
    | TakeSnapshot | PersistEpoch | StartServing | ConfigSeen | TouchSessions | SubmitRequest
    | CheckSession | SessionValidated | SyncDone | Disconnect | Shutdown
)
