"""Acknowledged writes survive SIGKILL; the data directory is Apache's."""

from __future__ import annotations

import os
import struct
import threading

import pytest

from pyzk.jute import records as R
from pyzk.jute.constants import OpCode
from pyzk.testing.servers import ApacheServer, PyzkServer, require_reference
from pyzk.testing.wire import connect

OPEN = [R.ACL(31, R.Id("world", "anyone"))]


def _pipelined_writer(server, acked: list[int], stop: threading.Event) -> None:
    """Create /d/nN as fast as possible, recording every acknowledged N."""
    c = connect(server.host, server.port)
    sent = 0
    window = 64
    try:
        while not stop.is_set() and sent < 100_000:
            while sent - len(acked) < window:
                c.send(OpCode.create, R.CreateRequest(f"/d/n{sent}", b"v" * 20, OPEN, 0),
                       xid=sent + 1000)
                sent += 1
            r = c.recv()
            if r.err == 0:
                acked.append(r.header.xid - 1000)
    except (OSError, ConnectionError, struct.error):
        pass


@pytest.mark.server
def test_sigkill_under_pipelined_writes_loses_no_acknowledged_write(tmp_path) -> None:
    srv = PyzkServer(tmp_path, extra_cfg={"snapCount": "500"})
    srv.start()
    try:
        c = connect(srv.host, srv.port)
        assert c.call_reply(OpCode.create, R.CreateRequest("/d", b"", OPEN, 0)).err == 0
        c.close()
        acked: list[int] = []
        stop = threading.Event()
        t = threading.Thread(target=_pipelined_writer, args=(srv, acked, stop))
        t.start()
        while len(acked) < 3000 and t.is_alive():
            t.join(0.05)
        srv.kill()  # SIGKILL mid-stream
        stop.set()
        t.join(10)
        assert len(acked) >= 3000
        srv.start()
        c = connect(srv.host, srv.port)
        kids = set(c.call_reply(OpCode.getChildren, R.GetChildrenRequest("/d", False))
                   .decode().children)
        missing = [n for n in acked if f"n{n}" not in kids]
        assert not missing, f"{len(missing)} acknowledged creates lost, e.g. {missing[:5]}"
        c.close()
        names = os.listdir(tmp_path / "version-2")
        assert any(n.startswith("snapshot.") and n != "snapshot.0" for n in names)
        assert sum(n.startswith("log.") for n in names) >= 2  # rolled at snapshots
    finally:
        srv.stop()


@pytest.mark.server
def test_torn_log_tail_is_cut_and_server_starts(tmp_path) -> None:
    with PyzkServer(tmp_path) as srv:
        c = connect(srv.host, srv.port)
        for i in range(20):
            assert c.call_reply(OpCode.create, R.CreateRequest(f"/t{i}", b"x", OPEN, 0)).err == 0
        c.close()
    logs = sorted(p for p in (tmp_path / "version-2").iterdir() if p.name.startswith("log."))
    last = logs[-1]
    data = bytearray(last.read_bytes())
    # Find the end of the records (the preallocated zeros) and damage the last record.
    end = len(data.rstrip(b"\0"))
    data[end - 5] ^= 0xFF
    last.write_bytes(bytes(data))
    with PyzkServer(tmp_path) as srv:
        c = connect(srv.host, srv.port)
        kids = c.call_reply(OpCode.getChildren, R.GetChildrenRequest("/", False)).decode()
        present = {k for k in kids.children if k.startswith("t")}
        # Every whole record before the damaged one is kept.
        assert {f"t{i}" for i in range(19)} <= present
        c.close()


@pytest.mark.server
@pytest.mark.reference
def test_apache_starts_from_a_pyzk_data_dir_and_back(tmp_path) -> None:
    require_reference()
    cfg = {"snapCount": "10"}
    with PyzkServer(tmp_path, extra_cfg=cfg) as srv:
        c = connect(srv.host, srv.port)
        c.call_reply(OpCode.create, R.CreateRequest("/x", b"root", OPEN, 0))
        for i in range(25):
            c.call_reply(OpCode.create, R.CreateRequest(f"/x/c{i}", bytes([i]) * i, OPEN, 0))
        c.call_reply(OpCode.setData, R.SetDataRequest("/x/c3", b"changed", -1))
        digest_acl = [R.ACL(31, R.Id("digest", "u:Q6vDvJDgDNhQVy3uaRbFw/EuQSQ="))]
        c.call_reply(OpCode.create, R.CreateRequest("/secret", b"s", digest_acl, 0))
        before = _dump(c)
        c.close()
    # pyzk logged a TxnDigest with every txn; replaying checks each one.
    from pyzk.shell.recovery import recover

    r = recover(tmp_path)
    assert r.digests_checked > 0 and not r.digest_mismatches
    with ApacheServer(tmp_path, port=srv.port, extra_cfg=cfg) as ap:
        c = connect(ap.host, ap.port)
        assert _dump(c) == before
        mntr = dict(line.split("\t", 1) for line in ap.four_letter("mntr").splitlines())
        assert mntr["zk_digest_mismatches_count"] == "0"
        c.call_reply(OpCode.create, R.CreateRequest("/from-apache", b"a", OPEN, 0))
        after = _dump(c)
        c.close()
    with PyzkServer(tmp_path, port=srv.port, extra_cfg=cfg) as srv2:
        c = connect(srv2.host, srv2.port)
        assert _dump(c) == after
        c.close()


def _dump(c) -> dict[str, tuple]:
    out: dict[str, tuple] = {}
    stack = ["/"]
    while stack:
        p = stack.pop()
        if p.startswith("/zookeeper"):
            continue
        g = c.call_reply(OpCode.getData, R.GetDataRequest(p, False))
        stat = c.call_reply(OpCode.exists, R.ExistsRequest(p, False)).decode().stat
        if g.err:  # unreadable (digest ACL): compare the error and the stat
            out[p] = (g.err, stat.to_bytes())
            continue
        a = c.call_reply(OpCode.getACL, R.GetACLRequest(p))
        kids = c.call_reply(OpCode.getChildren, R.GetChildrenRequest(p, False)).decode()
        out[p] = (g.decode().data, stat.to_bytes(), [x.to_bytes() for x in a.decode().acl])
        stack += [(p.rstrip("/") + "/" + k) for k in kids.children]
    return out


@pytest.mark.server
def test_purge_keeps_retained_snapshots_and_their_logs(tmp_path) -> None:
    from pyzk.cli import tool_main
    from pyzk.shell.configfile import load_config
    from pyzk.shell.store import Store

    with PyzkServer(tmp_path, extra_cfg={"snapCount": "10"}) as srv:
        c = connect(srv.host, srv.port)
        for i in range(120):
            assert c.call_reply(OpCode.create, R.CreateRequest(f"/p{i}", b"", OPEN, 0)).err == 0
        c.close()
        cfg_path = srv.cfg_path
    vdir = tmp_path / "version-2"
    snaps = sorted(p.name for p in vdir.iterdir() if p.name.startswith("snapshot."))
    assert len(snaps) > 4
    store = Store(load_config(str(cfg_path)))
    removed = store.purge()
    left = sorted(p.name for p in vdir.iterdir() if p.name.startswith("snapshot."))
    assert len(left) == 3 and removed
    assert tool_main(["purge", str(tmp_path), "-n", "3"]) == 0
    # The server still starts from what is left, with every node.
    with PyzkServer(tmp_path, port=srv.port) as srv2:
        c = connect(srv2.host, srv2.port)
        kids = c.call_reply(OpCode.getChildren, R.GetChildrenRequest("/", False)).decode()
        assert {f"p{i}" for i in range(120)} <= set(kids.children)
        c.close()


@pytest.mark.server
@pytest.mark.reference
@pytest.mark.parametrize("method", ["gz", "snappy"])
def test_compressed_snapshots_written_and_read_by_both_servers(tmp_path, method: str) -> None:
    flags = [f"-Dzookeeper.snapshot.compression.method={method}"]
    with PyzkServer(tmp_path, extra_cfg={"snapCount": "10"}, jvm_flags=flags) as srv:
        c = connect(srv.host, srv.port)
        for i in range(40):
            r = c.call_reply(OpCode.create, R.CreateRequest(f"/g{i}", b"z" * i, OPEN, 0))
            assert r.err == 0
        before = _dump(c)
        c.close()
        port = srv.port
    names = os.listdir(tmp_path / "version-2")
    assert any(n.startswith("snapshot.") and n.endswith(f".{method}") for n in names), names
    # Only the compressed snapshots may be left for a restart to use.
    for n in names:
        if n.startswith("snapshot.") and not n.endswith(f".{method}") and n != "snapshot.0":
            (tmp_path / "version-2" / n).unlink()
    with PyzkServer(tmp_path, port=port, jvm_flags=flags) as srv2:
        c = connect(srv2.host, srv2.port)
        assert _dump(c) == before
        c.close()
    require_reference()
    with ApacheServer(tmp_path, port=port, jvm_flags=flags) as ap:
        c = connect(ap.host, ap.port)
        assert _dump(c) == before
        c.close()
