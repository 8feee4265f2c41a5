"""Apache's transaction log format (FileTxnLog), byte for byte, without the files.

A log file ``version-2/log.<hex zxid of its first txn>`` is a FileHeader
(magic "ZKLG", version 2, dbid 0) followed by records::

    long   Adler32 of the entry bytes
    int    entry length, then the entry (see pyzk.txnlog.txn)
    byte   'B' (end of record)

and is grown ahead of the writes with zeros in ``preAllocSize`` steps, so a
record of length 0 (or a zero checksum over zero bytes) marks the end.

Here: framing a record, the preallocation arithmetic, and `scan_records`,
which walks the records of a file's bytes and says exactly where and why
they stop, so recovery can cut a torn tail back to the last whole record.
Opening, writing, syncing and cutting the files is pyzk.shell.txnlogfiles.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pyzk.jute.codec import JuteError
from pyzk.jute.records import FileHeader, Record, TxnDigest, TxnHeader
from pyzk.txnlog.txn import LOG_MAX_BUFFER, decode_txn

if TYPE_CHECKING:  # only named in annotations: a record remembers its file, the shell maps it
    import mmap
    from pathlib import Path

TXNLOG_MAGIC = 0x5A4B4C47  # "ZKLG"
TXNLOG_VERSION = 2
DEFAULT_PREALLOC_SIZE = 64 * 1024 * 1024
EOR = 0x42  # 'B'

HEADER_LEN = len(FileHeader(TXNLOG_MAGIC, TXNLOG_VERSION, 0).to_bytes())
_CRC_LEN = struct.Struct(">qi")  # checksum, entry length
_PREFIX = _CRC_LEN.size
_EOR_BYTE = bytes([EOR])


def file_header(dbid: int = 0) -> bytes:
    """The FileHeader a new log file starts with."""
    return FileHeader(TXNLOG_MAGIC, TXNLOG_VERSION, dbid).to_bytes()


def padded_size(position: int, file_size: int, prealloc: int) -> int:
    """FilePadding.calculateFileSizeWithPadding: grow when within 4 KiB of the end."""
    if prealloc > 0 and position + 4096 >= file_size:
        if position > file_size:
            file_size = position + prealloc
            file_size -= file_size % prealloc
        else:
            file_size += prealloc
    return file_size


def frame_record(entry: bytes) -> bytes:
    """One on-disk record: checksum, length-prefixed entry, 'B'."""
    return _CRC_LEN.pack(zlib.adler32(entry), len(entry)) + entry + _EOR_BYTE


@dataclass(slots=True)
class LogEntry:
    """One txn read back, with where its record sits in which file."""

    hdr: TxnHeader
    txn: Record | None
    digest: TxnDigest | None
    entry: bytes
    path: Path
    offset: int  # first byte of the record (its checksum)
    end: int  # first byte after its 'B'


# Why a file's records ended. The first two are a normal end; Apache moves
# to the next file on all but the last three, on which it throws.
END_EOF = "eof"  # the file ends right after a whole record
END_ZEROS = "zeros"  # an empty entry: the preallocated zeros
END_TRUNCATED = "truncated"  # the file ends inside a record
END_PARTIAL = "partial"  # the end-of-record byte is not 'B'
END_CRC = "crc"  # checksum mismatch
END_BAD_LENGTH = "bad-length"  # negative or above jute.maxbuffer (+1024)
END_UNDECODABLE = "undecodable"  # checksum fine but the entry does not parse
CLEAN_ENDS = frozenset({END_EOF, END_ZEROS})
FATAL_ENDS = frozenset({END_CRC, END_BAD_LENGTH, END_UNDECODABLE})


@dataclass(slots=True)
class FileEnd:
    """Where the records of one log file stopped: ``offset`` follows the last whole record."""

    path: Path
    offset: int
    reason: str
    detail: str = ""
    records: int = 0

    @property
    def clean(self) -> bool:
        return self.reason in CLEAN_ENDS

    @property
    def fatal(self) -> bool:
        return self.reason in FATAL_ENDS


class BadLogFile(JuteError):
    """A log file whose header is missing or not "ZKLG"."""


def check_header(head: bytes, size: int, path: Path) -> FileHeader:
    """The file header of a log file of ``size`` bytes starting with ``head``.

    BadLogFile if the header is short or carries the wrong magic.
    """
    if size < HEADER_LEN or len(head) < HEADER_LEN:
        raise BadLogFile(f"Transaction log: {path} has no complete file header")
    fh = FileHeader.from_bytes(head[:HEADER_LEN])
    if fh.magic != TXNLOG_MAGIC:
        raise BadLogFile(
            f"Transaction log: {path} has invalid magic number {fh.magic} != {TXNLOG_MAGIC}"
        )
    return fh


def scan_records(
    buf: mmap.mmap | bytes,
    size: int,
    path: Path,
    digest_enabled: bool = True,
    maxbuf: int = LOG_MAX_BUFFER,
    *,
    headers_only: bool = False,
) -> Iterator[LogEntry | FileEnd]:
    """Every whole record of a log file's bytes (after the header), then one FileEnd.

    ``buf`` is any buffer (the shell passes an mmap); ``size`` its length;
    ``path`` only names the file in what is yielded. With ``headers_only``
    each record's checksum and header are checked but its txn is not decoded
    (``txn`` and ``digest`` are None): a leader sending a DIFF forwards the
    record's bytes and needs only its zxid, and decoding every txn body was
    most of the time a catch-up spent reading the log.
    """
    pos = HEADER_LEN
    n = 0
    unpack = _CRC_LEN.unpack_from
    adler = zlib.adler32
    while True:
        if pos + _PREFIX > size:
            reason = END_EOF if pos == size else END_TRUNCATED
            yield FileEnd(path, pos, reason, records=n)
            return
        crc, length = unpack(buf, pos)
        if length == 0:
            yield FileEnd(path, pos, END_ZEROS, records=n)
            return
        if length < 0 or length > maxbuf:
            yield FileEnd(path, pos, END_BAD_LENGTH, f"Unreasonable length = {length}", n)
            return
        start = pos + _PREFIX
        end = start + length
        if end + 1 > size:
            yield FileEnd(path, pos, END_TRUNCATED, records=n)
            return
        if buf[end] != EOR:
            yield FileEnd(path, pos, END_PARTIAL, "Last transaction was partial.", n)
            return
        entry = buf[start:end]
        if crc != adler(entry):
            yield FileEnd(path, pos, END_CRC, "CRC check failed", n)
            return
        try:
            if headers_only:
                hdr, _ = TxnHeader.decode(entry, 0, length)
                txn = digest = None
            else:
                hdr, txn, digest = decode_txn(entry, digest_enabled=digest_enabled,
                                              maxbuf=maxbuf)
        except JuteError as e:
            yield FileEnd(path, pos, END_UNDECODABLE, str(e), n)
            return
        yield LogEntry(hdr, txn, digest, entry, path, pos, end + 1)
        n += 1
        pos = end + 1
