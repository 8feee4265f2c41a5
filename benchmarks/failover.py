"""Failover and catch-up of three-server ensembles with large trees, pyzk
against Apache ZooKeeper 3.8 in one run.

For each tree size (``--znodes``, e.g. ``0,100000,1000000``) and each round
(kinds alternating), every member starts from the same seeded data
directory: a ``snapshot.0`` holding N znodes of 100 bytes under N/1000
parents, written once with pyzk's snapshot writer (Apache's format, so both
servers load the same file). Then:

* ``--prewrites`` setData txns go through the leader, so there is a log
  after the snapshot, as on a server that has been running;
* failover: the leader is SIGKILLed; the clock runs until a survivor answers
  a new session (what a client waits) and until both survivors serve (the
  ensemble is whole again);
* catch-up (``--catchup`` writes, optional): with the killed member still
  down, that many setData txns are written through the new leader; the
  member is started again and the clock runs from its launch until it
  serves as a follower. ``--sync diff|snap`` picks how the leader brings it
  up to date (``zookeeper.snapshotSizeFactor`` very large: DIFF from the
  txn log; negative: a SNAP), the same system property for both servers.

Run: ``python -m benchmarks.failover --znodes 0,100000 --rounds 5``.
Figures are medians over the rounds; compare the columns of one run.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from benchmarks.ensemble import serves
from benchmarks.frames import Op, set_data
from benchmarks.rawclient import RawClient
from pyzk.datatree.tree import DataTree
from pyzk.shell.datadir import version_dir
from pyzk.shell.snapfiles import write_snapshot
from pyzk.testing.servers import Ensemble, apache_available
from pyzk.txnlog.names import snapshot_name

FANOUT = 1000
DATA = b"x" * 100


def seeded_snapshot(path: Path, n: int) -> None:
    """snapshot.0 with ``n`` znodes /seed/bXXXXX/nYYY of 100 bytes."""
    tree = DataTree()
    tree.create_node("/seed", b"", None, 0, -1, 0, 0)
    for i in range(n):
        if i % FANOUT == 0:
            tree.create_node(f"/seed/b{i // FANOUT:05d}", b"", None, 0, -1, 0, 0)
        tree.create_node(f"/seed/b{i // FANOUT:05d}/n{i % FANOUT:03d}", DATA, None, 0, -1, 0, 0)
    write_snapshot(path, tree, {}, 0, fsync=False)


def _sets(n: int) -> Iterator[Op]:
    for i in range(n):
        yield set_data("/seed", str(i).encode())


def write(ens: Ensemble, sid: int, n: int) -> None:
    """``n`` setData txns through member ``sid``, pipelined."""
    if n <= 0:
        return
    with RawClient(ens[sid].host, ens[sid].port, connect_deadline=60) as c:
        c.pipeline(_sets(n), window=256)


def measure(kind: str, base: Path, snap: Path, *, tick: int, prewrites: int, catchup: int,
            sync: str) -> dict[str, float]:
    ens = Ensemble(base / kind, {1: kind, 2: kind, 3: kind}, tick_time=tick,
                   extra_cfg={"maxSessionTimeout": "60000", "snapCount": "1000000"})
    factor = "100000" if sync == "diff" else "-1"
    for s in ens.servers.values():
        s.jvm_flags = [f"-Dzookeeper.snapshotSizeFactor={factor}"]
        d = version_dir(s.data_dir)
        d.mkdir(parents=True, exist_ok=True)
        shutil.copy(snap, d / snapshot_name(0))
    out: dict[str, float] = {}
    ens.start(600)
    try:
        leader = ens.wait_leader(120)
        write(ens, leader, prewrites)
        survivors = [s for s in ens.servers if s != leader]
        t0 = time.monotonic()
        ens[leader].kill()
        while not any(serves(ens, s) for s in survivors):
            time.sleep(0.002)
        out["failover ms (first survivor serves)"] = (time.monotonic() - t0) * 1000.0
        while not all(serves(ens, s) for s in survivors):
            time.sleep(0.002)
        out["failover ms (ensemble whole)"] = (time.monotonic() - t0) * 1000.0
        if catchup > 0:
            new_leader = ens.wait_leader(120, among=survivors)
            write(ens, new_leader, catchup)
            t0 = time.monotonic()
            ens[leader].start(600, wait=False)
            while not serves(ens, leader):
                time.sleep(0.005)
            out[f"catch-up ms ({sync}, {catchup:,} txns)"] = (time.monotonic() - t0) * 1000.0
    finally:
        ens.stop()
        shutil.rmtree(base / kind, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--znodes", default="0,100000", help="comma-separated tree sizes")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--tick", type=int, default=2000, help="tickTime (ms) of both ensembles")
    ap.add_argument("--prewrites", type=int, default=5000)
    ap.add_argument("--catchup", type=int, default=0,
                    help="txns written while the killed member is down (0: no catch-up)")
    ap.add_argument("--sync", choices=("diff", "snap"), default="diff")
    ap.add_argument("--kinds", default="apache,pyzk")
    args = ap.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    if "apache" in kinds and not apache_available():
        print("Apache ZooKeeper is not installed; measuring pyzk only", file=sys.stderr)
        kinds = [k for k in kinds if k != "apache"]
    sizes = [int(x) for x in args.znodes.split(",") if x]
    with tempfile.TemporaryDirectory(prefix="pyzk-failover-bench-") as tmp:
        for n in sizes:
            snap = Path(tmp) / f"seed-{n}"
            t = time.monotonic()
            seeded_snapshot(snap, n)
            print(f"seeded snapshot of {n:,} znodes ({snap.stat().st_size / 1e6:.1f} MB) "
                  f"in {time.monotonic() - t:.1f} s", flush=True)
            results: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
            for rnd in range(args.rounds):
                for kind in kinds if rnd % 2 == 0 else list(reversed(kinds)):
                    r = measure(kind, Path(tmp), snap, tick=args.tick, prewrites=args.prewrites,
                                catchup=args.catchup, sync=args.sync)
                    print(f"  {n:,} znodes, round {rnd + 1} {kind}: "
                          + ", ".join(f"{k} {v:,.0f}" for k, v in r.items()), flush=True)
                    results[kind].append(r)
            metrics = list(results[kinds[0]][0]) if kinds else []
            print(f"\n{n:,} znodes, median of {args.rounds} rounds".ljust(44)
                  + "".join(f"{k:>10}" for k in kinds)
                  + ("  pyzk/apache" if kinds == ["apache", "pyzk"] else ""))
            for m in metrics:
                vals = [statistics.median(r[m] for r in results[k]) for k in kinds]
                line = f"{m:44}" + "".join(f"{v:>10,.0f}" for v in vals)
                if kinds == ["apache", "pyzk"] and vals[0]:
                    line += f"{vals[1] / vals[0]:>13.2f}"
                print(line)
            print(flush=True)
            snap.unlink()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
