"""Client-protocol frames for load generation, encoded once with pyzk.jute.

The load generator must never be the bottleneck, so nothing is encoded on the
hot path: every request a connection will ever send is pre-encoded into a
`FrameRing` (a repeating sequence of complete, length-prefixed frames with
their own xids) and sending ``n`` requests is one slice of one bytes object.
Replies are not decoded either: the hot path reads only the frame length,
xid and error code with one precompiled struct (`REPLY_HEAD`).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Any

from pyzk.jute.constants import XID_PING, CreateMode, OpCode, Perms
from pyzk.jute.records import (
    ACL,
    ConnectRequest,
    ConnectResponse,
    CreateRequest,
    ExistsRequest,
    GetChildrenRequest,
    GetDataRequest,
    Id,
    Record,
    ReplyHeader,
    RequestHeader,
    SetDataRequest,
)

# Length prefix, xid, zxid and err of a reply, read in one call per frame.
REPLY_HEAD = struct.Struct(">iiqi")
# The same without the length prefix, for a payload already split off.
REPLY_PAYLOAD_HEAD = struct.Struct(">iqi")
FRAME_LEN = struct.Struct(">i")

OPEN_ACL = [ACL(Perms.ALL, Id("world", "anyone"))]

# What a request is before it is encoded: opcode and body record (None for
# bodiless requests such as ping and closeSession).
Op = tuple[int, Record | None]

# Request body record class per opcode, to decode frames back (tests, tools).
_BODY_OF: dict[int, Any] = {
    OpCode.getData: GetDataRequest,
    OpCode.setData: SetDataRequest,
    OpCode.create: CreateRequest,
    OpCode.exists: ExistsRequest,
    OpCode.getChildren: GetChildrenRequest,
}


def get_data(path: str, watch: bool = False) -> Op:
    return OpCode.getData, GetDataRequest(path, watch)


def set_data(path: str, data: bytes, version: int = -1) -> Op:
    return OpCode.setData, SetDataRequest(path, data, version)


def create(path: str, data: bytes, mode: CreateMode = CreateMode.PERSISTENT) -> Op:
    return OpCode.create, CreateRequest(path, data, OPEN_ACL, int(mode))


def exists(path: str, watch: bool = False) -> Op:
    return OpCode.exists, ExistsRequest(path, watch)


def get_children(path: str, watch: bool = False) -> Op:
    return OpCode.getChildren, GetChildrenRequest(path, watch)


def close_session() -> Op:
    return OpCode.closeSession, None


def encode_request(xid: int, op: Op) -> bytes:
    """One complete request frame: length, RequestHeader, body."""
    out = bytearray(b"\0\0\0\0")
    RequestHeader(xid, int(op[0])).encode(out)
    if op[1] is not None:
        op[1].encode(out)
    FRAME_LEN.pack_into(out, 0, len(out) - 4)
    return bytes(out)


PING_FRAME = encode_request(XID_PING, (OpCode.ping, None))


def connect_frame(timeout_ms: int, session_id: int = 0, passwd: bytes = b"\0" * 16,
                  last_zxid: int = 0, read_only: bool = False) -> bytes:
    """The handshake a 3.x client sends: ConnectRequest plus the readOnly flag."""
    out = bytearray(b"\0\0\0\0")
    ConnectRequest(0, last_zxid, timeout_ms, session_id, passwd).encode(out)
    out += b"\1" if read_only else b"\0"
    FRAME_LEN.pack_into(out, 0, len(out) - 4)
    return bytes(out)


def decode_connect_response(payload: bytes) -> Any:
    """Decode a handshake reply payload (without its length prefix)."""
    return ConnectResponse.from_bytes(payload)


def decode_request(frame: bytes) -> tuple[Any, Any]:
    """Decode one request frame back into (RequestHeader, body or None)."""
    (n,) = FRAME_LEN.unpack_from(frame, 0)
    if n != len(frame) - 4:
        raise ValueError(f"frame length {n} does not match {len(frame) - 4} bytes")
    hdr, pos = RequestHeader.decode(frame, 4)
    cls = _BODY_OF.get(hdr.type)
    if cls is None:
        if pos != len(frame):
            raise ValueError(f"opcode {hdr.type} carries an unexpected body")
        return hdr, None
    body, pos = cls.decode(frame, pos)
    if pos != len(frame):
        raise ValueError(f"{len(frame) - pos} trailing bytes after {type(body).__name__}")
    return hdr, body


def split_frames(buf: bytes | bytearray) -> tuple[list[bytes], int]:
    """Split complete length-prefixed frames off ``buf``: (payloads, bytes consumed)."""
    frames: list[bytes] = []
    pos = 0
    end = len(buf)
    while pos + 4 <= end:
        (n,) = FRAME_LEN.unpack_from(buf, pos)
        if n < 0:
            raise ValueError(f"negative frame length {n}")
        if pos + 4 + n > end:
            break
        frames.append(bytes(buf[pos + 4 : pos + 4 + n]))
        pos += 4 + n
    return frames, pos


def reply_header(payload: bytes) -> tuple[Any, int]:
    """Decode a reply payload's ReplyHeader: (header, offset of the body)."""
    return ReplyHeader.decode(payload, 0)


class FrameRing:
    """A cycle of pre-encoded request frames, handed out ``n`` at a time.

    Frame ``i`` of the cycle carries xid ``first_xid + i``; the cycle is
    stored twice back to back so any run of up to ``len(ring)`` frames is one
    contiguous slice, whatever the starting point. Xids repeat every cycle,
    which is harmless because the server only echoes them, as long as fewer
    requests than the cycle length are outstanding (checked by the caller).
    """

    __slots__ = ("_blob", "_offsets", "_size", "_next", "ops")

    def __init__(self, ops: Sequence[Op], first_xid: int = 1) -> None:
        if not ops:
            raise ValueError("a frame ring needs at least one request")
        if first_xid <= 0 or first_xid + len(ops) > 0x7FFFFFFF:
            raise ValueError("xids must be positive 32-bit ints")
        self.ops = list(ops)
        frames = [encode_request(first_xid + i, op) for i, op in enumerate(self.ops)]
        self._size = len(frames)
        self._blob = b"".join(frames) * 2
        offsets = [0]
        for f in frames + frames:
            offsets.append(offsets[-1] + len(f))
        self._offsets = offsets
        self._next = 0

    def __len__(self) -> int:
        return self._size

    def take(self, n: int) -> bytes:
        """The next ``n`` frames of the cycle as one bytes object."""
        size = self._size
        i = self._next
        off = self._offsets
        if n <= size:
            self._next = (i + n) % size
            return self._blob[off[i] : off[i + n]]
        parts = []
        while n > 0:
            k = n if n <= size else size
            parts.append(self._blob[off[i] : off[i + k]])
            i = (i + k) % size
            n -= k
        self._next = i
        return b"".join(parts)

    def frame(self, i: int) -> bytes:
        """Frame ``i`` of the cycle (for tests and diagnostics)."""
        i %= self._size
        return self._blob[self._offsets[i] : self._offsets[i + 1]]
