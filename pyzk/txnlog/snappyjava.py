"""snappy-java's stream format (SnappyOutputStream / SnappyInputStream), bytes in and out.

Apache's SnapStream writes ``snapshot.<zxid>.snappy`` through snappy-java's
SnappyOutputStream, whose framing is snappy-java's own, *not* Google's
"snappy framing format" (no stream identifier chunk, no CRC-32C per chunk)::

    "\\x82SNAPPY\\x00"  int version (1)  int compatible version (1)    16-byte header
    (int compressed length, raw snappy block)*                        big-endian lengths

Each block is at most 32 KiB of input (SnappyOutputStream.DEFAULT_BLOCK_SIZE)
compressed as one raw snappy block; ``flush()`` cuts a shorter block. A reader
also accepts a second header where a length would be (concatenated streams,
SnappyInputStream.hasNextChunk). The codec libraries on PyPI (cramjam,
python-snappy) compress raw blocks and Google's framing but not this
framing, which is why the framing is written here by hand while the
block compression is cramjam's (checked against snappy-java 1.1.8.3, the
version Debian ships with ZooKeeper 3.8).

Integrity is not this layer's job: snappy-java has no checksum, and
Apache relies on the snapshot's own Adler32 seals over the uncompressed
stream. A malformed stream (bad magic, a negative or oversized length, a
truncated block, a block that does not decompress) raises SnappyJavaError.
"""

from __future__ import annotations

import struct
from typing import BinaryIO

import cramjam

MAGIC = b"\x82SNAPPY\x00"
VERSION = 1  # SnappyCodec.DEFAULT_VERSION
MIN_COMPATIBLE_VERSION = 1  # SnappyCodec.MINIMUM_COMPATIBLE_VERSION
BLOCK_SIZE = 32 * 1024  # SnappyOutputStream.DEFAULT_BLOCK_SIZE

_INT = struct.Struct(">i")
_VERSIONS = struct.Struct(">ii")
HEADER = MAGIC + _VERSIONS.pack(VERSION, MIN_COMPATIBLE_VERSION)
HEADER_SIZE = len(HEADER)  # SnappyCodec.HEADER_SIZE
# SnappyCodec.MAGIC_HEADER_HEAD: the first four magic bytes read as an int,
# which is how a reader tells a concatenated header from a block length
_MAGIC_HEAD = _INT.unpack(MAGIC[:4])[0]
# Uncompressed bytes a single block may claim: a foreign writer could use a
# larger blockSize than 32 KiB, but never more than a Java array holds.
_MAX_UNCOMPRESSED = 0x7FFFFFFF


class SnappyJavaError(ValueError):
    """A stream that is not snappy-java's SnappyOutputStream format."""


def compress_block(data: bytes | bytearray | memoryview) -> bytes:
    """One raw snappy block (Snappy.compress), by cramjam."""
    return bytes(cramjam.snappy.compress_raw(bytes(data)))


def encode(data: bytes | bytearray | memoryview, block_size: int = BLOCK_SIZE) -> bytes:
    """The whole SnappyOutputStream output for ``data`` written then closed."""
    view = memoryview(data)
    out = bytearray(HEADER)
    for i in range(0, len(view), block_size):
        block = compress_block(view[i : i + block_size])
        out += _INT.pack(len(block))
        out += block
    return bytes(out)


class SnappyJavaWriter:
    """SnappyOutputStream over a binary sink: 32 KiB input blocks, the header first.

    A file-like object with ``write``, ``flush`` and ``close`` (close does not
    close the sink, as GzipFile(fileobj=...)), so the snapshot serializer
    can write through it as through gzip.
    """

    __slots__ = ("sink", "block_size", "pending", "header_written", "closed")

    def __init__(self, sink: BinaryIO, block_size: int = BLOCK_SIZE) -> None:
        self.sink = sink
        self.block_size = max(1024, block_size)  # SnappyOutputStream.MIN_BLOCK_SIZE
        self.pending = bytearray()
        self.header_written = False
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Buffer ``data``; every full block is compressed and written out."""
        if self.closed:
            raise ValueError("write to a closed SnappyJavaWriter")
        self.pending += data
        size = self.block_size
        if len(self.pending) >= size:
            view = memoryview(self.pending)
            full = len(view) - len(view) % size
            out = bytearray()
            for i in range(0, full, size):
                block = compress_block(view[i : i + size])
                out += _INT.pack(len(block))
                out += block
            view.release()
            del self.pending[:full]
            self._emit(out)
        return len(data)

    def _emit(self, out: bytearray) -> None:
        if not self.header_written:
            self.header_written = True
            out[:0] = HEADER
        if out:
            self.sink.write(out)

    def flush(self) -> None:
        """SnappyOutputStream.flush: what is buffered becomes a (short) block."""
        out = bytearray()
        if self.pending:
            block = compress_block(self.pending)
            out += _INT.pack(len(block))
            out += block
            self.pending.clear()
        self._emit(out)
        self.sink.flush()

    def close(self) -> None:
        """Flush the last block (and the header, even for an empty stream)."""
        if not self.closed:
            self.flush()
            self.closed = True

    def __enter__(self) -> SnappyJavaWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()


def _check_header(buf: bytes | memoryview, pos: int) -> None:
    if bytes(buf[pos : pos + len(MAGIC)]) != MAGIC:
        raise SnappyJavaError(f"bad snappy-java magic at offset {pos}")
    if pos + HEADER_SIZE > len(buf):
        raise SnappyJavaError(f"truncated snappy-java header at offset {pos}")
    # SnappyInputStream.isValidHeader compares the writer's version (the first
    # int) with its MINIMUM_COMPATIBLE_VERSION; the second int is not looked at
    version, _compatible = _VERSIONS.unpack_from(buf, pos + len(MAGIC))
    if version < MIN_COMPATIBLE_VERSION:
        raise SnappyJavaError(
            f"compressed with an incompatible codec version {version}, "
            f"at least {MIN_COMPATIBLE_VERSION} is required"
        )


def decode(data: bytes | bytearray | memoryview) -> bytes:
    """The uncompressed stream of a SnappyInputStream-readable ``data``.

    Stricter than snappy-java where snappy-java would quietly stop short
    (a snapshot's seals would then fail anyway): a stream without the magic
    (which snappy-java would try as one raw block, but Apache's
    isValidSnapshot never lets through), one ending in 1-3 stray bytes, or
    a concatenated header with a bad magic is refused.
    """
    buf = memoryview(data)
    size = len(buf)
    if size == 0:
        raise SnappyJavaError("cannot decompress an empty snappy-java stream")
    _check_header(buf, 0)
    pos = HEADER_SIZE
    out = bytearray()
    while pos < size:
        if pos + 4 > size:
            raise SnappyJavaError(f"truncated block length at offset {pos}")
        n = _INT.unpack_from(buf, pos)[0]
        if n == _MAGIC_HEAD:  # a concatenated stream's header
            _check_header(buf, pos)
            pos += HEADER_SIZE
            continue
        if n < 0:
            raise SnappyJavaError(f"negative block length {n} at offset {pos}")
        pos += 4
        if pos + n > size:
            raise SnappyJavaError(
                f"truncated block at offset {pos - 4}: {n} bytes announced, "
                f"{size - pos} left"
            )
        block = bytes(buf[pos : pos + n])
        pos += n
        try:
            expect = int(cramjam.snappy.decompress_raw_len(block))
            if expect > _MAX_UNCOMPRESSED:
                raise SnappyJavaError(f"block at offset {pos - n - 4} claims {expect} bytes")
            raw = cramjam.snappy.decompress_raw(block)
        except cramjam.DecompressionError as e:
            raise SnappyJavaError(f"bad snappy block at offset {pos - n - 4}: {e}") from e
        if len(raw) != expect:
            raise SnappyJavaError(
                f"block at offset {pos - n - 4}: expected {expect} bytes, got {len(raw)}"
            )
        out += raw
    return bytes(out)
