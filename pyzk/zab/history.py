"""The leader's recent history and how it brings a learner up to date.

:class:`CommittedLog` is ZKDatabase's ``committedLog`` window (the last
``zookeeper.commitLogCount`` committed proposals, 500 by default, kept in
memory). :func:`plan_sync` is LearnerHandler.syncFollower with
queueCommittedProposals: from the learner's last zxid it decides between a
DIFF (send the missing committed proposals, each followed by COMMIT), a TRUNC
(the learner has proposals the leader does not) or a SNAP (too far behind),
reading the on-disk log when the window is not enough. Its cases and quirks
are Apache's, including the cross-epoch TRUNC that turns into a SNAP.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from pyzk.jute.records import QuorumPacket
from pyzk.zab.actions import Entry
from pyzk.zab.packets import (
    commit_packet,
    diff_packet,
    proposal_packet,
    trunc_packet,
)
from pyzk.zab.zxid import epoch_of, hexz, is_epoch_start

log = logging.getLogger(__name__)

DEFAULT_COMMIT_LOG_COUNT = 500

#: Reads committed proposals from the on-disk log for a learner whose last
#: zxid is the argument: ZKDatabase.getProposalsFromTxnLog. It yields entries
#: from the start of the log file holding that zxid (FileTxnIterator without
#: fast-forward), or nothing when the log does not reach back that far or is
#: larger than the size limit (snapshot size x zookeeper.snapshotSizeFactor).
TxnLogReader = Callable[[int], Iterable[Entry]]


class CommittedLog:
    """ZKDatabase.committedLog with its min/max bookkeeping.

    As Apache, the window grows to ``count + 1`` entries: the oldest is
    dropped only when more than ``count`` are held before an append.
    """

    __slots__ = ("count", "entries", "min_zxid", "max_zxid")

    def __init__(self, count: int = DEFAULT_COMMIT_LOG_COUNT,
                 entries: Iterable[Entry] = ()) -> None:
        self.count = count
        self.entries: deque[Entry] = deque()
        self.min_zxid = 0
        self.max_zxid = 0
        for e in entries:
            self.add(e)

    def add(self, entry: Entry) -> None:
        """ZKDatabase.addCommittedProposal."""
        if len(self.entries) > self.count:
            self.entries.popleft()
            self.min_zxid = self.entries[0].zxid
        if not self.entries:
            self.min_zxid = self.max_zxid = entry.zxid
        self.entries.append(entry)
        self.max_zxid = entry.zxid

    def clear(self) -> None:
        self.entries.clear()
        self.min_zxid = self.max_zxid = 0

    def __len__(self) -> int:
        return len(self.entries)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self.entries)


@dataclass(slots=True)
class SyncPlan:
    """What LearnerHandler sends a learner before NEWLEADER.

    ``packets`` (DIFF or TRUNC first, then PROPOSAL/COMMIT pairs) are queued
    unless ``snap``; then a SNAP with the leader's last processed zxid and the
    streamed snapshot are written first instead. ``forward_from`` is the zxid
    handed to Leader.startForwarding: outstanding proposals after it follow.
    """

    snap: bool
    packets: list[QuorumPacket] = field(default_factory=list)
    forward_from: int = 0
    kind: str = ""  # "DIFF", "TRUNC" or "SNAP", for logs and tests
    #: The committed txns that follow ``packets``, each sent as PROPOSAL then
    #: COMMIT (kept as entries: see pyzk.zab.actions.SendCommitted).
    txns: list[Entry] = field(default_factory=list)

    def all_packets(self) -> list[QuorumPacket]:
        """Every packet of the plan in order, the txns' pairs included."""
        out = list(self.packets)
        for e in self.txns:
            out.append(proposal_packet(e.zxid, e.data))
            out.append(commit_packet(e.zxid))
        return out


class _Queuer:
    """queueCommittedProposals with LearnerHandler's ``needOpPacket`` flag."""

    __slots__ = ("packets", "txns", "need_op")

    def __init__(self) -> None:
        self.packets: list[QuorumPacket] = []  # DIFF or TRUNC, which comes first
        self.txns: list[Entry] = []  # then a PROPOSAL and a COMMIT for each
        self.need_op = True

    def queue(self, itr: Iterable[Entry], peer_last: int, max_zxid: int | None,
              last_committed: int) -> int:
        peer_new_epoch = is_epoch_start(peer_last)
        queued = peer_last
        prev = -1
        for p in itr:
            z = p.zxid
            if max_zxid is not None and z > max_zxid:
                break
            if z < peer_last:
                prev = z
                continue
            if self.need_op:
                if z == peer_last:
                    self.packets.append(diff_packet(last_committed))
                    self.need_op = False
                    continue
                if peer_new_epoch:
                    self.packets.append(diff_packet(last_committed))
                    self.need_op = False
                elif z > peer_last:
                    if epoch_of(z) != epoch_of(peer_last):
                        log.warning("Cannot send TRUNC to peer: peer zxid is from different epoch")
                        return queued
                    self.packets.append(trunc_packet(prev))
                    self.need_op = False
            if z <= queued:
                continue
            self.txns.append(p)
            queued = z
        if self.need_op and peer_new_epoch:
            self.packets.append(diff_packet(last_committed))
            self.need_op = False
        return queued


def needs_txnlog(peer_last_zxid: int, committed: CommittedLog, last_processed_zxid: int,
                 *, force_snap: bool = False) -> bool:
    """Whether :func:`plan_sync` for this learner would read the on-disk log
    (it is behind the committed window, and no DIFF-less case applies)."""
    if force_snap or last_processed_zxid == peer_last_zxid:
        return False
    if len(committed):
        min_c, max_c = committed.min_zxid, committed.max_zxid
    else:
        min_c = max_c = last_processed_zxid
    if peer_last_zxid > max_c and not is_epoch_start(peer_last_zxid):
        return False
    return peer_last_zxid < min_c


def plan_sync(
    peer_last_zxid: int,
    committed: CommittedLog,
    last_processed_zxid: int,
    txnlog: TxnLogReader | None = None,
    *,
    force_snap: bool = False,
) -> SyncPlan:
    """LearnerHandler.syncFollower. ``txnlog`` None means on-disk sync is off
    (zookeeper.snapshotSizeFactor < 0); ``force_snap`` is zookeeper.forceSnapshotSync."""
    peer_new_epoch = is_epoch_start(peer_last_zxid)
    current = peer_last_zxid
    need_snap = True
    q = _Queuer()
    if len(committed):
        min_c, max_c = committed.min_zxid, committed.max_zxid
    else:
        min_c = max_c = last_processed_zxid
    kind = ""
    if force_snap:
        log.warning("Forcing snapshot sync - should not see this in production")
    elif last_processed_zxid == peer_last_zxid:
        q.packets.append(diff_packet(peer_last_zxid))
        q.need_op = False
        need_snap = False
    elif peer_last_zxid > max_c and not peer_new_epoch:
        q.packets.append(trunc_packet(max_c))
        current = max_c
        q.need_op = False
        need_snap = False
    elif min_c <= peer_last_zxid <= max_c:
        current = q.queue(committed, peer_last_zxid, None, max_c)
        need_snap = False
    elif peer_last_zxid < min_c and txnlog is not None:
        it = iter(txnlog(peer_last_zxid))
        first = next(it, None)
        if first is not None:
            current = q.queue(_chain(first, it), peer_last_zxid, min_c, max_c)
            if current < min_c:
                log.info("Detected gap between end of txnlog: 0x%s and start of committedLog: 0x%s",
                         hexz(current), hexz(min_c))
                current = peer_last_zxid
                q.packets.clear()
                q.txns.clear()
                q.need_op = True
            else:
                current = q.queue(committed, current, None, max_c)
                need_snap = False
    else:
        log.warning("Unhandled scenario for peer: maxCommittedLog=0x%s minCommittedLog=0x%s "
                    "lastProcessedZxid=0x%s peerLastZxid=0x%s", hexz(max_c), hexz(min_c),
                    hexz(last_processed_zxid), hexz(peer_last_zxid))
    if need_snap:
        current = last_processed_zxid
    if q.need_op and not need_snap:
        log.error("Unhandled scenario for peer: fall back to use snapshot")
        need_snap = True
    if need_snap:
        return SyncPlan(True, [], current, "SNAP")
    kind = "TRUNC" if q.packets and q.packets[0].type == trunc_packet(0).type else "DIFF"
    return SyncPlan(False, q.packets, current, kind, q.txns)


def _chain(first: Entry, rest: Iterable[Entry]):  # type: ignore[no-untyped-def]
    yield first
    yield from rest
