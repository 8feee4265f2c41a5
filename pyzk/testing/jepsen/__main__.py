"""``python -m pyzk.testing.jepsen``: run Jepsen-style tests, or re-check saved histories.

Each run prints one summary line to stdout and saves its history (JSON lines)
in ``--out``; a run that found an anomaly also gets the members' logs saved
beside it and its checker's explanation printed. The exit status is 0 when
every run was valid, 1 when any anomaly was found, 2 when the harness or the
ensemble itself broke (a member that never served again, a client thread
that crashed) and nothing was judged invalid, 3 when a check could not be
completed (a linearizability search out of budget, final reads missing) and
nothing else went wrong. See docs/JEPSEN.md.
"""

from __future__ import annotations

import argparse
import itertools
import logging
import sys
from pathlib import Path

from pyzk.testing.jepsen.history import History
from pyzk.testing.jepsen.nemesis import NEMESIS_NAMES, resolve
from pyzk.testing.jepsen.workloads import WORKLOADS

log = logging.getLogger("pyzk.testing.jepsen")

EXIT_VALID = 0
EXIT_ANOMALY = 1
EXIT_BROKEN = 2
EXIT_UNKNOWN = 3


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m pyzk.testing.jepsen",
        description="Jepsen-style fault runs against pyzk, Apache ZooKeeper or a mixed ensemble.")
    p.add_argument("--kinds", default="pyzk",
                   help="pyzk, apache or mixed (comma-separated for several); default pyzk")
    p.add_argument("--members", type=int, default=3, choices=(3, 5),
                   help="ensemble size (partition-bridge needs 5)")
    p.add_argument("--workload", default="register",
                   help=f"{', '.join(WORKLOADS)} or all (comma-separated for several)")
    p.add_argument("--nemesis", default="mixed",
                   help=f"{', '.join(NEMESIS_NAMES)}; a comma-separated list picks among "
                        "those names each cycle")
    p.add_argument("--seed", type=int, default=1, help="seed of the first run (then +1 each)")
    p.add_argument("--time", type=float, default=20.0, dest="duration",
                   help="seconds of client ops and faults per run (default 20)")
    p.add_argument("--runs", type=int, default=1,
                   help="runs per kinds x workload; every run of the command gets its "
                        "own seed: seed, seed+1, ... (so its own fault schedule)")
    p.add_argument("--out", type=Path, default=Path("jepsen-out"),
                   help="directory for histories and logs (default ./jepsen-out)")
    p.add_argument("--tick-time", type=int, default=250, help="tickTime, ms (default 250)")
    p.add_argument("--session-timeout", type=float, default=3.0,
                   help="client session timeout, s (default 3)")
    p.add_argument("--clients-per-node", type=int, default=2,
                   help="kazoo clients pinned to each member (default 2)")
    p.add_argument("--keep-logs", action="store_true",
                   help="save the members' logs for valid runs too")
    p.add_argument("--check", type=Path, nargs="+", metavar="HISTORY",
                   help="re-check saved histories instead of running")
    p.add_argument("-v", "--verbose", action="count", default=0,
                   help="log to stderr (-v INFO, -vv DEBUG)")
    args = p.parse_args(argv)
    if args.workload == "all":
        args.workloads = list(WORKLOADS)
    else:
        args.workloads = [w.strip() for w in args.workload.split(",")]
        bad = [w for w in args.workloads if w not in WORKLOADS]
        if bad:
            p.error(f"unknown workload {', '.join(bad)}; known: {', '.join(WORKLOADS)}, all")
    args.kinds_list = [k.strip() for k in args.kinds.split(",")]
    try:
        resolve(args.nemesis)
    except ValueError as e:
        p.error(str(e))
    if args.runs < 1 or args.duration <= 0:
        p.error("--runs must be at least 1 and --time positive")
    return args


def recheck(paths: list[Path]) -> int:
    """Check saved histories again (after a checker fix, or one edited by hand)."""
    from pyzk.testing.jepsen.checkers import check, explain, summary

    status = EXIT_VALID
    for path in paths:
        result = check(History.load(path))
        print(f"{path}: {summary(result)}")
        if result.valid is False:
            print(explain(result))
            status = EXIT_ANOMALY
        elif result.valid is None and status == EXIT_VALID:
            status = EXIT_UNKNOWN
    return status


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.verbose < 2:
        logging.getLogger("kazoo").setLevel(logging.CRITICAL)
    if args.check:
        return recheck(args.check)

    from pyzk.testing.jepsen.checkers import explain, summary
    from pyzk.testing.jepsen.runner import RunConfig, ensemble_kinds, run
    from pyzk.testing.servers import apache_available

    if any(k != "pyzk" for k in args.kinds_list) and not apache_available():
        print("Apache ZooKeeper (java and Debian's jars) is needed for --kinds apache/mixed",
              file=sys.stderr)
        return EXIT_BROKEN
    failed = []
    broken = unknown = False
    seeds = itertools.count(args.seed)
    for kinds in args.kinds_list:
        for workload in args.workloads:
            for _ in range(args.runs):
                config = RunConfig(
                    ensemble_kinds(kinds, args.members), workload, args.nemesis,
                    seed=next(seeds), duration=args.duration, tick_time=args.tick_time,
                    session_timeout=args.session_timeout,
                    clients_per_node=args.clients_per_node)
                try:
                    result = run(config, args.out, keep_logs=args.keep_logs)
                except Exception as e:  # the ensemble did not start, say: next run
                    log.exception("run %s failed", config.run_id())
                    print(f"{config.run_id():<40} BROKEN  {type(e).__name__}: "
                          f"{str(e).splitlines()[0] if str(e) else ''}", flush=True)
                    broken = True
                    continue
                print(f"{result.summary_line()}  [{summary(result.check)}]", flush=True)
                for err in result.errors:
                    print(f"    error: {err}", flush=True)
                broken |= bool(result.errors)
                unknown |= result.check.valid is None
                if result.check.valid is False:
                    failed.append(result)
    for result in failed:
        print(f"\n=== {result.config.run_id()}: {result.path} (logs {result.logs})")
        print(explain(result.check))
    total = len(args.kinds_list) * len(args.workloads) * args.runs
    print(f"{total} runs, {len(failed)} with anomalies"
          + (", harness/ensemble errors" if broken else "")
          + (", incomplete checks" if unknown else ""))
    if failed:
        return EXIT_ANOMALY
    if broken:
        return EXIT_BROKEN
    return EXIT_UNKNOWN if unknown else EXIT_VALID


if __name__ == "__main__":
    sys.exit(main())
