"""Startup recovery: snapshot + log replay, fallbacks, torn tails and the epoch files."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyzk.datatree import DataTree
from pyzk.jute.constants import OpCode
from pyzk.jute.records import CloseSessionTxn, CreateSessionTxn, TxnDigest
from pyzk.shell.datadir import (
    read_epochs,
    read_long_file,
    version_dir,
    write_accepted_epoch,
    write_current_epoch,
)
from pyzk.shell.recovery import fast_forward, load_database, recover
from pyzk.shell.snapfiles import find_snapshots, write_snapshot
from pyzk.shell.txnlogfiles import TxnLogWriter, iter_txns
from pyzk.txnlog.log import END_CRC, END_PARTIAL
from pyzk.txnlog.names import snapshot_name
from pyzk.txnlog.replay import RecoveryError
from pyzk.txnlog.txn import encode_txn
from tests.txnlog.helpers import S1, S2, TxnSource, tree_view

pytestmark = pytest.mark.pure


def _write_log(d: Path, entries, roll: bool = False) -> None:
    w = TxnLogWriter(d, pre_alloc_size=4096, force_sync=False)
    for hdr, txn, dg in entries:
        w.append(hdr, encode_txn(hdr, txn, dg))
    w.close()


def _dir_with_history(d: Path) -> TxnSource:
    """snapshot.0, txns, snapshot at the middle, more txns (in two log files)."""
    src = TxnSource()
    write_snapshot(version_dir(d) / snapshot_name(0), src.tree, {}, 0)
    src.populate(n=10)
    mid = src.zxid
    write_snapshot(version_dir(d) / snapshot_name(mid), src.tree, src.sessions, mid)
    src.apply(S1, OpCode.createSession, CreateSessionTxn(5000))
    for i in range(10):
        src.create(S1, f"/after{i}", b"a", ephemeral=i % 2 == 0)
    half = len(src.log) - 6
    _write_log(d, src.log[:half])
    _write_log(d, src.log[half:])
    return src


def test_snapshot_plus_replay_equals_the_live_tree(tmp_path: Path) -> None:
    src = _dir_with_history(tmp_path)
    r = recover(tmp_path)
    assert r.snapshot is not None and r.snapshot_zxid > 0
    assert r.txns_loaded == src.zxid - r.snapshot_zxid
    assert tree_view(r.tree) == tree_view(src.tree)
    assert r.sessions == src.sessions == {S2: 40000, S1: 5000}
    assert r.last_zxid == src.zxid == r.tree.last_processed_zxid
    assert r.tree.get_ephemerals(S1) == src.tree.get_ephemerals(S1)
    assert r.digest_mismatches == [] and r.digests_checked == r.txns_loaded + 1
    assert load_database(tmp_path)[2] == src.zxid


def test_digest_mismatch_is_reported(tmp_path: Path) -> None:
    src = _dir_with_history(tmp_path)
    # rewrite the logs with one wrong digest
    for f in version_dir(tmp_path).glob("log.*"):
        f.unlink()
    log = list(src.log)
    hdr, txn, dg = log[-3]
    log[-3] = (hdr, txn, TxnDigest(2, dg.treeDigest + 1))
    _write_log(tmp_path, log)
    r = recover(tmp_path)
    assert r.digest_mismatches == [hdr.zxid]
    assert tree_view(r.tree) == tree_view(src.tree)


def test_corrupt_newest_snapshot_falls_back_to_older(tmp_path: Path) -> None:
    src = _dir_with_history(tmp_path)
    newest = find_snapshots(tmp_path)[0]
    b = bytearray(newest.read_bytes())
    b[100] ^= 0xFF
    newest.write_bytes(bytes(b))
    r = recover(tmp_path)
    assert r.skipped_snapshots == [newest] and r.snapshot_zxid == 0
    assert tree_view(r.tree) == tree_view(src.tree)
    assert r.sessions == src.sessions


def test_all_snapshots_corrupt_is_fatal(tmp_path: Path) -> None:
    _dir_with_history(tmp_path)
    for s in find_snapshots(tmp_path):
        b = bytearray(s.read_bytes())
        b[40] ^= 0xFF
        s.write_bytes(bytes(b))
    with pytest.raises(RecoveryError):
        recover(tmp_path)


@pytest.mark.parametrize("damage", ["torn", "crc"])
def test_torn_tail_is_cut_back_to_last_whole_record(tmp_path: Path, damage: str) -> None:
    src = _dir_with_history(tmp_path)
    last = sorted(version_dir(tmp_path).glob("log.*"), key=lambda p: int(p.name[4:], 16))[-1]
    b = bytearray(last.read_bytes())
    ends = [e.end for e in iter_txns(tmp_path) if e.path == last]
    if damage == "torn":  # the last record half written: zeros after its first bytes
        b[ends[-2] + 20 :] = bytes(len(b) - ends[-2] - 20)
    else:
        b[ends[-2] + 30] ^= 0x40
    last.write_bytes(bytes(b))
    r = recover(tmp_path)
    assert r.cut is not None and r.cut.offset == ends[-2]
    assert r.cut.reason == (END_PARTIAL if damage == "torn" else END_CRC)
    assert last.stat().st_size == ends[-2]
    assert r.last_zxid == src.zxid - 1
    # recovering again finds a clean log and the same state
    r2 = recover(tmp_path)
    assert r2.cut is None and r2.last_zxid == src.zxid - 1
    assert tree_view(r2.tree) == tree_view(r.tree)


def test_crc_error_in_an_older_file_refuses_to_start(tmp_path: Path) -> None:
    _dir_with_history(tmp_path)
    first = sorted(version_dir(tmp_path).glob("log.*"), key=lambda p: int(p.name[4:], 16))[0]
    ends = [e.end for e in iter_txns(tmp_path) if e.path == first]
    b = bytearray(first.read_bytes())
    b[ends[-2] + 30] ^= 0x40
    first.write_bytes(bytes(b))
    for s in find_snapshots(tmp_path)[:-1]:
        s.unlink()  # force a replay through the first file
    with pytest.raises(RecoveryError):
        recover(tmp_path)


def test_empty_dir_creates_snapshot_zero(tmp_path: Path) -> None:
    r = recover(tmp_path)
    assert r.created_initial_snapshot == version_dir(tmp_path) / "snapshot.0"
    assert r.last_zxid == 0 and set(r.tree.nodes) == set(DataTree().nodes)
    r2 = recover(tmp_path)
    assert r2.snapshot == r.created_initial_snapshot and r2.created_initial_snapshot is None


def test_logs_without_snapshot_are_refused_unless_trusted(tmp_path: Path) -> None:
    src = TxnSource()
    src.populate(n=5)
    _write_log(tmp_path, src.log)
    with pytest.raises(RecoveryError):
        recover(tmp_path)
    r = recover(tmp_path, trust_empty_snapshot=True)
    assert tree_view(r.tree) == tree_view(src.tree)


def test_separate_data_log_dir(tmp_path: Path) -> None:
    src = TxnSource()
    write_snapshot(version_dir(tmp_path / "snap") / snapshot_name(0), src.tree, {}, 0)
    src.populate(n=5)
    _write_log(tmp_path / "logs", src.log)
    tree, sessions, zxid = load_database(tmp_path / "snap", tmp_path / "logs")
    assert tree_view(tree) == tree_view(src.tree) and zxid == src.zxid


def test_epoch_files(tmp_path: Path) -> None:
    assert read_epochs(tmp_path) == (None, None)
    version_dir(tmp_path).mkdir()
    write_accepted_epoch(tmp_path, 5)
    write_current_epoch(tmp_path, 4)
    assert (version_dir(tmp_path) / "acceptedEpoch").read_text() == "5"
    assert read_epochs(tmp_path) == (5, 4)
    (version_dir(tmp_path) / "currentEpoch").write_text("12\n")
    assert read_epochs(tmp_path) == (5, 12)
    (version_dir(tmp_path) / "currentEpoch").write_text("0x12")
    with pytest.raises(RecoveryError):
        read_long_file(version_dir(tmp_path) / "currentEpoch")


def test_fast_forward_of_a_tree_in_memory_equals_a_reload_from_disk(tmp_path: Path) -> None:
    """An ended role's tree holds the txns it applied; the log also holds
    proposals it logged but never applied. fast_forward replays exactly
    those, so the next election sees what a reload (a restart) would."""
    src = _dir_with_history(tmp_path)
    held = recover(tmp_path)  # the database a role started from ...
    src.apply(S2, OpCode.createSession, CreateSessionTxn(7000))
    for i in range(5):
        src.create(S2, f"/logged{i}", b"l", ephemeral=i == 0)
    src.apply(S1, OpCode.closeSession, CloseSessionTxn([]))
    start = len(src.log) - 7
    _write_log(tmp_path, src.log[start:])  # ... and what it logged without applying
    ff = fast_forward(held.tree, held.sessions, held.last_zxid, tmp_path)
    disk = recover(tmp_path)
    assert ff.txns_loaded == 7
    assert ff.last_zxid == disk.last_zxid == src.zxid
    assert tree_view(ff.tree) == tree_view(disk.tree) == tree_view(src.tree)
    assert ff.tree.digest() == disk.tree.digest()
    assert ff.sessions == disk.sessions == src.sessions
    assert ff.tree.get_ephemerals(S2) == disk.tree.get_ephemerals(S2)
    assert not ff.digest_mismatches
    assert ff.tree.last_processed_zxid == disk.tree.last_processed_zxid
