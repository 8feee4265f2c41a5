"""pyzk's DataTree against Apache 3.8's own DataTree class, on random txn scripts.

Scripts include replays that fail (NoNode, NodeExists), multis with errors,
closeSession with and without a path list, quota nodes, containers, TTLs and
watches of every mode. Compared after every command: results and stats,
last zxid and tree digest, each watcher's notifications in order; and whole
tree dumps (stats, data, ACL ids, children order, ephemerals, ACL cache).
"""

from __future__ import annotations

import os
import random
from collections import defaultdict

import pytest

from pyzk.jute.constants import Err, OpCode
from pyzk.jute.records import (
    ACL,
    CheckVersionTxn,
    CloseSessionTxn,
    CreateContainerTxn,
    CreateTTLTxn,
    CreateTxn,
    DeleteTxn,
    ErrorTxn,
    Id,
    MultiTxn,
    SetACLTxn,
    SetDataTxn,
    Txn,
    TxnHeader,
)

from .datatree_oracle import JavaOracle, PyTreeRunner, java_available, txn_line

if not java_available() and os.environ.get("PYZK_REQUIRE_REFERENCE") == "1":
    raise RuntimeError("PYZK_REQUIRE_REFERENCE=1 but java/javac or Apache's jars are missing")
pytestmark = [pytest.mark.reference,
              pytest.mark.skipif(not java_available(), reason="needs java and Apache's jars")]


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    o = JavaOracle(tmp_path_factory.mktemp("oracle"))
    yield o
    o.close()


def _normalize(cmd: str, lines: list[str]):
    """Events grouped per watcher (Apache's order across watchers is a HashSet's)."""
    events = defaultdict(list)
    rest = []
    for ln in lines:
        if ln.startswith("E "):
            _, w, typ, path = ln.split(" ", 3)
            events[w].append((typ, path))
        elif ln.startswith(("ACL ", "EPH ")):
            rest.append(("~", ln))
        else:
            rest.append(ln)
    if cmd == "D":
        rest = [x for x in rest if not isinstance(x, tuple)] + sorted(
            x[1] for x in rest if isinstance(x, tuple)
        )
    return dict(events), rest


def _compare(oracle: JavaOracle, script: list[str]) -> None:
    py = PyTreeRunner()
    oracle.run("NEW")
    for prop in [ln for ln in script if ln.startswith("PROP")]:
        py.run(prop)
        oracle.run(prop)
    py.run("NEW")
    oracle.run("NEW")
    for i, line in enumerate(script):
        if line.startswith("PROP"):
            continue
        want = _normalize(line[0], oracle.run(line))
        got = _normalize(line[0], py.run(line))
        assert got == want, f"command {i}: {line}\nscript:\n" + "\n".join(script[: i + 1])


PATHS = ["/a", "/a/b", "/a/b/c", "/a/d", "/e", "/e/f", "/zookeeper/x", "/q", "/q/r", "/q/r/s"]
SESSIONS = [0x100, 0x200, 0x7F00000000000001]
ACLS = [
    [ACL(31, Id("world", "anyone"))],
    [ACL(1, Id("world", "anyone"))],
    [ACL(31, Id("digest", "u:abc=")), ACL(1, Id("world", "anyone"))],
    [ACL(3, Id("ip", "10.0.0.0/8"))],
]
WATCHERS = ["w1", "w2", "w3"]


class _Gen:
    def __init__(self, rnd: random.Random, extended: bool) -> None:
        self.r = rnd
        self.zxid = 1
        self.time = 1_000
        self.extended = extended

    def hdr(self, type_: int, session: int | None = None) -> TxnHeader:
        self.zxid += 1
        self.time += self.r.randint(0, 5)
        sid = session if session is not None else self.r.choice(SESSIONS)
        return TxnHeader(sid, self.r.randint(0, 9), self.zxid, self.time, type_)

    def data(self) -> bytes | None:
        return self.r.choice([b"", b"x", b"hello", None, bytes(range(20))])

    def pcv(self) -> int:
        return self.r.choice([-1, -1, 0, 1, 3, 7])

    def sub(self) -> tuple[int, object]:
        r = self.r
        p = r.choice(PATHS)
        k = r.randint(0, 5)
        if k == 0:
            return OpCode.create, CreateTxn(p, self.data(), r.choice(ACLS), r.random() < 0.3,
                                            self.pcv())
        if k == 1:
            return OpCode.delete, DeleteTxn(p)
        if k == 2:
            return OpCode.setData, SetDataTxn(p, self.data(), r.randint(0, 3))
        if k == 3:
            return OpCode.check, CheckVersionTxn(p, r.randint(-1, 2))
        if k == 4:
            return OpCode.createContainer, CreateContainerTxn(p, self.data(), r.choice(ACLS),
                                                              self.pcv())
        return OpCode.error, ErrorTxn(r.choice([Err.NONODE, Err.BADVERSION, 0,
                                                Err.RUNTIMEINCONSISTENCY]))

    def command(self) -> str:
        r = self.r
        p = r.choice(PATHS)
        k = r.randint(0, 19)
        if k <= 4:
            t = r.choice([OpCode.create, OpCode.create, OpCode.create2])
            txn = CreateTxn(p, self.data(), r.choice(ACLS), r.random() < 0.4, self.pcv())
            return txn_line(self.hdr(t), txn)
        if k == 5:
            return txn_line(self.hdr(OpCode.delete), DeleteTxn(p))
        if k == 6:
            return txn_line(self.hdr(OpCode.setData), SetDataTxn(p, self.data(), r.randint(0, 5)))
        if k == 7:
            return txn_line(self.hdr(OpCode.setACL), SetACLTxn(p, r.choice(ACLS), r.randint(0, 3)))
        if k == 8:
            subs = [self.sub() for _ in range(r.randint(1, 4))]
            multi = MultiTxn([Txn(t, x.to_bytes()) for t, x in subs])
            return txn_line(self.hdr(OpCode.multi), multi)
        if k == 9:
            sid = r.choice(SESSIONS)
            if r.random() < 0.5:
                return txn_line(self.hdr(OpCode.closeSession, sid), None)
            listed = r.sample(PATHS, r.randint(0, 3))
            return txn_line(self.hdr(OpCode.closeSession, sid), CloseSessionTxn(listed))
        if k == 10:
            return txn_line(
                self.hdr(OpCode.createContainer),
                CreateContainerTxn(p, self.data(), r.choice(ACLS), self.pcv()),
            )
        if k == 11 and self.extended:
            return txn_line(
                self.hdr(OpCode.createTTL),
                CreateTTLTxn(p, self.data(), r.choice(ACLS), self.pcv(), r.randint(1, 10**6)),
            )
        if k == 12:
            q = r.choice(["/a", "/q", "/q/r", "/e"])
            leaf = r.choice(["zookeeper_limits", "zookeeper_stats"])
            body = {
                "zookeeper_limits": r.choice([b"count=3,bytes=-1", b"count=-1,bytes=10",
                                              b"count=-1,bytes=-1=;byteHardLimit=-1;"
                                              b"countHardLimit=2"]),
                "zookeeper_stats": b"count=0,bytes=0",
            }[leaf]
            qp = "/zookeeper/quota" + q
            steps = []
            parts = qp.split("/")[1:]
            for i in range(3, len(parts) + 1):
                steps.append("/" + "/".join(parts[:i]))
            lines = [
                txn_line(self.hdr(OpCode.create), CreateTxn(s, b"", ACLS[0], False, -1))
                for s in steps
            ]
            lines.append(txn_line(self.hdr(OpCode.create),
                                  CreateTxn(qp + "/" + leaf, body, ACLS[0], False, -1)))
            return "\n".join(lines)
        if k == 13:
            return txn_line(self.hdr(OpCode.delete), DeleteTxn(
                "/zookeeper/quota" + r.choice(["/a", "/q"]) + "/zookeeper_limits"))
        if k in (14, 15, 16):
            kind = r.choice(["data", "exists", "child", "add0", "add1"])
            wp = r.choice(PATHS + ["/"])
            return f"W {kind} {wp} {r.choice(WATCHERS)}"
        if k == 17:
            op = r.choice(["contains", "remove"])
            return f"C {op} {r.randint(1, 3)} {r.choice(PATHS + ['/'])} {r.choice(WATCHERS)}"
        if k == 18:
            return f"X {r.choice(WATCHERS)}" if r.random() < 0.3 else f"G {r.choice(SESSIONS)}"
        return txn_line(self.hdr(OpCode.error), ErrorTxn(Err.NONODE))


def _script(seed: int, n: int, extended: bool) -> list[str]:
    g = _Gen(random.Random(seed), extended)
    out = ["PROP zookeeper.extendedTypesEnabled " + ("true" if extended else "false")]
    for i in range(n):
        out.extend(g.command().split("\n"))
        if i % 25 == 24:
            out.append("D")
    out.append("D")
    return out


@pytest.mark.parametrize("seed", range(40))
def test_random_scripts_match_apache(oracle, seed):
    _compare(oracle, _script(seed, 120, extended=seed % 4 == 3))


def test_many_children_order_matches_apache(oracle):
    """Children order (Java HashSet) across table growth, deletions and re-adds."""
    g = _Gen(random.Random(7), False)
    script = [txn_line(g.hdr(OpCode.create), CreateTxn("/p", b"", ACLS[0], False, -1))]
    names = [f"n{i:010d}" for i in range(40)] + ["lock-", "x", "zz", "a" * 30, "ü", "\u4e2d"]
    for name in names:
        script.append(txn_line(g.hdr(OpCode.create),
                               CreateTxn("/p/" + name, b"", ACLS[0], True, -1)))
    for name in names[::3]:
        script.append(txn_line(g.hdr(OpCode.delete), DeleteTxn("/p/" + name)))
    for name in names[::6]:
        script.append(txn_line(g.hdr(OpCode.create),
                               CreateTxn("/p/" + name, b"", ACLS[0], True, -1)))
    script += ["D", f"G {SESSIONS[0]}", f"G {SESSIONS[1]}", f"G {SESSIONS[2]}"]
    script.append(txn_line(g.hdr(OpCode.closeSession, SESSIONS[0]), None))
    script.append("D")
    _compare(oracle, script)


def test_recursive_and_persistent_watches_match_apache(oracle):
    g = _Gen(random.Random(3), False)
    script = [
        "W add1 / w1", "W add0 /a w2", "W child /a w3", "W data /a/b w2",
        txn_line(g.hdr(OpCode.create), CreateTxn("/a", b"", ACLS[0], False, -1)),
        txn_line(g.hdr(OpCode.create), CreateTxn("/a/b", b"", ACLS[0], False, -1)),
        txn_line(g.hdr(OpCode.setData), SetDataTxn("/a/b", b"v", 1)),
        "W data /a w2",  # downgrades w2's persistent watch on /a to one-shot
        txn_line(g.hdr(OpCode.setData), SetDataTxn("/a", b"v", 1)),
        txn_line(g.hdr(OpCode.setData), SetDataTxn("/a", b"w", 2)),
        txn_line(g.hdr(OpCode.delete), DeleteTxn("/a/b")),
        "C contains 3 /a w3", "C remove 2 / w1", "C contains 1 / w1", "D",
    ]
    _compare(oracle, script)
