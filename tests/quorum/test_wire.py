"""The election port codec against Apache 3.8's layouts (QuorumCnxManager,
FastLeaderElection.buildMsg / WorkerReceiver)."""

from __future__ import annotations

import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyzk.quorum.wire import (
    MAX_INITIAL_ADDRESS_BYTES,
    OBSERVER_ID,
    PACKET_MAX_SIZE,
    PROTOCOL_VERSION_V1,
    PROTOCOL_VERSION_V2,
    FrameError,
    HandshakeError,
    InitialMessage,
    Notification,
    NotificationError,
    decode_frames,
    decode_initial_message,
    decode_notification,
    encode_frame,
    encode_initial_message,
    encode_notification,
    encode_notification_28,
    keep_connection,
)

pytestmark = pytest.mark.pure

# Captured from Apache 3.8.0 (server 2 dialling server 1, and server 3's
# first notification) by tests/quorum/test_interop_apache.py's setup.
APACHE_INITIAL = bytes.fromhex(
    "ffffffffffff000000000000000000030000000f3132372e302e302e313a3530323837"
)
APACHE_CONFIG = (
    b"server.1=127.0.0.1:39867:40469:participant\n"
    b"server.2=127.0.0.1:37667:48035:participant\n"
    b"server.3=127.0.0.1:41279:50287:participant\n"
    b"version=0"
)
APACHE_NOTIFICATION = (
    bytes.fromhex(
        "00000000"  # state LOOKING
        "0000000000000003"  # leader
        "0000000000000000"  # zxid
        "0000000000000001"  # electionEpoch
        "0000000000000000"  # peerEpoch
        "00000002"  # version
        "0000008a"  # config length
    )
    + APACHE_CONFIG
)

longs = st.integers(-(2**63), 2**63 - 1)


def test_decodes_apache_initial_message() -> None:
    msg, used = decode_initial_message(APACHE_INITIAL)
    assert used == len(APACHE_INITIAL)
    assert msg == InitialMessage(3, (("127.0.0.1", 50287),), PROTOCOL_VERSION_V1)
    assert encode_initial_message(3, [("127.0.0.1", 50287)]) == APACHE_INITIAL


def test_decodes_apache_notification() -> None:
    n = decode_notification(APACHE_NOTIFICATION)
    assert n == Notification(0, 3, 0, 1, 0, 2, APACHE_CONFIG)
    assert encode_notification(n) == APACHE_NOTIFICATION


def test_initial_message_incremental() -> None:
    for cut in range(len(APACHE_INITIAL)):
        assert decode_initial_message(APACHE_INITIAL[:cut]) is None
    msg, used = decode_initial_message(APACHE_INITIAL + b"\0\0\0\x01")
    assert used == len(APACHE_INITIAL)


def test_initial_message_v2_and_wildcards() -> None:
    raw = encode_initial_message(
        7, [("10.0.0.1", 3888), ("::1", 3889), ("0.0.0.0", 3890)], PROTOCOL_VERSION_V2
    )
    assert raw[:8] == struct.pack(">q", -65535)
    assert raw[20:] == b"10.0.0.1:3888|[::1]:3889|0.0.0.0:3890"
    msg, _ = decode_initial_message(raw)
    assert msg.addresses == (("10.0.0.1", 3888), ("::1", 3889))
    # V1 sends only the first address.
    assert encode_initial_message(7, [("a", 1), ("b", 2)])[20:] == b"a:1"


def test_initial_message_old_form_is_a_bare_sid() -> None:
    assert decode_initial_message(struct.pack(">q", 5)) == (InitialMessage(5, (), None), 8)
    msg, _ = decode_initial_message(struct.pack(">q", OBSERVER_ID))
    assert msg.sid == OBSERVER_ID


def _initial(version: int, sid: int, text: bytes, length: int | None = None) -> bytes:
    return struct.pack(">qqi", version, sid, len(text) if length is None else length) + text


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (struct.pack(">q", -1), "unrecognized protocol version -1"),
        (_initial(PROTOCOL_VERSION_V1, 1, b"", 0), "Unreasonable buffer length: 0"),
        (_initial(PROTOCOL_VERSION_V1, 1, b"", -3), "Unreasonable buffer length: -3"),
        (
            _initial(PROTOCOL_VERSION_V1, 1, b"", MAX_INITIAL_ADDRESS_BYTES + 1),
            "Unreasonable buffer length: 2049",
        ),
        (_initial(PROTOCOL_VERSION_V1, 1, b"hostonly"), "Badly formed address: hostonly"),
        (_initial(PROTOCOL_VERSION_V1, 1, b"h:1:2"), "Badly formed address: h:1:2"),
        (_initial(PROTOCOL_VERSION_V1, 1, b"h:x1"), "Bad port number: x1"),
        (_initial(PROTOCOL_VERSION_V1, 1, b"h:70000"), "port out of range:70000"),
        (_initial(PROTOCOL_VERSION_V2, 1, b"a:1|[::1"), "Badly formed address: [::1"),
    ],
)
def test_initial_message_errors(raw: bytes, message: str) -> None:
    with pytest.raises(HandshakeError, match=message.replace("[", r"\[")):
        decode_initial_message(raw)


def test_max_address_length_is_accepted() -> None:
    text = b"h" * (MAX_INITIAL_ADDRESS_BYTES - 5) + b":2181"
    msg, _ = decode_initial_message(_initial(PROTOCOL_VERSION_V1, 1, text))
    assert msg.addresses[0][1] == 2181


def test_keep_connection_rule() -> None:
    # Dialling a larger id: dropped (it dials back); a smaller one: kept.
    assert not keep_connection(1, 3, i_dialled=True)
    assert keep_connection(3, 1, i_dialled=True)
    # Accepting from a smaller id: dropped (we dial back); a larger one: kept.
    assert not keep_connection(3, 1, i_dialled=False)
    assert keep_connection(1, 3, i_dialled=False)
    assert not keep_connection(2, 2, i_dialled=False)
    assert not keep_connection(2, 2, i_dialled=True)


def test_frames() -> None:
    data = encode_frame(b"abc") + encode_frame(b"\x01" * 44) + encode_frame(b"xy")[:5]
    frames, used = decode_frames(data)
    assert frames == [b"abc", b"\x01" * 44]
    assert used == 7 + 48
    assert decode_frames(b"\0\0") == ([], 0)
    big = struct.pack(">i", PACKET_MAX_SIZE)
    assert decode_frames(big) == ([], 0)  # allowed, waiting for the payload
    for bad in (0, -1, PACKET_MAX_SIZE + 1):
        with pytest.raises(FrameError, match=f"invalid packet: {bad}"):
            decode_frames(encode_frame(b"ok") + struct.pack(">i", bad))


def test_short_and_legacy_notifications() -> None:
    with pytest.raises(NotificationError, match="short"):
        decode_notification(b"\0" * 27)
    # 28 bytes (before ZOOKEEPER-107): the peer epoch comes from the zxid.
    n = decode_notification(encode_notification_28(1, 4, (5 << 32) | 9, 3))
    assert n == Notification(1, 4, (5 << 32) | 9, 3, 5, 0, None)
    n = decode_notification(encode_notification_28(0, 4, -1, 3))
    assert n.peer_epoch == -1  # arithmetic shift, like Java's >>
    # 40 bytes (buildMsg without config): the version field is not read.
    raw = encode_notification(Notification(2, 4, 10, 3, 6, version=1))
    assert len(raw) == 40 and raw[36:] == b"\0\0\0\x01"
    assert decode_notification(raw) == Notification(2, 4, 10, 3, 6, 0, None)
    # Any other length reads the version; version 1 carries no config.
    assert decode_notification(raw + b"\0\0\0\0") == Notification(2, 4, 10, 3, 6, 1, None)
    for size in (29, 35, 37, 39):
        with pytest.raises(NotificationError):
            decode_notification(raw[:size])


def test_notification_config_length_checks() -> None:
    head = struct.pack(">iqqqqi", 0, 1, 2, 3, 4, 2)
    with pytest.raises(NotificationError, match="Invalid configLength"):
        decode_notification(head + struct.pack(">i", -1))
    with pytest.raises(NotificationError, match="Invalid configLength"):
        decode_notification(head + struct.pack(">i", 49) + b"x")
    with pytest.raises(NotificationError, match="partial"):
        decode_notification(head + struct.pack(">i", 10) + b"x")
    with pytest.raises(NotificationError, match="partial"):
        decode_notification(head + b"\0\0")
    # Trailing bytes beyond the config are ignored, as in Apache.
    n = decode_notification(head + struct.pack(">i", 1) + b"xyz")
    assert n.config == b"x"


@given(
    st.integers(0, 3), longs, longs, longs, longs, st.integers(2, 2**31 - 1),
    st.binary(max_size=300),
)  # fmt: skip
def test_notification_round_trip(state, leader, zxid, ee, pe, version, config) -> None:
    n = Notification(state, leader, zxid, ee, pe, version, config)
    raw = encode_notification(n)
    assert len(raw) == 44 + len(config)
    assert decode_notification(raw) == n
    frames, used = decode_frames(encode_frame(raw) * 2)
    assert frames == [raw, raw] and used == 2 * (4 + len(raw))


@given(longs, st.lists(st.tuples(st.sampled_from(["a", "10.1.2.3", "::1", "fe80::2"]),
                                 st.integers(0, 65535)), min_size=1, max_size=4))  # fmt: skip
def test_initial_message_round_trip(sid, addresses) -> None:
    raw = encode_initial_message(sid, addresses, PROTOCOL_VERSION_V2)
    msg, used = decode_initial_message(raw)
    assert used == len(raw)
    assert msg == InitialMessage(sid, tuple(addresses), PROTOCOL_VERSION_V2)
