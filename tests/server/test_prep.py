"""Prepare (pure): requests against tree + outstanding changes -> txns."""

from __future__ import annotations

import pytest

from pyzk.core.prep import Preparer
from pyzk.datatree.ephemeral import ttl_of, ttl_to_ephemeral_owner
from pyzk.datatree.tree import DataTree
from pyzk.jute import records as R
from pyzk.jute.constants import CreateMode, Err, OpCode

pytestmark = pytest.mark.pure

OPEN = [R.ACL(31, R.Id("world", "anyone"))]
IP = [R.Id("ip", "127.0.0.1")]


def _create(path: str, mode: int = 0, data: bytes = b"") -> bytes:
    return R.CreateRequest(path, data, OPEN, mode).to_bytes()


def test_pipelined_creates_see_each_other_before_commit() -> None:
    tree = DataTree()
    p = Preparer(tree)
    a = p.prepare(1, 1, OpCode.create, _create("/a"), IP, zxid=2, now=5)
    b = p.prepare(1, 2, OpCode.create, _create("/a/b"), IP, zxid=3, now=5)
    dup = p.prepare(1, 3, OpCode.create, _create("/a"), IP, zxid=4, now=5)
    assert a.err == 0 and b.err == 0
    assert dup.err == Err.NODEEXISTS and dup.hdr.type == OpCode.error
    assert isinstance(dup.txn, R.ErrorTxn) and dup.txn.err == Err.NODEEXISTS
    assert b.txn.parentCVersion == 1
    tree.process_txn(a.hdr, a.txn)
    tree.process_txn(b.hdr, b.txn)
    p.committed(3)
    assert not p.outstanding and not p.by_path
    assert tree.get_node("/a/b") is not None


def test_sequential_suffix_uses_parent_cversion() -> None:
    p = Preparer(DataTree())
    r1 = p.prepare(1, 1, OpCode.create, _create("/s-", CreateMode.PERSISTENT_SEQUENTIAL),
                   IP, 2, 0)
    r2 = p.prepare(1, 2, OpCode.create, _create("/s-", CreateMode.PERSISTENT_SEQUENTIAL),
                   IP, 3, 0)
    assert r1.txn.path.startswith("/s-") and r2.txn.path.startswith("/s-")
    assert int(r2.txn.path[3:]) == int(r1.txn.path[3:]) + 1
    assert len(r1.txn.path) == 3 + 10


def test_version_checks_and_errors() -> None:
    tree = DataTree()
    p = Preparer(tree)
    c = p.prepare(1, 1, OpCode.create, _create("/v"), IP, 2, 0)
    tree.process_txn(c.hdr, c.txn)
    p.committed(2)
    bad = p.prepare(1, 2, OpCode.setData, R.SetDataRequest("/v", b"x", 3).to_bytes(), IP, 3, 0)
    assert bad.err == Err.BADVERSION
    ok = p.prepare(1, 3, OpCode.setData, R.SetDataRequest("/v", b"x", 0).to_bytes(), IP, 4, 0)
    assert ok.err == 0 and ok.txn.version == 1
    assert p.prepare(1, 4, OpCode.delete, R.DeleteRequest("/nope", -1).to_bytes(), IP, 5,
                     0).err == Err.NONODE
    assert p.prepare(1, 5, OpCode.delete, R.DeleteRequest("/zookeeper", -1).to_bytes(), IP, 6,
                     0).err == Err.BADARGUMENTS
    assert p.prepare(1, 6, OpCode.create, _create("bad"), IP, 7, 0).err == Err.BADARGUMENTS
    assert p.prepare(1, 7, OpCode.create, _create("/a/"), IP, 8, 0).err == Err.NONODE
    assert p.prepare(1, 8, OpCode.create, _create("/x", 9), IP, 9, 0).err == Err.BADARGUMENTS


def test_ephemeral_parent_and_ttl_rules() -> None:
    tree = DataTree()
    p = Preparer(tree, extended_types=False)
    e = p.prepare(7, 1, OpCode.create, _create("/e", CreateMode.EPHEMERAL), IP, 2, 0)
    assert e.err == 0 and e.txn.ephemeral
    under = p.prepare(7, 2, OpCode.create, _create("/e/x"), IP, 3, 0)
    assert under.err == Err.NOCHILDRENFOREPHEMERALS
    ttl_req = R.CreateTTLRequest("/t", b"", OPEN, CreateMode.PERSISTENT_WITH_TTL, 100)
    assert p.prepare(7, 3, OpCode.createTTL, ttl_req.to_bytes(), IP, 4, 0).err == Err.UNIMPLEMENTED
    p2 = Preparer(DataTree(), extended_types=True)
    assert p2.prepare(7, 3, OpCode.createTTL, ttl_req.to_bytes(), IP, 4, 0).err == 0
    zero = R.CreateTTLRequest("/t", b"", OPEN, CreateMode.PERSISTENT_WITH_TTL, 0)
    assert p2.prepare(7, 4, OpCode.createTTL, zero.to_bytes(), IP, 5, 0).err == Err.BADARGUMENTS
    assert ttl_of(ttl_to_ephemeral_owner(12345)) == 12345


def test_failed_multi_rolls_back_its_pending_changes() -> None:
    from pyzk.jute.multi import encode_multi_request

    tree = DataTree()
    p = Preparer(tree)
    body = encode_multi_request([
        (OpCode.create, R.CreateRequest("/m", b"", OPEN, 0)),
        (OpCode.delete, R.DeleteRequest("/absent", -1)),
        (OpCode.create, R.CreateRequest("/m2", b"", OPEN, 0)),
    ])
    r = p.prepare(1, 1, OpCode.multi, body, IP, 2, 0)
    assert r.err == Err.NONODE and r.hdr.type == OpCode.multi
    assert [t.type for t in r.txn.txns] == [OpCode.create, OpCode.error, OpCode.error]
    assert R.ErrorTxn.from_bytes(r.txn.txns[2].data).err == Err.RUNTIMEINCONSISTENCY
    assert "/m" not in p.by_path  # rolled back: a later create of /m succeeds
    assert p.prepare(1, 2, OpCode.create, _create("/m"), IP, 3, 0).err == 0


def test_close_session_lists_pending_ephemerals() -> None:
    tree = DataTree()
    p = Preparer(tree)
    p.prepare(9, 1, OpCode.create, _create("/e1", CreateMode.EPHEMERAL), IP, 2, 0)
    c = p.close_session(9, 2, 3, 0)
    assert c.txn.paths2Delete == ["/e1"]


def test_precalculated_digest_equals_tree_digest_after_apply() -> None:
    """Every logged TxnDigest must be the tree digest once that txn applies
    (Apache checks this on replay), even with many txns prepared ahead."""
    import random

    from pyzk.jute.multi import encode_multi_request

    rng = random.Random(7)
    tree = DataTree()
    p = Preparer(tree)
    zxid = 1
    pending = []
    paths = ["/a", "/a/b", "/c", "/a/b/d", "/e"]
    for step in range(400):
        zxid += 1
        choice = rng.randrange(7)
        path = rng.choice(paths)
        sid = rng.choice([11, 12])
        if choice == 0:
            body = _create(path, rng.choice([0, 1, 2]), b"d" * rng.randrange(5))
            r = p.prepare(sid, step, OpCode.create, body, IP, zxid, step)
        elif choice == 1:
            r = p.prepare(sid, step, OpCode.delete, R.DeleteRequest(path, -1).to_bytes(), IP,
                          zxid, step)
        elif choice == 2:
            r = p.prepare(sid, step, OpCode.setData, R.SetDataRequest(path, b"x" * step, -1)
                          .to_bytes(), IP, zxid, step)
        elif choice == 3:
            r = p.prepare(sid, step, OpCode.setACL, R.SetACLRequest(path, OPEN, -1).to_bytes(),
                          IP, zxid, step)
        elif choice == 4:
            body = encode_multi_request([
                (OpCode.create, R.CreateRequest(path + "/m", b"", OPEN, 0)),
                (OpCode.setData, R.SetDataRequest(rng.choice(paths), b"mm", -1)),
            ])
            r = p.prepare(sid, step, OpCode.multi, body, IP, zxid, step)
        elif choice == 5:
            r = p.close_session(sid, step, zxid, step)
        else:
            r = p.create_session(sid, 30000, zxid, step)
        pending.append(r)
        # Apply a random prefix of what is prepared, as the log would.
        while pending and rng.random() < 0.5:
            q = pending.pop(0)
            tree.process_txn(q.hdr, q.txn)
            p.committed(q.hdr.zxid)
            if q.digest is not None:
                assert q.digest.treeDigest == tree.digest(), (q.hdr, q.txn)
            else:
                assert q.hdr.type == OpCode.error
