"""pyzk.workers: throughput and server CPU with 0, 1 and 2 worker processes, Apache beside.

``python -m benchmarks.workers [--workloads get mix set] [--duration 5] [--rounds 1]``

For each workload and round: Apache, pyzk, pyzk with 1 worker, pyzk with 2
workers, each on a fresh data directory (the settings of benchmarks.run).
Measured in the window: replies per second, and the server's CPU seconds
summed over its processes (utime+stime from /proc/<pid>/stat of the JVM, or
of the orderer and every worker process); from them ops per server
CPU-second, which says what one core buys whatever else shares the machine.
The orderer's own CPU is kept apart: it is the part that does not spread.

Then the projection for a server alone on 8 and 16 cores (printed with its
assumptions): pyzk with N = cores - 1 workers, Apache with its threads. On a
2-core machine shared with the load generator (and possibly other work) the
measured throughput is bounded by the machine, not by the server: the
per-CPU-second figures are what the projection stands on.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.loadgen import run_workload
from benchmarks.run import SERVER_CFG, proc_cpu_seconds
from benchmarks.workloads import Params
from pyzk.testing.servers import SERVER_CLASSES, ServerProcess, apache_available

log = logging.getLogger(__name__)

#: name -> (server kind, pyzk.workers)
VARIANTS = {"apache": ("apache", 0), "pyzk": ("pyzk", 0), "pyzk-w1": ("pyzk", 1),
            "pyzk-w2": ("pyzk", 2)}
PROJECT_CORES = (8, 16)


def child_pids(pid: int) -> list[int]:
    """The direct children of ``pid`` (a pyzk server's workers; snapshot writers
    come and go and are left out by the caller's timing, not here)."""
    out: list[int] = []
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            out += [int(p) for p in (task / "children").read_text().split()]
    except FileNotFoundError:
        pass
    return out


def process_cpu(pid: int) -> tuple[float, float]:
    """(CPU seconds of ``pid`` itself, of it and all its children now alive)."""
    own = proc_cpu_seconds(pid)
    total = own
    for child in child_pids(pid):
        with contextlib.suppress(FileNotFoundError):
            total += proc_cpu_seconds(child)
    return own, total


@dataclass
class Sample:
    rate: float
    server_cpu: float  # CPU seconds in the window, all server processes
    orderer_cpu: float  # the main process alone
    ops: int
    errors: int
    duration: float

    @property
    def ops_per_cpu_s(self) -> float:
        return self.ops / self.server_cpu if self.server_cpu > 0 else math.nan


@dataclass
class Cell:
    samples: list[Sample] = field(default_factory=list)
    failure: str | None = None

    def med(self, attr: str) -> float:
        vals = [getattr(s, attr) for s in self.samples]
        return statistics.median(vals) if vals else math.nan

    def cpu_per_op(self) -> float:
        """Server CPU seconds per op (sum over rounds)."""
        ops = sum(s.ops for s in self.samples)
        return sum(s.server_cpu for s in self.samples) / ops if ops else math.nan

    def orderer_cpu_per_op(self) -> float:
        ops = sum(s.ops for s in self.samples)
        return sum(s.orderer_cpu for s in self.samples) / ops if ops else math.nan


def run_variant(name: str, data_dir: Path, workload: str, args: argparse.Namespace,
                params: Params) -> Sample:
    kind, workers = VARIANTS[name]
    cfg = dict(SERVER_CFG)
    if workers:
        cfg["pyzk.workers"] = str(workers)
    cls: type[ServerProcess] = SERVER_CLASSES[kind]
    with cls(data_dir, extra_cfg=cfg) as srv:
        pid = srv.pid
        assert pid is not None
        marks: list[tuple[float, float]] = []

        def probe() -> float:
            marks.append(process_cpu(pid))
            return marks[-1][1]

        res = run_workload(srv.host, srv.port, workload, connections=args.connections,
                           window=args.window, processes=args.processes,
                           duration=args.duration, warmup=args.warmup, params=params,
                           cpu_probe=probe)
    assert res.server_cpu is not None and len(marks) == 2
    return Sample(rate=res.rate, server_cpu=res.server_cpu,
                  orderer_cpu=marks[1][0] - marks[0][0], ops=res.ops, errors=res.errors,
                  duration=res.duration)


def run_all(args: argparse.Namespace) -> dict[str, dict[str, Cell]]:
    params = Params(nodes=args.nodes)
    workdir = Path(tempfile.mkdtemp(prefix="pyzk-bench-workers-"))
    table: dict[str, dict[str, Cell]] = {}
    try:
        for workload in args.workloads:
            cells = table.setdefault(workload, {v: Cell() for v in args.variants})
            for rnd in range(args.rounds):
                for name in args.variants:
                    data_dir = workdir / f"{name}-{workload}-{rnd}"
                    try:
                        s = run_variant(name, data_dir, workload, args, params)
                    except (OSError, RuntimeError, TimeoutError) as e:
                        cells[name].failure = f"{type(e).__name__}: {str(e)[:200]}"
                        log.error("%s %s round %d failed: %s", name, workload, rnd, e)
                        continue
                    finally:
                        shutil.rmtree(data_dir, ignore_errors=True)
                    cells[name].samples.append(s)
                    log.info("%-8s %-4s round %d: %8.0f ops/s, server %.2f cores "
                             "(orderer %.2f), %.0f ops per CPU-second, errors %d",
                             name, workload, rnd, s.rate, s.server_cpu / args.duration,
                             s.orderer_cpu / args.duration, s.ops_per_cpu_s, s.errors)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return table


def project(cells: dict[str, Cell], cores: int) -> dict[str, float]:
    """Ops/s on ``cores`` cores given the measured CPU costs (see ASSUMPTIONS)."""
    out: dict[str, float] = {}
    a = cells.get("apache")
    if a is not None and a.samples:
        out["apache"] = cores / a.cpu_per_op()
    w1, w2 = cells.get("pyzk-w1"), cells.get("pyzk-w2")
    if w1 is not None and w2 is not None and w1.samples and w2.samples:
        n = cores - 1
        m1, m2 = w1.cpu_per_op(), w2.cpu_per_op()
        total = max(m1 + (m2 - m1) * (n - 1), min(m1, m2))  # linear in the worker count
        o1, o2 = w1.orderer_cpu_per_op(), w2.orderer_cpu_per_op()
        # o(N) = serial + shared / (N + 1): the orderer's writes do not spread,
        # its share of the clients does
        shared = max(0.0, 6 * (o1 - o2))
        serial = max(o2 - shared / 3, 0.0)
        orderer = serial + shared / (n + 1)
        cpu_bound = cores / total
        out["pyzk"] = min(cpu_bound, 1 / orderer) if orderer > 0 else cpu_bound
        out["pyzk_orderer_limit"] = 1 / orderer if orderer > 0 else math.inf
        out["pyzk_cpu_limit"] = cpu_bound
    return out


ASSUMPTIONS = """\
Projection for a server alone on P cores (P = 8, 16), from this run's CPU costs:
  * pyzk runs N = P - 1 workers, each process on its own core, connections
    spread evenly by the kernel, the load generator elsewhere;
  * total server CPU per op grows linearly with N from the 1- and 2-worker
    runs (every write is applied once per process: that part grows with N);
  * the orderer's CPU per op is serial + shared/(N+1), fitted to the 1- and
    2-worker runs: ordering, logging and fanning out writes do not spread,
    its share of the clients' reads does; pyzk's projection is the smaller of
    P / (CPU per op) and 1 / (orderer CPU per op);
  * Apache: P / (its CPU per op), i.e. perfect scaling of its threads, which
    is optimistic for Apache (its commit path is one thread too);
  * writes (set) stay bound by the disk's fsync rate, which neither counts."""


def format_table(table: dict[str, dict[str, Cell]], variants: list[str]) -> str:
    lines = ["workload  variant   ops/s    server cores  orderer cores  ops/server-CPU-s  errors"]
    for workload, cells in table.items():
        for name in variants:
            c = cells[name]
            if not c.samples:
                lines.append(f"{workload:<9} {name:<9} failed: {c.failure}")
                continue
            cores = statistics.median(s.server_cpu / s.duration for s in c.samples)
            ocores = statistics.median(s.orderer_cpu / s.duration for s in c.samples)
            lines.append(f"{workload:<9} {name:<9} {c.med('rate'):>8,.0f} {cores:>13.2f} "
                         f"{ocores:>14.2f} {c.med('ops_per_cpu_s'):>17,.0f} "
                         f"{sum(s.errors for s in c.samples):>7}")
    lines.append("")
    lines.append(ASSUMPTIONS)
    lines.append("")
    lines.append("workload  cores  Apache ops/s  pyzk ops/s  (pyzk CPU limit / orderer limit)")
    for workload, cells in table.items():
        for p in PROJECT_CORES:
            pr = project(cells, p)
            lines.append(f"{workload:<9} {p:>5} {pr.get('apache', math.nan):>13,.0f} "
                         f"{pr.get('pyzk', math.nan):>11,.0f}  "
                         f"({pr.get('pyzk_cpu_limit', math.nan):,.0f} / "
                         f"{pr.get('pyzk_orderer_limit', math.nan):,.0f})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workloads", nargs="+", default=["get", "mix", "set"],
                    choices=["get", "mix", "set", "create"])
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=1)
    # enough connections that the kernel spreads them over 3 processes
    ap.add_argument("--connections", type=int, default=12)
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--json", help="also write the samples here")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    if "apache" in args.variants and not apache_available():
        log.warning("Apache ZooKeeper is not installed: leaving it out")
        args.variants = [v for v in args.variants if v != "apache"]
    table = run_all(args)
    print(format_table(table, args.variants))
    if args.json:
        Path(args.json).write_text(json.dumps(
            {w: {v: [s.__dict__ for s in c.samples] for v, c in cells.items()}
             for w, cells in table.items()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
