"""Does AdminServer polling slow the client port? get throughput with and without a poller.

Dashboards poll ``/commands/monitor`` (Prometheus exporters, Grafana
agents) while clients work; the AdminServer shares the server's event loop
(pyzk) or its JVM (Apache), so polling must not cost client throughput.
For each kind (alternating, ``--rounds`` times) one fresh server with its
admin server on, and the ``get`` workload run twice: alone, and while a
thread GETs ``/commands/monitor`` ``--rate`` times a second (10 by default,
the issue's figure). The table gives ops/s for each, their ratio, and how
many polls were answered and how slowly.

Run: ``python -m benchmarks.admin [--duration 5] [--rounds 2] [--rate 10]``.
Numbers on a 2-core machine are noisy (+-25%): compare inside one run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from benchmarks.loadgen import run_workload
from pyzk.testing.servers import SERVER_CLASSES, apache_available, free_port


class Poller(threading.Thread):
    """GETs one URL ``rate`` times a second until stopped; keeps latencies."""

    def __init__(self, url: str, rate: float) -> None:
        super().__init__(daemon=True)
        self.url = url
        self.interval = 1.0 / rate
        self.stopping = threading.Event()
        self.latencies: list[float] = []
        self.failures = 0

    def run(self) -> None:
        next_at = time.monotonic()
        while not self.stopping.is_set():
            t0 = time.monotonic()
            try:
                with urllib.request.urlopen(self.url, timeout=5) as r:
                    r.read()
                self.latencies.append(time.monotonic() - t0)
            except OSError:
                self.failures += 1
            next_at += self.interval
            self.stopping.wait(max(0.0, next_at - time.monotonic()))

    def stop(self) -> None:
        self.stopping.set()
        self.join(10)


def measure(kind: str, base: Path, duration: float, warmup: float,
            rate: float) -> dict[str, float]:
    admin = free_port()
    out: dict[str, float] = {}
    with SERVER_CLASSES[kind](base / kind, admin_port=admin,
                              extra_cfg={"maxClientCnxns": "0"}) as srv:
        plain = run_workload(srv.host, srv.port, "get", connections=8, window=16,
                             processes=2, duration=duration, warmup=warmup)
        out["alone"] = plain.rate
        poller = Poller(f"http://127.0.0.1:{admin}/commands/monitor", rate)
        poller.start()
        try:
            polled = run_workload(srv.host, srv.port, "get", connections=8, window=16,
                                  processes=2, duration=duration, warmup=warmup,
                                  skip_setup=True)
        finally:
            poller.stop()
        out["polled"] = polled.rate
        lat = sorted(poller.latencies) or [float("nan")]
        out["polls"] = len(poller.latencies)
        out["poll failures"] = poller.failures
        out["poll p99 ms"] = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--rate", type=float, default=10.0, help="monitor polls per second")
    ap.add_argument("--servers", nargs="+", default=["apache", "pyzk"],
                    choices=sorted(SERVER_CLASSES))
    args = ap.parse_args(argv)
    kinds = [k for k in args.servers if k != "apache" or apache_available()]
    results: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory(prefix="pyzk-bench-admin-") as tmp:
        for r in range(args.rounds):
            for kind in kinds:
                results[kind].append(measure(kind, Path(tmp) / f"{kind}{r}", args.duration,
                                             args.warmup, args.rate))
    print(f"get ops/s, 8 connections x 16 outstanding, {args.rounds} rounds (medians); "
          f"poller: /commands/monitor {args.rate:g}/s")
    print("| server | alone | polled | polled/alone | polls answered | failures | poll p99 ms |")
    print("|---|---|---|---|---|---|---|")
    for kind, rounds in results.items():
        def med(key: str, rounds: list[dict[str, float]] = rounds) -> float:
            return statistics.median(x[key] for x in rounds)

        print(f"| {kind} | {med('alone'):,.0f} | {med('polled'):,.0f} | "
              f"{med('polled') / med('alone'):.2f} | {med('polls'):.0f} | "
              f"{med('poll failures'):.0f} | {med('poll p99 ms'):.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
