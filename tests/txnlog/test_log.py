"""Transaction log files: layout, preallocation, rolling, reading, damage and truncation."""

from __future__ import annotations

import os
import struct
import threading
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyzk.jute.constants import OpCode
from pyzk.jute.records import FileHeader, SetDataTxn, TxnDigest, TxnHeader
from pyzk.shell.datadir import version_dir
from pyzk.shell.txnlogfiles import (
    TxnIterator,
    TxnLogWriter,
    iter_txns,
    last_logged_zxid,
    scan_file,
    truncate_log,
)
from pyzk.txnlog.log import (
    END_CRC,
    END_EOF,
    END_PARTIAL,
    END_TRUNCATED,
    END_ZEROS,
    TXNLOG_MAGIC,
    BadLogFile,
    padded_size,
)
from pyzk.txnlog.names import log_name, zxid_from_name
from pyzk.txnlog.txn import encode_txn

pytestmark = pytest.mark.pure


def _entry(zxid: int, data: bytes = b"payload") -> tuple[TxnHeader, bytes]:
    hdr = TxnHeader(0x55, zxid, zxid, 1000 + zxid, OpCode.setData)
    return hdr, encode_txn(hdr, SetDataTxn("/n", data, zxid), TxnDigest(2, zxid * 7))


def _write(d: Path, zxids, prealloc: int = 4096, roll_at=()) -> TxnLogWriter:
    w = TxnLogWriter(d, pre_alloc_size=prealloc, force_sync=False)
    for z in zxids:
        if z in roll_at:
            w.roll()
        w.append(*_entry(z))
    w.flush_and_sync()
    return w


def test_file_layout_is_apaches(tmp_path: Path) -> None:
    w = _write(tmp_path, [1, 2], prealloc=1024)
    w.close()
    f = version_dir(tmp_path) / "log.1"
    b = f.read_bytes()
    assert FileHeader.from_bytes(b[:16]) == FileHeader(TXNLOG_MAGIC, 2, 0)
    assert b[:4] == b"ZKLG"
    _, e1 = _entry(1)
    crc, n = struct.unpack_from(">qi", b, 16)
    assert (crc, n) == (zlib.adler32(e1), len(e1))
    assert b[28 : 28 + n] == e1 and b[28 + n] == ord("B")
    assert len(b) % 1024 == 0 and b.rstrip(b"\0") == b[: len(b.rstrip(b"\0"))]
    assert [e.hdr.zxid for e in iter_txns(tmp_path)] == [1, 2]


def test_padding_rule_matches_file_padding() -> None:
    assert padded_size(16, 0, 100) == 100  # position past the end: next multiple
    assert padded_size(50, 100, 100) == 200  # within 4 KiB of the end: grow
    assert padded_size(10, 100_000, 100) == 100_000  # far from the end: keep
    assert padded_size(5000, 4096, 4096) == 8192
    assert padded_size(5000, 0, 0) == 0  # preallocation disabled


def test_preallocation_grows_in_blocks(tmp_path: Path) -> None:
    w = TxnLogWriter(tmp_path, pre_alloc_size=8192, force_sync=True)
    sizes = set()
    for z in range(1, 200):
        w.append(*_entry(z, b"x" * 100))
        w.flush_and_sync()
        sizes.add(os.path.getsize(w.current_path))
    w.close()
    assert all(s % 8192 == 0 for s in sizes) and len(sizes) > 1
    assert [e.hdr.zxid for e in iter_txns(tmp_path)] == list(range(1, 200))


def test_roll_starts_new_file_named_for_next_zxid(tmp_path: Path) -> None:
    w = _write(tmp_path, range(1, 21), roll_at=(8, 15))
    w.close()
    names = sorted(p.name for p in version_dir(tmp_path).iterdir())
    assert names == ["log.1", "log.8", "log.f"]
    assert [e.hdr.zxid for e in iter_txns(tmp_path)] == list(range(1, 21))
    # FileTxnIterator semantics: start in the file that holds the zxid
    it = TxnIterator(tmp_path, 10)
    assert [e.hdr.zxid for e in it][0] == 10
    assert [p.name for p in it.files] == ["log.8", "log.f"]
    # Apache also opens the newest file named below the zxid, even when one starts at it
    assert [p.name for p in TxnIterator(tmp_path, 15).files] == ["log.8", "log.f"]
    assert [p.name for p in TxnIterator(tmp_path, 16).files] == ["log.f"]
    assert [e.hdr.zxid for e in TxnIterator(tmp_path, 10, fast_forward=False)][0] == 8
    assert last_logged_zxid(tmp_path) == 20


def test_flush_returns_count_and_appends_while_flushing(tmp_path: Path) -> None:
    w = TxnLogWriter(tmp_path, pre_alloc_size=65536)
    assert w.flush_and_sync() == 0
    total = 0
    stop = threading.Event()

    def flusher() -> None:
        nonlocal total
        while not stop.is_set():
            total += w.flush_and_sync()

    t = threading.Thread(target=flusher)
    t.start()
    for z in range(1, 3001):
        w.append(*_entry(z))
    stop.set()
    t.join()
    total += w.flush_and_sync()
    w.close()
    assert total == 3000
    assert [e.hdr.zxid for e in iter_txns(tmp_path)] == list(range(1, 3001))


def test_entries_carry_header_record_and_digest(tmp_path: Path) -> None:
    _write(tmp_path, [5]).close()
    (e,) = list(iter_txns(tmp_path))
    assert e.txn == SetDataTxn("/n", b"payload", 5) and e.digest == TxnDigest(2, 35)
    assert e.offset == 16 and e.path.name == "log.5"


def test_headers_only_reads_the_same_records_without_their_bodies(tmp_path: Path) -> None:
    """What a leader's DIFF reads: every record's header and bytes, checked."""
    _write(tmp_path, range(1, 8), roll_at=(4,)).close()
    full = list(iter_txns(tmp_path, 3))
    bare = list(iter_txns(tmp_path, 3, headers_only=True))
    assert [(e.hdr, e.entry, e.offset) for e in bare] == [(e.hdr, e.entry, e.offset)
                                                          for e in full]
    assert [e.hdr.zxid for e in bare] == [3, 4, 5, 6, 7]
    assert all(e.txn is None and e.digest is None for e in bare)
    assert all(e.txn is not None for e in full)
    # the checksum is still checked
    second = version_dir(tmp_path) / "log.4"
    bad = bytearray(second.read_bytes())
    bad[40] ^= 1
    second.write_bytes(bytes(bad))
    it = TxnIterator(tmp_path, headers_only=True)
    assert [e.hdr.zxid for e in it] == [1, 2, 3]
    assert it.stopped is not None and it.stopped.reason == END_CRC


def test_bad_magic(tmp_path: Path) -> None:
    d = version_dir(tmp_path)
    d.mkdir()
    (d / "log.1").write_bytes(FileHeader(0x1234, 2, 0).to_bytes() + b"\0" * 100)
    with pytest.raises(BadLogFile):
        list(scan_file(d / "log.1"))


def _records(tmp_path: Path, n: int) -> tuple[Path, list[int]]:
    """A log of n txns without preallocation; returns the file and each record's end."""
    _write(tmp_path, range(1, n + 1), prealloc=0).close()
    f = version_dir(tmp_path) / "log.1"
    ends = [e.end for e in scan_file(f) if hasattr(e, "end")]
    return f, ends


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_damage_at_random_offset_keeps_every_whole_record(tmp_path_factory, data) -> None:
    tmp = tmp_path_factory.mktemp("dmg")
    f, ends = _records(tmp, 12)
    size = ends[-1]
    where = data.draw(st.integers(16, size - 1))
    how = data.draw(st.sampled_from(["truncate", "zeros", "flip"]))
    b = bytearray(f.read_bytes())
    if how == "truncate":
        b = b[:where]
    elif how == "zeros":
        b[where:] = bytes(len(b) - where)
    else:
        b[where] ^= 0xFF
    f.write_bytes(bytes(b))
    whole = sum(1 for e in ends if e <= where)
    it = TxnIterator(tmp, 0)
    got = [e.hdr.zxid for e in it]
    assert got == list(range(1, whole + 1))
    (end,) = it.ends
    assert end.offset == (ends[whole - 1] if whole else 16)
    assert not end.clean or how != "flip"


def test_end_reasons(tmp_path: Path) -> None:
    f, ends = _records(tmp_path, 3)
    b = f.read_bytes()
    (end,) = [x for x in scan_file(f) if hasattr(x, "reason")]
    assert (end.reason, end.offset) == (END_EOF, ends[-1])
    f.write_bytes(b + bytes(100))
    assert [x for x in scan_file(f) if hasattr(x, "reason")][0].reason == END_ZEROS
    f.write_bytes(b[:-5])
    assert [x for x in scan_file(f) if hasattr(x, "reason")][0].reason == END_TRUNCATED
    f.write_bytes(b[:-1] + b"C")
    assert [x for x in scan_file(f) if hasattr(x, "reason")][0].reason == END_PARTIAL
    bad = bytearray(b)
    bad[ends[0] + 20] ^= 1  # inside the second record's entry
    f.write_bytes(bytes(bad))
    items = list(scan_file(f))
    assert items[-1].reason == END_CRC and items[-1].offset == ends[0] and len(items) == 2


def test_crc_stops_iteration_but_truncation_moves_to_next_file(tmp_path: Path) -> None:
    _write(tmp_path, range(1, 11), roll_at=(6,)).close()
    first = version_dir(tmp_path) / "log.1"
    b = first.read_bytes().rstrip(b"\0")
    first.write_bytes(b[:-10])  # tear the last record of the first file
    it = TxnIterator(tmp_path)
    assert [e.hdr.zxid for e in it] == [1, 2, 3, 4, 6, 7, 8, 9, 10]
    assert it.stopped is None and it.ends[0].reason == END_TRUNCATED
    bad = bytearray(b)
    bad[40] ^= 1
    first.write_bytes(bytes(bad))
    it = TxnIterator(tmp_path)
    assert [e.hdr.zxid for e in it] == []
    assert it.stopped is not None and it.stopped.reason == END_CRC


def test_truncate_log_cuts_after_zxid_and_deletes_later_files(tmp_path: Path) -> None:
    _write(tmp_path, range(1, 31), roll_at=(11, 21)).close()
    assert truncate_log(tmp_path, 14)
    assert sorted(p.name for p in version_dir(tmp_path).iterdir()) == ["log.1", "log.b"]
    assert [e.hdr.zxid for e in iter_txns(tmp_path)] == list(range(1, 15))
    it = TxnIterator(tmp_path)
    list(it)
    assert it.ends[-1].reason == END_EOF
    # appending after a truncate starts a new file that continues the sequence
    w = _write(tmp_path, range(15, 18))
    w.close()
    assert [e.hdr.zxid for e in iter_txns(tmp_path)] == list(range(1, 18))


def test_truncate_to_before_everything(tmp_path: Path) -> None:
    _write(tmp_path, range(5, 9)).close()
    assert not truncate_log(tmp_path / "nothing", 3)
    assert truncate_log(tmp_path, 3)
    assert list(iter_txns(tmp_path)) == []


def test_names() -> None:
    assert log_name(0x100000001) == "log.100000001"
    assert zxid_from_name("log.1a", "log") == 0x1A
    assert zxid_from_name("snapshot.1a.gz", "snapshot") == 0x1A
    assert zxid_from_name("log.0x1a", "log") == -1
    assert zxid_from_name("log.1_0", "log") == -1
    assert zxid_from_name("snapshot.1", "log") == -1
