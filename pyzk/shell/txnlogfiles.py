"""Transaction log files on disk: the group-commit writer, the reader, truncation.

The format is pyzk.txnlog.log (pure); this module opens, writes, fsyncs,
maps and cuts the files. `TxnLogWriter` buffers appends and makes them
durable in `flush_and_sync`, which the log stage (pyzk.shell.logstage) runs
on a worker thread for group commit. `iter_txns` reads like Apache's
FileTxnIterator and reports exactly where each file's records stopped and
why, so recovery can cut a torn tail back to the last whole record
(`cut_file`) or apply Apache's `truncate_log`.
"""

from __future__ import annotations

import logging
import mmap
import os
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

from pyzk.jute.codec import JuteError
from pyzk.jute.records import Record, TxnDigest, TxnHeader
from pyzk.shell.datadir import fsync_dir, sorted_files, version_dir
from pyzk.txnlog.log import (
    DEFAULT_PREALLOC_SIZE,
    HEADER_LEN,
    FileEnd,
    LogEntry,
    check_header,
    file_header,
    frame_record,
    padded_size,
    scan_records,
)
from pyzk.txnlog.names import LOG_PREFIX, log_name, zxid_from_name
from pyzk.txnlog.txn import LOG_MAX_BUFFER, encode_txn

log = logging.getLogger(__name__)

#: TxnHeader: long clientId, int cxid, long zxid, long time, then int type.
_TXN_TYPE = struct.Struct(">i")
_TXN_TYPE_AT = 28

#: A record's checksum and entry length, before the entry (pyzk.txnlog.log).
_RECORD_PREFIX = struct.Struct(">qi")


class TxnLogWriter:
    """Appends txns to ``<log_dir>/version-2/log.<zxid>`` files (FileTxnLog's write side).

    `append` only buffers (cheap, on the event loop); `flush_and_sync`
    writes everything buffered, preallocates, fsyncs (unless ``force_sync``
    is false, zoo.cfg ``forceSync=no``) and returns how many txns became
    durable. A new file starts with the first txn after construction or
    after `roll`, named for that txn's zxid, as Apache does after every
    restart and snapshot.
    """

    __slots__ = (
        "_dir", "pre_alloc_size", "force_sync", "dbid", "_lock", "_pending", "_file",
        "_path", "_pos", "_size", "_old_files", "last_zxid_seen", "_prev_total",
    )

    def __init__(
        self,
        log_dir: str | os.PathLike[str],
        pre_alloc_size: int = DEFAULT_PREALLOC_SIZE,
        force_sync: bool = True,
        dbid: int = 0,
    ) -> None:
        self._dir = version_dir(log_dir)
        self._dir.mkdir(parents=True, exist_ok=True)
        self.pre_alloc_size = pre_alloc_size
        self.force_sync = force_sync
        self.dbid = dbid
        self._lock = threading.Lock()
        # (zxid, framed record) in append order; None marks a roll.
        self._pending: list[tuple[int, bytes] | None] = []
        self._file: int | None = None  # os-level fd of the current file
        self._path: Path | None = None
        self._pos = 0
        self._size = 0
        self._old_files: list[int] = []  # rolled files still to fsync once
        self.last_zxid_seen = 0
        self._prev_total = 0

    @property
    def current_path(self) -> Path | None:
        """The file now written to (None before the first flush or after a roll)."""
        return self._path

    def current_size(self) -> int:
        """Bytes of records and header in the current file (getCurrentLogSize, without padding)."""
        return self._pos

    def total_size(self) -> int:
        """Record bytes in this writer's files so far (getTotalLogSize)."""
        return self._prev_total + self._pos

    def append(self, hdr: TxnHeader, entry: bytes) -> None:
        """Buffer one txn; ``entry`` is `encode_txn(hdr, txn, digest)` (header included)."""
        self.append_raw(hdr.zxid, entry)

    def append_raw(self, zxid: int, entry: bytes) -> None:
        """:meth:`append` for a txn whose zxid is known: its header is not
        decoded (a follower logs a 100k-txn DIFF through here before it may
        ACK NEWLEADER; the generated TxnHeader decoder was a fifth of that)."""
        if not entry:
            raise ValueError("Faulty serialization for header and txn")
        if zxid <= self.last_zxid_seen:
            log.warning("Current zxid %#x is <= %#x for type %d", zxid, self.last_zxid_seen,
                        _TXN_TYPE.unpack_from(entry, _TXN_TYPE_AT)[0])
        else:
            self.last_zxid_seen = zxid
        rec = frame_record(entry)
        with self._lock:
            self._pending.append((zxid, rec))

    def append_txn(
        self, hdr: TxnHeader, txn: Record | None, digest: TxnDigest | None = None
    ) -> None:
        self.append(hdr, encode_txn(hdr, txn, digest))

    def roll(self) -> None:
        """Start a new file with the next appended txn (FileTxnLog.rollLog)."""
        with self._lock:
            self._pending.append(None)

    def pending(self) -> int:
        with self._lock:
            return sum(1 for p in self._pending if p is not None)

    def flush_and_sync(self) -> int:
        """Write and (if force_sync) fsync everything appended so far; returns the txn count.

        Safe to run on a worker thread while the loop keeps appending.
        """
        with self._lock:
            batch, self._pending = self._pending, []
        if not batch:
            return 0
        count = 0
        chunk: list[bytes] = []
        for item in batch:
            if item is None:
                self._write(chunk)
                chunk = []
                self._close_current()
                continue
            if self._file is None:
                self._open(item[0])
            chunk.append(item[1])
            count += 1
        self._write(chunk)
        self._sync()
        return count

    def _open(self, zxid: int) -> None:
        path = self._dir / log_name(zxid)
        log.info("Creating new log file: %s", path.name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        header = file_header(self.dbid)
        os.write(fd, header)
        self._file = fd
        self._path = path
        self._pos = len(header)
        self._size = self._pos
        fsync_dir(self._dir)

    def _write(self, chunk: list[bytes]) -> None:
        if not chunk or self._file is None:
            return
        data = b"".join(chunk)
        end = self._pos + len(data)
        new_size = padded_size(end, self._size, self.pre_alloc_size)
        if new_size != self._size:
            os.ftruncate(self._file, new_size)
            self._size = new_size
        view = memoryview(data)
        off = 0
        while off < len(data):
            off += os.pwrite(self._file, view[off:], self._pos + off)
        self._pos = end
        if self._size < end:
            self._size = end

    def _close_current(self) -> None:
        if self._file is not None:
            self._old_files.append(self._file)
            self._prev_total += self._pos
            self._file = None
            self._path = None
            self._pos = 0
            self._size = 0

    def _sync(self) -> None:
        fds = [*self._old_files, *(() if self._file is None else (self._file,))]
        if self.force_sync:
            for fd in fds:
                os.fdatasync(fd)
        for fd in self._old_files:
            os.close(fd)
        self._old_files = []

    def close(self) -> None:
        """Flush what is buffered and close every file."""
        self.flush_and_sync()
        self._close_current()
        self._sync()

    def abandon(self) -> None:
        """Close every file without writing or syncing what is buffered (the
        log failed: none of it was acknowledged). Errors closing are logged,
        not raised: the descriptors are released either way."""
        with self._lock:
            self._pending = []
        self._close_current()
        for fd in self._old_files:
            try:
                os.close(fd)
            except OSError as e:
                log.warning("Closing a failed log file: %s", e)
        self._old_files = []

    def __enter__(self) -> TxnLogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def log_files(log_dir: str | os.PathLike[str], from_zxid: int = 0) -> list[Path]:
    """The files FileTxnIterator reads for ``from_zxid``, ascending.

    All files named from ``from_zxid`` on, plus the newest one named below
    it (the txn may sit inside it).
    """
    files = sorted_files(version_dir(log_dir), LOG_PREFIX, ascending=False)
    out: list[Path] = []
    for f in files:
        z = zxid_from_name(f.name, LOG_PREFIX)
        out.append(f)
        if z < from_zxid:
            break
    out.reverse()
    return out


def scan_file(
    path: Path,
    *,
    digest_enabled: bool = True,
    maxbuf: int = LOG_MAX_BUFFER,
    headers_only: bool = False,
) -> Iterator[LogEntry | FileEnd]:
    """Yield every whole record of one log file, then one FileEnd saying why it stopped.

    BadLogFile if the header is short or carries the wrong magic. With
    ``headers_only`` txn bodies are not decoded (see scan_records).
    """
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        check_header(f.read(HEADER_LEN), size, path)  # before mmap, which refuses 0 bytes
        end = data_end(f.fileno(), size)
        buf = mmap.mmap(f.fileno(), end, access=mmap.ACCESS_READ)
    try:
        yield from scan_records(buf, end, path, digest_enabled, maxbuf,
                                headers_only=headers_only)
    finally:
        buf.close()


def data_end(fd: int, size: int) -> int:
    """Where the file's first hole starts (``size`` if none, or if the file
    system cannot tell): the records are written from the start without a
    gap, so they all lie before it, and only zeros after it.

    Only this prefix is mapped. Past it lies the preallocated, never written
    part of the file, and on tmpfs a page fault there allocates a page: with
    the disk full that is a SIGBUS, so mapping the whole file crashed the
    server's start on a full tmpfs (read() of a hole allocates nothing).
    """
    try:
        hole = os.lseek(fd, HEADER_LEN, os.SEEK_HOLE)
    except (OSError, AttributeError):  # no SEEK_HOLE here
        return size
    return max(HEADER_LEN, min(size, hole))


class TxnIterator:
    """Apache's FileTxnIterator over ``<log_dir>/version-2``, as a Python iterator.

    Starts in the file that may hold ``from_zxid`` and, when ``fast_forward``,
    skips txns below it. A file whose records end early for an "EOF" reason
    (zeros, truncation, a partial record) is left for the next one as Apache
    does; a checksum mismatch, an unreasonable length or an undecodable entry
    stops the iteration (Apache throws there). ``ends`` lists every file's
    FileEnd in order and ``stopped`` the fatal one, if any.
    """

    def __init__(
        self,
        log_dir: str | os.PathLike[str],
        from_zxid: int = 0,
        *,
        fast_forward: bool = True,
        digest_enabled: bool = True,
        maxbuf: int = LOG_MAX_BUFFER,
        headers_only: bool = False,
    ) -> None:
        self.files = log_files(log_dir, from_zxid)
        self.headers_only = headers_only
        self.from_zxid = from_zxid
        self.fast_forward = fast_forward
        self.digest_enabled = digest_enabled
        self.maxbuf = maxbuf
        self.ends: list[FileEnd] = []
        self.stopped: FileEnd | None = None
        self.last: LogEntry | None = None

    def __iter__(self) -> Iterator[LogEntry]:
        skipping = self.fast_forward
        for path in self.files:
            for item in scan_file(path, digest_enabled=self.digest_enabled, maxbuf=self.maxbuf,
                                  headers_only=self.headers_only):
                if isinstance(item, FileEnd):
                    self.ends.append(item)
                    if not item.clean:
                        log.warning(
                            "Log %s: records end at offset %d (%s) %s",
                            path, item.offset, item.reason, item.detail,
                        )
                    if item.fatal:
                        self.stopped = item
                        return
                    break
                if skipping:
                    if item.hdr.zxid < self.from_zxid:
                        continue
                    skipping = False
                self.last = item
                yield item


def iter_txns(
    log_dir: str | os.PathLike[str], from_zxid: int = 0, *, digest_enabled: bool = True,
    headers_only: bool = False,
) -> TxnIterator:
    """Every txn from ``from_zxid`` on, in log order; see TxnIterator for where it
    stops. ``headers_only``: records checked, bodies left undecoded."""
    return TxnIterator(log_dir, from_zxid, digest_enabled=digest_enabled,
                       headers_only=headers_only)


def last_logged_zxid(log_dir: str | os.PathLike[str]) -> int:
    """FileTxnLog.getLastLoggedZxid: -1 without log files."""
    files = sorted_files(version_dir(log_dir), LOG_PREFIX)
    if not files:
        return -1
    start = zxid_from_name(files[-1].name, LOG_PREFIX)
    zxid = start
    it = TxnIterator(log_dir, start)
    try:
        for e in it:
            zxid = e.hdr.zxid
    except (OSError, JuteError) as e:
        log.warning("Unexpected exception reading %s: %s", log_dir, e)
    return zxid


#: How much of a file is read at a time when looking past a damaged record.
_SCAN_CHUNK = 1 << 20


def data_after_damage(end: FileEnd, maxbuf: int = LOG_MAX_BUFFER) -> int | None:
    """Where data follows the damaged record ``end`` stopped at, or None.

    A torn write leaves the damaged record last: after it comes only the
    zeros of the preallocated file, or the file's end. A record damaged in
    place (a flipped bit, a bad sector) is followed by the records written
    after it. So: the first non-zero byte after the record's end (as far as
    its length field says, or just after that field when the length is
    unreasonable), None when there is none.
    """
    with open(end.path, "rb") as f:
        f.seek(end.offset)
        prefix = f.read(_RECORD_PREFIX.size)
        if len(prefix) < _RECORD_PREFIX.size:
            return None
        _, length = _RECORD_PREFIX.unpack(prefix)
        after = end.offset + _RECORD_PREFIX.size
        if 0 < length <= maxbuf:
            after += length + 1
        f.seek(after)
        pos = after
        while chunk := f.read(_SCAN_CHUNK):
            stripped = chunk.lstrip(b"\0")
            if stripped:
                return pos + len(chunk) - len(stripped)
            pos += len(chunk)
    return None


def cut_file(path: Path, offset: int) -> None:
    """Drop everything from ``offset`` on (a torn tail), durably."""
    with open(path, "r+b") as f:
        f.truncate(offset)
        f.flush()
        os.fsync(f.fileno())


def truncate_log(log_dir: str | os.PathLike[str], zxid: int) -> bool:
    """FileTxnLog.truncate: keep txns up to ``zxid``, cut the rest, delete later files.

    The file holding the last txn <= ``zxid`` is cut right after it (losing
    its preallocation, as in Apache) and every later file is removed.
    Apache keeps the first txn *above* ``zxid`` when ``zxid`` itself is
    missing; pyzk cuts at the last txn not above it. Returns False when no
    log file could hold ``zxid`` (Apache throws "No log files found to
    truncate").
    """
    files = log_files(log_dir, zxid)
    if not files:
        return False
    cut: tuple[Path, int] = (files[0], HEADER_LEN)
    for path in files:
        for item in scan_file(path):
            if isinstance(item, FileEnd) or item.hdr.zxid > zxid:
                break
            cut = (path, item.end)
    path, offset = cut
    cut_file(path, offset)
    for later in files[files.index(path) + 1 :]:
        try:
            later.unlink()
        except OSError as e:
            log.warning("Unable to truncate %s: %s", later, e)
    fsync_dir(path.parent)
    return True
