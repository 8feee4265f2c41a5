"""Interop of 3.9's admin ``restore`` (issue 10): Apache ZooKeeper 3.8 starts
from the data directory a pyzk restore left and serves the restored tree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from kazoo.client import KazooClient

from pyzk.testing.servers import ApacheServer, PyzkServer, free_port, require_reference

pytestmark = pytest.mark.reference

ON = {"admin.snapshot.enabled": "true", "admin.restore.enabled": "true",
      "serializeLastProcessedZxid.enabled": "true", "admin.rateLimiterIntervalInMS": "0"}
AUTH = {"Authorization": "digest admin:secret"}


def _post(port: int, name: str, body: bytes | None) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    req = urllib.request.Request(f"http://127.0.0.1:{port}/commands/{name}", data=body,
                                 headers=AUTH, method="POST" if body is not None else "GET")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _tree(zk: KazooClient, path: str = "/") -> dict[str, bytes]:
    out = {path: zk.get(path)[0]}
    for c in zk.get_children(path):
        out.update(_tree(zk, path.rstrip("/") + "/" + c))
    return out


def _client(port: int) -> KazooClient:
    zk = KazooClient(hosts=f"127.0.0.1:{port}", timeout=10)
    zk.start(timeout=20)
    return zk


def test_apache_starts_from_restored_pyzk_dir(tmp_path: Path) -> None:
    require_reference()
    with PyzkServer(tmp_path, admin_port=free_port(), extra_cfg=ON) as srv:
        zk = _client(srv.port)
        try:
            for i in range(20):
                zk.create(f"/r/n{i}", b"%d" % i, makepath=True)
            status, snap = _post(srv.admin_port, "snapshot", None)
            assert status == 200
            zk.delete("/r", recursive=True)
            zk.create("/gone", b"")
            status, body = _post(srv.admin_port, "restore", snap)
            assert status == 200 and json.loads(body)["error"] is None
            zk.create("/r/after", b"a")  # a write after the restore, replayed from the log
            expected = _tree(zk)
        finally:
            zk.stop()
            zk.close()
    assert "/gone" not in expected and "/r/n19" in expected
    with ApacheServer(tmp_path) as apache:
        zk = _client(apache.port)
        try:
            got = _tree(zk)
        finally:
            zk.stop()
            zk.close()
    assert got == expected
