"""Jute primitives.

Jute is big-endian: int is 4 bytes, long 8, boolean 1, buffer and ustring an
int length (-1 for null) followed by the bytes, vector an int count (-1 for
null) followed by the elements. Decoding works on ``(buf, pos)`` pairs and
returns the new position, so a whole frame is parsed in one pass without
copying; every length is checked against what is left in the frame and
against ``jute.maxbuffer`` before anything is sliced.
"""

from __future__ import annotations

import struct

DEFAULT_MAX_BUFFER = 0xFFFFF  # Apache's jute.maxbuffer default (1 MiB - 1)

INT = struct.Struct(">i")
LONG = struct.Struct(">q")
BOOL = struct.Struct(">?")
BYTE = struct.Struct(">b")
INT_LONG = struct.Struct(">iq")

_unpack_int = INT.unpack_from
_pack_int = INT.pack
_NULL_LEN = _pack_int(-1)


class JuteError(ValueError):
    """A frame could not be decoded; the connection that sent it is closed."""


class Truncated(JuteError):
    """The frame ended before the record did."""


class NegativeLength(JuteError):
    """A length or count below -1 (only -1, meaning null, is allowed)."""


class Oversized(JuteError):
    """A length above jute.maxbuffer."""


def check_len(n: int, buf: bytes, pos: int, maxbuf: int) -> None:
    """Validate a decoded length ``n`` of bytes starting at ``pos``."""
    if n < -1:
        raise NegativeLength(f"negative length {n} at offset {pos}")
    if n > maxbuf:
        raise Oversized(f"length {n} exceeds jute.maxbuffer {maxbuf}")
    if pos + n > len(buf):
        raise Truncated(f"length {n} at offset {pos} runs past the end ({len(buf)})")


def read_int(buf: bytes, pos: int) -> tuple[int, int]:
    if pos + 4 > len(buf):
        raise Truncated(f"int at offset {pos} runs past the end ({len(buf)})")
    return _unpack_int(buf, pos)[0], pos + 4


def read_long(buf: bytes, pos: int) -> tuple[int, int]:
    if pos + 8 > len(buf):
        raise Truncated(f"long at offset {pos} runs past the end ({len(buf)})")
    return LONG.unpack_from(buf, pos)[0], pos + 8


def read_bool(buf: bytes, pos: int) -> tuple[bool, int]:
    if pos + 1 > len(buf):
        raise Truncated(f"boolean at offset {pos} runs past the end ({len(buf)})")
    # Java's readBoolean treats any non-zero byte as true.
    return buf[pos] != 0, pos + 1


def read_buffer(buf: bytes, pos: int, maxbuf: int) -> tuple[bytes | None, int]:
    if pos + 4 > len(buf):
        raise Truncated(f"buffer length at offset {pos} runs past the end ({len(buf)})")
    n = _unpack_int(buf, pos)[0]
    pos += 4
    if n < 0 or n > maxbuf or pos + n > len(buf):
        check_len(n, buf, pos, maxbuf)
        return None, pos
    return bytes(buf[pos : pos + n]), pos + n


def read_ustring(buf: bytes, pos: int, maxbuf: int) -> tuple[str | None, int]:
    if pos + 4 > len(buf):
        raise Truncated(f"string length at offset {pos} runs past the end ({len(buf)})")
    n = _unpack_int(buf, pos)[0]
    pos += 4
    if n < 0 or n > maxbuf or pos + n > len(buf):
        check_len(n, buf, pos, maxbuf)
        return None, pos
    # Java decodes malformed UTF-8 with replacement characters; so do we.
    return str(buf[pos : pos + n], "utf-8", "replace"), pos + n


def read_count(buf: bytes, pos: int, maxbuf: int) -> tuple[int, int]:
    """Read a vector count. -1 (null) is returned as is."""
    if pos + 4 > len(buf):
        raise Truncated(f"vector count at offset {pos} runs past the end ({len(buf)})")
    n = _unpack_int(buf, pos)[0]
    if n < -1:
        raise NegativeLength(f"negative vector count {n} at offset {pos}")
    # Every element takes at least one byte, so a count larger than what is
    # left cannot be honest; refusing it early bounds the work done.
    if n > len(buf) - pos - 4 or n > maxbuf:
        raise Truncated(f"vector count {n} at offset {pos} exceeds the frame")
    return n, pos + 4


def write_buffer(out: bytearray, b: bytes | None) -> None:
    if b is None:
        out += _NULL_LEN
    else:
        out += _pack_int(len(b))
        out += b


def write_ustring(out: bytearray, s: str | None) -> None:
    if s is None:
        out += _NULL_LEN
    else:
        b = s.encode("utf-8")
        out += _pack_int(len(b))
        out += b


def write_count(out: bytearray, v: list | None) -> None:
    out += _NULL_LEN if v is None else _pack_int(len(v))
