"""The quorum port's stream decoders under bad and badly cut input (pyzk issue 13).

Whatever a peer sends, :class:`PacketStream` and :class:`LearnerStream` either
give back the packets that were sent, wait for more bytes, or raise a
JuteError (the shell then closes the connection): never another exception,
never a wait for bytes that no honest packet needs, never work that grows
with the square of what is buffered. The process-level side of the same
attacks is tests/ensemble/test_port_fuzz.py.
"""

from __future__ import annotations

import random
import struct
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyzk.jute.codec import JuteError, NegativeLength, Oversized
from pyzk.jute.records import Id, QuorumPacket
from pyzk.zab import packets as P
from pyzk.zab.packets import (
    PACKET_LIMIT_FACTOR,
    QUORUM_MAX_BUFFER,
    LearnerStream,
    PacketScanner,
    PacketStream,
    PacketType,
)

pytestmark = pytest.mark.pure

_HEAD = struct.Struct(">iqi")  # type, zxid, data length


def _ids_packet(n: int, ptype: int = PacketType.FOLLOWERINFO) -> bytes:
    """A packet with no data and ``n`` empty Ids: the cheapest bytes per element."""
    return struct.pack(">iqii", ptype, 0, -1, n) + struct.pack(">ii", 0, 0) * n


def _feed_in(stream: PacketStream, wire: bytes, cuts: list[int]) -> list[Any]:
    out: list[Any] = []
    last = 0
    for cut in [*sorted(cuts), len(wire)]:
        out += stream.feed(wire[last:cut])
        last = cut
    return out


class _CountingDecode:
    """Stands in for QuorumPacket in pyzk.zab.packets, counting decodes."""

    def __init__(self) -> None:
        self.calls = 0

    def decode(self, buf: Any, pos: int = 0, maxbuf: int = QUORUM_MAX_BUFFER) -> Any:
        self.calls += 1
        return QuorumPacket.decode(buf, pos, maxbuf)

    def __call__(self, *fields: Any) -> QuorumPacket:
        """The fast path for a packet without authinfo builds it from its fields."""
        self.calls += 1
        return QuorumPacket(*fields)


@pytest.mark.parametrize("stream_type", [PacketStream, LearnerStream])
def test_a_packet_is_decoded_once_however_it_is_cut(monkeypatch: pytest.MonkeyPatch,
                                                    stream_type: type[PacketStream]) -> None:
    """Regression: every feed decoded the buffered packet from its start, so
    a big packet trickled in small pieces cost time in the square of its size
    (an 8 MB FOLLOWERINFO held a leader's loop for 20 s). Now each byte is
    walked once and the packet decoded once, when it is whole."""
    wire = _ids_packet(20_000) + P.ping_packet(3).to_bytes()
    counter = _CountingDecode()
    monkeypatch.setattr(P, "QuorumPacket", counter)
    stream = stream_type()
    got = _feed_in(stream, wire, list(range(0, len(wire), 64)))
    assert [p.type for p in got] == [PacketType.FOLLOWERINFO, PacketType.PING]
    assert len(got[0].authinfo) == 20_000
    assert counter.calls == 2
    assert stream.buffered == 0


def _packets() -> st.SearchStrategy[QuorumPacket]:
    ids = st.builds(Id, st.text(max_size=8), st.text(max_size=8))
    return st.builds(
        QuorumPacket,
        st.integers(-(2**31), 2**31 - 1),
        st.integers(-(2**63), 2**63 - 1),
        st.none() | st.binary(max_size=64),
        st.none() | st.lists(ids, max_size=4),
    )


@settings(max_examples=200, deadline=None)
@given(st.lists(_packets(), min_size=1, max_size=6), st.lists(st.integers(0, 10_000)))
def test_any_cut_gives_back_the_packets_sent(packets: list[QuorumPacket],
                                             cuts: list[int]) -> None:
    wire = b"".join(p.to_bytes() for p in packets)
    stream = PacketStream()
    got = _feed_in(stream, wire, [c % (len(wire) + 1) for c in cuts])
    assert [p.to_bytes() for p in got] == [p.to_bytes() for p in packets]
    assert stream.buffered == 0


@pytest.mark.parametrize("stream_type", [PacketStream, LearnerStream])
@pytest.mark.parametrize("seed", range(4))
def test_garbage_only_ever_raises_jute_errors(stream_type: type[PacketStream],
                                              seed: int) -> None:
    """Random bytes, and valid packets with random bytes flipped, fed in random
    pieces: the packets that come out are those a one-shot decode of the
    bytes finds, anything else is a JuteError or a wait, and what waits is
    bounded by the limit."""
    rnd = random.Random(seed)
    valid = b"".join(p.to_bytes() for p in (
        P.learner_info_packet(2, 1, 0), P.ack_epoch_packet(0x100000003, 1),
        P.request_packet(0x11, 3, 1, b"\x00\x00\x00\x02/a" + b"\x00" * 12, [Id("ip", "x")]),
        P.ping_packet(9, P.encode_touches({1: 2}))))
    for _ in range(300):
        if rnd.random() < 0.5:
            wire = rnd.randbytes(rnd.randrange(1, 300))
        else:
            wire = bytearray(valid)
            for _ in range(rnd.randrange(1, 4)):
                wire[rnd.randrange(len(wire))] = rnd.randrange(256)
            wire = bytes(wire)
        stream = stream_type()
        try:
            got = _feed_in(stream, wire, [rnd.randrange(len(wire) + 1) for _ in range(3)])
        except JuteError:
            continue
        assert stream.buffered <= PACKET_LIMIT_FACTOR * QUORUM_MAX_BUFFER
        ref, pos = _one_shot(wire)
        if any(p.type == PacketType.SNAP for p in ref) and stream_type is LearnerStream:
            continue  # a snapshot follows SNAP: not a packet stream any more
        assert got == ref
        assert stream.buffered == len(wire) - pos


def _one_shot(wire: bytes) -> tuple[list[QuorumPacket], int]:
    """The packets QuorumPacket.decode finds from the start of ``wire``, and
    where the first one it cannot decode starts."""
    out = []
    pos = 0
    while pos < len(wire):
        try:
            packet, pos = QuorumPacket.decode(wire, pos, QUORUM_MAX_BUFFER)
        except JuteError:
            break
        out.append(packet)
    return out, pos


@pytest.mark.parametrize(("wire", "error"), [
    (_HEAD.pack(PacketType.FOLLOWERINFO, 0, 2**31 - 1), Oversized),
    (_HEAD.pack(PacketType.FOLLOWERINFO, 0, QUORUM_MAX_BUFFER + 1), Oversized),
    (_HEAD.pack(PacketType.FOLLOWERINFO, 0, -2), NegativeLength),
    (_HEAD.pack(PacketType.FOLLOWERINFO, 0, -(2**31)), NegativeLength),
    (_HEAD.pack(PacketType.PING, 0, -1) + struct.pack(">i", 2**31 - 1), Oversized),
    (_HEAD.pack(PacketType.PING, 0, -1) + struct.pack(">i", -5), NegativeLength),
    (_HEAD.pack(PacketType.PING, 0, -1) + struct.pack(">ii", 1, 2**31 - 1), Oversized),
    (_HEAD.pack(PacketType.PING, 0, -1) + struct.pack(">iii", 1, 0, -3), NegativeLength),
], ids=["data-2**31-1", "data-over-limit", "data--2", "data--2**31", "ids-2**31-1", "ids--5",
        "scheme-2**31-1", "id--3"])
def test_bad_lengths_fail_before_their_bytes_arrive(wire: bytes, error: type) -> None:
    """A length is refused as soon as it is read, as BinaryInputArchive's
    checkLength does, not after waiting for (and holding) what it announces."""
    for stream in (PacketStream(), LearnerStream()):
        with pytest.raises(error):
            stream.feed(wire)


def test_a_packet_larger_than_the_limit_is_refused_while_it_comes() -> None:
    """Each Id is within the limit but the vector would go on for ever: the
    stream refuses once the packet passes the limit instead of holding it."""
    limit = PACKET_LIMIT_FACTOR * QUORUM_MAX_BUFFER
    wire = _ids_packet(limit // 8 + 1)
    stream = PacketStream()
    with pytest.raises(Oversized, match="quorum packet of more than"):
        for i in range(0, len(wire), 65536):
            stream.feed(wire[i : i + 65536])
    assert i < limit + 65536
    # the largest packet the limit allows still goes through
    data = b"d" * QUORUM_MAX_BUFFER
    big = P.qp(PacketType.REQUEST, -1, data, [Id("digest", "u" * (QUORUM_MAX_BUFFER - 100))])
    assert len(big.to_bytes()) <= limit
    assert PacketStream().feed(big.to_bytes())[0].data == data


def test_the_scanner_resumes_where_it_stopped() -> None:
    wire = _ids_packet(3)
    scan = PacketScanner()
    for cut in range(len(wire)):
        assert scan.end(wire[:cut], 0) is None
    assert scan.end(wire, 0) == len(wire)
    scan.reset()
    assert scan.end(b"xx" + wire, 2) == 2 + len(wire)
