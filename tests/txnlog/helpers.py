"""Shared helpers: build trees through txns, read trees through a client, run Apache's tools."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from pyzk.datatree import DataTree, digest_id
from pyzk.jute.constants import OpCode
from pyzk.jute.records import (
    ACL,
    CloseSessionTxn,
    CreateContainerTxn,
    CreateSessionTxn,
    CreateTTLTxn,
    CreateTxn,
    DeleteTxn,
    Id,
    SetACLTxn,
    SetDataTxn,
    TxnDigest,
    TxnHeader,
)
from pyzk.testing.servers import APACHE_CLASSPATH
from pyzk.txnlog.txn import encode_multi

S1, S2 = 0x1000A0000000001, 0x1000A0000000002
OPEN = [ACL(31, Id("world", "anyone"))]
READ_ONLY = [ACL(1, Id("world", "anyone"))]
DIGEST_ACL = [ACL(31, Id("digest", digest_id("bob:secret"))), ACL(1, Id("ip", "10.0.0.0/8"))]


def apache_tool(cls: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Run one of Apache's main classes; returns stdout (raises on a non-zero exit)."""
    r = subprocess.run(
        ["java", "-cp", APACHE_CLASSPATH, cls, *args],
        capture_output=True, text=True, timeout=60, env=env,
    )
    if r.returncode != 0:
        raise AssertionError(f"{cls} {args} exit {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r.stdout


class TxnSource:
    """Applies txns to a DataTree and hands out (hdr, txn, digest) like Apache's pipeline."""

    def __init__(self, tree: DataTree | None = None, zxid: int = 0, time0: int = 1_700_000_000_000):
        self.tree = tree if tree is not None else DataTree()
        self.zxid = zxid
        self.time = time0
        self.sessions: dict[int, int] = {}
        self.log: list[tuple[TxnHeader, Any, TxnDigest]] = []

    def apply(self, client: int, op: int, txn: Any) -> tuple[TxnHeader, Any, TxnDigest]:
        self.zxid += 1
        self.time += 7
        hdr = TxnHeader(client, self.zxid, self.zxid, self.time, int(op))
        if op == OpCode.createSession:
            self.sessions[client] = txn.timeOut
        elif op == OpCode.closeSession:
            self.sessions.pop(client, None)
        rc = self.tree.process_txn(hdr, txn)
        assert rc.err == 0, (hdr, txn, rc)
        d = TxnDigest(2, self.tree.digest())
        self.log.append((hdr, txn, d))
        return hdr, txn, d

    def pcv(self, path: str) -> int:
        """parentCVersion as PrepRequestProcessor computes it: the parent's cversion + 1."""
        parent = self.tree.nodes[path[: path.rfind("/")] or "/"]
        return parent.cversion + 1

    def create(self, client: int, path: str, data: bytes | None, acl: list = OPEN,
               ephemeral: bool = False) -> None:
        self.apply(client, OpCode.create, CreateTxn(path, data, acl, ephemeral, self.pcv(path)))

    def populate(self, n: int = 30) -> None:
        """A mix of every kind of node and txn; session S2 stays open with an ephemeral."""
        s1, s2 = S1, S2
        self.apply(s1, OpCode.createSession, CreateSessionTxn(30000))
        self.apply(s2, OpCode.createSession, CreateSessionTxn(40000))
        self.create(s1, "/app", b"root data")
        self.create(s1, "/app/secret", b"s", DIGEST_ACL)
        self.create(s1, "/ro", None, READ_ONLY)
        for i in range(n):
            self.create(s1, f"/app/n{i:04d}", bytes([i]) * i)
        self.create(s2, "/app/eph", b"e", ephemeral=True)
        self.apply(s1, OpCode.createContainer,
                   CreateContainerTxn("/cont", b"c", OPEN, self.pcv("/cont")))
        self.create(s1, "/cont/kid", b"k")
        self.apply(s1, OpCode.setData, SetDataTxn("/app/n0001", b"changed", 1))
        self.apply(s1, OpCode.setACL, SetACLTxn("/app/n0002", READ_ONLY, 1))
        self.apply(s1, OpCode.delete, DeleteTxn("/app/n0003"))
        multi = encode_multi([
            (OpCode.create, CreateTxn("/m1", b"1", OPEN, False, self.pcv("/m1"))),
            (OpCode.setData, SetDataTxn("/m1", b"11", 1)),
            (OpCode.create, CreateTxn("/m1/c", b"", OPEN, False, 1)),
        ])
        self.apply(s1, OpCode.multi, multi)
        # a quota on /app: the limit and stats nodes as setquota makes them
        self.create(s1, "/zookeeper/quota/app", None)
        self.create(s1, "/zookeeper/quota/app/zookeeper_limits", b"count=1000,bytes=-1")
        self.create(s1, "/zookeeper/quota/app/zookeeper_stats", b"count=0,bytes=0")
        self.apply(s1, OpCode.closeSession, CloseSessionTxn([]))

    def add_ttl(self) -> None:
        self.apply(S2, OpCode.createTTL, CreateTTLTxn("/ttl", b"t", OPEN, self.pcv("/ttl"), 600000))


def tree_view(tree: DataTree) -> dict[str, tuple]:
    """path -> (data, stat tuple, acl tuples) for every node as a client sees it."""
    out = {}
    for path in tree.nodes:
        if path == "":
            continue
        data, stat = tree.get_data(path)
        acls, _ = tree.get_acl(path)
        out[path] = (
            data or b"",
            tuple(getattr(stat, f) for f in stat.FIELDS),
            tuple((a.perms, a.id.scheme, a.id.id) for a in acls),
        )
    return out


_STAT_FIELDS = ("czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion",
                "ephemeralOwner", "dataLength", "numChildren", "pzxid")


def kazoo_view(zk: Any, root: str = "/") -> dict[str, tuple]:
    """The same view read through a kazoo client (authenticated as super-free 'bob')."""
    out = {}
    stack = [root]
    while stack:
        path = stack.pop()
        acls, _ = zk.get_acls(path)
        try:
            data, stat = zk.get(path)
        except Exception:  # NoAuth: fall back to exists() for the stat  # noqa: BLE001
            data, stat = None, zk.exists(path)
        out[path] = (
            data or b"",
            tuple(getattr(stat, f) for f in _STAT_FIELDS),
            tuple((a.perms, a.id.scheme, a.id.id) for a in acls),
        )
        base = "" if path == "/" else path
        stack.extend(base + "/" + c for c in zk.get_children(path))
    return out


def file_names(d: Path) -> list[str]:
    return sorted(p.name for p in d.iterdir())


def digest_client(address: str) -> Any:
    """A started kazoo client authenticated as the digest user the txn
    sources' ACLs name (bob:secret)."""
    from kazoo import client as kazoo_client

    zk = kazoo_client.KazooClient(hosts=address, auth_data=[("digest", "bob:secret")],
                                  timeout=10)
    zk.start(timeout=20)
    return zk


def apache_view(data_dir: Path, jvm_flags: list[str]) -> tuple[dict[str, tuple], str]:
    """Start Apache on ``data_dir`` and return what it serves (kazoo_view)
    and its mntr text."""
    from pyzk.testing.servers import ApacheServer

    srv = ApacheServer(data_dir, jvm_flags=jvm_flags)
    srv.start()
    try:
        zk = digest_client(srv.address)
        got = kazoo_view(zk)
        mntr = srv.four_letter("mntr")
        zk.stop()
    finally:
        srv.stop()
    return got, mntr
