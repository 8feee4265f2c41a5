"""QuorumPacket payloads byte for byte, and the quorum-port stream decoders."""

from __future__ import annotations

import struct

import pytest

from pyzk.jute.records import Id, LearnerInfo, QuorumPacket
from pyzk.zab import packets as P
from pyzk.zab.packets import LearnerStream, PacketStream, PacketType, SnapTransfer
from pyzk.zab.snapstream import SnapshotScanner
from pyzk.zab.zxid import counter_of, epoch_of, make_zxid

pytestmark = pytest.mark.pure


def test_packet_type_numbers_are_apaches() -> None:
    assert [t.value for t in PacketType] == list(range(1, 20))
    assert PacketType.LEADERINFO == 17 and PacketType.ACKEPOCH == 18


def test_zxid_arithmetic() -> None:
    z = make_zxid(5, 7)
    assert z == 0x500000007 and epoch_of(z) == 5 and counter_of(z) == 7
    assert make_zxid(0x80000000, 0) < 0  # a Java long
    assert epoch_of(-1) == -1


def test_learner_info_is_jute_learnerinfo() -> None:
    p = P.learner_info_packet(3, 4, 0x100000000)
    assert p.type == PacketType.FOLLOWERINFO and p.zxid == 0x400000000
    assert p.data == struct.pack(">qiq", 3, 0x10000, 0x100000000)
    assert p.data == LearnerInfo(3, 0x10000, 0x100000000).to_bytes()
    assert P.learner_info_packet(9, 0, 0, observer=True).type == PacketType.OBSERVERINFO
    info = P.parse_learner_info(p.data)
    assert (info.sid, info.protocol_version, info.config_version) == (3, 0x10000, 0x100000000)
    # LearnerHandler reads only as far as the payload reaches
    assert P.parse_learner_info(struct.pack(">q", 7)) == P.LearnerInfoData(7, 0x1, None)
    assert P.parse_learner_info(struct.pack(">qi", 7, 0x10000)).config_version is None
    assert P.parse_learner_info(None).sid is None


def test_discovery_packets() -> None:
    li = P.leader_info_packet(6)
    assert (li.type, li.zxid, li.data) == (17, 0x600000000, b"\x00\x01\x00\x00")
    assert P.parse_leader_info(li) == 0x10000
    ae = P.ack_epoch_packet(0x500000003, -1)
    assert (ae.type, ae.zxid, ae.data) == (18, 0x500000003, b"\xff\xff\xff\xff")
    assert P.parse_ack_epoch(ae) == (-1, 0x500000003)
    nl = P.new_leader_packet(0x600000000, b"server.1=a:1:2:participant\nversion=0")
    assert nl.type == 10 and nl.data.endswith(b"version=0")
    assert P.uptodate_packet().to_bytes() == struct.pack(">iqii", 12, -1, -1, -1)


def test_ping_touch_table() -> None:
    data = P.encode_touches({0x1234: 30000, 0x99: 4000})
    assert data == struct.pack(">qiqi", 0x1234, 30000, 0x99, 4000)
    assert P.decode_touches(data) == [(0x1234, 30000), (0x99, 4000)]
    assert P.decode_touches(None) == []
    with pytest.raises(P.PacketError):
        P.decode_touches(data[:-1])
    reply = P.ping_packet(0x500000002, data, [Id("digest", "x")])
    assert QuorumPacket.from_bytes(reply.to_bytes()) == reply


def test_request_forwarding() -> None:
    auth = [Id("digest", "bob:hash"), Id("ip", "127.0.0.1")]
    p = P.request_packet(0x77, 12, 1, b"\x00\x01body", auth)
    assert p.zxid == -1 and p.data == struct.pack(">qii", 0x77, 12, 1) + b"\x00\x01body"
    back = QuorumPacket.from_bytes(p.to_bytes())
    r = P.parse_request(back)
    assert (r.session_id, r.cxid, r.type, r.request, r.authinfo) == (0x77, 12, 1,
                                                                      b"\x00\x01body", auth)
    assert P.parse_request(P.request_packet(1, 2, 9, None)).request == b""
    with pytest.raises(P.PacketError):
        P.parse_request(QuorumPacket(1, -1, b"\x00" * 15, None))


def test_revalidate_round_trip() -> None:
    req = P.revalidate_packet(0xABC, 30000)
    assert req.data == struct.pack(">qi", 0xABC, 30000) and req.zxid == -1
    assert P.parse_revalidate(req) == (0xABC, 30000)
    reply = P.revalidate_reply_packet(req, 0xABC, True)
    assert (reply.type, reply.zxid, reply.data) == (6, -1, struct.pack(">q?", 0xABC, True))
    assert P.parse_revalidate_reply(reply) == (0xABC, True)
    assert P.parse_revalidate_reply(P.revalidate_reply_packet(req, 5, False)) == (5, False)


def test_activation_payloads() -> None:
    c = P.commit_and_activate_packet(0x100000004, 2)
    assert c.data == struct.pack(">q", 2) and P.parse_activate(c) == (2, b"")
    i = P.inform_and_activate_packet(0x100000004, 3, b"txn")
    assert P.parse_activate(i) == (3, b"txn")


def test_txn_zxid_reads_the_header() -> None:
    from pyzk.zab.sim import txn_bytes

    assert P.txn_zxid(txn_bytes(0x300000009, b"x")) == 0x300000009
    with pytest.raises(P.PacketError):
        P.txn_zxid(b"short")


def _wire_snapshot_bytes(signature: str = "BenWasHere") -> bytes:
    from pyzk.datatree.tree import DataTree
    from pyzk.zab.snapstream import encode_wire_snapshot

    tree = DataTree()
    body = encode_wire_snapshot(tree, {0x11: 5000, 0x22: 6000})
    assert body.endswith(struct.pack(">i", 10) + b"BenWasHere")
    return body[: -14] + struct.pack(">i", len(signature)) + signature.encode()


def test_packet_stream_splits_at_every_byte() -> None:
    packets = [P.leader_info_packet(2), P.proposal_packet(0x200000001, b"x" * 40),
               P.commit_packet(0x200000001), P.ping_packet(5)]
    wire = b"".join(p.to_bytes() for p in packets)
    for cut in range(len(wire) + 1):
        s = PacketStream()
        got = s.feed(wire[:cut]) + s.feed(wire[cut:])
        assert got == packets
        assert s.buffered == 0


def test_learner_stream_takes_snapshot_apart() -> None:
    snap = _wire_snapshot_bytes()
    wire = (P.snap_packet(0x100000000).to_bytes() + snap + P.new_leader_packet(
        0x100000000, b"cfg").to_bytes() + P.uptodate_packet().to_bytes())
    for cut in range(0, len(wire) + 1, 3):
        s = LearnerStream()
        got = s.feed(wire[:cut]) + s.feed(wire[cut:])
        assert len(got) == 3, cut
        assert isinstance(got[0], SnapTransfer) and got[0].packet.zxid == 0x100000000
        ws = got[0].snapshot
        assert ws.sessions == {0x11: 5000, 0x22: 6000}
        assert ws.node_count >= 3  # "", /zookeeper, /zookeeper/quota ...
        assert [p.type for p in got[1:]] == [PacketType.NEWLEADER, PacketType.UPTODATE]
    loaded = got[0].snapshot.to_snapshot()
    assert loaded.sessions == {0x11: 5000, 0x22: 6000}
    assert loaded.tree.get_node("/zookeeper") is not None


def test_learner_stream_byte_by_byte_and_bad_signature() -> None:
    snap = _wire_snapshot_bytes()
    wire = P.snap_packet(7).to_bytes() + snap
    s = LearnerStream()
    got = []
    for b in wire:
        got += s.feed(bytes([b]))
    assert len(got) == 1 and got[0].snapshot.signature == "BenWasHere"
    with pytest.raises(P.PacketError, match="Missing signature"):
        LearnerStream().feed(P.snap_packet(7).to_bytes() + _wire_snapshot_bytes("BenWasThere"))


def test_scanner_needs_the_whole_body() -> None:
    snap = _wire_snapshot_bytes()
    for cut in range(len(snap)):
        assert SnapshotScanner(1).scan(snap[:cut], 0) is None
    ws, end = SnapshotScanner(1).scan(snap, 0)
    assert end == len(snap) and ws.body == snap[:-14]


def test_packet_to_string() -> None:
    text = P.packet_to_string(P.revalidate_packet(5, 1))
    assert text == "REVALIDATE ffffffffffffffff  sessionid = 5"
    assert P.packet_to_string(QuorumPacket(99, 1, None, None)) == "UNKNOWN99 1 None"


_MIXED = [
    QuorumPacket(PacketType.PROPOSAL, 0x100000001, b"payload", None),
    QuorumPacket(PacketType.ACK, 0x100000001, None, None),
    QuorumPacket(PacketType.PING, 3, b"", None),
    QuorumPacket(PacketType.FOLLOWERINFO, 0, b"\x00" * 20, [Id("digest", "u:p")]),
    QuorumPacket(PacketType.COMMIT, 0x100000001, None, []),
    QuorumPacket(PacketType.REQUEST, -1, b"r" * 300, None),
]


def test_encode_packet_is_the_generated_encoder() -> None:
    """The direct pack of a packet without authinfo gives the generated bytes."""
    for p in _MIXED:
        assert P.encode_packet(p) == p.to_bytes(), p


def test_fast_and_general_decoders_agree_at_every_cut() -> None:
    """Plain packets take the two-unpack path, those with an authinfo vector
    the scanner; mixed and cut anywhere, both streams give back what was sent."""
    wire = b"".join(P.encode_packet(p) for p in _MIXED)
    for cls in (PacketStream, LearnerStream):
        for cut in range(len(wire) + 1):
            s = cls()
            got = s.feed(wire[:cut]) + s.feed(wire[cut:])
            assert got == _MIXED, (cls, cut)
            assert s.buffered == 0
        s = cls()
        got = []
        for b in wire:
            got += s.feed(bytes([b]))
        assert got == _MIXED


def test_fast_path_leaves_bad_lengths_to_the_checked_path() -> None:
    """A length the fast path will not read (too big, below -1) still raises."""
    from pyzk.jute.codec import JuteError

    big = struct.pack(">iqi", 2, 1, 10_000_000) + b"x" * 64
    with pytest.raises(JuteError):
        PacketStream(maxbuf=1024).feed(big)
    neg = struct.pack(">iqi", 2, 1, -5) + struct.pack(">i", -1)
    with pytest.raises(JuteError):
        LearnerStream().feed(neg)


def test_encode_committed_is_a_proposal_and_a_commit_per_txn() -> None:
    """A DIFF's body packed in one pass gives the bytes of its packets sent one by one."""
    from pyzk.zab.actions import Entry, SendCommitted

    entries = [Entry(0x100000001 + i, b"t" * i) for i in range(5)]
    one_by_one = b"".join(
        P.proposal_packet(e.zxid, e.data).to_bytes() + P.commit_packet(e.zxid).to_bytes()
        for e in entries)
    assert P.encode_committed(entries) == one_by_one
    assert P.encode_committed([]) == b""
    got = PacketStream().feed(P.encode_committed(entries))
    assert got == SendCommitted("p", entries).packets()
