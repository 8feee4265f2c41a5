"""The learner roles: follower and observer (Learner, Follower, Observer).

A learner connects to the leader's quorum port and then:

1. discovery: sends FOLLOWERINFO (OBSERVERINFO) with makeZxid(acceptedEpoch, 0)
   and a LearnerInfo; the leader answers LEADERINFO with the new epoch; the
   learner persists it as acceptedEpoch if larger and answers ACKEPOCH with
   its last logged zxid and current epoch (-1 if it had already accepted
   that epoch, so its answer is no vote);
2. synchronisation (Learner.syncWithLeader): DIFF, SNAP (the snapshot follows
   on the wire) or TRUNC, then committed PROPOSAL/COMMIT pairs, NEWLEADER
   (snapshot if the sync was not a DIFF, persist currentEpoch, log what came,
   ACK), then UPTODATE (ACK, start serving, commit what the sync committed);
3. broadcast (Follower.processPacket): log every PROPOSAL and ACK it once
   durable, apply COMMITs in order, answer PINGs with the session touches,
   relay REVALIDATE answers and SYNC. An observer (Observer.processPacket)
   ignores PROPOSAL/COMMIT and logs and applies INFORMs without acking.

One deliberate difference from 3.8.0: the ACK of NEWLEADER is sent only once
the proposals logged at NEWLEADER are durable (on_logged), and always before
their own ACKs. 3.8.0 sends it right after queueing them to its log thread
(so a leader can count it before they are on disk, and a fast log thread can
even ack a proposal first, which the leader then mistakes for a bad NEWLEADER
ack); 3.9 (ZOOKEEPER-4646) waits as pyzk does. The bytes are the same.
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from collections.abc import Hashable
from typing import Any

from pyzk.jute.constants import OpCode
from pyzk.jute.records import Id, QuorumPacket
from pyzk.zab import packets as P
from pyzk.zab.actions import (
    Action,
    Commit,
    ConfigSeen,
    Entry,
    LoadSnapshot,
    LogTxn,
    PersistEpoch,
    Send,
    SessionValidated,
    Shutdown,
    StartServing,
    SyncDone,
    TakeSnapshot,
    Truncate,
)
from pyzk.zab.packets import PacketType, SnapTransfer
from pyzk.zab.snapstream import WireSnapshot
from pyzk.zab.zxid import COUNTER_MASK, epoch_of, hexz, is_epoch_start, make_zxid

# Plain ints for comparisons on hot paths: an IntEnum member costs an
# attribute lookup through its metaclass each time it is named.
_PT_COMMITANDACTIVATE = int(PacketType.COMMITANDACTIVATE)
_PT_DIFF = int(PacketType.DIFF)
_PT_INFORM = int(PacketType.INFORM)
_PT_INFORMANDACTIVATE = int(PacketType.INFORMANDACTIVATE)
_PT_LEADERINFO = int(PacketType.LEADERINFO)
_PT_NEWLEADER = int(PacketType.NEWLEADER)
_PT_PING = int(PacketType.PING)
_PT_REVALIDATE = int(PacketType.REVALIDATE)
_PT_SNAP = int(PacketType.SNAP)
_PT_SYNC = int(PacketType.SYNC)
_PT_TRUNC = int(PacketType.TRUNC)
_PT_UPTODATE = int(PacketType.UPTODATE)

log = logging.getLogger(__name__)

DISCOVERY = "DISCOVERY"
SYNC_MODE = "SYNC_MODE"          # waiting for DIFF / SNAP / TRUNC
SYNCHRONIZATION = "SYNCHRONIZATION"
BROADCAST = "BROADCAST"
SHUT_DOWN = "SHUTDOWN"

_TXN_TYPE_OFFSET = 8 + 4 + 8 + 8  # TxnHeader: clientId, cxid, zxid, time, then type
_TXN_TYPE_END = _TXN_TYPE_OFFSET + 4
_TXN_TYPE = struct.Struct(">i")
_TXN_ZXID_OFFSET = 8 + 4  # TxnHeader: clientId, cxid, then zxid
_TXN_ZXID = struct.Struct(">q")
_PROPOSAL = int(PacketType.PROPOSAL)
_COMMIT = int(PacketType.COMMIT)
_ACK = int(PacketType.ACK)
_RECONFIG = int(OpCode.reconfig)


def _txn_type(data: bytes) -> int:
    return int.from_bytes(data[_TXN_TYPE_OFFSET:_TXN_TYPE_OFFSET + 4], "big", signed=True)


def _reconfig_text(data: bytes) -> bytes | None:
    """The config text of a reconfig txn (a SetDataTxn's data)."""
    from pyzk.txnlog.txn import decode_txn

    _hdr, txn, _digest = decode_txn(data)
    return getattr(txn, "data", None)


class LearnerCore:
    """A follower (or, with ``observer``, an observer) of one leader connection.

    ``leader`` is the shell's handle for the connection, used as the peer of
    every Send. ``last_logged_zxid`` is the last zxid in our log or snapshot
    (QuorumPeer.getLastLoggedZxid). Call :meth:`start` once connected.
    """

    def __init__(
        self,
        sid: int,
        leader: Hashable,
        *,
        accepted_epoch: int,
        current_epoch: int,
        last_logged_zxid: int,
        now: float,
        config_version: int = 0,
        observer: bool = False,
        tick_time: int = 2000,
        init_limit: int = 10,
        sync_limit: int = 5,
    ) -> None:
        self.sid = sid
        self.leader = leader
        self.accepted_epoch = accepted_epoch
        self.current_epoch = current_epoch
        self.last_logged_zxid = last_logged_zxid
        self.config_version = config_version
        self.observer = observer
        self.tick_time = tick_time
        self.init_limit = init_limit
        self.sync_limit = sync_limit
        self.now = now
        self.phase = DISCOVERY
        self.new_epoch = -1
        self.sync_kind = ""
        self.last_queued = 0
        self._snapshot_needed = True
        self._sync_snapshot = False
        self._write_to_log = False
        self._pre_zab1 = True
        self._newleader_qv: bytes | None = None
        self._not_committed: deque[Entry] = deque()   # packetsNotCommitted
        self._committed: deque[int] = deque()         # packetsCommitted
        self.pending: deque[Entry] = deque()          # FollowerZooKeeperServer.pendingTxns
        self._to_ack: deque[int] = deque()            # logged, ACK once durable
        self._newleader_ack_after: int | None = None  # deferred NEWLEADER ACK
        self._held_acks: list[int] = []               # ACKs to send right after it
        self._touches: dict[int, int] = {}
        self._read_deadline: float | None = now + init_limit * tick_time
        self._out: list[Action] = []

    # ------------------------------------------------------------------ helpers

    def _take(self) -> list[Action]:
        out, self._out = self._out, []
        return out

    def _send(self, packet: QuorumPacket) -> None:
        self._out.append(Send(self.leader, packet))

    def _shutdown(self, reason: str) -> None:
        if self.phase != SHUT_DOWN:
            log.warning("Learner %d stops following: %s", self.sid, reason)
            self.phase = SHUT_DOWN
            self._out.append(Shutdown(reason))

    def _log(self, entry: Entry) -> None:
        """FollowerZooKeeperServer.logRequest: log, remember as pending, ACK when durable."""
        if not is_epoch_start(entry.zxid):
            self.pending.append(entry)
        self._to_ack.append(entry.zxid)
        self._out.append(LogTxn(entry))

    def _commit(self, zxid: int) -> None:
        """FollowerZooKeeperServer.commit: the head of the pending txns must match."""
        if not self.pending:
            log.warning("Committing 0x%s without seeing txn", hexz(zxid))
            return
        head = self.pending[0]
        if head.zxid != zxid:
            # Apache exits the JVM here (ExitCode.UNMATCHED_TXN_COMMIT).
            self._shutdown(f"Committing zxid 0x{hexz(zxid)} but next pending txn "
                           f"0x{hexz(head.zxid)}")
            return
        self.pending.popleft()
        self._out.append(Commit(head))

    def _queued(self, zxid: int) -> None:
        if zxid != self.last_queued + 1:
            log.warning("Got zxid 0x%s expected 0x%s", hexz(zxid), hexz(self.last_queued + 1))
        self.last_queued = zxid

    # ------------------------------------------------------------------ API

    def start(self) -> list[Action]:
        """Learner.registerWithLeader: the first packet on a new connection."""
        self._send(P.learner_info_packet(self.sid, self.accepted_epoch, self.config_version,
                                         observer=self.observer))
        return self._take()

    def touch(self, session_id: int, timeout: int) -> None:
        """A client of ours was active; the next PING reply reports it (touch table)."""
        self._touches[session_id] = timeout

    def forward_request(self, session_id: int, cxid: int, op: int, request: bytes | None,
                        authinfo: list[Id] | None = None) -> list[Action]:
        """Learner.request: hand a client write to the leader."""
        self._send(P.request_packet(session_id, cxid, op, request, authinfo))
        return self._take()

    def revalidate(self, session_id: int, timeout: int) -> list[Action]:
        """Learner.validateSession: ask the leader whether a reconnecting session lives."""
        self._send(P.revalidate_packet(session_id, timeout))
        return self._take()

    def on_tick(self, now: float, stalled: float = 0.0) -> list[Action]:
        """The socket read timeout: initLimit ticks until NEWLEADER, then syncLimit.

        ``stalled`` (ms): the shell read no socket for that long before this
        tick (it was busy applying a DIFF); the deadline moves on by as much,
        since the leader's packets may be waiting unread in the kernel.
        """
        self.now = now
        if stalled > 0 and self._read_deadline is not None:
            self._read_deadline += stalled
        if self.phase != SHUT_DOWN and self._read_deadline is not None \
                and now >= self._read_deadline:
            self._shutdown("Read timed out")
        return self._take()

    def on_disconnect(self) -> list[Action]:
        self._shutdown("connection to leader closed")
        return self._take()

    def on_logged(self, zxid: int) -> list[Action]:
        """Our log is durable through ``zxid``: SendAckRequestProcessor's ACKs."""
        if self.phase == SHUT_DOWN:
            return []
        if self._newleader_ack_after is not None and zxid >= self._newleader_ack_after:
            self._newleader_ack_after = None
            self._send(P.ack_packet(make_zxid(self.new_epoch, 0)))
            for z in self._held_acks:
                self._send(P.ack_packet(z))
            self._held_acks.clear()
        if self._newleader_ack_after is None:
            to_ack = self._to_ack
            if self.observer:
                while to_ack and to_ack[0] <= zxid:
                    to_ack.popleft()
            else:
                # P.ack_packet and _send inline: after a DIFF this is an ACK
                # for every one of its txns
                out = self._out
                leader = self.leader
                while to_ack and to_ack[0] <= zxid:
                    out.append(Send(leader, QuorumPacket(_ACK, to_ack.popleft(), None, None)))
        return self._take()

    def on_packet(self, packet: QuorumPacket | SnapTransfer,
                  snapshot: WireSnapshot | None = None) -> list[Action]:
        """A packet from the leader (a SnapTransfer for SNAP and its snapshot)."""
        if isinstance(packet, SnapTransfer):
            packet, snapshot = packet.packet, packet.snapshot
        if self.phase == SHUT_DOWN:
            return []
        limit = self.init_limit if self.phase in (DISCOVERY, SYNC_MODE) or self._pre_zab1 \
            else self.sync_limit
        self._read_deadline = self.now + limit * self.tick_time
        try:
            if self.phase == DISCOVERY:
                self._on_discovery(packet)
            elif self.phase == SYNC_MODE:
                self._on_sync_mode(packet, snapshot)
            elif self.phase == SYNCHRONIZATION:
                self._on_sync(packet)
            else:
                self._on_broadcast(packet)
        except P.PacketError as e:
            self._shutdown(f"bad packet from leader: {e}")
        return self._take()

    def on_sync_packets(self, packets: list[Any], start: int) -> tuple[list[Action], int]:
        """:meth:`on_packet` for ``packets[start:]`` while this learner is in
        SYNCHRONIZATION (the PROPOSAL/COMMIT pairs of a DIFF, up to NEWLEADER
        and UPTODATE) and they are plain packets: the actions of all in one
        list, and where it stopped. In that phase a packet's actions never
        feed back into the core, so one call for a read's worth of a DIFF is
        what that many calls would do; the per-call cost was a third of a
        follower's time to ACK a 100k-txn DIFF."""
        i = start
        n = len(packets)
        on_sync = self._on_sync
        not_committed = self._not_committed
        committed = self._committed
        while i < n and self.phase == SYNCHRONIZATION:
            packet = packets[i]
            if type(packet) is not QuorumPacket:
                break
            i += 1
            # as on_packet: initLimit until NEWLEADER, syncLimit after it
            limit = self.init_limit if self._pre_zab1 else self.sync_limit
            self._read_deadline = self.now + limit * self.tick_time
            t = packet.type
            data = packet.data
            # _on_sync's two commonest cases, inline: a PROPOSAL that is no
            # reconfig, and a COMMIT once the txns are to be logged
            if t == _PROPOSAL and data is not None and len(data) >= _TXN_TYPE_END \
                    and _TXN_TYPE.unpack_from(data, _TXN_TYPE_OFFSET)[0] != _RECONFIG:
                zxid = _TXN_ZXID.unpack_from(data, _TXN_ZXID_OFFSET)[0]
                if zxid != self.last_queued + 1:
                    self._queued(zxid)
                self.last_queued = zxid
                not_committed.append(Entry(zxid, data))
                continue
            if t == _COMMIT and self._write_to_log:
                committed.append(packet.zxid)
                continue
            try:
                on_sync(packet)
            except P.PacketError as e:
                self._shutdown(f"bad packet from leader: {e}")
                break
        return self._take(), i

    # ------------------------------------------------------------------ discovery

    def _on_discovery(self, packet: QuorumPacket) -> None:
        new_epoch = epoch_of(packet.zxid)
        if packet.type != _PT_LEADERINFO:
            # A pre-Zab-1.0 leader would start with NEWLEADER; 3.4+ never does.
            self._shutdown(f"First packet should have been LEADERINFO, got "
                           f"{P.packet_to_string(packet)}")
            return
        P.parse_leader_info(packet)
        if new_epoch > self.accepted_epoch:
            reply_epoch = self.current_epoch
            self.accepted_epoch = new_epoch
            self._out.append(PersistEpoch("acceptedEpoch", new_epoch))
        elif new_epoch == self.accepted_epoch:
            reply_epoch = -1
        else:
            self._shutdown(f"Leaders epoch, {new_epoch} is less than accepted epoch, "
                           f"{self.accepted_epoch}")
            return
        self._send(P.ack_epoch_packet(self.last_logged_zxid, reply_epoch))
        self.new_epoch = new_epoch
        self.phase = SYNC_MODE

    # ------------------------------------------------------------------ synchronisation

    def _on_sync_mode(self, packet: QuorumPacket, snapshot: WireSnapshot | None) -> None:
        t = packet.type
        if t == _PT_DIFF:
            log.info("Getting a diff from the leader 0x%s", hexz(packet.zxid))
            self._snapshot_needed = False
            self.sync_kind = "DIFF"
        elif t == _PT_SNAP:
            if snapshot is None:
                raise P.PacketError("SNAP without its snapshot")
            log.info("Getting a snapshot from leader 0x%s", hexz(packet.zxid))
            self.sync_kind = "SNAP"
            self._out.append(LoadSnapshot(snapshot))
            self._sync_snapshot = True
        elif t == _PT_TRUNC:
            self.sync_kind = "TRUNC"
            self._out.append(Truncate(packet.zxid))
        else:
            self._shutdown(f"Got unexpected packet from leader: {P.packet_to_string(packet)}, "
                           "exiting ... ")
            return
        self._write_to_log = not self._snapshot_needed
        self.phase = SYNCHRONIZATION

    def _proposal_entry(self, packet: QuorumPacket) -> Entry:
        """A PROPOSAL's txn, noted as queued; a reconfig's config is reported."""
        entry = Entry(P.txn_zxid(packet.data), packet.data or b"")
        self._queued(entry.zxid)
        if _txn_type(entry.data) == _RECONFIG:
            text = _reconfig_text(entry.data)
            if text is not None:
                self._out.append(ConfigSeen(text, False))
        return entry

    def _on_sync(self, packet: QuorumPacket) -> None:
        t = packet.type
        if t == _PROPOSAL:
            entry = self._proposal_entry(packet)
            self._not_committed.append(entry)
        elif t in (_COMMIT, _PT_COMMITANDACTIVATE):
            # 3.8.0 peeks without checking and dies of a NullPointerException when a
            # COMMIT comes between NEWLEADER and UPTODATE; 3.8.1 (ZOOKEEPER-4394)
            # checks, and so does pyzk.
            pif = self._not_committed[0] if self._not_committed else None
            if pif is not None and pif.zxid == packet.zxid \
                    and t == _PT_COMMITANDACTIVATE:
                leader, _ = P.parse_activate(packet)
                text = _reconfig_text(pif.data)
                if text is not None:
                    self._out.append(ConfigSeen(text, True, leader))
            if not self._write_to_log:
                if pif is None or pif.zxid != packet.zxid:
                    log.warning("Committing 0x%s, but next proposal is 0x%s", hexz(packet.zxid),
                                hexz(pif.zxid) if pif is not None else "none")
                else:
                    self._out.append(Commit(pif))
                    self._not_committed.popleft()
            else:
                self._committed.append(packet.zxid)
        elif t in (_PT_INFORM, _PT_INFORMANDACTIVATE):
            if t == _PT_INFORMANDACTIVATE:
                leader, data = P.parse_activate(packet)
                entry = Entry(P.txn_zxid(data), data)
                text = _reconfig_text(data)
                if text is not None:
                    self._out.append(ConfigSeen(text, True, leader))
            else:
                entry = Entry(P.txn_zxid(packet.data), packet.data or b"")
                self._queued(entry.zxid)
            if not self._write_to_log:
                self._out.append(Commit(entry))
            else:
                self._not_committed.append(entry)
                self._committed.append(packet.zxid)
        elif t == _PT_NEWLEADER:
            self._on_newleader(packet)
        elif t == _PT_UPTODATE:
            self._on_uptodate()
        # Apache's sync loop ignores anything else (PING included) until UPTODATE.

    def _on_newleader(self, packet: QuorumPacket) -> None:
        if packet.data is not None and len(packet.data) > 1:
            self._newleader_qv = bytes(packet.data)
            self._out.append(ConfigSeen(self._newleader_qv, False))
        if self._snapshot_needed:
            self._out.append(TakeSnapshot(self._sync_snapshot))
        self.current_epoch = self.new_epoch
        self._out.append(PersistEpoch("currentEpoch", self.new_epoch))
        self._write_to_log = True
        self._pre_zab1 = False
        last = None
        if not self.observer:
            # _log for each, inline: a DIFF of 100k txns is logged here, on the
            # way to the ACK that the leader waits initLimit ticks for
            pending = self.pending
            to_ack = self._to_ack
            out = self._out
            for p in self._not_committed:
                last = p.zxid
                if last & COUNTER_MASK:
                    pending.append(p)
                to_ack.append(last)
                out.append(LogTxn(p))
            self._not_committed.clear()
        if last is None:
            self._send(P.ack_packet(packet.zxid))
        else:
            self._newleader_ack_after = last
        self._read_deadline = self.now + self.sync_limit * self.tick_time

    def _on_uptodate(self) -> None:
        if self._newleader_qv is not None:
            self._out.append(ConfigSeen(self._newleader_qv, True))
        if self._pre_zab1:
            self._out.append(TakeSnapshot(self._sync_snapshot))
            self.current_epoch = self.new_epoch
            self._out.append(PersistEpoch("currentEpoch", self.new_epoch))
        self.phase = BROADCAST
        ack = P.ack_packet(make_zxid(self.new_epoch, 0))
        if self._newleader_ack_after is None:
            self._send(ack)
        else:  # keep ACK order: NEWLEADER's, then UPTODATE's, then the proposals'
            self._held_acks.append(make_zxid(self.new_epoch, 0))
        self._out.append(StartServing(self.new_epoch))
        if not self.observer:
            for p in self._not_committed:
                self._log(p)
            self._not_committed.clear()
            committed = self._committed
            pending = self.pending
            out = self._out
            while committed and self.phase != SHUT_DOWN:
                zxid = committed.popleft()
                if pending and pending[0].zxid == zxid:  # _commit's usual case, inline
                    out.append(Commit(pending.popleft()))
                else:
                    self._commit(zxid)
        else:
            for p in self._not_committed:
                if not self._committed:
                    break
                z = self._committed[0]
                if p.zxid != z:
                    log.warning("Committing 0x%s, but next proposal is 0x%s", hexz(z),
                                hexz(p.zxid))
                    continue
                self._committed.popleft()
                self._out.append(LogTxn(p))
                self._out.append(Commit(p))
            self._not_committed.clear()

    # ------------------------------------------------------------------ broadcast

    def _on_broadcast(self, packet: QuorumPacket) -> None:
        t = packet.type
        if t == _PT_PING:
            touches = P.encode_touches(self._touches)
            self._touches = {}
            self._send(P.ping_packet(packet.zxid, touches, packet.authinfo))
        elif t == _PT_REVALIDATE:
            session_id, valid = P.parse_revalidate_reply(packet)
            self._out.append(SessionValidated(session_id, valid))
        elif t == _PT_SYNC:
            self._out.append(SyncDone())
        elif t == _PT_UPTODATE:
            log.error("Received an UPTODATE message after %s started",
                      "Observer" if self.observer else "Follower")
        elif self.observer:
            self._observer_packet(packet)
        else:
            self._follower_packet(packet)

    def _follower_packet(self, packet: QuorumPacket) -> None:
        t = packet.type
        if t == _PROPOSAL:
            entry = self._proposal_entry(packet)
            self._log(entry)
        elif t == _COMMIT:
            self._commit(packet.zxid)
        elif t == _PT_COMMITANDACTIVATE:
            leader, _ = P.parse_activate(packet)
            if self.pending:
                text = _reconfig_text(self.pending[0].data)
                if text is not None:
                    self._out.append(ConfigSeen(text, True, leader))
            self._commit(packet.zxid)
        else:
            log.warning("Unknown packet type: %s", P.packet_to_string(packet))

    def _observer_packet(self, packet: QuorumPacket) -> None:
        t = packet.type
        if t == _PROPOSAL:
            log.warning("Ignoring proposal")
        elif t == _COMMIT:
            log.warning("Ignoring commit")
        elif t in (_PT_INFORM, _PT_INFORMANDACTIVATE):
            data = packet.data or b""
            if t == _PT_INFORMANDACTIVATE:
                leader, data = P.parse_activate(packet)
                text = _reconfig_text(data)
                if text is not None:
                    self._out.append(ConfigSeen(text, True, leader))
            entry = Entry(P.txn_zxid(data), data)
            self._out.append(LogTxn(entry))
            self._out.append(Commit(entry))
        else:
            log.warning("Unknown packet type: %s", P.packet_to_string(packet))


def Follower(sid: int, leader: Hashable, **kw: Any) -> LearnerCore:  # noqa: N802
    """A follower core (participant)."""
    return LearnerCore(sid, leader, observer=False, **kw)


def Observer(sid: int, leader: Hashable, **kw: Any) -> LearnerCore:  # noqa: N802
    """An observer core: OBSERVERINFO, no votes, no ACKs, INFORM instead of PROPOSAL/COMMIT."""
    return LearnerCore(sid, leader, observer=True, **kw)
