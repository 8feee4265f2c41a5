"""Memory per znode at N znodes, and start time from a snapshot holding them.

``python -m benchmarks.scale [--nodes 1000000] [--servers apache pyzk]``

Memory: N znodes of 100 bytes are created (pipelined, one session) under
N/1000 parents. For pyzk the figure is the server's RSS growth / N. For
Apache it is the growth of JVM heap *in use after a full GC* (``jcmd <pid>
GC.run`` then ``GC.heap_info``) / N, which is what the tree really costs;
RSS growth is printed beside it, but the JVM's RSS mostly reflects how far
the heap was allowed to grow, not what lives in it.

Start time: from process start until a session handshake is answered, for
an empty data directory and then twice with the N znodes: the first restart
loads the newest snapshot and replays the log after it (Apache then writes a
clean snapshot), the second loads that clean snapshot. It is measured only
for a server that leaves ``version-2/snapshot.*`` files in its data
directory (both do).
"""

from __future__ import annotations

import argparse
import logging
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.frames import Op, create, exists
from benchmarks.rawclient import RawClient
from benchmarks.run import proc_status_kib
from benchmarks.workloads import Params
from pyzk.jute.constants import Err
from pyzk.testing.servers import SERVER_CLASSES, ServerProcess

log = logging.getLogger(__name__)

ROOT = "/scale"
FANOUT = 1000
_HEAP_USED = re.compile(r"heap\s+total\s+(\d+)K,\s+used\s+(\d+)K")


def node_path(i: int) -> str:
    return f"{ROOT}/b{i // FANOUT:05d}/n{i % FANOUT:03d}"


def creates(n: int, data: bytes) -> Iterator[Op]:
    """The creates of N znodes, each parent just before its first child."""
    yield create(ROOT, b"")
    for i in range(n):
        if i % FANOUT == 0:
            yield create(f"{ROOT}/b{i // FANOUT:05d}", b"")
        yield create(node_path(i), data)


def jvm_heap_used(pid: int) -> int:
    """Bytes of JVM heap in use after a full GC, via jcmd."""
    for _ in range(2):  # a second collection settles what the first promoted
        subprocess.run(["jcmd", str(pid), "GC.run"], check=True, capture_output=True,
                       timeout=120)
    out = subprocess.run(["jcmd", str(pid), "GC.heap_info"], check=True, capture_output=True,
                         text=True, timeout=60).stdout
    m = _HEAP_USED.search(out)
    if not m:
        raise RuntimeError(f"cannot read heap use from jcmd output:\n{out}")
    return int(m.group(2)) * 1024


def snapshot_files(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "version-2").glob("snapshot.*"))


@dataclass
class ScaleResult:
    kind: str
    nodes: int
    create_seconds: float = 0.0
    rss_delta: int = 0
    heap_delta: int | None = None  # Apache only
    start_empty: float = 0.0
    start_times: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        n = self.nodes
        out = [f"{self.kind}: {n:,} znodes of 100 bytes created in {self.create_seconds:.1f} s "
               f"({n / self.create_seconds:,.0f}/s)" if self.create_seconds else
               f"{self.kind}: {n:,} znodes"]
        if self.heap_delta is not None:
            out.append(f"  memory per znode: {self.heap_delta / n:,.0f} B of JVM heap in use "
                       f"after full GC (RSS growth {self.rss_delta / n:,.0f} B/znode)")
        else:
            out.append(f"  memory per znode: {self.rss_delta / n:,.0f} B of RSS growth")
        out.append(f"  start, empty data dir: {self.start_empty:.2f} s")
        labels = ("snapshot + log replay", "clean snapshot")
        for label, t in zip(labels, self.start_times, strict=False):
            out.append(f"  start with {n:,} znodes ({label}): {t:.2f} s")
        out += [f"  note: {x}" for x in self.notes]
        return out


def _timed_start(srv: ServerProcess) -> float:
    t = time.monotonic()
    srv.start(timeout=600)
    return time.monotonic() - t


def _check_loaded(srv: ServerProcess, n: int) -> None:
    """The restarted server must really hold the znodes (first, last, a middle one)."""
    with RawClient(srv.host, srv.port) as c:
        for i in {0, n // 2, n - 1}:
            err, _ = c.call(exists(node_path(i)), check=False)
            if err != Err.OK:
                raise RuntimeError(f"{srv.kind} lost {node_path(i)} across restart: {err}")


def measure(kind: str, data_dir: Path, n: int) -> ScaleResult:
    res = ScaleResult(kind, n)
    srv = SERVER_CLASSES[kind](data_dir, extra_cfg={"maxClientCnxns": "0"})
    try:
        res.start_empty = _timed_start(srv)
        pid = srv.pid
        assert pid is not None
        with RawClient(srv.host, srv.port) as c:
            heap0 = jvm_heap_used(pid) if kind == "apache" else None
            rss0 = proc_status_kib(pid, "VmRSS") * 1024
            t = time.monotonic()
            c.pipeline(creates(n, Params().payload()), window=1000, keep=False)
            res.create_seconds = time.monotonic() - t
            rss1 = proc_status_kib(pid, "VmRSS") * 1024
            res.rss_delta = rss1 - rss0
            if heap0 is not None:
                res.heap_delta = jvm_heap_used(pid) - heap0
        srv.stop()
        if not snapshot_files(data_dir):
            res.notes.append(f"{kind} wrote no snapshot (version-2/snapshot.*): "
                             "start-from-snapshot time not measured")
            return res
        for _ in range(2):
            res.start_times.append(_timed_start(srv))
            _check_loaded(srv, n)
            srv.stop()
        return res
    finally:
        srv.stop()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="memory per znode and start time at scale")
    ap.add_argument("--nodes", type=int, default=1_000_000)
    ap.add_argument("--servers", nargs="+", default=["apache", "pyzk"],
                    choices=sorted(SERVER_CLASSES))
    ap.add_argument("--workdir", help="where data directories go (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep data directories")
    args = ap.parse_args(argv)
    if args.nodes < 1:
        ap.error("--nodes must be positive")
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="pyzk-scale-"))
    status = 0
    try:
        for kind in args.servers:
            data_dir = workdir / kind
            try:
                res = measure(kind, data_dir, args.nodes)
            except Exception as e:  # one server failing must not hide the other's numbers
                log.exception("%s failed", kind)
                print(f"{kind}: failed: {type(e).__name__}: {str(e).splitlines()[0]}")
                status = 1
                continue
            finally:
                if not args.keep:
                    shutil.rmtree(data_dir, ignore_errors=True)
            print("\n".join(res.lines()), flush=True)
    finally:
        if not args.workdir and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
