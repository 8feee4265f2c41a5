"""The data-file tools print what Apache's tools print, and purge deletes what Apache's does."""

from __future__ import annotations

import io
import json
import os
import shutil
import time
from pathlib import Path

import pytest

from pyzk.datatree import DataTree
from pyzk.shell.autopurge import files_to_purge, purge
from pyzk.shell.datadir import version_dir
from pyzk.shell.datatools import main_purge, main_snapshot, main_txnlog
from pyzk.shell.snapfiles import write_snapshot
from pyzk.shell.txnlogfiles import TxnLogWriter, iter_txns
from pyzk.testing.servers import require_reference
from pyzk.txnlog.names import snapshot_name
from pyzk.txnlog.purge import effective_retain_count
from pyzk.txnlog.txn import encode_txn
from tests.txnlog.helpers import TxnSource, apache_tool, file_names

TXN_TOOL = "org.apache.zookeeper.server.persistence.TxnLogToolkit"
SNAP_TOOL = "org.apache.zookeeper.server.SnapshotFormatter"


@pytest.fixture
def utc(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield {**os.environ, "TZ": "UTC"}
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def data_dir(tmp_path: Path) -> tuple[Path, TxnSource]:
    src = TxnSource(DataTree(extended_types=True))
    write_snapshot(version_dir(tmp_path) / snapshot_name(0), src.tree, {}, 0)
    src.populate(n=12)
    src.add_ttl()
    src.create(0x1000A0000000002, "/odd,name%}", "ünï\u00e9\n".encode() + b"\x80\xff")
    w = TxnLogWriter(tmp_path, pre_alloc_size=8192, force_sync=False)
    for hdr, txn, dg in src.log:
        w.append(hdr, encode_txn(hdr, txn, dg))
    w.close()
    snap = version_dir(tmp_path) / snapshot_name(src.zxid)
    write_snapshot(snap, src.tree, src.sessions, src.zxid)
    return tmp_path, src


def _run(fn, argv) -> tuple[int, str]:
    out = io.StringIO()
    rc = fn(argv, out)
    return rc, out.getvalue()


@pytest.mark.pure
def test_txnlog_dump_counts_and_lines(data_dir) -> None:
    d, src = data_dir
    (log,) = version_dir(d).glob("log.*")
    rc, out = _run(main_txnlog, [str(log)])
    assert rc == 0
    assert out.startswith("ZooKeeper Transactional Log File with dbid 0 txnlog format version 2\n")
    assert out.rstrip().endswith(f"EOF reached after {len(src.log)} txns.")
    assert " createSession s{30000}" not in out and "createSession 30000" in out


@pytest.mark.reference
def test_txnlog_dump_is_identical_to_apaches(data_dir, utc) -> None:
    require_reference()
    d, _ = data_dir
    (log,) = version_dir(d).glob("log.*")
    theirs = apache_tool(TXN_TOOL, str(log), env=utc)
    rc, ours = _run(main_txnlog, [str(log)])
    assert ours == theirs


@pytest.mark.reference
def test_snapshot_dump_is_identical_to_apaches(data_dir, utc) -> None:
    require_reference()
    d, src = data_dir
    snap = version_dir(d) / snapshot_name(src.zxid)
    for flags in ([], ["-d"]):
        theirs = apache_tool(SNAP_TOOL, *flags, str(snap), env=utc)
        rc, ours = _run(main_snapshot, [*flags, str(snap)])
        assert rc == 0 and ours == theirs, flags
    theirs = json.loads(apache_tool(SNAP_TOOL, "-json", str(snap), env=utc))
    rc, ours = _run(main_snapshot, ["-json", str(snap)])
    ours_j = json.loads(ours)
    theirs[2]["timestamp"] = ours_j[2]["timestamp"] = 0
    assert ours_j == theirs


@pytest.mark.pure
def test_check_and_chop(data_dir) -> None:
    d, src = data_dir
    (log,) = version_dir(d).glob("log.*")
    rc, out = _run(main_txnlog, ["--check", str(log)])
    assert rc == 0 and f"{len(src.log)} txns" in out and "[OK]" in out
    rc, out = _run(main_txnlog, ["-c", "-z", "0x8", str(log)])
    assert rc == 0 and "Chopping at 8 new log has 8 records" in out
    chopped = log.with_name(log.name + ".chopped8")
    rc, out = _run(main_txnlog, [str(chopped)])
    assert out.rstrip().endswith("EOF reached after 8 txns.")
    b = bytearray(log.read_bytes())
    b[60] ^= 1
    log.write_bytes(bytes(b))
    rc, out = _run(main_txnlog, ["--check", str(log)])
    assert rc == 1 and "crc" in out and "[DAMAGED]" in out
    rc, out = _run(main_txnlog, ["-r", "-y", str(log)])
    assert rc == 0 and "with 1 fixed CRC error(s)" in out
    fixed = log.with_name(log.name + ".fixed")
    rc, out = _run(main_txnlog, ["--check", str(fixed)])
    assert rc == 0


@pytest.mark.reference
def test_chop_agrees_with_apache(data_dir, tmp_path_factory) -> None:
    require_reference()
    d, _ = data_dir
    (log,) = version_dir(d).glob("log.*")
    other = tmp_path_factory.mktemp("apache") / log.name
    shutil.copy(log, other)
    apache_tool(TXN_TOOL, "-c", "-z", "12", str(other))
    _run(main_txnlog, ["-c", "-z", "12", str(log)])
    assert log.with_name(log.name + ".chopped12").read_bytes() == \
        other.with_name(other.name + ".chopped12").read_bytes()


def _purge_fixture(d: Path) -> None:
    v = version_dir(d)
    v.mkdir(parents=True)
    for z in (0x0, 0x10, 0x20, 0x30, 0x40):
        write_snapshot(v / snapshot_name(z), DataTree(), {}, z, fsync=False)
    for z in (0x1, 0x8, 0x18, 0x28, 0x38):
        (v / f"log.{z:x}").write_bytes(b"ZKLG")
    (v / "snapshot.45").write_bytes(b"not valid")  # ignored: invalid snapshots do not count
    (v / "acceptedEpoch").write_text("1")


@pytest.mark.pure
def test_purge_keeps_logs_needed_by_retained_snapshots(tmp_path: Path) -> None:
    _purge_fixture(tmp_path)
    assert [p.name for p in files_to_purge(tmp_path, tmp_path, 3)] == [
        "log.1", "log.8", "snapshot.0", "snapshot.10"
    ]
    removed = purge(tmp_path, tmp_path, 3)
    assert len(removed) == 4
    assert file_names(version_dir(tmp_path)) == [
        "acceptedEpoch", "log.18", "log.28", "log.38", "snapshot.20", "snapshot.30",
        "snapshot.40", "snapshot.45",
    ]
    with pytest.raises(ValueError):
        purge(tmp_path, tmp_path, 2)
    assert effective_retain_count(1) == 3 and effective_retain_count(5) == 5


@pytest.mark.reference
def test_purge_agrees_with_apache(tmp_path: Path) -> None:
    require_reference()
    _purge_fixture(tmp_path / "a")
    _purge_fixture(tmp_path / "b")
    apache_tool("org.apache.zookeeper.server.PurgeTxnLog", str(tmp_path / "a"), "-n", "3")
    rc, out = _run(main_purge, [str(tmp_path / "b"), "-n", "3"])
    assert rc == 0 and out.count("Removing file:") == 4
    assert file_names(version_dir(tmp_path / "a")) == file_names(version_dir(tmp_path / "b"))


@pytest.mark.pure
def test_tool_usage_errors(tmp_path: Path) -> None:
    assert main_purge([str(tmp_path), "-n", "2"], io.StringIO()) == 2
    assert main_purge([str(tmp_path)], io.StringIO()) == 2
    assert main_snapshot([], io.StringIO()) == 2
    assert main_snapshot(["-d", "-json", "x"], io.StringIO()) == 2
    assert main_txnlog([str(tmp_path / "missing")], io.StringIO()) == 1


@pytest.mark.pure
def test_dump_reads_every_txn_written(data_dir) -> None:
    d, src = data_dir
    assert [e.hdr.zxid for e in iter_txns(d)] == [h.zxid for h, _, _ in src.log]


@pytest.mark.pure
def test_a_file_with_the_wrong_magic_is_refused_in_apaches_words(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from pyzk.shell.datatools import chop_log, dump_log
    from pyzk.txnlog.log import file_header

    bad = tmp_path / "log.1"
    header = bytearray(file_header())
    header[0] ^= 0xFF
    bad.write_bytes(bytes(header) + bytes(64))
    with pytest.raises(SystemExit, match="^Invalid magic number for log.1$"):
        dump_log(bad, io.StringIO())
    assert chop_log(bad, 5, io.StringIO()) is False
    assert capsys.readouterr().err == "Invalid magic number in txn log file\n"
    assert not list(tmp_path.glob("log.1.chopped*"))
