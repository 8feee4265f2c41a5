"""snappy snapshots both ways with Apache ZooKeeper 3.8 (snappy-java on its classpath):
Apache's ``snapshot.N.snappy`` starts pyzk with the same tree, and pyzk's starts Apache."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pyzk.datatree import DataTree
from pyzk.shell.datadir import version_dir
from pyzk.shell.recovery import recover
from pyzk.shell.snapfiles import find_snapshots, load_snapshot, write_snapshot
from pyzk.shell.txnlogfiles import TxnLogWriter
from pyzk.testing.servers import ApacheServer, PyzkServer, require_reference
from pyzk.txnlog import snappyjava
from pyzk.txnlog.names import snapshot_name
from pyzk.txnlog.txn import encode_txn
from tests.txnlog.helpers import (
    S2,
    TxnSource,
    apache_tool,
    apache_view,
    digest_client,
    kazoo_view,
    tree_view,
)

pytestmark = pytest.mark.reference

kazoo_client = pytest.importorskip("kazoo.client")
SNAPPY = ["-Dzookeeper.snapshot.compression.method=snappy"]
EXT = ["-Dzookeeper.extendedTypesEnabled=true"]
SNAP_TOOL = "org.apache.zookeeper.server.SnapshotFormatter"


def _fill(zk, n: int) -> None:
    zk.ensure_path("/app")
    for i in range(n):
        zk.create(f"/app/n{i}", (b"%d" % i) * (i * 40))  # some blocks past 32 KiB in all
    zk.set("/app/n1", b"changed")
    zk.delete("/app/n2")


def _snappy_snapshots(d: Path) -> list[Path]:
    return sorted(version_dir(d).glob("snapshot.*.snappy"))


def test_pyzk_starts_from_apache_snappy_data_dir(tmp_path: Path) -> None:
    require_reference()
    srv = ApacheServer(tmp_path, extra_cfg={"snapCount": "10"}, jvm_flags=SNAPPY)
    srv.start()
    try:
        zk = digest_client(srv.address)
        _fill(zk, 60)
        expected = kazoo_view(zk)
        zk.stop()
    finally:
        srv.stop()
    snaps = _snappy_snapshots(tmp_path)
    assert snaps and not list(version_dir(tmp_path).glob("snapshot.[0-9a-f]")), \
        sorted(p.name for p in version_dir(tmp_path).iterdir())
    for p in snaps:
        assert p.read_bytes()[:16] == snappyjava.HEADER
        load_snapshot(p)  # every one of Apache's snappy snapshots reads and its seals match
    # the newest snappy snapshot alone (no logs) holds what Apache had written by then
    r = recover(tmp_path)
    assert r.snapshot == find_snapshots(tmp_path)[0] and r.snapshot.suffix == ".snappy"
    # pyzk, configured as Apache was, serves the same tree from the directory
    with PyzkServer(tmp_path, extra_cfg={"snapshot.compression.method": "snappy"}) as ours:
        zk = digest_client(ours.address)
        got = kazoo_view(zk)
        zk.stop()
    assert got == expected


def test_apache_starts_from_pyzk_snappy_snapshot(tmp_path: Path) -> None:
    """A data directory whose tree is only in pyzk's snappy snapshot (its logs
    start after it): Apache must read the snapshot to serve the tree."""
    require_reference()
    src = TxnSource(DataTree(extended_types=True))
    src.populate(n=60)
    for i in range(40):
        src.create(S2, f"/big{i}", bytes([65 + i % 26]) * 3000)  # many 32 KiB blocks
    snap = write_snapshot(version_dir(tmp_path) / snapshot_name(src.zxid, "snappy"),
                          src.tree, src.sessions, src.zxid)
    mark = len(src.log)
    for i in range(10):
        src.create(S2, f"/late{i}", b"L" * i)
    w = TxnLogWriter(tmp_path, pre_alloc_size=64 * 1024)
    for hdr, txn, dg in src.log[mark:]:
        w.append(hdr, encode_txn(hdr, txn, dg))
    w.flush_and_sync()
    w.close()
    out = apache_tool(SNAP_TOOL, str(snap))
    assert f"ZNode Details (count={load_snapshot(snap).tree.node_count()})" in out, out[-300:]
    assert re.search(r"Last zxid: 0x[0-9a-f]+\s*$", out), out[-300:]
    expected = tree_view(src.tree)
    got, mntr = apache_view(tmp_path, EXT + SNAPPY)
    assert got == expected
    m = re.search(r"zk_digest_mismatches_count\s+(\d+)", mntr)
    assert m is not None and m.group(1) == "0", mntr


def test_apache_starts_from_pyzk_server_snappy_data_dir(tmp_path: Path) -> None:
    """pyzk's own server with snapshot.compression.method=snappy (zoo.cfg) writes
    snapshot.N.snappy every snapCount; Apache 3.8 starts from the directory."""
    require_reference()
    with PyzkServer(tmp_path, extra_cfg={"snapshot.compression.method": "snappy",
                                         "snapCount": "10"}) as ours:
        zk = digest_client(ours.address)
        _fill(zk, 60)
        expected = kazoo_view(zk)
        zk.stop()
    snaps = _snappy_snapshots(tmp_path)
    assert len(snaps) >= 2, sorted(p.name for p in version_dir(tmp_path).iterdir())
    for p in snaps:
        out = apache_tool(SNAP_TOOL, str(p))
        assert re.search(r"Last zxid: 0x[0-9a-f]+\s*$", out), out[-300:]
    srv = ApacheServer(tmp_path, jvm_flags=SNAPPY)
    srv.start()
    try:
        zk = digest_client(srv.address)
        got = kazoo_view(zk)
        zk.stop()
    finally:
        srv.stop()
    assert got == expected
