"""Three-server ensembles, pyzk against Apache ZooKeeper 3.8, in one run.

For each kind (alternating, ``--rounds`` times) it starts a fresh ensemble
of three servers on loopback and measures:

* write throughput: the ``set`` workload (100% setData, fsync on) driven
  through the leader, and through a follower (every write is then forwarded
  to the leader, proposed, acked and committed);
* reads through the followers (``get`` on both followers at once, the
  client count split between them), the 90/10 ``mix`` through a follower,
  and ``idle``: getData through a follower beside 1,000 idle sessions
  (every one of them is a global session the leader tracks and the
  follower pings for);
* election time after leader loss: the leader is killed with SIGKILL and the
  clock runs until a surviving member serves a new session again (the time a
  client waits), and until both survivors report a mode (the ensemble is whole).

Run: ``python -m benchmarks.ensemble [--duration 5] [--rounds 2]``. Numbers
on a 2-core machine are noisy (+-25%): compare the two columns of one run.
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.frames import (
    FRAME_LEN,
    close_session,
    connect_frame,
    decode_connect_response,
    encode_request,
)
from benchmarks.loadgen import run_workload
from benchmarks.run import SERVER_CFG
from pyzk.testing.servers import Ensemble, apache_available


def serves(ens: Ensemble, sid: int) -> bool:
    """Member ``sid`` gives a new session within 0.5 s (then closes it).

    A real session, not a reconnect probe: creating one is a txn the leader
    must commit, so only a member with a live quorum behind it passes. (A
    probe that reconnects an unknown session was answered by an Apache
    follower in the few ms before it noticed its leader was gone, which
    made a failover look 10 ms long.)
    """
    try:
        with socket.create_connection((ens[sid].host, ens[sid].port), timeout=0.5) as s:
            s.settimeout(0.5)
            s.sendall(connect_frame(10000))
            resp = decode_connect_response(_frame(s))
            if resp.timeOut <= 0:
                return False
            s.sendall(encode_request(1, close_session()))
            _frame(s)
            return True
    except (OSError, ValueError, EOFError):
        return False


def _frame(s: socket.socket) -> bytes:
    """One length-prefixed frame's payload from a blocking socket."""
    buf = b""
    need = 4
    while len(buf) < need:
        chunk = s.recv(need - len(buf))
        if not chunk:
            raise EOFError("connection closed by server")
        buf += chunk
        if need == 4 and len(buf) == 4:
            need = 4 + FRAME_LEN.unpack(buf)[0]
    return buf[4:]


def _reads_via_followers(ens: Ensemble, followers: list[int], duration: float,
                         warmup: float) -> dict[str, float]:
    """``get`` on every follower at once (4 connections each, one process each)."""
    with ThreadPoolExecutor(len(followers)) as pool:
        futs = [pool.submit(run_workload, "127.0.0.1", ens[sid].port, "get", connections=4,
                            window=16, processes=1, duration=duration, warmup=warmup)
                for sid in followers]
        results = [f.result() for f in futs]
    return {"reads/s via followers": sum(r.rate for r in results),
            "reads p99 ms via followers": max(r.p(99) for r in results) * 1000.0}


def measure(kind: str, base: Path, duration: float, warmup: float, tick: int) -> dict[str, float]:
    ens = Ensemble(base / kind, {1: kind, 2: kind, 3: kind}, tick_time=tick,
                   extra_cfg={"maxSessionTimeout": "60000", **SERVER_CFG})
    ens.start(90)
    out: dict[str, float] = {}
    try:
        leader = ens.wait_leader(60)
        follower = min(s for s in ens.servers if s != leader)
        runs = (("writes", "set", "leader", leader), ("writes", "set", "follower", follower),
                ("mix", "mix", "follower", follower),
                ("idle-1k gets", "idle", "follower", follower))
        for what, workload, via, sid in runs:
            r = run_workload("127.0.0.1", ens[sid].port, workload, connections=8, window=16,
                             processes=2, duration=duration, warmup=warmup)
            out[f"{what}/s via {via}"] = r.rate
            out[f"{what} p99 ms via {via}"] = r.p(99) * 1000.0
        out.update(_reads_via_followers(ens, [s for s in ens.servers if s != leader],
                                        duration, warmup))
        survivors = [s for s in ens.servers if s != leader]
        t0 = time.monotonic()
        ens[leader].kill()
        while not any(serves(ens, s) for s in survivors):
            time.sleep(0.002)
        out["failover ms (first survivor serves)"] = (time.monotonic() - t0) * 1000.0
        ens.wait_leader(60, among=survivors)
        while not all(serves(ens, s) for s in survivors):
            time.sleep(0.002)
        out["failover ms (both survivors serve)"] = (time.monotonic() - t0) * 1000.0
    finally:
        ens.stop()
        shutil.rmtree(base / kind, ignore_errors=True)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--duration", type=float, default=5.0)
    ap.add_argument("--warmup", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--tick", type=int, default=2000, help="tickTime (ms) of both ensembles")
    ap.add_argument("--kinds", default="apache,pyzk")
    args = ap.parse_args(argv)
    kinds = [k for k in args.kinds.split(",") if k]
    if "apache" in kinds and not apache_available():
        print("Apache ZooKeeper is not installed; measuring pyzk only", file=sys.stderr)
        kinds = [k for k in kinds if k != "apache"]
    results: dict[str, list[dict[str, float]]] = {k: [] for k in kinds}
    with tempfile.TemporaryDirectory(prefix="pyzk-ensemble-bench-") as tmp:
        for rnd in range(args.rounds):
            for kind in kinds if rnd % 2 == 0 else list(reversed(kinds)):
                r = measure(kind, Path(tmp), args.duration, args.warmup, args.tick)
                print(f"round {rnd + 1} {kind}: " + ", ".join(f"{k} {v:,.0f}"
                                                             for k, v in r.items()), flush=True)
                results[kind].append(r)
    metrics = list(next(iter(results.values()))[0]) if results and kinds else []
    print()
    print(f"{'median of ' + str(args.rounds) + ' rounds':40}" + "".join(f"{k:>12}" for k in kinds)
          + ("       ratio" if len(kinds) == 2 else ""))
    for m in metrics:
        vals = [statistics.median(r[m] for r in results[k]) for k in kinds]
        line = f"{m:40}" + "".join(f"{v:>12,.0f}" for v in vals)
        if len(kinds) == 2 and vals[0]:
            line += f"{vals[1] / vals[0]:>12.2f}"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
