"""Load generator: raw client protocol, N outstanding requests per connection.

Design, so that the generator is never the bottleneck:

- every request frame is encoded once, before the run (`FrameRing`);
- each connection is an asyncio Protocol (uvloop when installed) that keeps
  ``window`` requests in flight: every read walks all complete reply frames
  with one struct call each and immediately writes as many new requests as
  replies arrived, as one slice of the ring, in one write;
- latency is accounted per batch: requests written together share a send
  time, replies read together share a receive time, so a read costs one
  histogram update per batch, not one per reply;
- C connections are spread over P worker processes (multiprocessing), each
  with its own event loop; they start together at a time the parent picks,
  warm up, then count only replies received inside the measurement window.

All times are ``time.monotonic()`` (CLOCK_MONOTONIC on Linux), which is the
same clock in every process, so the parent can hand out absolute times.

Run directly: ``python -m benchmarks.loadgen --port 2181 --workload get``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import math
import multiprocessing
import os
import ssl
import sys
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, cast

from benchmarks.frames import (
    FRAME_LEN,
    PING_FRAME,
    REPLY_HEAD,
    FrameRing,
    close_session,
    connect_frame,
    decode_connect_response,
    encode_request,
    get_data,
    set_data,
)
from benchmarks.rawclient import RawClient
from benchmarks.stats import Histogram
from benchmarks.workloads import WATCH_PATH, WORKLOADS, Params, Workload

log = logging.getLogger(__name__)

_unpack_reply = REPLY_HEAD.unpack_from
_unpack_len = FRAME_LEN.unpack_from
SESSION_TIMEOUT_MS = 30000
CONNECT_BATCH = 40  # concurrent handshakes: stays under a 50-deep listen backlog
MAX_WINDOW = 1024


class HandshakeError(ConnectionError):
    """The server closed or refused the session before it was established."""


class _Session(asyncio.Protocol):
    """Handshake and framing shared by all connection kinds."""

    __slots__ = ("transport", "ready", "session_id", "timeout_ms", "buf")

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.ready: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.session_id = 0
        self.timeout_ms = 0
        self.buf = bytearray()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        transport.write(connect_frame(SESSION_TIMEOUT_MS))

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(HandshakeError(f"closed during handshake: {exc}"))
        self.on_lost()

    def on_lost(self) -> None:
        """Hook for subclasses: the connection is gone."""

    def _handshake(self, data: bytes) -> bytes | None:
        """Consume the ConnectResponse; returns bytes left over, or None if incomplete."""
        self.buf += data
        if len(self.buf) < 4:
            return None
        (n,) = _unpack_len(self.buf, 0)
        if len(self.buf) < 4 + n:
            return None
        resp = decode_connect_response(bytes(self.buf[4 : 4 + n]))
        rest = bytes(self.buf[4 + n :])
        self.buf = bytearray()
        if resp.timeOut <= 0:
            self.ready.set_exception(HandshakeError("session refused"))
            assert self.transport is not None
            self.transport.close()
            return None
        self.session_id = resp.sessionId
        self.timeout_ms = resp.timeOut
        self.ready.set_result(None)
        return rest

    def close_session(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(encode_request(0x7FFFFFFF, close_session()))


class LoadConnection(_Session):
    """Keeps ``window`` requests in flight from a ring until the run ends."""

    __slots__ = ("ring", "window", "clock", "pending", "hist", "completed", "total", "errors",
                 "notifications", "outstanding", "running", "closing", "done")

    def __init__(self, ring: FrameRing, window: int, clock: _Clock) -> None:
        super().__init__()
        self.ring = ring
        self.window = window
        self.clock = clock
        self.pending: deque[list[float | int]] = deque()  # [send time, count]
        self.hist = clock.hist
        self.completed = 0  # replies received inside the measurement window
        self.total = 0  # all replies
        self.errors = 0  # replies with err != 0
        self.notifications = 0
        self.outstanding = 0
        self.running = False
        self.closing = False
        self.done: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def close_session(self) -> None:
        self.closing = True  # the closeSession reply is not a load reply
        super().close_session()

    def start(self) -> None:
        """Fill the window; from now on every reply triggers a new request."""
        self.running = True
        now = time.monotonic()
        assert self.transport is not None
        self.transport.write(self.ring.take(self.window))
        self.pending.append([now, self.window])
        self.outstanding = self.window

    def data_received(self, data: bytes) -> None:
        if not self.ready.done():
            rest = self._handshake(data)
            if not rest:
                return
            data = rest
        if self.closing:
            return
        buf = self.buf
        if buf:
            buf += data
            view: bytes | bytearray = buf
        else:
            view = data
        end = len(view)
        pos = 0
        replies = 0
        errors = 0
        while end - pos >= 20:
            n, xid, _zxid, err = _unpack_reply(view, pos)
            nxt = pos + 4 + n
            if nxt > end:
                break
            pos = nxt
            if xid >= 0:
                replies += 1
                if err:
                    errors += 1
            elif xid == -1:
                self.notifications += 1
        if pos < end:
            if buf:
                del buf[:pos]
            else:
                self.buf = bytearray(view[pos:])
        elif buf:
            buf.clear()
        if not replies:
            return
        now = time.monotonic()
        clock = self.clock
        self.total += replies
        self.errors += errors
        self.outstanding -= replies
        record = clock.window_start <= now < clock.window_end
        if record:
            self.completed += replies
        pending = self.pending
        left = replies
        add = self.hist.add
        while left:
            batch = pending[0]
            c = batch[1]
            if c <= left:
                left -= c
                pending.popleft()
                if record:
                    add(now - batch[0], c)
            else:
                batch[1] = c - left
                if record:
                    add(now - batch[0], left)
                left = 0
        if self.running and now < clock.send_end:
            assert self.transport is not None
            self.transport.write(self.ring.take(replies))
            pending.append([now, replies])
            self.outstanding += replies
        else:
            self.running = False
            if not self.outstanding and not self.done.done():
                self.done.set_result(None)

    def on_lost(self) -> None:
        if not self.done.done():
            if self.running or self.outstanding:
                self.done.set_exception(ConnectionError("connection lost during the run"))
            else:
                self.done.set_result(None)


class IdleConnection(_Session):
    """A session that only pings, as an idle client library would (every timeout/3)."""

    __slots__ = ("_timer",)

    def __init__(self) -> None:
        super().__init__()
        self._timer: asyncio.TimerHandle | None = None

    def data_received(self, data: bytes) -> None:
        if not self.ready.done():
            self._handshake(data)
            if self.ready.done() and not self.ready.exception():
                self._schedule()
        # Ping replies (and anything else) need no handling.

    def _schedule(self) -> None:
        loop = asyncio.get_running_loop()
        self._timer = loop.call_later(self.timeout_ms / 3000, self._ping)

    def _ping(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(PING_FRAME)
            self._schedule()

    def on_lost(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


class WatchConnection(_Session):
    """Sets a data watch on one node and records when its notification arrives."""

    __slots__ = ("arm_frame", "armed", "fired")

    def __init__(self, arm_frame: bytes) -> None:
        super().__init__()
        self.arm_frame = arm_frame
        self.armed: asyncio.Future[None] | None = None
        self.fired: asyncio.Future[float] | None = None

    def arm(self) -> None:
        loop = asyncio.get_running_loop()
        self.armed = loop.create_future()
        self.fired = loop.create_future()
        assert self.transport is not None
        self.transport.write(self.arm_frame)

    def data_received(self, data: bytes) -> None:
        if not self.ready.done():
            rest = self._handshake(data)
            if not rest:
                return
            data = rest
        self.buf += data
        buf = self.buf
        pos = 0
        while len(buf) - pos >= 20:
            n, xid, _zxid, err = _unpack_reply(buf, pos)
            if pos + 4 + n > len(buf):
                break
            pos += 4 + n
            if xid == -1:
                if self.fired is not None and not self.fired.done():
                    self.fired.set_result(time.monotonic())
            elif xid >= 0 and self.armed is not None and not self.armed.done():
                if err:
                    self.armed.set_exception(RuntimeError(f"arming watch failed: {err}"))
                else:
                    self.armed.set_result(None)
        del buf[:pos]


@dataclass
class _Clock:
    """Phase boundaries of one run, shared by a worker's connections."""

    window_start: float = math.inf
    window_end: float = math.inf
    send_end: float = math.inf
    hist: Histogram = field(default_factory=Histogram)


@dataclass(frozen=True)
class WorkerSpec:
    host: str
    port: int
    workload: str
    params: Params
    conn_ids: tuple[int, ...]
    window: int
    idle_sessions: int = 0
    watchers: int = 0
    #: (CA file, client certificate file, key file) to connect with TLS
    #: (a secureClientPort); picklable, since workers are processes.
    tls: tuple[str, str | None, str | None] | None = None


def _client_tls(tls: tuple[str, str | None, str | None] | None) -> ssl.SSLContext | None:
    if tls is None:
        return None
    ca, cert, key = tls
    ctx = ssl.create_default_context(cafile=ca)
    if cert is not None:
        ctx.load_cert_chain(cert, key)
    return ctx


def _new_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


async def _open(host: str, port: int, factory: Callable[[], _Session],
                deadline: float, tls: ssl.SSLContext | None = None) -> _Session:
    """Connect and complete the handshake, retrying while the server warms up."""
    loop = asyncio.get_running_loop()
    while True:
        proto = None
        try:
            _, proto = await loop.create_connection(factory, host, port, ssl=tls)
            await asyncio.wait_for(proto.ready, 10)
            return proto
        except (TimeoutError, OSError, HandshakeError) as e:
            if proto is not None and proto.transport is not None:
                proto.transport.close()
            if time.monotonic() > deadline:
                raise ConnectionError(f"no session from {host}:{port}: {e}") from e
            await asyncio.sleep(0.05)


async def _open_many(host: str, port: int, factories: list[Callable[[], _Session]],
                     tls: ssl.SSLContext | None = None) -> list[_Session]:
    deadline = time.monotonic() + 60
    out: list[_Session] = []
    for i in range(0, len(factories), CONNECT_BATCH):
        chunk = factories[i : i + CONNECT_BATCH]
        out += await asyncio.gather(*(_open(host, port, f, deadline, tls) for f in chunk))
    return out


class _PipeReader:
    """Messages from the parent, awaited without blocking the event loop."""

    def __init__(self, pipe: Connection) -> None:
        self.pipe = pipe
        self.queue: asyncio.Queue[Any] = asyncio.Queue()
        loop = asyncio.get_running_loop()
        loop.add_reader(pipe.fileno(), self._readable)

    def _readable(self) -> None:
        while self.pipe.poll():
            try:
                self.queue.put_nowait(self.pipe.recv())
            except EOFError:
                self.queue.put_nowait(("quit",))
                asyncio.get_running_loop().remove_reader(self.pipe.fileno())
                return

    async def get(self) -> Any:
        return await self.queue.get()


async def _worker_rate(spec: WorkerSpec, pipe: Connection, wl: Workload) -> dict[str, Any]:
    clock = _Clock()
    rings = [FrameRing(wl.ops(c, spec.params)) for c in spec.conn_ids]
    if any(len(r) <= spec.window for r in rings):
        raise ValueError("window must be smaller than the ring")
    factories: list[Callable[[], _Session]] = [
        (lambda r=r: LoadConnection(r, spec.window, clock)) for r in rings
    ]
    factories += [IdleConnection] * spec.idle_sessions
    sessions = await _open_many(spec.host, spec.port, factories, _client_tls(spec.tls))
    loads = [s for s in sessions if isinstance(s, LoadConnection)]
    reader = _PipeReader(pipe)
    pipe.send(("ready", len(sessions)))
    msg = await reader.get()
    if msg[0] != "start":
        return {"aborted": True}
    _, t0, warmup, duration = msg
    clock.window_start = t0 + warmup
    clock.window_end = clock.send_end = t0 + warmup + duration
    loop = asyncio.get_running_loop()
    cpu: dict[str, float] = {}

    def sample(key: str) -> None:
        t = os.times()
        cpu[key] = t.user + t.system

    loop.call_later(max(0.0, clock.window_start - time.monotonic()), sample, "start")
    loop.call_later(max(0.0, clock.window_end - time.monotonic()), sample, "end")
    await asyncio.sleep(max(0.0, t0 - time.monotonic()))
    for c in loads:
        c.start()
    await asyncio.wait_for(asyncio.gather(*(c.done for c in loads)),
                           timeout=max(0.0, clock.send_end - time.monotonic()) + 30)
    while "end" not in cpu:
        await asyncio.sleep(0.01)
    for s in sessions:
        s.close_session()
    await asyncio.sleep(0.05)
    for s in sessions:
        assert s.transport is not None
        s.transport.close()
    return {
        "completed": sum(c.completed for c in loads),
        "total": sum(c.total for c in loads),
        "errors": sum(c.errors for c in loads),
        "hist": clock.hist.to_state(),
        "cpu": cpu["end"] - cpu["start"],
    }


async def _worker_watch(spec: WorkerSpec, pipe: Connection, wl: Workload) -> dict[str, Any]:
    arm = encode_request(1, get_data(WATCH_PATH, watch=True))
    sessions = await _open_many(spec.host, spec.port,
                                [lambda: WatchConnection(arm)] * spec.watchers)
    watchers = [s for s in sessions if isinstance(s, WatchConnection)]
    reader = _PipeReader(pipe)
    pipe.send(("ready", len(sessions)))
    while True:
        msg = await reader.get()
        if msg[0] == "arm":
            for w in watchers:
                w.arm()
            await asyncio.wait_for(asyncio.gather(*(w.armed for w in watchers)), 60)
            pipe.send(("armed",))
        elif msg[0] == "collect":
            arrivals = await asyncio.wait_for(
                asyncio.gather(*(w.fired for w in watchers)), 60)
            pipe.send(("fired", arrivals))
        else:
            break
    for s in sessions:
        s.close_session()
    await asyncio.sleep(0.05)
    for s in sessions:
        assert s.transport is not None
        s.transport.close()
    return {}


def _worker_main(spec: WorkerSpec, pipe: Connection) -> None:
    """Entry point of one worker process: runs its sessions, sends back a result."""
    loop = _new_loop()
    asyncio.set_event_loop(loop)
    wl = WORKLOADS[spec.workload]
    try:
        body = _worker_watch if wl.kind == "watch" else _worker_rate
        result = loop.run_until_complete(body(spec, pipe, wl))
        pipe.send(("result", result))
    except BaseException as e:  # reported to the parent, which raises it
        with contextlib.suppress(OSError):
            pipe.send(("error", f"{type(e).__name__}: {e}"))
    finally:
        loop.close()
        pipe.close()


@dataclass
class Result:
    """The outcome of one workload against one server."""

    workload: str
    ops: int
    duration: float
    hist: Histogram
    errors: int = 0
    # CPU seconds the load generator used in the window (None for watch,
    # whose window is a sum of short fan-outs, not a span of wall time).
    client_cpu: float | None = 0.0
    server_cpu: float | None = None  # CPU seconds the server used, when probed
    extra: dict[str, float] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.ops / self.duration if self.duration > 0 else math.nan

    def p(self, q: float) -> float:
        return self.hist.percentile(q)

    def summary(self) -> str:
        ms = 1000.0
        s = (f"{self.workload}: {self.rate:,.0f} ops/s over {self.duration:.1f}s, "
             f"p50 {self.p(50) * ms:.2f} ms, p99 {self.p(99) * ms:.2f} ms, "
             f"p99.9 {self.p(99.9) * ms:.2f} ms, errors {self.errors}")
        if self.client_cpu is not None:
            s += f", loadgen CPU {self.client_cpu / self.duration:.2f} cores"
        if self.server_cpu is not None:
            s += f", server CPU {self.server_cpu / self.duration:.2f} cores"
        for k, v in self.extra.items():
            s += f", {k} {v:.3f}"
        return s


class _Workers:
    """The worker processes of one run and their pipes."""

    def __init__(self, specs: list[WorkerSpec]) -> None:
        ctx = multiprocessing.get_context("fork")
        self.pipes: list[Connection] = []
        self.procs: list[multiprocessing.process.BaseProcess] = []
        for spec in specs:
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_worker_main, args=(spec, child), daemon=True)
            p.start()
            child.close()
            self.pipes.append(parent)
            self.procs.append(p)

    def recv_all(self, expect: str, timeout: float) -> list[Any]:
        out = []
        deadline = time.monotonic() + timeout
        for pipe in self.pipes:
            if not pipe.poll(max(0.0, deadline - time.monotonic())):
                raise TimeoutError(f"worker did not report {expect!r} in {timeout}s")
            msg = pipe.recv()
            if msg[0] == "error":
                raise RuntimeError(f"load generator worker failed: {msg[1]}")
            if msg[0] != expect:
                raise RuntimeError(f"worker sent {msg[0]!r}, expected {expect!r}")
            out.append(msg[1] if len(msg) > 1 else None)
        return out

    def send_all(self, msg: tuple[Any, ...]) -> None:
        for pipe in self.pipes:
            pipe.send(msg)

    def close(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(OSError):
                pipe.close()
        for p in self.procs:
            p.join(5)
            if p.is_alive():
                p.terminate()
                p.join()


def setup(host: str, port: int, workload: str, params: Params) -> None:
    """Create the data a workload needs (idempotent)."""
    with RawClient(host, port) as client:
        WORKLOADS[workload].setup(client, params)


def run_workload(host: str, port: int, workload: str, *, connections: int = 8,
                 window: int = 16, processes: int = 2, duration: float = 10.0,
                 warmup: float = 2.0, params: Params | None = None,
                 cpu_probe: Callable[[], float] | None = None,
                 skip_setup: bool = False,
                 tls: tuple[str, str | None, str | None] | None = None,
                 tls_port: int | None = None) -> Result:
    """Set up and drive one workload; ``cpu_probe`` returns server CPU seconds.

    ``skip_setup`` is for servers without a tree (the null server). With
    ``tls`` (CA, certificate and key files) the measured connections go to
    ``tls_port`` over TLS; the setup still uses the plaintext ``port``.
    """
    params = params or Params()
    wl = WORKLOADS[workload]
    if not 1 <= window <= MAX_WINDOW:
        raise ValueError(f"window must be 1..{MAX_WINDOW}")
    if not skip_setup:
        setup(host, port, workload, params)
    if wl.kind == "watch":
        return _run_watch(host, port, wl, params, processes, duration, warmup, cpu_probe)
    processes = max(1, min(processes, connections))
    idle = wl.idle_sessions(params)
    if tls is not None and wl.kind == "watch":
        raise ValueError("the watch workload does not run over TLS")
    work_port = tls_port if tls is not None and tls_port is not None else port
    specs = [
        WorkerSpec(host, work_port, workload, params, tuple(range(k, connections, processes)),
                   window, idle_sessions=len(range(k, idle, processes)), tls=tls)
        for k in range(processes)
    ]
    workers = _Workers(specs)
    try:
        workers.recv_all("ready", 120)
        t0 = time.monotonic() + 0.2
        workers.send_all(("start", t0, warmup, duration))
        server_cpu = None
        if cpu_probe is not None:
            time.sleep(max(0.0, t0 + warmup - time.monotonic()))
            c0 = cpu_probe()
            time.sleep(max(0.0, t0 + warmup + duration - time.monotonic()))
            server_cpu = cpu_probe() - c0
        results = workers.recv_all("result", warmup + duration + 60)
    finally:
        workers.close()
    hist = Histogram()
    for r in results:
        hist.merge(Histogram.from_state(r["hist"]))
    return Result(
        workload=workload,
        ops=sum(r["completed"] for r in results),
        duration=duration,
        hist=hist,
        errors=sum(r["errors"] for r in results),
        client_cpu=sum(r["cpu"] for r in results),
        server_cpu=server_cpu,
    )


def _run_watch(host: str, port: int, wl: Workload, params: Params, processes: int,
               duration: float, warmup: float,
               cpu_probe: Callable[[], float] | None) -> Result:
    """Rounds of: every watcher arms, one setData, wait for every notification.

    The first round is a warm-up. Rounds repeat until ``duration`` has been
    spent (at least 3 measured rounds). Reported: per-notification latency
    percentiles, notifications per second of fan-out time, and the median
    time until all notifications of a round had arrived.
    """
    processes = max(1, processes)
    specs = [WorkerSpec(host, port, wl.name, params, (), 1,
                        watchers=len(range(k, params.watchers, processes)))
             for k in range(processes)]
    workers = _Workers(specs)
    hist = Histogram()
    all_times: list[float] = []
    server_cpu = 0.0 if cpu_probe is not None else None
    try:
        workers.recv_all("ready", 120)
        data = params.payload()
        with RawClient(host, port) as trigger:
            started = time.monotonic()
            rounds = 0
            while True:
                workers.send_all(("arm",))
                workers.recv_all("armed", 60)
                workers.send_all(("collect",))
                c0 = cpu_probe() if cpu_probe is not None else 0.0
                sent = time.monotonic()
                trigger.call(set_data(WATCH_PATH, data))
                arrivals = [t for batch in workers.recv_all("fired", 60) for t in batch]
                if cpu_probe is not None and rounds > 0:
                    server_cpu = (server_cpu or 0.0) + cpu_probe() - c0
                if rounds > 0 or warmup <= 0:
                    for t in arrivals:
                        hist.add(t - sent)
                    all_times.append(max(arrivals) - sent)
                rounds += 1
                if len(all_times) >= 3 and time.monotonic() - started >= duration:
                    break
        workers.send_all(("quit",))
        workers.recv_all("result", 30)
    finally:
        workers.close()
    all_times.sort()
    median_all = all_times[len(all_times) // 2]
    fanout = sum(all_times)
    return Result(
        workload=wl.name,
        ops=hist.total,
        duration=fanout,
        hist=hist,
        client_cpu=None,
        server_cpu=server_cpu,
        extra={"all_delivered_ms": median_all * 1000, "rounds": float(len(all_times)),
               "watchers": float(params.watchers)},
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--workload", default="get", choices=sorted(WORKLOADS))
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--window", type=int, default=16)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--duration", type=float, default=10.0)
    ap.add_argument("--warmup", type=float, default=2.0)
    ap.add_argument("--nodes", type=int, default=Params.nodes)
    ap.add_argument("--watchers", type=int, default=Params.watchers)
    ap.add_argument("--idle-sessions", type=int, default=Params.idle_sessions)
    ap.add_argument("--wide-children", type=int, default=Params.wide_children)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    params = Params(nodes=args.nodes, watchers=args.watchers, idle_sessions=args.idle_sessions,
                    wide_children=args.wide_children)
    res = run_workload(args.host, args.port, args.workload, connections=args.connections,
                       window=args.window, processes=args.processes, duration=args.duration,
                       warmup=args.warmup, params=params)
    print(res.summary())
    return 1 if res.errors else 0


if __name__ == "__main__":
    sys.exit(main())
