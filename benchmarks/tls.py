"""The cost of TLS on the client port, pyzk against Apache ZooKeeper 3.8, in one run.

For each kind (alternating, ``--rounds`` times) one fresh server serves both
clientPort and secureClientPort (Apache with its Netty connection factory,
as TLS needs; key and trust stores made here, client certificates required
as Apache's default ``ssl.clientAuth=need`` asks), and the ``get`` and
``set`` workloads run over plaintext and over TLS. The table gives ops/s
for each and the TLS/plaintext ratio per server; pyzk/Apache per mode.

Run: ``python -m benchmarks.tls [--duration 5] [--rounds 2]``. Numbers on a
2-core machine are noisy (+-25%): compare the columns of one run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

from benchmarks.loadgen import run_workload
from pyzk.testing.certs import TestPKI, write_keystore
from pyzk.testing.servers import SERVER_CLASSES, apache_available, free_port

WORKLOADS = ("get", "set")


def measure(kind: str, base: Path, pki: TestPKI, duration: float,
            warmup: float) -> dict[str, float]:
    d = base / kind
    d.mkdir(parents=True, exist_ok=True)
    ks = write_keystore(pki.issue("localhost"), d / "keystore.jks", "JKS", "benchpass")
    ts = pki.write_truststore(d / "truststore.jks", "JKS", "benchpass")
    client = pki.issue("bench client")
    (d / "ca.pem").write_bytes(pki.ca_pem())
    (d / "client.crt").write_bytes(client.cert_pem())
    (d / "client.key").write_bytes(client.key_pem())
    tls_port = free_port()
    cfg = {
        "secureClientPort": str(tls_port),
        "serverCnxnFactory": "org.apache.zookeeper.server.NettyServerCnxnFactory",
        "ssl.keyStore.location": str(ks), "ssl.keyStore.password": "benchpass",
        "ssl.trustStore.location": str(ts), "ssl.trustStore.password": "benchpass",
    }
    tls = (str(d / "ca.pem"), str(d / "client.crt"), str(d / "client.key"))
    out: dict[str, float] = {}
    with SERVER_CLASSES[kind](d / "data", extra_cfg=cfg) as srv:
        for workload in WORKLOADS:
            for mode in ("plain", "tls"):
                r = run_workload(srv.host, srv.port, workload, connections=8, window=16,
                                 processes=2, duration=duration, warmup=warmup,
                                 tls=tls if mode == "tls" else None, tls_port=tls_port)
                out[f"{workload} {mode}"] = r.rate
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--kinds", default="apache,pyzk")
    args = ap.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    if "apache" in kinds and not apache_available():
        print("Apache ZooKeeper is not installed; measuring pyzk only", file=sys.stderr)
        kinds = [k for k in kinds if k != "apache"]
    pki = TestPKI("benchmark CA")
    results: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory(prefix="pyzk-tls-bench-") as tmp:
        for rnd in range(args.rounds):
            for kind in kinds if rnd % 2 == 0 else list(reversed(kinds)):
                r = measure(kind, Path(tmp) / f"r{rnd}", pki, args.duration, args.warmup)
                print(f"round {rnd + 1} {kind}: " + ", ".join(f"{k} {v:,.0f}"
                                                             for k, v in r.items()), flush=True)
                results[kind].append(r)
    if not kinds:
        return 1
    med = {k: {m: statistics.median(r[m] for r in rs) for m in rs[0]} for k, rs in results.items()}
    print()
    head = f"{'ops/s, median of ' + str(args.rounds):24}"
    for k in kinds:
        head += f"{k + ' plain':>14}{k + ' tls':>12}{'tls/plain':>11}"
    if len(kinds) == 2:
        ratio = kinds[1] + "/" + kinds[0]
        head += f"{'plain ' + ratio:>20}{'tls ' + ratio:>18}"
    print(head)
    for w in WORKLOADS:
        line = f"{w:24}"
        for k in kinds:
            p, t = med[k][f"{w} plain"], med[k][f"{w} tls"]
            line += f"{p:>14,.0f}{t:>12,.0f}{t / p if p else 0:>11.2f}"
        if len(kinds) == 2:
            a, b = med[kinds[0]], med[kinds[1]]
            for mode, width in (("plain", 20), ("tls", 18)):
                ratio = b[f"{w} {mode}"] / a[f"{w} {mode}"] if a[f"{w} {mode}"] else 0
                line += f"{ratio:>{width}.2f}"
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
