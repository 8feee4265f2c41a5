"""QuorumPackets as Apache ZooKeeper 3.8 writes them on the quorum port.

Every message between a leader and its learners is one Jute ``QuorumPacket``
(int type, long zxid, buffer data, vector<Id> authinfo) written with
BinaryOutputArchive.writeRecord: there is no length prefix, packets simply
follow each other. The one exception is the snapshot a leader streams right
after a SNAP packet (see :mod:`pyzk.zab.snapstream`), which
:class:`LearnerStream` takes apart.

The ``data`` payloads are written by Java's DataOutputStream or Jute, each
described at its builder below (Leader, Learner, LearnerHandler, Follower,
Observer).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from enum import IntEnum
from typing import Any

from pyzk.jute.codec import DEFAULT_MAX_BUFFER, JuteError, NegativeLength, Oversized, Truncated
from pyzk.jute.records import Id, LearnerInfo, QuorumPacket
from pyzk.zab.snapstream import SnapshotScanner, WireSnapshot
from pyzk.zab.zxid import hexz, make_zxid

log = logging.getLogger(__name__)


class PacketType(IntEnum):
    """Leader.java's packet type constants."""

    REQUEST = 1
    PROPOSAL = 2
    ACK = 3
    COMMIT = 4
    PING = 5
    REVALIDATE = 6
    SYNC = 7
    INFORM = 8
    COMMITANDACTIVATE = 9
    NEWLEADER = 10
    FOLLOWERINFO = 11
    UPTODATE = 12
    DIFF = 13
    TRUNC = 14
    SNAP = 15
    OBSERVERINFO = 16
    LEADERINFO = 17
    ACKEPOCH = 18
    INFORMANDACTIVATE = 19


#: The Zab 1.0 protocol version a 3.4+ learner announces and a leader sends in LEADERINFO.
PROTOCOL_VERSION = 0x10000
#: What a leader writes after the snapshot that follows SNAP.
SNAP_SIGNATURE = "BenWasHere"
#: BinaryInputArchive's limit: jute.maxbuffer plus the default extra of the same size.
QUORUM_MAX_BUFFER = 2 * DEFAULT_MAX_BUFFER
#: The most bytes one QuorumPacket may take on the wire, as a multiple of the
#: per-field limit: its data (at most one field's limit) and its authinfo ids
#: together. Apache has no such total, but reads the ids as they come; pyzk
#: holds a packet's bytes until it is whole, so an endless authinfo vector
#: would otherwise be held in memory for as long as the peer keeps sending.
PACKET_LIMIT_FACTOR = 2

_INT = struct.Struct(">i")
_LONG = struct.Struct(">q")
#: QuorumPacket's fixed head: int type, long zxid, then the data buffer's int length.
_PACKET_HEAD = 16
_QP_HEAD = struct.Struct(">iqi")  # QuorumPacket: int type, long zxid, data's length
_NULL_LEN = _INT.pack(-1)
_LONG_INT = struct.Struct(">qi")
_LONG_BOOL = struct.Struct(">q?")
_REQ_HEAD = struct.Struct(">qii")
_TXN_ZXID = struct.Struct(">q")  # TxnHeader: long clientId, int cxid, long zxid, ...
_TXN_ZXID_OFFSET = 12


class PacketError(JuteError):
    """A packet payload Apache would fail to read (its reader throws an IOException)."""


def qp(ptype: int, zxid: int, data: bytes | None = None, authinfo: list[Id] | None = None
       ) -> QuorumPacket:
    """A QuorumPacket; ``data`` and ``authinfo`` are null unless given, as Apache leaves them."""
    return QuorumPacket(int(ptype), zxid, data, authinfo)


# ---------------------------------------------------------------- discovery


@dataclass(frozen=True, slots=True)
class LearnerInfoData:
    """What LearnerHandler reads from FOLLOWERINFO/OBSERVERINFO data.

    ``sid`` is None for a learner that sent no data (Apache then numbers it
    from a decreasing counter); ``config_version`` is None when the payload is
    shorter than 20 bytes (pre-3.5 learners).
    """

    sid: int | None
    protocol_version: int
    config_version: int | None


def learner_info_packet(
    sid: int, accepted_epoch: int, config_version: int, *, observer: bool = False,
    protocol_version: int = PROTOCOL_VERSION,
) -> QuorumPacket:
    """Learner.registerWithLeader: zxid is makeZxid(acceptedEpoch, 0), data a Jute LearnerInfo."""
    info = LearnerInfo(sid, protocol_version, config_version).to_bytes()
    ptype = PacketType.OBSERVERINFO if observer else PacketType.FOLLOWERINFO
    return qp(ptype, make_zxid(accepted_epoch, 0), info)


def parse_learner_info(data: bytes | None) -> LearnerInfoData:
    """LearnerHandler.run: fields are read only as far as the payload reaches.

    Protocol version defaults to 0x1 (a pre-Zab-1.0 learner) when absent.
    """
    if data is None:
        return LearnerInfoData(None, 0x1, None)
    sid = _LONG.unpack_from(data, 0)[0] if len(data) >= 8 else None
    version = _INT.unpack_from(data, 8)[0] if len(data) >= 12 else 0x1
    config = _LONG.unpack_from(data, 12)[0] if len(data) >= 20 else None
    return LearnerInfoData(sid, version, config)


def leader_info_packet(new_epoch: int, protocol_version: int = PROTOCOL_VERSION) -> QuorumPacket:
    """LEADERINFO: zxid makeZxid(newEpoch, 0), data the int protocol version."""
    return qp(PacketType.LEADERINFO, new_epoch << 32, _INT.pack(protocol_version))


def parse_leader_info(packet: QuorumPacket) -> int:
    """The leader's protocol version (Learner reads it and does not check it)."""
    data = packet.data or b""
    if len(data) < 4:
        raise PacketError("LEADERINFO without a protocol version")
    return _INT.unpack_from(data, 0)[0]


def ack_epoch_packet(last_logged_zxid: int, current_epoch: int) -> QuorumPacket:
    """ACKEPOCH: zxid the learner's last logged zxid, data its int current epoch
    (-1 when it had already accepted the proposed epoch, so the reply is not a vote)."""
    return qp(PacketType.ACKEPOCH, last_logged_zxid, _INT.pack(current_epoch))


def parse_ack_epoch(packet: QuorumPacket) -> tuple[int, int]:
    """(current epoch, last zxid): LearnerHandler's StateSummary."""
    data = packet.data or b""
    if len(data) < 4:
        raise PacketError("ACKEPOCH without an epoch")
    return _INT.unpack_from(data, 0)[0], packet.zxid


def new_leader_packet(zxid: int, config: bytes | None) -> QuorumPacket:
    """NEWLEADER: zxid makeZxid(newEpoch, 0), data the leader's last seen
    QuorumVerifier as text (QuorumMaj.toString) for Zab 1.0 learners."""
    return qp(PacketType.NEWLEADER, zxid, config)


# ---------------------------------------------------------------- synchronisation


def diff_packet(zxid: int) -> QuorumPacket:
    return qp(PacketType.DIFF, zxid)


def trunc_packet(zxid: int) -> QuorumPacket:
    return qp(PacketType.TRUNC, zxid)


def snap_packet(zxid: int) -> QuorumPacket:
    return qp(PacketType.SNAP, zxid)


def uptodate_packet() -> QuorumPacket:
    """UPTODATE carries zxid -1 and nothing else."""
    return qp(PacketType.UPTODATE, -1)


# ---------------------------------------------------------------- broadcast


def proposal_packet(zxid: int, txn_bytes: bytes) -> QuorumPacket:
    """PROPOSAL: data is Util.marshallTxnEntry (TxnHeader, txn record, TxnDigest)."""
    return qp(PacketType.PROPOSAL, zxid, txn_bytes)


def ack_packet(zxid: int) -> QuorumPacket:
    return qp(PacketType.ACK, zxid)


def commit_packet(zxid: int) -> QuorumPacket:
    return qp(PacketType.COMMIT, zxid)


def inform_packet(zxid: int, txn_bytes: bytes) -> QuorumPacket:
    """INFORM (to observers): the proposal's data with the commit's zxid."""
    return qp(PacketType.INFORM, zxid, txn_bytes)


def commit_and_activate_packet(zxid: int, designated_leader: int) -> QuorumPacket:
    """COMMITANDACTIVATE: data is the long id of the designated leader."""
    return qp(PacketType.COMMITANDACTIVATE, zxid, _LONG.pack(designated_leader))


def inform_and_activate_packet(zxid: int, designated_leader: int, txn_bytes: bytes
                               ) -> QuorumPacket:
    """Leader.buildInformAndActivePacket: long designated leader, then the proposal data."""
    return qp(PacketType.INFORMANDACTIVATE, zxid, _LONG.pack(designated_leader) + txn_bytes)


def parse_activate(packet: QuorumPacket) -> tuple[int, bytes]:
    """(designated leader, remaining bytes) of COMMITANDACTIVATE/INFORMANDACTIVATE."""
    data = packet.data or b""
    if len(data) < 8:
        raise PacketError("activation packet without a designated leader")
    return _LONG.unpack_from(data, 0)[0], bytes(data[8:])


def txn_zxid(txn_bytes: bytes | None) -> int:
    """The zxid inside a marshalled TxnHeader (what Follower compares with lastQueued)."""
    if txn_bytes is None or len(txn_bytes) < _TXN_ZXID_OFFSET + 8:
        raise PacketError("proposal data shorter than a TxnHeader")
    return _TXN_ZXID.unpack_from(txn_bytes, _TXN_ZXID_OFFSET)[0]


def ping_packet(zxid: int, touches: bytes | None = None, authinfo: list[Id] | None = None
                ) -> QuorumPacket:
    """PING: the leader sends its last proposed zxid and no data; a learner answers
    with the same zxid and authinfo and its session touches as data."""
    return qp(PacketType.PING, zxid, touches, authinfo)


def encode_touches(touches: dict[int, int] | list[tuple[int, int]]) -> bytes:
    """Learner.ping: DataOutputStream of (long sessionId, int timeout) pairs."""
    items = touches.items() if isinstance(touches, dict) else touches
    return b"".join(_LONG_INT.pack(s, t) for s, t in items)


def decode_touches(data: bytes | None) -> list[tuple[int, int]]:
    """LearnerHandler's PING branch; a trailing partial pair is an EOFException there."""
    if not data:
        return []
    if len(data) % _LONG_INT.size:
        raise PacketError(f"PING touch table of {len(data)} bytes is not whole pairs")
    return [(_LONG_INT.unpack_from(data, i)) for i in range(0, len(data), _LONG_INT.size)]


@dataclass(frozen=True, slots=True)
class ForwardedRequest:
    """A client write a learner hands to the leader (Learner.request)."""

    session_id: int
    cxid: int
    type: int
    request: bytes
    authinfo: list[Id] | None


def request_packet(session_id: int, cxid: int, op: int, request: bytes | None,
                   authinfo: list[Id] | None = None) -> QuorumPacket:
    """REQUEST: long sessionId, int cxid, int type, then the raw request bytes;
    the session's auth ids travel in the packet's authinfo; zxid is -1."""
    data = _REQ_HEAD.pack(session_id, cxid, op) + (request or b"")
    return qp(PacketType.REQUEST, -1, data, authinfo)


def parse_request(packet: QuorumPacket) -> ForwardedRequest:
    data = packet.data or b""
    if len(data) < _REQ_HEAD.size:
        raise PacketError("REQUEST shorter than its header")
    sid, cxid, op = _REQ_HEAD.unpack_from(data, 0)
    auth: list[Id] | None = list(packet.authinfo) if packet.authinfo is not None else None
    return ForwardedRequest(sid, cxid, op, bytes(data[_REQ_HEAD.size:]), auth)


def revalidate_packet(session_id: int, timeout: int) -> QuorumPacket:
    """REVALIDATE from a learner: long sessionId, int timeout; zxid -1."""
    return qp(PacketType.REVALIDATE, -1, _LONG_INT.pack(session_id, timeout))


def parse_revalidate(packet: QuorumPacket) -> tuple[int, int]:
    data = packet.data or b""
    if len(data) < _LONG_INT.size:
        raise PacketError("REVALIDATE shorter than (session, timeout)")
    return _LONG_INT.unpack_from(data, 0)


def revalidate_reply_packet(request: QuorumPacket, session_id: int, valid: bool) -> QuorumPacket:
    """Leader.revalidateSession answers in the request's own packet: same type,
    zxid and authinfo, data replaced by long sessionId, boolean valid."""
    return qp(request.type, request.zxid, _LONG_BOOL.pack(session_id, valid), request.authinfo)


def parse_revalidate_reply(packet: QuorumPacket) -> tuple[int, bool]:
    data = packet.data or b""
    if len(data) < 9:
        raise PacketError("REVALIDATE reply shorter than (session, valid)")
    return _LONG.unpack_from(data, 0)[0], data[8] != 0


def sync_packet() -> QuorumPacket:
    """Leader.sendSync: SYNC with zxid 0 tells a learner its sync request is done."""
    return qp(PacketType.SYNC, 0)


def packet_to_string(packet: QuorumPacket) -> str:
    """LearnerHandler.packetToString, for logs."""
    try:
        name = PacketType(packet.type).name
    except ValueError:
        name = f"UNKNOWN{packet.type}"
    mess = None
    if packet.type == PacketType.REVALIDATE and packet.data and len(packet.data) >= 8:
        mess = f" sessionid = {_LONG.unpack_from(packet.data, 0)[0]}"
    return f"{name} {hexz(packet.zxid)} {mess}"


# ---------------------------------------------------------------- streams


class PacketScanner:
    """Finds where the QuorumPacket at the head of a growing buffer ends.

    A QuorumPacket has no length prefix, so the only way to know it is whole
    is to walk its lengths. Decoding it again from its start each time a few
    more bytes arrive costs time in proportion to what is buffered, which
    makes a packet trickled in small pieces quadratic: one peer sending a
    megabyte-sized authinfo vector slowly could hold the event loop (and
    every other connection of the server) for tens of seconds. The scanner
    remembers how far it got, so each byte is looked at once; the packet is
    decoded once, when whole. Lengths are checked as they arrive, as
    BinaryInputArchive checks them before reading the bytes: a negative or
    oversized one fails at once instead of waiting for bytes that never come.

    Offsets are relative to the packet's first byte, so the caller may drop
    consumed bytes in front of it; :meth:`reset` starts on the next packet.
    """

    __slots__ = ("maxbuf", "limit", "_off", "_stage", "_strings")

    def __init__(self, maxbuf: int = QUORUM_MAX_BUFFER) -> None:
        self.maxbuf = maxbuf
        self.limit = PACKET_LIMIT_FACTOR * maxbuf
        self.reset()

    def reset(self) -> None:
        self._off = 0  # bytes of the packet accounted for so far
        self._stage = 0  # 0: head, 1: authinfo count, 2: authinfo strings
        self._strings = 0  # authinfo strings (two per Id) still to walk

    def _length(self, n: int, what: str) -> int:
        if n < -1:
            raise NegativeLength(f"negative {what} length {n} in a quorum packet")
        if n > self.maxbuf:
            raise Oversized(f"{what} length {n} exceeds jute.maxbuffer {self.maxbuf}")
        return max(n, 0)

    def _grow(self, n: int) -> None:
        self._off += n
        if self._off > self.limit:
            raise Oversized(f"quorum packet of more than {self.limit} bytes")

    def end(self, buf: bytes | bytearray, start: int) -> int | None:
        """The offset just past the packet that starts at ``start``, or None
        while part of it is still to come. Raises JuteError on a length the
        decoder would refuse."""
        have = len(buf) - start
        if self._stage == 0:
            if have < _PACKET_HEAD:
                return None
            data = self._length(_INT.unpack_from(buf, start + 12)[0], "data")
            self._grow(_PACKET_HEAD + data)
            self._stage = 1
        if self._stage == 1:
            if have < self._off + 4:
                return None
            count = _INT.unpack_from(buf, start + self._off)[0]
            if count < -1:
                raise NegativeLength(f"negative authinfo count {count} in a quorum packet")
            if count > self.maxbuf:
                raise Oversized(f"authinfo count {count} exceeds jute.maxbuffer {self.maxbuf}")
            self._grow(4)
            self._strings = 2 * max(count, 0)
            self._stage = 2
        while self._strings:
            if have < self._off + 4:
                return None
            n = self._length(_INT.unpack_from(buf, start + self._off)[0], "authinfo string")
            self._grow(4 + n)
            self._strings -= 1
        if have < self._off:
            return None
        return start + self._off


def _decode_whole(buf: bytearray, pos: int, end: int, maxbuf: int) -> QuorumPacket:
    """Decode a packet the scanner found whole; it must end where the scanner said."""
    try:
        packet, pos2 = QuorumPacket.decode(buf, pos, maxbuf)
    except Truncated as e:  # the scanner and the decoder disagree: refuse the stream
        raise PacketError(f"malformed quorum packet: {e}") from e
    if pos2 != end:
        raise PacketError(f"quorum packet ends at {pos2 - pos} bytes, not {end - pos}")
    return packet


def _plain_packet(buf: bytearray, pos: int, maxbuf: int) -> tuple[QuorumPacket, int] | None:
    """The packet at ``pos`` when it is whole and has no authinfo, with where it ends.

    Every packet of a sync and of broadcast (PROPOSAL, COMMIT, ACK, PING's
    touches) has a null authinfo; reading those with two unpacks instead of
    the scanner and the generated decoder halves the per-packet cost, which
    a DIFF of 100k txns pays 200k times. Anything else (an authinfo vector,
    a length to refuse, a packet still arriving) returns None and takes the
    general path, which keeps its checks and errors.
    """
    if len(buf) - pos < _PACKET_HEAD + 4:
        return None
    ptype, zxid, n = _QP_HEAD.unpack_from(buf, pos)
    if n < -1 or n > maxbuf:
        return None
    end = pos + _PACKET_HEAD + (n if n > 0 else 0)
    if len(buf) < end + 4 or _INT.unpack_from(buf, end)[0] != -1:
        return None
    data = None if n < 0 else bytes(buf[pos + _PACKET_HEAD:end])
    return QuorumPacket(ptype, zxid, data, None), end + 4


def _plain_run(buf: bytearray, pos: int, maxbuf: int, out: list[Any]) -> int:
    """Append every whole plain packet (see :func:`_plain_packet`) from ``pos``
    on to ``out``, up to the first that is not one or is a SNAP (whose
    snapshot follows it); return where that one starts. One loop for a
    read's worth of a DIFF's packets instead of a call per packet."""
    size = len(buf)
    head = _QP_HEAD.unpack_from
    tail = _INT.unpack_from
    packet = QuorumPacket
    snap = int(PacketType.SNAP)
    while size - pos >= _PACKET_HEAD + 4:
        ptype, zxid, n = head(buf, pos)
        if n < -1 or n > maxbuf or ptype == snap:
            break
        start = pos + _PACKET_HEAD
        end = start + (n if n > 0 else 0)
        if size < end + 4 or tail(buf, end)[0] != -1:
            break
        out.append(packet(ptype, zxid, None if n < 0 else bytes(buf[start:end]), None))
        pos = end + 4
    return pos


class PacketStream:
    """Splits the bytes a leader reads from a learner into QuorumPackets.

    Packets have no length prefix; :class:`PacketScanner` tells when the one
    at the head is complete, so bytes are walked once however they are cut.
    A negative or oversized length is fatal for the connection (JuteError).
    """

    __slots__ = ("_buf", "maxbuf", "_scan")

    def __init__(self, maxbuf: int = QUORUM_MAX_BUFFER) -> None:
        self._buf = bytearray()
        self.maxbuf = maxbuf
        self._scan = PacketScanner(maxbuf)

    def feed(self, data: bytes) -> list[QuorumPacket]:
        buf = self._buf
        buf += data
        out: list[QuorumPacket] = []
        pos = 0
        maxbuf = self.maxbuf
        while pos < len(buf):
            run_end = _plain_run(buf, pos, maxbuf, out)
            if run_end != pos:
                pos = run_end
                self._scan.reset()
                continue
            end = self._scan.end(buf, pos)
            if end is None:
                break
            out.append(_decode_whole(buf, pos, end, maxbuf))
            self._scan.reset()
            pos = end
        if pos:
            del buf[:pos]
        return out

    @property
    def buffered(self) -> int:
        return len(self._buf)


@dataclass(frozen=True, slots=True)
class SnapTransfer:
    """A SNAP packet together with the snapshot that followed it on the wire."""

    packet: QuorumPacket
    snapshot: WireSnapshot


class LearnerStream(PacketStream):
    """What a learner reads from its leader: packets, and after SNAP the snapshot.

    A SNAP packet is returned only once the whole snapshot and its
    ``BenWasHere`` signature arrived, as a :class:`SnapTransfer`; a wrong
    signature raises PacketError (Apache: "Missing signature").
    """

    __slots__ = ("_snap", "_scanner")

    def __init__(self, maxbuf: int = QUORUM_MAX_BUFFER) -> None:
        super().__init__(maxbuf)
        self._snap: QuorumPacket | None = None
        self._scanner: SnapshotScanner | None = None

    def feed(self, data: bytes) -> list[QuorumPacket | SnapTransfer]:  # type: ignore[override]
        buf = self._buf
        buf += data
        out: list[QuorumPacket | SnapTransfer] = []
        pos = 0
        while True:
            if self._scanner is not None:
                scanned = self._scanner.scan(buf, pos)
                if scanned is None:
                    break
                snap, pos = scanned
                if snap.signature != SNAP_SIGNATURE:
                    raise PacketError(f"Missing signature. Got {snap.signature}")
                assert self._snap is not None
                out.append(SnapTransfer(self._snap, snap))
                self._snap = None
                self._scanner = None
                continue
            if pos >= len(buf):
                break
            run_end = _plain_run(buf, pos, self.maxbuf, out)
            if run_end != pos:
                pos = run_end
                self._scan.reset()
                continue
            plain = _plain_packet(buf, pos, self.maxbuf)
            if plain is not None:
                packet, pos = plain
            else:
                end = self._scan.end(buf, pos)
                if end is None:
                    break
                packet = _decode_whole(buf, pos, end, self.maxbuf)
                pos = end
            self._scan.reset()
            if packet.type == PacketType.SNAP:
                self._snap = packet
                self._scanner = SnapshotScanner(packet.zxid)
            else:
                out.append(packet)
        if pos:
            del buf[:pos]
            if self._scanner is not None:
                self._scanner.rebase(pos)
        return out


#: The end of a PROPOSAL (its null authinfo) and the whole COMMIT after it:
#: int -1; int COMMIT, long zxid, int -1 (no data), int -1 (no authinfo).
_PROPOSAL_END_COMMIT = struct.Struct(">iiqii")


def encode_committed(entries: Iterable[Any]) -> bytes:
    """PROPOSAL then COMMIT for each entry (anything with ``zxid`` and
    ``data``), in order, as the bytes of those packets written one by one.

    A DIFF is LearnerHandler.queueCommittedProposals: two packets per
    committed txn. Packing them here in one pass, two struct calls per txn,
    instead of building and encoding 2n QuorumPackets keeps a DIFF of 100k
    txns from holding the leader's event loop (and every other learner's
    pings) for most of a second.
    """
    head = _QP_HEAD.pack
    tail = _PROPOSAL_END_COMMIT.pack
    proposal = int(PacketType.PROPOSAL)
    commit = int(PacketType.COMMIT)
    parts: list[bytes] = []
    add = parts.append
    for e in entries:
        z = e.zxid
        data = e.data
        add(head(proposal, z, len(data)))
        add(data)
        add(tail(-1, commit, z, -1, -1))
    return b"".join(parts)


def encode_packet(packet: QuorumPacket) -> bytes:
    """The bytes BinaryOutputArchive.writeRecord(packet) puts on the wire.

    A packet without authinfo (all a leader and a learner exchange once
    connected) is packed directly rather than through the generated encoder.
    """
    if packet.authinfo is not None:
        return packet.to_bytes()
    data = packet.data
    if data is None:
        return _QP_HEAD.pack(packet.type, packet.zxid, -1) + _NULL_LEN
    return b"".join((_QP_HEAD.pack(packet.type, packet.zxid, len(data)), data, _NULL_LEN))
