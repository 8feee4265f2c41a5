"""Drive Apache ZooKeeper 3.8 and pyzk with identical load and print them side by side.

``python -m benchmarks.run [--workloads get mix ...] [--duration S]``

For every workload and round, each server is started on a fresh data
directory, set up, loaded, measured and stopped, alternating Apache, pyzk,
Apache, pyzk... so that slow drifts of the machine (other load, thermal
state) hit both alike. Runs differ by up to +-25% on these machines, so the
table is a comparison inside one run, never against numbers from another.

Columns: throughput (median over rounds), p99 latency (over all measured
requests of all rounds), the servers' CPU use in the window (cores), and
peak RSS (VmHWM from /proc/<pid>/status; for Apache that is the whole JVM).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import statistics
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.loadgen import Result, run_workload
from benchmarks.stats import Histogram
from benchmarks.workloads import WORKLOADS, Params
from pyzk.testing.servers import SERVER_CLASSES, ServerError, ServerProcess, apache_available

log = logging.getLogger(__name__)

ORDER = ("get", "mix", "set", "create", "wide", "watch", "idle")
# Workloads whose measured requests are writes: their numbers only compare
# if the server persisted them (checked through its transaction log files).
WRITES = frozenset({"mix", "set", "create", "watch"})
# Both servers get the same settings; 1,000 sessions from one address need
# maxClientCnxns off (Apache's default is 60 per address).
SERVER_CFG = {"maxClientCnxns": "0", "forceSync": "yes"}
_CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (all its threads), from /proc/<pid>/stat."""
    with open(f"/proc/{pid}/stat") as f:
        text = f.read()
    # Fields after the command name (which may contain spaces) in parentheses.
    fields = text[text.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLK_TCK


def proc_status_kib(pid: int, key: str) -> int:
    """A ``kB`` field (VmHWM, VmRSS, ...) of /proc/<pid>/status, in KiB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


@dataclass
class Cell:
    """All rounds of one workload against one server."""

    results: list[Result] = field(default_factory=list)
    peak_rss: int = 0  # bytes
    failure: str | None = None
    unlogged: bool = False  # wrote no version-2/log.* during a write workload

    def rate(self) -> float:
        return statistics.median(r.rate for r in self.results) if self.results else math.nan

    def hist(self) -> Histogram:
        h = Histogram()
        for r in self.results:
            h.merge(r.hist)
        return h

    def errors(self) -> int:
        return sum(r.errors for r in self.results)

    def server_cores(self) -> float:
        vals = [r.server_cpu / r.duration for r in self.results
                if r.server_cpu is not None and r.duration > 0]
        return statistics.mean(vals) if vals else math.nan

    def to_json(self) -> dict[str, object]:
        h = self.hist()
        return {
            "ops_per_s": self.rate(),
            "rounds": [r.rate for r in self.results],
            "p50_ms": h.percentile(50) * 1e3,
            "p99_ms": h.percentile(99) * 1e3,
            "p999_ms": h.percentile(99.9) * 1e3,
            "errors": self.errors(),
            "server_cores": self.server_cores(),
            "peak_rss_bytes": self.peak_rss,
            "extra": [r.extra for r in self.results],
            "failure": self.failure,
            "unlogged_writes": self.unlogged,
        }


def wrote_txn_log(data_dir: Path) -> bool:
    """Whether a server left a transaction log where Apache keeps it."""
    return any((data_dir / "version-2").glob("log.*"))


def run_one(kind: str, data_dir: Path, workload: str, args: argparse.Namespace,
            params: Params) -> tuple[Result, int, bool]:
    """Start a fresh server, run the workload against it.

    Returns the result, the peak RSS and whether a transaction log was written.
    """
    cls: type[ServerProcess] = SERVER_CLASSES[kind]
    with cls(data_dir, extra_cfg=SERVER_CFG) as srv:
        pid = srv.pid
        assert pid is not None
        res = run_workload(srv.host, srv.port, workload, connections=args.connections,
                           window=args.window, processes=args.processes,
                           duration=args.duration, warmup=args.warmup, params=params,
                           cpu_probe=lambda: proc_cpu_seconds(pid))
        hwm = proc_status_kib(pid, "VmHWM") * 1024
    return res, hwm, wrote_txn_log(data_dir)


def run_all(args: argparse.Namespace) -> dict[str, dict[str, Cell]]:
    params = Params(nodes=args.nodes, watchers=args.watchers, idle_sessions=args.idle_sessions,
                    wide_children=args.wide_children)
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="pyzk-bench-"))
    table: dict[str, dict[str, Cell]] = {}
    broken: dict[str, str] = {}  # server kind -> why it cannot run at all
    try:
        for workload in args.workloads:
            cells = table.setdefault(workload, {k: Cell() for k in args.servers})
            for rnd in range(args.rounds):
                for kind in args.servers:
                    cell = cells[kind]
                    if kind in broken:
                        cell.failure = broken[kind]
                        continue
                    data_dir = workdir / f"{kind}-{workload}-{rnd}"
                    try:
                        res, hwm, logged = run_one(kind, data_dir, workload, args, params)
                    except ServerError as e:
                        # A server that cannot start cannot run any workload.
                        first = str(e).strip().splitlines()[-1] if str(e).strip() else repr(e)
                        broken[kind] = cell.failure = f"did not start: {first}"
                        log.error("%s did not start:\n%s", kind, e)
                        continue
                    except (OSError, RuntimeError, TimeoutError) as e:
                        cell.failure = f"{type(e).__name__}: {e}"
                        log.error("%s %s round %d failed: %s", kind, workload, rnd, e)
                        continue
                    finally:
                        if not args.keep:
                            shutil.rmtree(data_dir, ignore_errors=True)
                    cell.results.append(res)
                    cell.unlogged |= workload in WRITES and not logged
                    cell.peak_rss = max(cell.peak_rss, hwm)
                    log.info("%-6s round %d  %s  peak RSS %.0f MB", kind, rnd, res.summary(),
                             hwm / 2**20)
    finally:
        if not args.workdir and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return table


def _fmt_rate(c: Cell | None) -> str:
    if c is None or not c.results:
        return "n/a"
    return f"{c.rate():,.0f}" + ("!" if c.errors() else "")


def _fmt_ms(c: Cell | None) -> str:
    return f"{c.hist().percentile(99) * 1e3:.2f}" if c is not None and c.results else "n/a"


def _fmt_mb(c: Cell | None) -> str:
    return f"{c.peak_rss / 2**20:,.0f}" if c is not None and c.results else "n/a"


def _fmt_cores(c: Cell | None) -> str:
    if c is None or not c.results or math.isnan(c.server_cores()):
        return "n/a"
    return f"{c.server_cores():.2f}"


def format_table(table: dict[str, dict[str, Cell]]) -> str:
    """The side-by-side table; ratio is pyzk/Apache throughput (>1: pyzk faster)."""
    head = ["workload", "Apache ops/s", "pyzk ops/s", "ratio", "Apache p99 ms", "pyzk p99 ms",
            "Apache cores", "pyzk cores", "Apache RSS MB", "pyzk RSS MB"]
    rows = [head]
    notes: list[str] = []
    for workload, cells in table.items():
        a, p = cells.get("apache"), cells.get("pyzk")
        ratio = "n/a"
        if a and p and a.results and p.results and a.rate() > 0:
            ratio = f"{p.rate() / a.rate():.2f}"
        rows.append([workload, _fmt_rate(a), _fmt_rate(p), ratio, _fmt_ms(a), _fmt_ms(p),
                     _fmt_cores(a), _fmt_cores(p), _fmt_mb(a), _fmt_mb(p)])
        for kind, c in cells.items():
            if c.failure:
                notes.append(f"{workload}/{kind}: {c.failure}")
            if c.unlogged:
                notes.append(f"{workload}/{kind}: wrote no transaction log (version-2/log.*):"
                             " its writes were not persisted, so its numbers do not compare")
            if c.errors():
                notes.append(f"{workload}/{kind}: {c.errors()} requests failed (marked !)")
            fanouts = [r.extra["all_delivered_ms"] for r in c.results
                       if "all_delivered_ms" in r.extra]
            if fanouts:
                rounds = sum(int(r.extra["rounds"]) for r in c.results)
                notes.append(f"{workload}/{kind}: all {c.results[0].extra['watchers']:.0f} "
                             f"notifications delivered in {statistics.median(fanouts):.1f} ms "
                             f"(median over {len(fanouts)} runs of {rounds} rounds in all)")
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = ["  ".join(cell.rjust(w) if i else cell.ljust(w)
                       for i, (cell, w) in enumerate(zip(row, widths, strict=True)))
             for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    if notes:
        lines.append("")
        lines += notes
    lines.append("")
    lines.append("ratio = pyzk/Apache ops/s; run-to-run noise is about +-25%. "
                 "watch: ops/s = notifications per second of fan-out time.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description="Compare pyzk with Apache ZooKeeper 3.8.")
    ap.add_argument("--workloads", nargs="+", default=list(ORDER), choices=sorted(WORKLOADS))
    ap.add_argument("--servers", nargs="+", default=["apache", "pyzk"],
                    choices=sorted(SERVER_CLASSES))
    ap.add_argument("--duration", type=float, default=10.0, help="measured seconds per run")
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--rounds", type=int, default=2, help="runs per server and workload")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--window", type=int, default=16, help="outstanding requests per connection")
    ap.add_argument("--processes", type=int, default=2, help="load generator processes")
    ap.add_argument("--nodes", type=int, default=Params.nodes)
    ap.add_argument("--watchers", type=int, default=Params.watchers)
    ap.add_argument("--idle-sessions", type=int, default=Params.idle_sessions)
    ap.add_argument("--wide-children", type=int, default=Params.wide_children)
    ap.add_argument("--workdir", help="where data directories go (default: a temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep data directories and logs")
    ap.add_argument("--json", help="also write the results to this JSON file")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if "apache" in args.servers and not apache_available():
        ap.error("Apache ZooKeeper 3.8 is not installed (apt-get install zookeeper)")
    table = run_all(args)
    print(format_table(table))
    if args.json:
        out = {w: {k: c.to_json() for k, c in cells.items()} for w, cells in table.items()}
        Path(args.json).write_text(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
