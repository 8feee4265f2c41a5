"""The election port's bytes, as Apache ZooKeeper 3.8's QuorumCnxManager and
FastLeaderElection write and read them.

A connection starts with one *initial message* from the side that dialled:

* 3.5+ peers send ``long protocolVersion`` (:data:`PROTOCOL_VERSION_V1`, or
  :data:`PROTOCOL_VERSION_V2` when ``multiAddress.enabled``), ``long sid``,
  ``int length`` and that many bytes of ``host:port`` election addresses
  (V2 joins several with ``|``);
* older peers send only ``long sid`` (a non-negative first long is a sid).

After it both directions carry frames: ``int length`` (1..512 KiB) and a
payload, here always a FLE notification.  Apache keeps a connection only when
the dialling side has the larger sid; :func:`keep_connection` states that
rule so both ends of a pyzk shell apply it the same way.

Decoding is pure and incremental: functions take the bytes received so far
and either return a value with the number of bytes used, return ``None``
when more bytes are needed, or raise a subclass of :class:`ElectionWireError`
naming what Apache would reject.
"""

from __future__ import annotations

import ipaddress
import re
import struct
from dataclasses import dataclass

#: First long of a 3.5+ initial message (ZOOKEEPER-107).
PROTOCOL_VERSION_V1 = -65536
#: First long when several election addresses are sent (ZOOKEEPER-3188).
PROTOCOL_VERSION_V2 = -65535
#: InitialMessage.parse refuses an address string longer than this.
MAX_INITIAL_ADDRESS_BYTES = 2048
#: RecvWorker refuses a frame longer than this (QuorumCnxManager.PACKETMAXSIZE).
PACKET_MAX_SIZE = 512 * 1024
#: The sid an observer without an id announces (QuorumPeer.OBSERVER_ID).
OBSERVER_ID = 2**63 - 1
#: Notification format written by 3.5+ (Notification.CURRENTVERSION).
NOTIFICATION_VERSION = 0x2
#: Shortest notification WorkerReceiver accepts (the pre-ZOOKEEPER-107 form).
MIN_NOTIFICATION_SIZE = 28

Buffer = bytes | bytearray | memoryview

_LONG = struct.Struct(">q")
_INT = struct.Struct(">i")
_LONG_LONG_INT = struct.Struct(">qqi")
# state, leader, zxid, electionEpoch
_HEAD28 = struct.Struct(">iqqq")
# state, leader, zxid, electionEpoch, peerEpoch, version, config length
_HEAD44 = struct.Struct(">iqqqqii")
_HEAD40 = struct.Struct(">iqqqqi")


class ElectionWireError(ValueError):
    """Bytes on the election port that Apache would refuse."""


class HandshakeError(ElectionWireError):
    """A bad initial message (InitialMessage.InitialMessageException); Apache
    closes the connection."""


class FrameError(ElectionWireError):
    """A frame length outside 1..PACKET_MAX_SIZE; Apache closes the connection."""


class NotificationError(ElectionWireError):
    """A notification too short or malformed; Apache logs and skips it."""


# --------------------------------------------------------------------------
# Connection handshake


@dataclass(frozen=True, slots=True)
class InitialMessage:
    """What the dialling peer says about itself.

    ``protocol_version`` is ``None`` for the pre-3.5 form (a bare sid).
    ``addresses`` lists the election addresses in the order sent, with
    wildcard hosts (0.0.0.0, ::) left out as Apache leaves them out.
    """

    sid: int
    addresses: tuple[tuple[str, int], ...] = ()
    protocol_version: int | None = PROTOCOL_VERSION_V1


def format_address(host: str, port: int) -> str:
    """NetUtils.formatInetAddr: ``host:port``, IPv6 literals in brackets."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def encode_initial_message(
    sid: int,
    addresses: list[tuple[str, int]] | tuple[tuple[str, int], ...],
    protocol_version: int = PROTOCOL_VERSION_V1,
) -> bytes:
    """The bytes QuorumCnxManager.startConnection writes before any frame.

    V1 carries exactly one address (Apache sends ``getOne()``); V2 all of them.
    """
    if protocol_version not in (PROTOCOL_VERSION_V1, PROTOCOL_VERSION_V2):
        raise ValueError(f"unknown election protocol version {protocol_version}")
    if not addresses:
        raise ValueError("an initial message needs an election address")
    if protocol_version == PROTOCOL_VERSION_V1:
        addresses = addresses[:1]
    text = "|".join(format_address(h, p) for h, p in addresses).encode()
    return _LONG_LONG_INT.pack(protocol_version, sid, len(text)) + text


def _java_split_trailing(s: str, sep: str) -> list[str]:
    """String.split: trailing empty strings dropped."""
    parts = s.split(sep)
    while len(parts) > 1 and parts[-1] == "":
        parts.pop()
    return parts


def _host_and_port(addr: str) -> list[str]:
    """ConfigUtils.getHostAndPort, with its errors as HandshakeError."""
    if addr.startswith("["):
        end = addr.find("]")
        if end < 0 or end + 2 == len(addr):
            raise HandshakeError(f"Badly formed address: {addr}")
        if end + 2 < len(addr):
            return [addr[1:end], *_java_split_trailing(addr[end + 2 :], ":")]
        return [addr.replace("[", "").replace("]", "")]
    return _java_split_trailing(addr, ":")


_JAVA_INT = re.compile(r"[+-]?[0-9]{1,10}")


def _is_wildcard(host: str) -> bool:
    """InetAddress.isAnyLocalAddress for a literal (names never are)."""
    if host == "0":
        return True
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def _parse_address(addr: str) -> tuple[str, int]:
    parts = _host_and_port(addr)
    if len(parts) != 2:
        raise HandshakeError(f"Badly formed address: {addr}")
    text = parts[1]
    if not _JAVA_INT.fullmatch(text):
        raise HandshakeError(f"Bad port number: {text}")
    port = int(text)
    if not 0 <= port <= 0xFFFF:
        # Apache's InetSocketAddress throws here and the connection dies.
        raise HandshakeError(f"port out of range:{port}")
    return parts[0], port


def decode_initial_message(buf: Buffer) -> tuple[InitialMessage, int] | None:
    """Parse the initial message at the start of ``buf``.

    Returns ``(message, bytes used)``, or ``None`` if ``buf`` is still short.
    """
    if len(buf) < 8:
        return None
    (first,) = _LONG.unpack_from(buf, 0)
    if first >= 0:
        return InitialMessage(first, (), None), 8
    if first not in (PROTOCOL_VERSION_V1, PROTOCOL_VERSION_V2):
        raise HandshakeError(f"Got unrecognized protocol version {first}")
    if len(buf) < 20:
        return None
    _, sid, remaining = _LONG_LONG_INT.unpack_from(buf, 0)
    if remaining <= 0 or remaining > MAX_INITIAL_ADDRESS_BYTES:
        raise HandshakeError(f"Unreasonable buffer length: {remaining}")
    end = 20 + remaining
    if len(buf) < end:
        return None
    text = bytes(buf[20:end]).decode("utf-8", "replace")
    addresses = []
    for addr in text.split("|"):
        host, port = _parse_address(addr)
        if not _is_wildcard(host):
            addresses.append((host, port))
    return InitialMessage(sid, tuple(addresses), first), end


def keep_connection(my_sid: int, remote_sid: int, *, i_dialled: bool) -> bool:
    """Whether Apache keeps a fresh election connection.

    Only a connection dialled by the larger sid survives: the dialler drops it
    when the remote sid is larger (startConnection), the acceptor drops it and
    dials back when the remote sid is smaller (handleConnection).  A
    connection from our own sid is never used.
    """
    if remote_sid == my_sid:
        return False
    return remote_sid < my_sid if i_dialled else remote_sid > my_sid


# --------------------------------------------------------------------------
# Framing


def encode_frame(payload: bytes) -> bytes:
    """SendWorker.send: int length, then the payload."""
    return _INT.pack(len(payload)) + payload


def decode_frames(buf: Buffer) -> tuple[list[bytes], int]:
    """Every complete frame at the start of ``buf`` and the bytes they used.

    Raises FrameError on a length RecvWorker refuses (<= 0 or > 512 KiB);
    the connection is then closed.
    """
    frames: list[bytes] = []
    pos = 0
    n = len(buf)
    while n - pos >= 4:
        (length,) = _INT.unpack_from(buf, pos)
        if length <= 0 or length > PACKET_MAX_SIZE:
            raise FrameError(f"Received packet with invalid packet: {length}")
        if n - pos - 4 < length:
            break
        frames.append(bytes(buf[pos + 4 : pos + 4 + length]))
        pos += 4 + length
    return frames, pos


# --------------------------------------------------------------------------
# Notifications


@dataclass(frozen=True, slots=True)
class Notification:
    """One FLE message as it travels (FastLeaderElection.ToSend / Notification).

    ``state`` is kept as the raw int (0 LOOKING, 1 FOLLOWING, 2 LEADING,
    3 OBSERVING): Apache answers a non-voter before looking at it and drops a
    voter's message with any other value, so the election core decides.
    ``config`` is the sender's QuorumVerifier text (version >= 2 only).
    """

    state: int
    leader: int
    zxid: int
    election_epoch: int
    peer_epoch: int
    version: int = NOTIFICATION_VERSION
    config: bytes | None = None


def encode_notification(n: Notification) -> bytes:
    """FastLeaderElection.buildMsg: the 44-byte header plus the config text.

    Versions 0 and 1 produce the older 40-byte form (buildMsg without config
    writes version 1; a receiver reads 40 bytes as version 0).
    """
    if n.version >= NOTIFICATION_VERSION:
        config = n.config or b""
        return (
            _HEAD44.pack(
                n.state, n.leader, n.zxid, n.election_epoch, n.peer_epoch, n.version, len(config)
            )
            + config
        )
    return _HEAD40.pack(n.state, n.leader, n.zxid, n.election_epoch, n.peer_epoch, 0x1)


def encode_notification_28(state: int, leader: int, zxid: int, election_epoch: int) -> bytes:
    """The pre-ZOOKEEPER-107 form without peer epoch (still accepted by 3.8)."""
    return _HEAD28.pack(state, leader, zxid, election_epoch)


def decode_notification(payload: Buffer) -> Notification:
    """Messenger.WorkerReceiver's reading of one frame.

    * shorter than 28 bytes: refused;
    * exactly 28: no peer epoch, taken from the zxid's high 32 bits, version 0;
    * exactly 40: peer epoch but no version read (version 0);
    * otherwise peer epoch and version; version > 1 adds ``int length`` and the
      config text, the length checked against the frame size.
    Bytes after what the version defines are ignored, as in Apache.
    """
    n = len(payload)
    if n < MIN_NOTIFICATION_SIZE:
        raise NotificationError(f"Got a short response: {n}")
    state, leader, zxid, election_epoch = _HEAD28.unpack_from(payload, 0)
    if n == 28:
        return Notification(state, leader, zxid, election_epoch, zxid >> 32, 0, None)
    if n < 36:
        raise NotificationError(f"partial notification ({n} bytes)")
    (peer_epoch,) = _LONG.unpack_from(payload, 28)
    if n == 40:
        return Notification(state, leader, zxid, election_epoch, peer_epoch, 0, None)
    if n < 40:
        raise NotificationError(f"partial notification ({n} bytes)")
    (version,) = _INT.unpack_from(payload, 36)
    config = None
    if version > 0x1:
        if n < 44:
            raise NotificationError(f"partial notification ({n} bytes)")
        (length,) = _INT.unpack_from(payload, 40)
        if length < 0 or length > n:
            raise NotificationError(
                f"Invalid configLength in notification message! capacity={n}, "
                f"version={version}, configLength={length}"
            )
        if 44 + length > n:
            raise NotificationError(f"partial notification ({n} bytes, config {length})")
        config = bytes(payload[44 : 44 + length])
    return Notification(state, leader, zxid, election_epoch, peer_epoch, version, config)
