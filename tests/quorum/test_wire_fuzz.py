"""The election port's decoders and the FLE core under bad input (pyzk issue 13).

What a stranger can put on the election port reaches three pure pieces: the
initial message parser, the frame splitter and the notification decoder,
then the election core. Each may refuse input only with its own error
(the shell closes the connection or drops the message); the core takes any
notification from any sid without raising and never elects a server outside
its configuration. The process-level side is tests/ensemble/test_port_fuzz.py.
"""

from __future__ import annotations

import contextlib
import random
import struct

import pytest

from pyzk.quorum.election import Decided, FastLeaderElection, ServerState
from pyzk.quorum.verifier import QuorumMaj
from pyzk.quorum.wire import (
    PROTOCOL_VERSION_V1,
    PROTOCOL_VERSION_V2,
    ElectionWireError,
    FrameError,
    HandshakeError,
    Notification,
    NotificationError,
    decode_frames,
    decode_initial_message,
    decode_notification,
    encode_frame,
    encode_initial_message,
    encode_notification,
)

pytestmark = pytest.mark.pure

_CONFIG = "server.1=127.0.0.1:1:2\nserver.2=127.0.0.1:3:4\nserver.3=127.0.0.1:5:6\nversion=0"
_EXTREMES = [0, 1, 2, 3, 4, -1, 2**31 - 1, -(2**31), 2**63 - 1, -(2**63), 2**32, 99]


@pytest.mark.parametrize("version", [PROTOCOL_VERSION_V1, PROTOCOL_VERSION_V2])
def test_every_prefix_of_an_initial_message_waits(version: int) -> None:
    msg = encode_initial_message(7, [("127.0.0.1", 2888), ("10.0.0.1", 3888)], version)
    for cut in range(len(msg)):
        assert decode_initial_message(msg[:cut]) is None, cut
    got, used = decode_initial_message(msg + b"rest")
    assert (got.sid, used) == (7, len(msg))


def test_random_initial_messages_are_refused_or_parsed() -> None:
    rnd = random.Random(5)
    head = struct.Struct(">qqi")
    for _ in range(3000):
        if rnd.random() < 0.5:
            buf = rnd.randbytes(rnd.randrange(0, 64))
        else:
            text = rnd.randbytes(rnd.randrange(0, 24))
            n = rnd.choice([len(text), len(text) + 1, 0, -1, 2049, 2**31 - 1])
            buf = head.pack(rnd.choice([PROTOCOL_VERSION_V1, PROTOCOL_VERSION_V2]), 3, n) + text
        try:
            got = decode_initial_message(buf)
        except HandshakeError:
            continue
        if got is not None:
            msg, used = got
            assert 8 <= used <= len(buf)
            assert all(0 <= port <= 0xFFFF for _, port in msg.addresses)


def test_random_frames_and_notifications() -> None:
    rnd = random.Random(6)
    for _ in range(3000):
        if rnd.random() < 0.5:
            buf = rnd.randbytes(rnd.randrange(0, 80))
        else:  # real frames of random payloads, cut anywhere
            buf = b"".join(encode_frame(rnd.randbytes(rnd.randrange(1, 60))) for _ in range(3))
            buf = buf[: rnd.randrange(len(buf) + 1)]
        try:
            frames, used = decode_frames(buf)
        except FrameError:
            continue
        assert used <= len(buf)
        assert b"".join(encode_frame(f) for f in frames) == buf[:used]
        for f in frames:
            with contextlib.suppress(NotificationError):
                decode_notification(f)


def _notification(rnd: random.Random) -> Notification | None:
    """A notification as an attacker might send it, or None for random bytes
    that do not decode."""
    if rnd.random() < 0.3:
        try:
            return decode_notification(rnd.randbytes(rnd.choice([28, 36, 40, 44, 60, 100])))
        except ElectionWireError:
            return None
    config = rnd.choice([None, b"", rnd.randbytes(20), b"version=zz",
                         b"server.1=x:1:2\nversion=ffffffffff",
                         b"server.9=127.0.0.1:7:8\nversion=1",
                         b"server.1=127.0.0.1:1:2\nserver.2=127.0.0.1:3:4\nversion=100000000"])
    n = Notification(rnd.choice([*_EXTREMES[:6], rnd.randrange(-(2**31), 2**31)]),
                     rnd.choice([1, 2, 3, 9, -1, *_EXTREMES]), rnd.choice(_EXTREMES),
                     rnd.choice(_EXTREMES), rnd.choice(_EXTREMES), rnd.choice([0, 1, 2, 3]),
                     config)
    try:
        return decode_notification(encode_notification(n))
    except struct.error:  # a state or version outside a Java int
        return None


@pytest.mark.parametrize("seed", range(6))
def test_the_election_core_takes_any_notification(seed: int) -> None:
    """Random notifications from members and strangers, with timeouts and new
    rounds in between: no exception, and a decision only ever names a voter."""
    rnd = random.Random(seed)
    verifier = QuorumMaj.from_string(_CONFIG)
    for _ in range(150):
        fle = FastLeaderElection(rnd.choice([1, 2, 3]), verifier)
        actions = fle.start(rnd.choice([0, 5, 2**40]), rnd.choice([0, 1, 7]))
        for _ in range(30):
            n = _notification(rnd)
            if n is not None:
                actions += fle.receive(rnd.choice([1, 2, 3, 4, 99, -5, 2**63 - 1]), n)
            if rnd.random() < 0.1:
                actions += fle.timeout(have_delivered=rnd.random() < 0.5)
            if not fle.running and rnd.random() < 0.2:
                actions += fle.start()
        for a in actions:
            if isinstance(a, Decided):
                assert a.vote.leader in verifier.voting, a
                assert a.state in (ServerState.LEADING, ServerState.FOLLOWING)
