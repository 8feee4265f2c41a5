"""Quick checks of the benchmark suite's load generator: encoding and statistics.

No timing assertions: these check that the frames the generator sends decode
back with pyzk.jute to the intended requests, that replies are accounted
exactly (counts, errors, fragmentation), and that percentiles are right on
known samples.
"""

from __future__ import annotations

import asyncio
import math
import os
import random

import pytest

from benchmarks import frames
from benchmarks.frames import REPLY_HEAD, FrameRing, decode_request, split_frames
from benchmarks.loadgen import LoadConnection, Result, _Clock, run_workload
from benchmarks.nullserver import NullServer
from benchmarks.rawclient import RawClient
from benchmarks.run import Cell, format_table, proc_cpu_seconds, proc_status_kib
from benchmarks.scale import creates, node_path
from benchmarks.stats import GROWTH, Histogram, percentile
from benchmarks.workloads import RING_MIN, WORKLOADS, Params
from pyzk.jute.constants import CreateMode, OpCode
from pyzk.jute.records import (
    ConnectRequest,
    CreateRequest,
    GetDataRequest,
    SetDataRequest,
)

# --- statistics --------------------------------------------------------------


@pytest.mark.pure
def test_nearest_rank_percentile_on_known_samples() -> None:
    s = list(range(1, 101))
    assert percentile(s, 50) == 50
    assert percentile(s, 99) == 99
    assert percentile(s, 99.9) == 100
    assert percentile(s, 100) == 100
    assert percentile(s, 0) == 1
    s1000 = list(range(1, 1001))
    assert percentile(s1000, 99.9) == 999
    assert percentile(s1000, 99.95) == 1000
    assert percentile([7.0], 50) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile(s, 101)


@pytest.mark.pure
def test_histogram_percentiles_within_one_bucket_of_exact() -> None:
    rng = random.Random(5)
    samples = sorted(rng.lognormvariate(math.log(1e-3), 1.0) for _ in range(20000))
    h = Histogram()
    for v in samples:
        h.add(v)
    assert h.total == len(samples)
    assert h.min == samples[0] and h.max == samples[-1]
    assert h.mean() == pytest.approx(sum(samples) / len(samples))
    for p in (1, 50, 90, 99, 99.9):
        exact = percentile(samples, p)
        assert h.percentile(p) == pytest.approx(exact, rel=GROWTH - 1)
    assert h.percentile(100) == samples[-1]
    assert h.percentile(0) == samples[0]


@pytest.mark.pure
def test_histogram_microsecond_steps() -> None:
    h = Histogram()
    for us in range(1, 1001):
        h.add(us * 1e-6)
    assert h.percentile(50) == pytest.approx(500e-6, rel=0.01)
    assert h.percentile(99) == pytest.approx(990e-6, rel=0.01)
    assert h.percentile(99.9) == pytest.approx(999e-6, rel=0.01)


@pytest.mark.pure
def test_histogram_weighted_add_merge_and_state() -> None:
    a, b = Histogram(), Histogram()
    a.add(0.002, 3)
    for _ in range(3):
        b.add(0.002)
    assert a.counts == b.counts and a.total == b.total == 3
    assert a.sum == pytest.approx(b.sum)
    a.add(0.5, 0)  # zero weight changes nothing
    assert a.total == 3 and a.max == 0.002
    c = Histogram()
    c.add(0.010, 7)
    a.merge(c)
    assert a.total == 10 and a.max == 0.010 and a.min == 0.002
    assert a.percentile(30) == pytest.approx(0.002, rel=0.01)
    assert a.percentile(31) == pytest.approx(0.010, rel=0.01)
    r = Histogram.from_state(a.to_state())
    assert r.counts == a.counts and (r.total, r.sum, r.min, r.max) == (a.total, a.sum, a.min,
                                                                      a.max)
    assert math.isnan(Histogram().percentile(50))


@pytest.mark.pure
def test_histogram_buckets_contain_their_values() -> None:
    for v in (1.5e-6, 3.3e-5, 1e-3, 0.123, 7.0, 999.0):
        lo, hi = Histogram.bucket_bounds(Histogram.bucket(v))
        assert lo <= v < hi * (1 + 1e-12)


# --- frames ------------------------------------------------------------------


@pytest.mark.pure
def test_ring_frames_decode_back_to_the_requests() -> None:
    ops = [frames.get_data("/a", False), frames.set_data("/bb", b"xyz", 4),
           frames.create("/c", b"d", CreateMode.PERSISTENT_SEQUENTIAL),
           frames.exists("/e", True), frames.get_children("/f")]
    ring = FrameRing(ops, first_xid=10)
    for i, (op, body) in enumerate(ops):
        hdr, got = decode_request(ring.frame(i))
        assert hdr.xid == 10 + i and hdr.type == op
        assert got == body
    hdr, body = decode_request(ring.frame(2))
    assert isinstance(body, CreateRequest)
    assert body.flags == CreateMode.PERSISTENT_SEQUENTIAL
    assert body.acl[0].id.scheme == "world" and body.acl[0].perms == 31


@pytest.mark.pure
def test_ring_take_wraps_and_concatenates() -> None:
    ops = [frames.get_data(f"/n{i}") for i in range(5)]
    ring = FrameRing(ops)
    one_cycle = b"".join(ring.frame(i) for i in range(5))
    assert ring.take(3) == one_cycle[: len(ring.frame(0)) * 3]
    wrapped = ring.take(4)  # frames 3, 4, 0, 1
    got, used = split_frames(wrapped)
    assert used == len(wrapped)
    xids = [decode_request(frames.FRAME_LEN.pack(len(p)) + p)[0].xid for p in got]
    assert xids == [4, 5, 1, 2]
    big = ring.take(12)  # more than one cycle: frames 2..4, 0..4, 0..3
    got, _ = split_frames(big)
    xids = [decode_request(frames.FRAME_LEN.pack(len(p)) + p)[0].xid for p in got]
    assert xids == [3, 4, 5, 1, 2, 3, 4, 5, 1, 2, 3, 4]
    with pytest.raises(ValueError):
        FrameRing([])


@pytest.mark.pure
def test_connect_and_special_frames() -> None:
    f = frames.connect_frame(30000, read_only=True)
    payload = f[4:]
    req, pos = ConnectRequest.decode(payload, 0)
    assert (req.protocolVersion, req.timeOut, req.sessionId, req.passwd) == (0, 30000, 0,
                                                                              b"\0" * 16)
    assert payload[pos:] == b"\1"
    hdr, body = decode_request(frames.PING_FRAME)
    assert (hdr.xid, hdr.type, body) == (-2, OpCode.ping, None)


@pytest.mark.pure
def test_workload_rings_send_what_they_say() -> None:
    p = Params(nodes=50)
    mix = [decode_request(f)[1] for f in _frames_of("mix", 3, p)]
    assert len(mix) == RING_MIN
    writes = [b for b in mix if isinstance(b, SetDataRequest)]
    assert len(writes) * 10 == pytest.approx(len(mix), abs=10)
    assert all(w.data == p.payload() and len(w.data) == 100 and w.version == -1
               for w in writes)
    gets = [decode_request(f)[1] for f in _frames_of("get", 0, p)]
    assert all(isinstance(g, GetDataRequest) and not g.watch for g in gets)
    assert len({g.path for g in gets}) == 50
    creates = [decode_request(f)[1] for f in _frames_of("create", 2, p)]
    assert {c.path for c in creates} == {"/bench/create/c0002/n"}
    wide = [decode_request(f)[0].type for f in _frames_of("wide", 0, p)]
    assert wide.count(OpCode.exists) == wide.count(OpCode.getChildren) == RING_MIN // 2
    assert "ensemble" not in WORKLOADS


def _frames_of(name: str, conn: int, p: Params) -> list[bytes]:
    ring = FrameRing(WORKLOADS[name].ops(conn, p))
    return [ring.frame(i) for i in range(len(ring))]


# --- reply accounting --------------------------------------------------------


class _FakeTransport:
    def __init__(self) -> None:
        self.sent = bytearray()

    def write(self, b: bytes) -> None:
        self.sent += b

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


def _reply(xid: int, err: int = 0, body: bytes = b"") -> bytes:
    return REPLY_HEAD.pack(16 + len(body), xid, 5, err) + body


@pytest.mark.pure
def test_load_connection_accounts_every_reply_exactly() -> None:
    async def scenario() -> None:
        clock = _Clock(window_start=0.0, window_end=math.inf, send_end=math.inf)
        ring = FrameRing([frames.get_data("/x")] * 64)
        conn = LoadConnection(ring, 8, clock)
        t = _FakeTransport()
        conn.connection_made(t)  # type: ignore[arg-type]
        handshake = frames.connect_frame(30000)
        assert bytes(t.sent) == handshake
        t.sent.clear()
        resp = frames.ConnectResponse(0, 30000, 42, b"\0" * 16).to_bytes() + b"\0"
        conn.data_received(frames.FRAME_LEN.pack(len(resp)) + resp)
        assert conn.ready.done() and conn.session_id == 42
        conn.start()
        sent, _ = split_frames(t.sent)
        assert len(sent) == 8
        t.sent.clear()
        # 5 replies (one an error) and a notification, fragmented mid-header
        # and mid-body.
        stream = (_reply(1, body=b"a" * 30) + _reply(2) + _reply(-1, body=b"n" * 9)
                  + _reply(3, err=-101) + _reply(4, body=b"b" * 7) + _reply(5))
        for cut in (3, 17, 40, 41, 90):
            conn.data_received(stream[:cut])
            stream = stream[cut:]
        conn.data_received(stream)
        assert conn.total == conn.completed == 5
        assert conn.errors == 1 and conn.notifications == 1
        assert conn.hist.total == 5
        assert conn.outstanding == 8
        refill, used = split_frames(t.sent)
        assert used == len(t.sent) and len(refill) == 5
        xids = [decode_request(frames.FRAME_LEN.pack(len(p)) + p)[0].xid for p in refill]
        assert xids == [9, 10, 11, 12, 13]
        # The run ends: the last replies stop the refill and finish the conn.
        clock.send_end = 0.0
        conn.data_received(b"".join(_reply(x) for x in range(6, 14)))
        assert conn.total == 13 and conn.outstanding == 0 and conn.done.done()
        assert conn.hist.total == 13

    asyncio.run(scenario())


@pytest.mark.pure
def test_replies_outside_the_window_are_not_measured() -> None:
    async def scenario() -> None:
        clock = _Clock(window_start=math.inf, window_end=math.inf, send_end=math.inf)
        conn = LoadConnection(FrameRing([frames.get_data("/x")] * 32), 4, clock)
        conn.connection_made(_FakeTransport())  # type: ignore[arg-type]
        resp = frames.ConnectResponse(0, 30000, 1, b"\0" * 16).to_bytes()
        # Handshake and the first replies in the same read.
        conn.data_received(frames.FRAME_LEN.pack(len(resp)) + resp)
        conn.start()
        conn.data_received(_reply(1) + _reply(2))
        assert conn.total == 2 and conn.completed == 0 and conn.hist.total == 0

    asyncio.run(scenario())


# --- end to end against the null server (counts only, no timing) -------------


@pytest.mark.server
def test_run_workload_and_raw_client_against_null_server() -> None:
    with NullServer() as srv:
        res = run_workload("127.0.0.1", srv.port, "get", connections=4, window=8,
                           processes=2, duration=0.5, warmup=0.2, skip_setup=True)
        with RawClient("127.0.0.1", srv.port) as c:
            replies = c.pipeline([frames.get_data("/x")] * 1000, window=64)
    assert res.ops > 0 and res.errors == 0
    assert res.hist.total == res.ops
    assert res.client_cpu is not None and res.client_cpu >= 0
    assert len(replies) == 1000 and all(err == 0 for err, _ in replies)


# --- runner and scale helpers -------------------------------------------------


def _result(workload: str, ops: int, latency: float, errors: int = 0) -> Result:
    h = Histogram()
    h.add(latency, ops)
    return Result(workload, ops, 10.0, h, errors=errors, client_cpu=1.0, server_cpu=5.0)


@pytest.mark.pure
def test_table_ratio_marks_and_notes() -> None:
    a, p = Cell(), Cell()
    a.results = [_result("get", 1_000_000, 0.002), _result("get", 3_000_000, 0.002)]
    p.results = [_result("get", 1_000_000, 0.004, errors=3)]
    a.peak_rss, p.peak_rss = 300 * 2**20, 30 * 2**20
    p.unlogged = True
    text = format_table({"get": {"apache": a, "pyzk": p}})
    row = next(line for line in text.splitlines() if line.startswith("get"))
    cols = row.split()
    # Apache median of 100k and 300k is 200k; pyzk 100k -> ratio 0.50.
    assert cols[1:4] == ["200,000", "100,000!", "0.50"]
    assert cols[4:6] == ["2.00", "4.00"]
    assert cols[6:8] == ["0.50", "0.50"]
    assert cols[8:10] == ["300", "30"]
    assert "get/pyzk: 3 requests failed" in text
    assert "get/pyzk: wrote no transaction log" in text
    missing = format_table({"set": {"apache": a, "pyzk": Cell(failure="did not start: x")}})
    assert "n/a" in missing and "set/pyzk: did not start: x" in missing


@pytest.mark.pure
def test_proc_readers_parse_our_own_process() -> None:
    pid = os.getpid()
    assert proc_cpu_seconds(pid) > 0
    assert proc_status_kib(pid, "VmHWM") >= proc_status_kib(pid, "VmRSS") > 0


@pytest.mark.pure
def test_scale_creates_parents_before_children() -> None:
    ops = list(creates(2500, b"d"))
    paths = [body.path for _, body in ops]
    assert paths[0] == "/scale"
    assert len(paths) == 1 + 3 + 2500
    assert paths[1] == "/scale/b00000" and paths[2] == node_path(0)
    assert paths.index("/scale/b00002") == paths.index(node_path(1999)) + 1
    assert node_path(2499) == "/scale/b00002/n499" == paths[-1]
    assert len(set(paths)) == len(paths)


@pytest.mark.pure
def test_table_reports_watch_fanout_median() -> None:
    cell = Cell()
    for ms in (12.0, 8.0, 10.0):
        r = _result("watch", 1000, ms / 1e3)
        r.extra = {"all_delivered_ms": ms, "rounds": 5.0, "watchers": 1000.0}
        cell.results.append(r)
    text = format_table({"watch": {"apache": cell}})
    assert "watch/apache: all 1000 notifications delivered in 10.0 ms" in text
    assert "(median over 3 runs of 15 rounds in all)" in text
