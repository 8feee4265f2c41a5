"""Server metrics (mntr's registry) and per-connection statistics (cons/crst), sans-IO.

``mntr`` prints Apache's gauges with pyzk's real values and then every metric
Apache 3.8 registers (counters, summaries, percentile summaries), in the order
Apache 3.8.0 prints them (:data:`MNTR_GAUGES`, :data:`MNTR_COUNTERS`,
:data:`MNTR_SUMMARIES`, :data:`MNTR_PERCENTILE_SUMMARIES`).  Metrics are
recorded by Apache's ServerMetrics name through :func:`count` and
:func:`observe` into a server's ``stats`` (pyzk.core.zkserver.ServerStats);
a metric pyzk never records prints 0, exactly what an idle Apache prints for
it.  ``srst`` zeroes them with :func:`reset_server_stats`.

Per-connection statistics for ``cons``/``crst`` live in :class:`ConnectionStats`
(Apache's ServerCnxn counters), which a connection carries as ``cnxn_stats``;
:data:`LAST_OP_NAMES` are the op names it shows as ``lop=``.

Everything here is pure: times are given by the caller (monotonic ms), and the
percentile reservoirs draw from a private, seeded generator.
"""

from __future__ import annotations

import math
import random
from typing import TYPE_CHECKING

from pyzk.javacompat import java_double, java_round4
from pyzk.jute.constants import OpCode

if TYPE_CHECKING:
    from pyzk.core.zkserver import ServerStats

_LONG_MAX = (1 << 63) - 1

#: FinalRequestProcessor's ``lastOp`` names, shown as ``lop=`` by ``cons``.
LAST_OP_NAMES: dict[int, str] = {
    OpCode.ping: "PING", OpCode.createSession: "SESS", OpCode.multi: "MULT",
    OpCode.multiRead: "MLTR", OpCode.create: "CREA", OpCode.create2: "CREA",
    OpCode.createTTL: "CREA", OpCode.createContainer: "CREA", OpCode.delete: "DELE",
    OpCode.deleteContainer: "DELE", OpCode.setData: "SETD", OpCode.reconfig: "RECO",
    OpCode.setACL: "SETA", OpCode.closeSession: "CLOS", OpCode.sync: "SYNC",
    OpCode.check: "CHEC", OpCode.exists: "EXIS", OpCode.getData: "GETD",
    OpCode.setWatches: "SETW", OpCode.setWatches2: "STW2", OpCode.addWatch: "ADDW",
    OpCode.getACL: "GETA", OpCode.getChildren: "GETC", OpCode.getChildren2: "GETC",
    OpCode.getAllChildrenNumber: "GETACN", OpCode.checkWatches: "CHKW",
    OpCode.removeWatches: "REMW", OpCode.whoAmI: "HOMI", OpCode.getEphemerals: "GETE",
}  # fmt: skip

# --------------------------------------------------------------------------
# mntr's metric names, in the order Apache 3.8.0 prints them (the iteration
# order of DefaultMetricsProvider's ConcurrentHashMaps for this fixed set).

MNTR_GAUGES = (
    "ephemerals_count", "num_alive_connections", "avg_latency", "outstanding_requests",
    "znode_count", "global_sessions", "non_mtls_remote_conn_count",
    "last_client_response_size", "packets_sent", "packets_received",
    "max_client_response_size", "connection_drop_probability", "watch_count",
    "auth_failed_count", "min_latency", "max_file_descriptor_count", "approximate_data_size",
    "open_file_descriptor_count", "local_sessions", "uptime", "max_latency",
    "outstanding_tls_handshake", "min_client_response_size", "non_mtls_local_conn_count",
)  # fmt: skip

MNTR_COUNTERS = (
    "proposal_count", "watch_bytes", "outstanding_changes_removed", "throttled_ops",
    "stale_requests_dropped", "large_requests_rejected", "insecure_admin_count",
    "connection_rejected", "cnxn_closed_without_zk_server_running",
    "sessionless_connections_expired", "looking_count", "dead_watchers_queued",
    "stale_requests", "connection_drop_count", "learner_proposal_received_count",
    "digest_mismatches_count", "dead_watchers_cleared", "response_packet_cache_hits",
    "bytes_received_count", "add_dead_watcher_stall_time", "request_throttle_wait_count",
    "requests_not_forwarded_to_commit_processor", "response_packet_cache_misses",
    "ensemble_auth_success", "prep_processor_request_queued",
    "learner_commit_received_count", "stale_replies", "connection_request_count",
    "response_bytes", "ensemble_auth_fail", "diff_count",
    "response_packet_get_children_cache_misses", "connection_revalidate_count",
    "quit_leading_due_to_disloyal_voter", "snap_count", "unrecoverable_error_count",
    "unsuccessful_handshake", "commit_count", "stale_sessions_expired",
    "response_packet_get_children_cache_hits", "sync_processor_request_queued",
    "outstanding_changes_queued", "request_commit_queued", "ensemble_auth_skip",
    "skip_learner_request_to_next_processor_count", "tls_handshake_exceeded",
    "revalidate_count",
)  # fmt: skip

MNTR_SUMMARIES = (
    "socket_closing_time", "proposal_process_time", "leader_unavailable_time",
    "node_created_watch_count", "session_queues_drained", "write_commit_proc_req_queued",
    "connection_token_deficit", "read_commit_proc_req_queued", "node_deleted_watch_count",
    "startup_txns_load_time", "sync_processor_queue_size", "follower_sync_time",
    "prep_processor_queue_size", "fsynctime", "inflight_snap_count",
    "reads_issued_from_session_queue", "learner_request_processor_queue_size",
    "snapshottime", "unavailable_time", "startup_txns_loaded",
    "reads_after_write_in_session_queue", "requests_in_session_queue",
    "write_commit_proc_issued", "prep_process_time", "pending_session_queue_size",
    "time_waiting_empty_pool_in_commit_processor_read_ms", "commit_process_time",
    "dbinittime", "inflight_diff_count", "netty_queued_buffer_capacity", "election_time",
    "commit_commit_proc_req_queued", "sync_processor_batch_size", "node_children_watch_count",
    "write_batch_time_in_commit_processor", "read_commit_proc_issued",
    "concurrent_request_processing_in_commit_processor", "observer_sync_time",
    "node_changed_watch_count", "sync_process_time", "startup_snap_load_time",
)  # fmt: skip

MNTR_PERCENTILE_SUMMARIES = (
    "prep_processor_queue_time_ms", "jvm_pause_time_ms", "close_session_prep_time",
    "read_commitproc_time_ms", "updatelatency", "local_write_committed_time_ms",
    "request_throttle_queue_time_ms", "readlatency", "quorum_ack_latency",
    "om_commit_process_time_ms", "read_final_proc_time_ms", "commit_propagation_latency",
    "dead_watchers_cleaner_latency", "write_final_proc_time_ms",
    "proposal_ack_creation_latency", "proposal_latency", "om_proposal_process_time_ms",
    "sync_processor_queue_and_flush_time_ms", "propagation_latency",
    "server_write_committed_time_ms", "sync_processor_queue_time_ms",
    "sync_processor_queue_flush_time_ms", "write_commitproc_time_ms",
)  # fmt: skip

_PERCENTILE_SET = frozenset(MNTR_PERCENTILE_SUMMARIES)
#: Summary sets keyed by top-level namespace ("<ns>_read_per_namespace").
NAMESPACE_SUMMARY_SETS = ("read_per_namespace", "write_per_namespace")  # Apache's order
QUOTA_GAUGE_SETS = ("quota_count_limit_per_namespace", "quota_bytes_limit_per_namespace",
                    "quota_count_usage_per_namespace", "quota_bytes_usage_per_namespace")


class Summary:
    """AvgMinMaxCounter (and, with ``percentiles``, AvgMinMaxPercentileCounter).

    Percentiles come from a uniform reservoir of 4096 samples, as Apache's
    ResettableUniformReservoir; its replacement choices use a private,
    seeded generator so runs are reproducible. Where Apache draws a random
    number per sample (Algorithm R), this draws how many samples to pass
    over until the next replacement (Li's Algorithm L, the same uniform
    sample): every read and write adds to one of these, and a draw per
    request was a visible share of a request's cost.
    """

    __slots__ = ("count", "total", "min", "max", "percentiles", "_reservoir", "_seen", "_rng",
                 "_next", "_w")
    RESERVOIR_SIZE = 4096

    def __init__(self, percentiles: bool = False, sampled: bool = False) -> None:
        #: Whether mntr prints p50..p999 (Apache's ADVANCED level).  ``sampled``
        #: keeps the reservoir without printing them, for the Prometheus
        #: endpoint's median of a BASIC summary.
        self.percentiles = percentiles
        keep = percentiles or sampled
        self._reservoir: list[int] | None = [] if keep else None
        self._rng: random.Random | None = random.Random(0) if keep else None
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.total = 0
        self.min = _LONG_MAX
        self.max = -_LONG_MAX - 1
        self._seen = 0
        #: Algorithm L's state: the sample count at which the next
        #: replacement happens, and its running weight
        self._next = 0
        self._w = 1.0
        if self._reservoir is not None:
            self._reservoir = []

    def add(self, value: int) -> None:
        value = int(value)
        self.count += 1
        self.total += value
        if value < self.min:
            self.min = value
        if value > self.max:
            self.max = value
        res = self._reservoir
        if res is not None:
            self._seen += 1
            if len(res) < self.RESERVOIR_SIZE:
                res.append(value)
                if len(res) == self.RESERVOIR_SIZE:
                    self._skip()
            elif self._seen == self._next:
                assert self._rng is not None
                res[self._rng.randrange(self.RESERVOIR_SIZE)] = value
                self._skip()

    def _skip(self) -> None:
        """Algorithm L: draw the next sample number that replaces one."""
        assert self._rng is not None
        rnd = self._rng.random
        k = self.RESERVOIR_SIZE
        self._w *= math.exp(math.log(1.0 - rnd()) / k)
        w = self._w
        # 1 - rnd() is in (0, 1]: never log(0); w < 1 unless the draw was 1.0
        gap = math.floor(math.log(1.0 - rnd()) / math.log1p(-w)) if w < 1.0 else 0
        self._next = self._seen + gap + 1

    def avg(self) -> float:
        return java_round4(self.total / self.count) if self.count else 0.0

    def get_min(self) -> int:
        return 0 if self.min == _LONG_MAX else self.min

    def get_max(self) -> int:
        return 0 if self.max == -_LONG_MAX - 1 else self.max

    def quantile(self, q: float) -> int:
        """Dropwizard UniformSnapshot.getValue, rounded like Math.round."""
        values = sorted(self._reservoir or ())
        n = len(values)
        if n == 0:
            return 0
        pos = q * (n + 1)
        index = int(pos)
        if index < 1:
            v = float(values[0])
        elif index >= n:
            v = float(values[-1])
        else:
            lower, upper = values[index - 1], values[index]
            v = lower + (pos - index) * (upper - lower)
        return int(v + 0.5) if v >= 0 else -int(-v + 0.5)

    def values(self, name: str) -> list[tuple[str, str]]:
        """The lines mntr prints for this summary (without the ``zk_`` prefix)."""
        out = [
            (f"avg_{name}", java_double(self.avg())),
            (f"min_{name}", str(self.get_min())),
            (f"max_{name}", str(self.get_max())),
            (f"cnt_{name}", str(self.count)),
            (f"sum_{name}", str(self.total)),
        ]
        if self.percentiles:
            for label, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999)):
                out.append((f"{label}_{name}", str(self.quantile(q))))
        return out


def observe(stats: ServerStats, name: str, value: int) -> None:
    """Add a data point to the summary metric ``name`` (Apache ServerMetrics names,
    e.g. "readlatency", "fsynctime", "<ns>_read_per_namespace")."""
    s = stats.summaries.get(name)
    if s is None:
        s = stats.summaries[name] = Summary(percentiles=name in _PERCENTILE_SET,
                                            sampled=stats.sample_all)
    s.add(value)


def count(stats: ServerStats, name: str, n: int = 1) -> None:
    """Add ``n`` to the counter metric ``name`` (e.g. "connection_request_count")."""
    counters = stats.counters
    counters[name] = counters.get(name, 0) + n


def reset_server_stats(stats: ServerStats) -> None:
    """ServerStats.reset(): latency, packet counters, response sizes and every
    counter/summary metric; live gauges (outstanding requests, auth failures)
    are not touched, as in Apache."""
    stats.min_latency = -1.0
    stats.max_latency = 0.0
    stats.total_latency = 0.0
    stats.count = 0
    stats.packets_received = 0
    stats.packets_sent = 0
    stats.bytes_received = 0
    stats.fsyncs = 0
    stats.fsynced_txns = 0
    stats.last_response_size = -1
    stats.min_response_size = -1
    stats.max_response_size = -1
    for name in stats.counters:
        stats.counters[name] = 0
    for s in stats.summaries.values():
        s.reset()


class ConnectionStats:
    """One connection's request statistics (Apache ServerCnxn's fields behind
    ``cons``; ``crst`` resets them).

    Initial values are Java's field defaults, quirks included: ``minlat``
    stays 0 until the first ``crst`` (Apache starts it at 0, not at
    Long.MAX_VALUE), and a session re-attached without a request shows
    ``lop=null``.  Times are monotonic milliseconds.
    """

    __slots__ = ("last_op", "last_cxid", "last_zxid", "last_response", "last_latency",
                 "min_latency", "max_latency", "count", "total_latency", "touched")

    def __init__(self, now_ms: float = 0.0) -> None:
        self.last_op = "null"
        self.last_cxid = 0
        self.last_zxid = 0
        self.last_response = 0
        self.last_latency = 0
        self.min_latency = 0
        self.max_latency = 0
        self.count = 0
        self.total_latency = 0
        self.touched = now_ms

    def update(self, cxid: int, zxid: int, op: str, start_ms: float, end_ms: float) -> None:
        """updateStatsForResponse: called when a reply (or ping answer) is sent."""
        if cxid >= 0:
            self.last_cxid = cxid
        self.last_zxid = zxid
        self.last_op = op
        self.last_response = int(end_ms)
        elapsed = int(end_ms) - int(start_ms)
        self.last_latency = elapsed
        if elapsed < self.min_latency:
            self.min_latency = elapsed
        if elapsed > self.max_latency:
            self.max_latency = elapsed
        self.count += 1
        self.total_latency += elapsed
        self.touched = end_ms

    def touch(self, now_ms: float) -> None:
        """A packet arrived (NIOServerCnxnFactory.touchCnxn)."""
        self.touched = now_ms

    def reset(self) -> None:
        """resetStats (the packet counters live on the connection and are reset there)."""
        self.min_latency = _LONG_MAX
        self.max_latency = 0
        self.last_op = "NA"
        self.last_cxid = -1
        self.last_zxid = -1
        self.last_response = 0
        self.last_latency = 0
        self.count = 0
        self.total_latency = 0

    def get_min_latency(self) -> int:
        return 0 if self.min_latency == _LONG_MAX else self.min_latency

    def get_avg_latency(self) -> int:
        return self.total_latency // self.count if self.count else 0


__all__ = [
    "LAST_OP_NAMES", "MNTR_COUNTERS", "MNTR_GAUGES", "MNTR_PERCENTILE_SUMMARIES",
    "MNTR_SUMMARIES", "NAMESPACE_SUMMARY_SETS", "QUOTA_GAUGE_SETS", "ConnectionStats",
    "Summary", "count", "observe", "reset_server_stats",
]
