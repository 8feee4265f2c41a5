"""pyzk's server on 3.9 data directories and with snappy snapshots, end to end.

3.9 appends the last processed zxid and a third seal to every snapshot
(``serializeLastProcessedZxid.enabled``, true by default there): a 3.9 data
directory, built here to 3.9's FileSnap layout by pyzk's writer, starts a
pyzk server with the key off (3.8's reading, trailer ignored) and on
(trailer checked); with the key on, pyzk's own snapshots carry the trailer.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import pytest

from pyzk.datatree import DataTree
from pyzk.shell.datadir import version_dir
from pyzk.shell.snapfiles import find_snapshots, load_snapshot, write_snapshot
from pyzk.testing.servers import PyzkServer
from pyzk.txnlog import snappyjava
from pyzk.txnlog.names import SNAPSHOT_PREFIX, snapshot_name, zxid_from_name
from tests.txnlog.helpers import TxnSource, kazoo_view, tree_view

pytestmark = pytest.mark.server

kazoo_client = pytest.importorskip("kazoo.client")
KEY = "serializeLastProcessedZxid.enabled"


def _view(srv: PyzkServer) -> dict:
    zk = kazoo_client.KazooClient(hosts=srv.address, auth_data=[("digest", "bob:secret")],
                                  timeout=10)
    zk.start(timeout=20)
    try:
        return kazoo_view(zk)
    finally:
        zk.stop()


@pytest.mark.parametrize("enabled", ["true", "false"])
def test_39_data_dir_starts_pyzk(tmp_path: Path, enabled: str) -> None:
    src = TxnSource(DataTree())
    src.populate(n=30)
    snap = write_snapshot(version_dir(tmp_path) / snapshot_name(src.zxid), src.tree,
                          src.sessions, src.zxid, last_zxid=src.zxid)
    b = snap.read_bytes()
    # 3.9's tail: ZxidDigest, seal, long lastZxid, seal (checked by hand against FileSnap)
    assert b[-21:-13] == struct.pack(">q", src.zxid)
    assert b[-13:] == struct.pack(">qi", zlib.adler32(b[:-13]), 1) + b"/"
    expected = tree_view(src.tree)
    with PyzkServer(tmp_path, extra_cfg={KEY: enabled}) as srv:
        assert _view(srv) == expected


def test_pyzk_writes_39_layout_when_configured(tmp_path: Path) -> None:
    with PyzkServer(tmp_path, extra_cfg={KEY: "true", "snapCount": "10",
                                         "snapshot.compression.method": "snappy"}) as srv:
        zk = kazoo_client.KazooClient(hosts=srv.address, timeout=10)
        zk.start(timeout=20)
        for i in range(40):
            zk.create(f"/n{i}", b"x" * i)
        zk.stop()
    snaps = find_snapshots(tmp_path)
    assert len(snaps) >= 2 and all(p.suffix == ".snappy" for p in snaps), snaps
    for p in snaps:
        raw = snappyjava.decode(p.read_bytes())
        zxid = zxid_from_name(p.name, SNAPSHOT_PREFIX)
        assert raw[-21:-13] == struct.pack(">q", zxid)
        assert raw[-13:] == struct.pack(">qi", zlib.adler32(raw[:-13]), 1) + b"/"
        assert load_snapshot(p, last_zxid_enabled=True).last_zxid == zxid
