"""pyzk.core.metrics: mntr's metric registry and the per-connection statistics."""

from __future__ import annotations

import pytest

from pyzk.core.metrics import (
    LAST_OP_NAMES,
    MNTR_COUNTERS,
    MNTR_GAUGES,
    MNTR_PERCENTILE_SUMMARIES,
    MNTR_SUMMARIES,
    ConnectionStats,
    Summary,
    count,
    observe,
    reset_server_stats,
)
from pyzk.core.zkserver import ServerStats
from pyzk.jute.constants import OpCode

pytestmark = pytest.mark.pure


def test_name_tables_are_apaches_set() -> None:
    # Apache 3.8.0's mntr: version, server_state, then these, 485 lines in all.
    tables = (MNTR_GAUGES, MNTR_COUNTERS, MNTR_SUMMARIES, MNTR_PERCENTILE_SUMMARIES)
    assert [len(t) for t in tables] == [24, 47, 41, 23]
    names = [n for t in tables for n in t]
    assert len(names) == len(set(names))
    assert 2 + 24 + 47 + 5 * 41 + 9 * 23 == 485


def test_summary_is_avg_min_max_with_dropwizard_percentiles() -> None:
    s = Summary(percentiles=True)
    assert [v for _, v in s.values("x")] == ["0.0", "0", "0", "0", "0", "0", "0", "0", "0"]
    for v in (1, 1, 1, 12, 2, 2):
        s.add(v)
    vals = dict(s.values("updatelatency"))
    assert vals["avg_updatelatency"] == "3.1667"
    assert (vals["min_updatelatency"], vals["max_updatelatency"]) == ("1", "12")
    assert (vals["cnt_updatelatency"], vals["sum_updatelatency"]) == ("6", "19")
    # sorted 1 1 1 2 2 12: p50 pos 3.5 -> 1 + .5*(2-1) = 1.5 -> 2; p95 pos 6.65 -> 12
    assert vals["p50_updatelatency"] == "2"
    assert vals["p95_updatelatency"] == "12"
    s.reset()
    assert dict(s.values("q"))["cnt_q"] == "0"
    assert len(Summary().values("y")) == 5


def test_summary_reservoir_is_bounded_and_reproducible() -> None:
    runs = []
    for _ in range(2):
        s = Summary(percentiles=True)
        for v in range(10000):
            s.add(v)
        runs.append([s.quantile(q) for q in (0.5, 0.99)])
        assert s.count == 10000 and s.get_max() == 9999
    assert runs[0] == runs[1]


def test_summary_reservoir_stays_a_uniform_sample_of_everything_added() -> None:
    """Samples past the reservoir's size replace old ones at the rate a
    uniform sample needs (a reservoir that kept only the first 4096 would
    put the median near 2048, one that kept the last near 198,000)."""
    s = Summary(percentiles=True)
    n = 200_000
    for v in range(n):
        s.add(v)
    assert len(s._reservoir or ()) == Summary.RESERVOIR_SIZE  # noqa: SLF001
    assert abs(s.quantile(0.5) - n / 2) < n * 0.03
    assert abs(s.quantile(0.99) - n * 0.99) < n * 0.005
    assert abs(s.quantile(0.05) - n * 0.05) < n * 0.01
    s.reset()
    for v in range(10):
        s.add(v)
    assert s.quantile(0.5) in (4, 5)


def test_observe_count_and_reset_server_stats() -> None:
    stats = ServerStats()
    observe(stats, "readlatency", 3)
    observe(stats, "readlatency", 5)
    observe(stats, "fsynctime", 7)
    observe(stats, "a_read_per_namespace", 9)
    count(stats, "connection_request_count")
    count(stats, "connection_request_count", 2)
    assert stats.counters == {"connection_request_count": 3}
    # percentile summaries are the ones Apache registers with percentiles
    assert len(stats.summaries["readlatency"].values("r")) == 9
    assert len(stats.summaries["fsynctime"].values("f")) == 5
    assert len(stats.summaries["a_read_per_namespace"].values("n")) == 5
    stats.latency(4.0)
    stats.packets_received, stats.outstanding, stats.auth_failed = 7, 2, 1
    stats.last_response_size = stats.min_response_size = stats.max_response_size = 16
    reset_server_stats(stats)
    assert (stats.count, stats.min_latency, stats.packets_received) == (0, -1.0, 0)
    assert stats.max_response_size == -1
    assert stats.counters == {"connection_request_count": 0}
    assert stats.summaries["readlatency"].count == 0
    assert (stats.outstanding, stats.auth_failed) == (2, 1)  # live gauges stay


def test_connection_stats_follow_server_cnxn() -> None:
    st = ConnectionStats(100.0)
    assert (st.last_op, st.touched, st.get_min_latency(), st.get_avg_latency()) == (
        "null", 100.0, 0, 0)
    st.update(5, 10, "GETD", 20.0, 23.9)
    # minlat stays 0 until a reset (Apache's field default)
    assert (st.last_cxid, st.last_zxid, st.last_latency, st.min_latency) == (5, 10, 3, 0)
    assert (st.last_response, st.touched, st.count) == (23, 23.9, 1)
    st.update(-2, 11, "PING", 30.0, 31.0)
    assert st.last_cxid == 5  # negative xids (pings) do not count as a cxid
    st.touch(50.0)
    assert st.touched == 50.0
    st.reset()
    assert (st.last_op, st.last_cxid, st.last_zxid, st.get_min_latency()) == ("NA", -1, -1, 0)
    st.update(1, 1, "SETD", 0.0, 4.0)
    st.update(2, 2, "SETD", 0.0, 2.0)
    assert (st.get_min_latency(), st.max_latency, st.get_avg_latency()) == (2, 4, 3)


def test_last_op_names() -> None:
    assert LAST_OP_NAMES[OpCode.ping] == "PING"
    assert LAST_OP_NAMES[OpCode.create2] == LAST_OP_NAMES[OpCode.createTTL] == "CREA"
    assert all(len(v) in (4, 6) for v in LAST_OP_NAMES.values())
