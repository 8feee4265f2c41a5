"""3.9's ``snapshot`` and ``restore`` admin commands on a real pyzk process:
auth (digest, ALL on /), off by default, rate limits, a streamed snapshot
parsed back equal to the tree, and a restore that is durable across restart.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from kazoo.client import KazooClient
from kazoo.security import make_digest_acl

from pyzk.testing.servers import PyzkServer, free_port
from pyzk.txnlog.snapshot import parse_snapshot

pytestmark = pytest.mark.server

ON = {"admin.snapshot.enabled": "true", "admin.restore.enabled": "true",
      "serializeLastProcessedZxid.enabled": "true"}
AUTH = {"Authorization": "digest admin:secret"}


def call(port: int, name: str, *, headers: dict[str, str] | None = None,
         body: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    method = "POST" if body is not None else "GET"
    req = urllib.request.Request(f"http://127.0.0.1:{port}/commands/{name}", data=body,
                                 headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


def server(tmp: Path, extra: dict[str, str] | None = None) -> PyzkServer:
    cfg = dict(ON)
    cfg.update(extra or {})
    return PyzkServer(tmp, admin_port=free_port(), extra_cfg=cfg)


def client(srv: PyzkServer) -> KazooClient:
    zk = KazooClient(hosts=f"127.0.0.1:{srv.port}", timeout=10)
    zk.start(timeout=15)
    return zk


def tree_of(zk: KazooClient, path: str = "/") -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    data, _ = zk.get(path)
    out[path] = data
    for c in zk.get_children(path):
        out.update(tree_of(zk, (path.rstrip("/") + "/" + c)))
    return out


def snap_tree(raw: bytes) -> dict[str, bytes]:
    snap = parse_snapshot(raw, 0, last_zxid_enabled=True)
    return {(p or "/"): (n.data or b"") for p, n in snap.tree.walk()}


def test_off_by_default(tmp_path: Path) -> None:
    with PyzkServer(tmp_path, admin_port=free_port()) as srv:
        for name in ("snapshot", "snap"):
            status, _, body = call(srv.admin_port, name, headers=AUTH)
            assert status == 503, body
            assert json.loads(body) == {"command": "snapshot", "error": None}
        status, _, body = call(srv.admin_port, "restore", headers=AUTH, body=b"x")
        assert status == 503 and json.loads(body)["command"] == "restore"
        # not in 3.8's command list
        status, _, body = call(srv.admin_port, "")
        assert b"/commands/snapshot\"" not in body and b"/commands/restore" not in body


def test_auth(tmp_path: Path) -> None:
    with server(tmp_path) as srv:
        port = srv.admin_port
        status, _, body = call(port, "snapshot")
        assert status == 401
        assert json.loads(body) == {"command": "snapshot",
                                    "error": "Auth info is missing for the command"}
        for bad in ("bogus x:y", "digest", "digest a b c"):
            status, _, body = call(port, "snapshot", headers={"Authorization": bad})
            assert (status, json.loads(body)["error"]) == (401, "Not authenticated"), bad
        status, _, body = call(port, "restore", body=b"x")
        assert status == 401
        zk = client(srv)
        try:
            # only admin:secret has ALL on /; a wrong password is not authorized
            zk.add_auth("digest", "admin:secret")
            zk.set_acls("/", [make_digest_acl("admin", "secret", all=True)])
        finally:
            zk.stop()
            zk.close()
        status, _, body = call(port, "snapshot",
                               headers={"Authorization": "digest admin:wrong"})
        assert (status, json.loads(body)["error"]) == (403, "Not authorized")
        status, _, body = call(port, "restore", body=b"x",
                               headers={"Authorization": "digest admin:wrong"})
        assert status == 403
        status, headers, body = call(port, "snapshot?streaming=false", headers=AUTH)
        assert status == 200 and json.loads(body) == {"command": "snapshot", "error": None}
        assert headers["last_zxid"].startswith("0x") and int(headers["snapshot_size"]) > 0


def test_needs_serialize_last_processed_zxid(tmp_path: Path) -> None:
    with server(tmp_path, {"serializeLastProcessedZxid.enabled": "false"}) as srv:
        assert call(srv.admin_port, "snapshot", headers=AUTH)[0] == 500
        assert call(srv.admin_port, "restore", headers=AUTH, body=b"x")[0] == 500


def test_rate_limits(tmp_path: Path) -> None:
    """One restore per interval; the snapshot's limiter counts the same
    number in microseconds, as Apache's does."""
    with server(tmp_path, {"admin.rateLimiterIntervalInMS": "2000000"}) as srv:
        port = srv.admin_port
        assert call(port, "restore", headers=AUTH, body=b"bad")[0] == 500
        status, _, body = call(port, "restore", headers=AUTH, body=b"bad")
        assert status == 429 and json.loads(body) == {"command": "restore", "error": None}
        assert call(port, "snapshot?streaming=false", headers=AUTH)[0] == 200
        assert call(port, "snapshot?streaming=false", headers=AUTH)[0] == 429
        time.sleep(2.2)  # 2000000 "microseconds"
        assert call(port, "snapshot?streaming=false", headers=AUTH)[0] == 200
        assert call(port, "restore", headers=AUTH, body=b"bad")[0] == 429


def test_streamed_snapshot_equals_tree(tmp_path: Path) -> None:
    with server(tmp_path) as srv:
        zk = client(srv)
        try:
            for i in range(50):
                zk.create(f"/a/n{i}", f"v{i}".encode(), makepath=True)
            expected = tree_of(zk)
            last = zk.get("/a/n49")[1].mzxid
        finally:
            zk.stop()
            zk.close()
        status, headers, body = call(srv.admin_port, "snapshot?streaming=true", headers=AUTH)
        assert status == 200 and headers["Content-Type"] == "application/octet-stream"
        assert int(headers["snapshot_size"]) == len(body)
        assert int(headers["last_zxid"], 16) >= last
        got = snap_tree(body)
        assert {p: v for p, v in got.items()} == expected
        snapfile = srv.data_dir / "version-2" / f"snapshot.{headers['last_zxid'][2:]}"
        assert snapfile.read_bytes() == body  # taken into dataDir, as Apache's takeSnapshot


def _bad_inputs(good: bytes) -> list[bytes]:
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF
    return [b"\x00" * 64, good[: len(good) // 2], bytes(flipped)]


def test_restore_round_trip_and_durable(tmp_path: Path) -> None:
    with server(tmp_path, {"admin.rateLimiterIntervalInMS": "0"}) as srv:
        port = srv.admin_port
        zk = client(srv)
        try:
            zk.create("/keep/me", b"old", makepath=True)
            saved = tree_of(zk)
            status, _, snap = call(port, "snapshot", headers=AUTH)
            assert status == 200
            zk.delete("/keep", recursive=True)
            zk.create("/later", b"x")
            for bad in _bad_inputs(snap):
                status, _, body = call(port, "restore", headers=AUTH, body=bad)
                assert status == 500 and json.loads(body) == {"command": "restore",
                                                              "error": None}
            assert zk.exists("/later") and not zk.exists("/keep")
            time.sleep(0.01)
            status, _, body = call(port, "restore", headers=AUTH, body=snap)
            assert status == 200, body
            answer: dict[str, Any] = json.loads(body)
            assert answer["command"] == "restore" and answer["error"] is None
            assert isinstance(answer["last_zxid"], int)
            assert tree_of(zk) == saved
            zk.create("/after", b"y")
            expected = tree_of(zk)
        finally:
            zk.stop()
            zk.close()
    with PyzkServer(tmp_path, extra_cfg=ON) as again:
        zk = client(again)
        try:
            assert tree_of(zk) == expected
        finally:
            zk.stop()
            zk.close()
