"""Run the same script against Apache's DataTree (Java) and pyzk's, in the same text form.

A script is a list of commands (see oracle/PyzkTreeOracle.java): ``T hdr txn``
applies a txn given as Jute hex, ``W kind path watcher`` registers a watch,
``C contains|remove type path watcher``, ``X watcher`` drops a connection,
``G session`` lists ephemerals, ``D`` dumps the whole tree, ``NEW`` starts a
fresh tree and ``PROP key value`` sets a Java system property. Each command
answers some lines; `PyTreeRunner` produces the same lines from pyzk.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from pyzk.datatree import DataTree
from pyzk.jute.constants import OpCode
from pyzk.jute.records import (
    CheckVersionTxn,
    CloseSessionTxn,
    CreateContainerTxn,
    CreateSessionTxn,
    CreateTTLTxn,
    CreateTxn,
    DeleteTxn,
    ErrorTxn,
    MultiTxn,
    SetACLTxn,
    SetDataTxn,
    TxnHeader,
)

HERE = Path(__file__).parent
JARS = [
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/zookeeper-jute.jar",
    "/usr/share/java/slf4j-api.jar",
    "/usr/share/java/slf4j-nop.jar",
]

RECORDS = {
    OpCode.create: CreateTxn, OpCode.create2: CreateTxn, OpCode.createTTL: CreateTTLTxn,
    OpCode.createContainer: CreateContainerTxn, OpCode.delete: DeleteTxn,
    OpCode.deleteContainer: DeleteTxn, OpCode.setData: SetDataTxn, OpCode.reconfig: SetDataTxn,
    OpCode.setACL: SetACLTxn, OpCode.closeSession: CloseSessionTxn, OpCode.error: ErrorTxn,
    OpCode.check: CheckVersionTxn, OpCode.multi: MultiTxn, OpCode.createSession: CreateSessionTxn,
}


def java_available() -> bool:
    return bool(shutil.which("javac") and shutil.which("java")) and all(
        os.path.exists(j) for j in JARS
    )


class JavaOracle:
    """A long-lived Java process running Apache's DataTree."""

    def __init__(self, build_dir: Path) -> None:
        cp = ":".join(JARS)
        source = str(HERE / "oracle" / "PyzkTreeOracle.java")
        subprocess.run(
            ["javac", "-d", str(build_dir), "-cp", cp, source], check=True, capture_output=True
        )
        self.proc = subprocess.Popen(
            ["java", "-cp", f"{build_dir}:{cp}", "org.apache.zookeeper.server.PyzkTreeOracle"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )

    def run(self, line: str) -> list[str]:
        assert self.proc.stdin and self.proc.stdout
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        out = []
        while True:
            got = self.proc.stdout.readline()
            if not got:
                raise RuntimeError(f"oracle died on {line!r}")
            got = got.rstrip("\n")
            if got == ".":
                return out
            out.append(got)

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        self.proc.wait(timeout=10)


def _stat(s) -> str:
    if s is None:
        return "-"
    return ",".join(
        str(v) for v in (
            s.czxid, s.mzxid, s.ctime, s.mtime, s.version, s.cversion, s.aversion,
            s.ephemeralOwner, s.dataLength, s.numChildren, s.pzxid,
        )
    )


def _hex(b: bytes | None) -> str:
    if b is None:
        return "-"
    return b.hex() if b else "~"


class PyTreeRunner:
    """Answers oracle commands from a pyzk DataTree."""

    def __init__(self) -> None:
        self.props: dict[str, str] = {}
        self.tree = DataTree()

    def _result(self, tag: str, r, out: list[str]) -> None:
        n = -1 if r.multi is None else len(r.multi)
        out.append(f"{tag} {r.err} {r.path if r.path is not None else '-'} {_stat(r.stat)} {n}")
        for s in r.multi or ():
            self._result("S", s, out)

    def run(self, line: str) -> list[str]:
        a = line.split(" ")
        t = self.tree
        out: list[str] = []
        if a[0] == "T":
            hdr = TxnHeader.from_bytes(bytes.fromhex(a[1]))
            txn = None if a[2] == "-" else RECORDS[hdr.type].from_bytes(bytes.fromhex(a[2]))
            r = t.process_txn(hdr, txn)
            out += [f"E {w} {typ} {p}" for w, typ, p in r.events]
            self._result("R", r, out)
            out.append(f"Z {t.last_processed_zxid} {t.digest()}")
        elif a[0] == "W":
            kind, p, w = a[1], a[2], a[3]
            ok = True
            if kind == "data":
                ok = t.get_data(p, w) is not None
            elif kind == "exists":
                ok = t.stat_node(p, w) is not None
            elif kind == "child":
                ok = t.get_children(p, w) is not None
            else:
                t.add_watch(p, w, int(kind[3:]))
            out.append("W ok" if ok else "W nonode")
        elif a[0] == "C":
            fn = t.contains_watcher if a[1] == "contains" else t.remove_watch
            out.append(f"C {str(fn(a[3], int(a[2]), a[4])).lower()}")
        elif a[0] == "X":
            t.remove_cnxn(a[1])
            out.append("X")
        elif a[0] == "G":
            out.append("G " + ",".join(t.get_ephemerals(int(a[1]))))
        elif a[0] == "D":
            self._dump("/", out)
            out.append(
                f"COUNT {t.node_count()} {t.cached_approximate_data_size()} "
                f"{t.approximate_data_size()} {t.digest()} {t.last_processed_zxid} "
                f"{t.watch_count()} {t.get_all_children_number('/')}"
            )
            for sid in t.sessions_with_ephemerals():
                out.append(f"EPH {sid} " + ",".join(t.get_ephemerals(sid)))
            out.append("CONT " + ",".join(sorted(t.containers)))
            out.append("TTLS " + ",".join(sorted(t.ttls)))
            out.append(f"ACLINDEX {t.acl_cache.acl_index}")
            for acl_id, acls, rc in t.acl_cache:
                body = "".join(f"{x.perms}:{x.id.scheme}:{x.id.id};" for x in acls)
                out.append(f"ACL {acl_id} {rc if rc else 'null'} {body}")
            out.append("END")
        elif a[0] == "NEW":
            t = self.tree = DataTree(
                extended_types=self.props.get("zookeeper.extendedTypesEnabled") == "true"
            )
        elif a[0] == "PROP":
            self.props[a[1]] = a[2]
            if a[1] == "zookeeper.extendedTypesEnabled":
                self.tree.extended_types = a[2] == "true"
        else:
            raise ValueError(line)
        return out

    def _dump(self, path: str, out: list[str]) -> None:
        n = self.tree.get_node(path)
        kids = n.children.java_order()
        out.append(
            f"N {path} {_stat(n.stat(self.tree.extended_types))} {n.cversion} "
            f"{n.ephemeralOwner} {n.acl} {_hex(n.data)} {','.join(kids)}"
        )
        for k in kids:
            self._dump(("" if path == "/" else path) + "/" + k, out)


def txn_line(hdr: TxnHeader, txn) -> str:
    return f"T {hdr.to_bytes().hex()} {'-' if txn is None else txn.to_bytes().hex()}"


__all__ = ["JavaOracle", "PyTreeRunner", "java_available", "txn_line"]
