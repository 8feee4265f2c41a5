"""Four-letter words (ruok, srvr, stat, mntr, ...) in Apache ZooKeeper 3.8's formats.

Monitoring scripts, ``zkServer.sh status``, kazoo and Prometheus exporters
parse these answers, so every command prints what Apache 3.8's
``server/command/*Command.java`` prints, byte for byte where the facts are
the same: the same keys, separators, line ends (``PrintWriter.println`` is
``\\n``), Java's number formatting (``Long.toHexString``, ``Double.toString``)
and Java's collection orders where pyzk can reproduce them (``HashSet<String>``
of paths, ``ConcurrentHashMap<Long, ...>`` of session ids).

The whitelist (``4lw.commands.whitelist``, resolved by pyzk.config) behaves
as FourLetterCommands.isEnabled: a known word that is not enabled is answered
``<cmd> is not executed because it is not in the whitelist.`` and the
connection is closed; ``srvr`` is always enabled.

Version string: Apache prints ``Version.getFullVersion()``, i.e.
``<version>-<git revision>, built on <date> UTC``.  pyzk keeps that shape with
the Apache release it is compatible with as the version and ``pyzk-<pyzk
version>`` as the revision: ``3.8.0-pyzk-0.1.0, built on 2025-01-01 00:00 UTC``.
Parsers that take the leading dotted digits (kazoo's ``server_version``), split
on ``-`` or ``,`` or match ``^\\d+\\.\\d+\\.\\d+`` still find 3.8.0, and a human
can tell pyzk from Apache.  The "built on" date is the modification time of the
installed pyzk package.

``envi`` keeps Apache's keys in Apache's order so that ``key=value`` parsers
work; where a key names a Java fact, pyzk reports the Python equivalent under
the same key: ``java.version`` is the Python version, ``java.vendor`` the
implementation (CPython), ``java.home`` ``sys.prefix``, ``java.class.path``
``sys.path``, ``java.library.path`` the interpreter's LIBDIR and the
``os.memory.*`` values the process's resident size (total), the machine's
available memory (free) and physical memory (max).

``mntr`` prints Apache's gauges with pyzk's real values and then every metric
Apache 3.8 registers (counters, summaries, percentile summaries), in the order
Apache 3.8.0 prints them.  Metrics are recorded by name through :func:`count`
and :func:`observe`; a metric pyzk never records prints 0, exactly what an
idle Apache prints for it.

Per-connection statistics for ``cons``/``crst`` live in :class:`ConnectionStats`
(Apache's ServerCnxn counters), which a connection carries as ``cnxn_stats``.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import math
import os
import platform
import random
import socket
import struct
import sys
import sysconfig
import tempfile
import time
from collections.abc import Callable, Iterable
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any

from pyzk import APACHE_COMPAT_VERSION, __version__
from pyzk.javacompat import JavaStringSet
from pyzk.jute.constants import OpCode

log = logging.getLogger(__name__)

COMMANDS = ("ruok", "srvr", "stat", "conf", "cons", "crst", "dump", "envi", "mntr", "wchs",
            "wchc", "wchp", "dirs", "isro", "srst", "gtmk", "stmk", "hash")
FOUR_LETTER_WORDS = frozenset(c.encode("ascii") for c in COMMANDS)

ZK_NOT_SERVING = "This ZooKeeper instance is not currently serving requests"
# ZooTrace's default mask: CLIENT_REQUEST | SERVER_PACKET | SESSION | WARNING.
DEFAULT_TRACE_MASK = (1 << 1) | (1 << 4) | (1 << 5) | (1 << 8)
# NIOServerCnxnFactory: zookeeper.nio.sessionlessCnxnTimeout, also the
# bucket width of its connection expiry queue.
SESSIONLESS_CNXN_TIMEOUT_MS = 10000
_MASK64 = (1 << 64) - 1
_LONG_MAX = (1 << 63) - 1
_LONG = struct.Struct(">q")

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


# --------------------------------------------------------------------------
# Java formatting


def hex64(n: int) -> str:
    """Long.toHexString: two's complement for negative values."""
    return format(n & _MASK64, "x")


def java_double(x: float) -> str:
    """Double.toString: plain decimal in [1e-3, 1e7), else ``d.dddE[-]n``,
    with the shortest digits that round-trip (Python's repr finds the same)."""
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    sign = "-" if x < 0 else ""
    _, digit_tuple, exp = Decimal(repr(abs(x))).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    assert isinstance(exp, int)
    # value = 0.<digits> * 10**point
    point = exp + len("".join(map(str, digit_tuple)))
    if 1e-3 <= abs(x) < 1e7:
        if point <= 0:
            return f"{sign}0.{'0' * -point}{digits}"
        whole = digits[:point].ljust(point, "0")
        frac = digits[point:] or "0"
        return f"{sign}{whole}.{frac}"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{point - 1}"


def java_round4(x: float) -> float:
    """BigDecimal(x).setScale(4, HALF_UP).doubleValue(), as AvgMinMaxCounter.getAvg."""
    return float(Decimal(x).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def java_date(wall_ms: int) -> str:
    """Date.toString(): ``EEE MMM dd HH:mm:ss zzz yyyy`` in the local time zone."""
    t = time.localtime(wall_ms / 1000.0)
    return (f"{_DAYS[t.tm_wday]} {_MONTHS[t.tm_mon - 1]} {t.tm_mday:02d} "
            f"{t.tm_hour:02d}:{t.tm_min:02d}:{t.tm_sec:02d} {time.strftime('%Z', t)} "
            f"{t.tm_year}")


def java_socket_address(ip: str, port: int) -> str:
    """InetSocketAddress.toString() of an unresolved-name peer: ``/ip:port``.

    Java writes IPv6 addresses in full, without brackets or ``::`` compression.
    """
    if ":" in ip:
        import ipaddress

        addr = ipaddress.IPv6Address(ip.split("%", 1)[0])
        groups = addr.exploded.split(":")
        ip = ":".join(format(int(g, 16), "x") for g in groups)
    return f"/{ip}:{port}"


def _java_long_hash(v: int) -> int:
    v &= _MASK64
    return (v ^ (v >> 32)) & 0xFFFFFFFF


def chm_long_order(keys: Iterable[int]) -> list[int]:
    """Iteration order of a ConcurrentHashMap<Long, ?> holding ``keys``.

    Bins by the spread hash (CHM resizes when its count reaches 3/4 of the
    table); keys sharing a bin keep the given (insertion) order.
    """
    ks = list(keys)
    n = 16
    while len(ks) >= n * 3 // 4:
        n *= 2

    def bin_of(k: int) -> int:
        h = _java_long_hash(k)
        return ((h ^ (h >> 16)) & 0x7FFFFFFF) & (n - 1)

    return sorted(ks, key=bin_of)


def java_string_order(items: Iterable[str]) -> list[str]:
    """Iteration order of a java.util.HashSet<String> built from ``items``."""
    return JavaStringSet(16, items).java_order()


def _build_date() -> str:
    try:
        mtime = Path(__file__).resolve().parent.parent.joinpath("__init__.py").stat().st_mtime
    except OSError:
        mtime = 0.0
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(mtime))


def full_version() -> str:
    """Version.getFullVersion() for pyzk; see the module docstring for the choice."""
    return f"{APACHE_COMPAT_VERSION}-pyzk-{__version__}, built on {_build_date()}"


# --------------------------------------------------------------------------
# Metrics


class Summary:
    """AvgMinMaxCounter (and, with ``percentiles``, AvgMinMaxPercentileCounter).

    Percentiles come from a uniform reservoir of 4096 samples, as Apache's
    ResettableUniformReservoir; its replacement choices use a private,
    seeded generator so runs are reproducible.
    """

    __slots__ = ("count", "total", "min", "max", "_reservoir", "_seen", "_rng")
    RESERVOIR_SIZE = 4096

    def __init__(self, percentiles: bool = False) -> None:
        self._reservoir: list[int] | None = [] if percentiles else None
        self._rng: random.Random | None = random.Random(0) if percentiles else None
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.total = 0
        self.min = _LONG_MAX
        self.max = -_LONG_MAX - 1
        self._seen = 0
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
            else:
                assert self._rng is not None
                r = self._rng.randrange(self._seen)
                if r < self.RESERVOIR_SIZE:
                    res[r] = value

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
        if self._reservoir is not None:
            for label, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99), ("p999", 0.999)):
                out.append((f"{label}_{name}", str(self.quantile(q))))
        return out


def observe(stats: Any, name: str, value: int) -> None:
    """Add a data point to the summary metric ``name`` (Apache ServerMetrics names,
    e.g. "readlatency", "fsynctime", "<ns>_read_per_namespace")."""
    s = stats.summaries.get(name)
    if s is None:
        s = stats.summaries[name] = Summary(percentiles=name in _PERCENTILE_SET)
    s.add(value)


def count(stats: Any, name: str, n: int = 1) -> None:
    """Add ``n`` to the counter metric ``name`` (e.g. "connection_request_count")."""
    counters = stats.counters
    counters[name] = counters.get(name, 0) + n


def reset_server_stats(stats: Any) -> None:
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


# --------------------------------------------------------------------------
# Host facts


def dir_size(path: str | os.PathLike[str]) -> int:
    """ZooKeeperServer.getDirSize: a file's length, or the sum over a directory
    tree; 0 for what does not exist."""
    p = Path(path)
    try:
        if p.is_dir():
            return sum(dir_size(c) for c in p.iterdir())
        return p.stat().st_size if p.exists() else 0
    except OSError:
        return 0


def open_fd_count() -> int:
    """UnixOperatingSystemMXBean.getOpenFileDescriptorCount (Linux: /proc/self/fd)."""
    try:
        return len(os.listdir("/proc/self/fd")) - 1  # minus the directory's own fd
    except OSError:
        return -1


def max_fd_count() -> int:
    """UnixOperatingSystemMXBean.getMaxFileDescriptorCount: the soft RLIMIT_NOFILE."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return -1
    return soft if soft != getattr(resource, "RLIM_INFINITY", -1) else _LONG_MAX


def _meminfo(key: str) -> int | None:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _java_arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "i386": "x86", "i686": "x86"}.get(machine, machine or "<NA>")


def _host_name() -> str:
    try:
        return socket.getfqdn(socket.gethostname())
    except OSError:
        return "<NA>"


def _user_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "<NA>"


def environment() -> list[tuple[str, str]]:
    """Environment.list() with Python facts under Apache's keys (see the module docstring)."""
    mb = 1024 * 1024
    phys = 0
    with contextlib.suppress(OSError, ValueError):
        phys = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    available = _meminfo("MemAvailable")
    return [
        ("zookeeper.version", full_version()),
        ("host.name", _host_name()),
        ("java.version", platform.python_version()),
        ("java.vendor", platform.python_implementation()),
        ("java.home", sys.prefix),
        ("java.class.path", os.pathsep.join(sys.path)),
        ("java.library.path", sysconfig.get_config_var("LIBDIR") or "<NA>"),
        ("java.io.tmpdir", tempfile.gettempdir()),
        ("java.compiler", "<NA>"),
        ("os.name", platform.system() or "<NA>"),
        ("os.arch", _java_arch()),
        ("os.version", platform.release() or "<NA>"),
        ("user.name", _user_name()),
        ("user.home", os.path.expanduser("~")),
        ("user.dir", os.getcwd()),
        ("os.memory.free", f"{(available if available is not None else 0) // mb}MB"),
        ("os.memory.max", f"{phys // mb}MB"),
        ("os.memory.total", f"{_rss_bytes() // mb}MB"),
    ]


# --------------------------------------------------------------------------
# The commands


class FourLetterWords:
    """Answers the four-letter words for one server shell.

    ``shell`` provides ``cfg`` (pyzk.config.ServerConfig) and ``server``
    (ZooKeeperServer); ``run`` returns the text to write before the shell
    closes the connection ("" writes nothing).
    """

    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.server = shell.server
        self.trace_mask = DEFAULT_TRACE_MASK
        self._handlers: dict[str, Callable[[Any], str]] = {
            "ruok": lambda conn: "imok",
            "srvr": lambda conn: self.stat(conn, clients=False),
            "stat": lambda conn: self.stat(conn, clients=True),
            "conf": self.conf,
            "cons": self.cons,
            "crst": self.crst,
            "dump": self.dump,
            "envi": self.envi,
            "mntr": self.mntr,
            "wchs": self.wchs,
            "wchc": lambda conn: self.wchc(),
            "wchp": lambda conn: self.wchp(),
            "dirs": self.dirs,
            "isro": self.isro,
            "srst": self.srst,
            "gtmk": lambda conn: str(self.trace_mask),
            "stmk": self.stmk,
            "hash": self.hash,
        }

    # -- dispatch ------------------------------------------------------------------

    def allowed(self, cmd: str) -> bool:
        """FourLetterCommands.isEnabled (the config has already expanded ``*``)."""
        return cmd in self.shell.cfg.four_letter_whitelist

    def run(self, cmd: str, conn: Any) -> str:
        """Answer ``cmd`` read from ``conn``'s first four bytes."""
        self._packet_received(conn)
        if not self.allowed(cmd):
            log.debug("Command %s is not executed because it is not in the whitelist.", cmd)
            return f"{cmd} is not executed because it is not in the whitelist.\n"
        handler = self._handlers.get(cmd)
        if handler is None:
            return ""
        log.info("Processing %s command from %s", cmd, getattr(conn, "remote", "?"))
        return handler(conn)

    def _packet_received(self, conn: Any) -> None:
        """ServerCnxn.packetReceived(4): the word counts as a received packet."""
        conn.packets_received = getattr(conn, "packets_received", 0) + 1
        stats = self.server.stats
        stats.packets_received += 1
        stats.bytes_received += 4

    @property
    def running(self) -> bool:
        return bool(getattr(self.server, "running", True))

    # -- helpers ---------------------------------------------------------------------

    def _connections(self) -> list[Any]:
        """Live connections, oldest first (Apache's order is identity-hash order)."""
        return sorted(self.server.connections,
                      key=lambda c: (getattr(c, "connected_at", 0), getattr(c, "remote_port", 0)))

    @staticmethod
    def _queued(conn: Any) -> int:
        """Outstanding requests as Apache counts them (xid > 0 only)."""
        return sum(1 for e in getattr(conn, "inflight", ()) if getattr(e, "xid", 0) > 0)

    def connection_info(self, conn: Any, current: Any, brief: bool) -> str:
        """ServerCnxn.dumpConnectionInfo."""
        closed = bool(getattr(conn, "closed", False))
        addr = "null" if closed else java_socket_address(conn.remote_ip, conn.remote_port)
        interest = "0" if conn is current or closed else "1"
        parts = [f" {addr}[{interest}](queued={self._queued(conn)},"
                 f"recved={getattr(conn, 'packets_received', 0)},"
                 f"sent={getattr(conn, 'packets_sent', 0)}"]
        sid = getattr(conn, "session_id", 0)
        if not brief and sid:
            st = getattr(conn, "cnxn_stats", None)
            if st is None:
                st = ConnectionStats()
                st.last_zxid = getattr(conn, "last_zxid", 0)
            parts.append(f",sid=0x{hex64(sid)},lop={st.last_op},"
                         f"est={getattr(conn, 'connected_at', 0)},to={getattr(conn, 'timeout', 0)}")
            if st.last_cxid >= 0:
                parts.append(f",lcxid=0x{hex64(st.last_cxid)}")
            parts.append(f",lzxid=0x{hex64(st.last_zxid)},lresp={st.last_response},"
                         f"llat={st.last_latency},minlat={st.get_min_latency()},"
                         f"avglat={st.get_avg_latency()},maxlat={st.max_latency}")
        parts.append(")")
        return "".join(parts)

    def _latency_triplet(self) -> tuple[int, float, int]:
        s = self.server.stats
        if not s.count:
            return 0, 0.0, 0
        mn = int(s.min_latency) if s.min_latency >= 0 else 0
        return mn, java_round4(s.total_latency / s.count), int(s.max_latency)

    def _server_state(self) -> str:
        return str(getattr(self.server, "state", "standalone"))

    def _data_dirs(self) -> tuple[Path, Path]:
        """FileTxnSnapLog's (snapDir, dataDir): ``<dataDir>/version-2`` and
        ``<dataLogDir>/version-2``, absolute."""
        cfg = self.shell.cfg
        snap = Path(os.path.abspath(cfg.data_dir)) / "version-2"
        logd = Path(os.path.abspath(cfg.data_log_dir or cfg.data_dir)) / "version-2"
        return snap, logd

    # -- commands --------------------------------------------------------------------

    def stat(self, conn: Any, *, clients: bool) -> str:
        """StatCommand (stat) and srvr (the same without the client list)."""
        if not self.running:
            return ZK_NOT_SERVING + "\n"
        server = self.server
        stats = server.stats
        out = [f"Zookeeper version: {full_version()}\n"]
        if getattr(server, "read_only", False):
            out.append("READ-ONLY mode; serving only read-only clients\n")
        if clients:
            out.append("Clients:\n")
            for c in self._connections():
                out.append(self.connection_info(c, conn, brief=True) + "\n")
            out.append("\n")
        mn, avg, mx = self._latency_triplet()
        out.append(f"Latency min/avg/max: {mn}/{java_double(avg)}/{mx}\n")
        out.append(f"Received: {stats.packets_received}\n")
        out.append(f"Sent: {stats.packets_sent}\n")
        out.append(f"Connections: {len(server.connections)}\n")
        out.append(f"Outstanding: {stats.outstanding}\n")
        out.append(f"Zxid: 0x{hex64(server.tree.last_processed_zxid)}\n")
        out.append(f"Mode: {self._server_state()}\n")
        out.append(f"Node count: {server.tree.node_count()}\n")
        return "".join(out)

    def conf(self, conn: Any) -> str:
        """ConfCommand: ZooKeeperServer.dumpConf (its size labels are swapped in
        Apache: dataDirSize is the log directory's size and dataLogSize the
        snapshot directory's; pyzk prints the same)."""
        if not self.running:
            return ZK_NOT_SERVING + "\n"
        cfg = self.shell.cfg
        snap, logd = self._data_dirs()
        client_port = cfg.client_port if cfg.client_port is not None else -1
        secure = getattr(self.shell, "secure_port", None)
        backlog = cfg.raw.get("clientPortListenBacklog", "-1") if cfg.raw else "-1"
        server_id = 0 if cfg.is_standalone() else (cfg.my_id if cfg.my_id is not None else -1)
        lines = [
            f"clientPort={client_port}",
            f"secureClientPort={secure if secure is not None else -1}",
            f"dataDir={snap}",
            f"dataDirSize={dir_size(logd)}",
            f"dataLogDir={logd}",
            f"dataLogSize={dir_size(snap)}",
            f"tickTime={cfg.tick_time}",
            f"maxClientCnxns={cfg.max_client_cnxns}",
            f"minSessionTimeout={self.server.min_session_timeout}",
            f"maxSessionTimeout={self.server.max_session_timeout}",
            f"clientPortListenBacklog={backlog}",
            f"serverId={server_id}",
        ]
        return "\n".join(lines) + "\n"

    def cons(self, conn: Any) -> str:
        """ConsCommand: full connection info, one per line, then an empty line."""
        if not self.running:
            return ZK_NOT_SERVING + "\n"
        lines = [self.connection_info(c, conn, brief=False) + "\n" for c in self._connections()]
        return "".join(lines) + "\n"

    def crst(self, conn: Any) -> str:
        """CnxnStatResetCommand: every connection's counters, this one's included."""
        if not self.running:
            return ZK_NOT_SERVING + "\n"
        for c in list(self.server.connections):
            c.packets_received = 0
            c.packets_sent = 0
            st = getattr(c, "cnxn_stats", None)
            if st is not None:
                st.reset()
        return "Connection stats reset.\n"

    def dump(self, conn: Any) -> str:
        """DumpCommand: session expiry buckets, ephemerals, connection expiry buckets."""
        if not self.running:
            return ZK_NOT_SERVING + "\n"
        server = self.server
        now = server.now_ms()
        wall = server.wall_ms()
        out = ["SessionTracker dump:\n"]
        sessions = server.sessions.sessions
        buckets: dict[int, list[int]] = {}
        for sid, s in sessions.items():
            if s.expire_at:
                buckets.setdefault(s.expire_at, []).append(sid)
        out.append(f"Session Sets ({len(buckets)})/({len(sessions)}):\n")
        for at in sorted(buckets):
            members = chm_long_order(buckets[at])
            out.append(f"{len(members)} expire at {java_date(int(wall + at - now))}:\n")
            out.extend(f"\t0x{hex64(sid)}\n" for sid in members)
        out.append("ephemeral nodes dump:\n")
        ephemerals = server.tree.ephemerals
        out.append(f"Sessions with Ephemerals ({len(ephemerals)}):\n")
        for sid in chm_long_order(ephemerals):
            out.append(f"0x{hex64(sid)}:\n")
            out.extend(f"\t{p}\n" for p in ephemerals[sid].java_order())
        out.append("Connections dump:\n")
        out.append(self._connection_buckets(conn, now, wall))
        return "".join(out)

    def _connection_buckets(self, current: Any, now: float, wall: int) -> str:
        """NIOServerCnxnFactory.dumpConnections: connections by expiry bucket
        (a connection expires its session timeout, or 10 s while it has no
        session, after its last packet; buckets are 10 s wide)."""
        width = SESSIONLESS_CNXN_TIMEOUT_MS
        buckets: dict[int, list[Any]] = {}
        conns = self._connections()
        for c in conns:
            st = getattr(c, "cnxn_stats", None)
            if c is current:
                touched = now
            elif st is not None:
                touched = st.touched
            else:
                touched = now - (wall - getattr(c, "connected_at", wall))
            timeout = getattr(c, "timeout", 0) or width
            at = (int(touched + timeout) // width + 1) * width
            buckets.setdefault(at, []).append(c)
        out = [f"Connections Sets ({len(buckets)})/({len(conns)}):\n"]
        for at in sorted(buckets):
            members = buckets[at]
            out.append(f"{len(members)} expire at {java_date(int(wall + at - now))}:\n")
            for c in members:
                addr = java_socket_address(c.remote_ip, c.remote_port)
                out.append(f"\tip: {addr} sessionId: 0x{hex64(getattr(c, 'session_id', 0))}\n")
        return "".join(out)

    def envi(self, conn: Any) -> str:
        """EnvCommand (answered even when the server is not serving)."""
        return "Environment:\n" + "".join(f"{k}={v}\n" for k, v in environment())

    def mntr(self, conn: Any) -> str:
        """MonitorCommand: ``zk_<key>\\t<value>`` lines."""
        if not self.running:
            return ZK_NOT_SERVING + "\n"
        lines = [("version", full_version()), ("server_state", self._server_state())]
        gauges = self._gauges()
        lines.extend((name, gauges[name]) for name in MNTR_GAUGES)
        lines.extend(self._quota_gauges())
        stats = self.server.stats
        counters = dict(stats.counters)
        counters["bytes_received_count"] = stats.bytes_received
        lines.extend((name, str(counters.get(name, 0))) for name in MNTR_COUNTERS)
        known = set(MNTR_COUNTERS)
        lines.extend((name, str(v)) for name, v in counters.items() if name not in known)
        summaries = stats.summaries
        for name in MNTR_SUMMARIES:
            lines.extend((summaries.get(name) or Summary()).values(name))
        for name in MNTR_PERCENTILE_SUMMARIES:
            lines.extend((summaries.get(name) or Summary(percentiles=True)).values(name))
        for set_name in NAMESPACE_SUMMARY_SETS:
            suffix = "_" + set_name
            keys = [k for k in summaries if k.endswith(suffix)]
            namespaces = java_string_order(k[: -len(suffix)] for k in keys)
            for ns in namespaces:
                lines.extend(summaries[ns + suffix].values(ns + suffix))
        return "".join(f"zk_{k}\t{v}\n" for k, v in lines)

    def _gauges(self) -> dict[str, str]:
        server = self.server
        stats = server.stats
        tree = server.tree
        mn, avg, mx = self._latency_triplet()
        return {
            "ephemerals_count": str(tree.ephemerals_count()),
            "num_alive_connections": str(len(server.connections)),
            "avg_latency": java_double(avg),
            "outstanding_requests": str(stats.outstanding),
            "znode_count": str(tree.node_count()),
            "global_sessions": str(len(server.sessions.sessions)),
            "non_mtls_remote_conn_count": "0",
            "last_client_response_size": str(stats.last_response_size),
            "packets_sent": str(stats.packets_sent),
            "packets_received": str(stats.packets_received),
            "max_client_response_size": str(stats.max_response_size),
            "connection_drop_probability": "0.0",
            "watch_count": str(tree.watch_count()),
            "auth_failed_count": str(stats.auth_failed),
            "min_latency": str(mn),
            "max_file_descriptor_count": str(max_fd_count()),
            "approximate_data_size": str(tree.cached_approximate_data_size()),
            "open_file_descriptor_count": str(open_fd_count()),
            "local_sessions": "0",
            "uptime": str(max(0, int(server.wall_ms() - server.started_ms))),
            "max_latency": str(mx),
            "outstanding_tls_handshake": "0",
            "min_client_response_size": str(stats.min_response_size),
            "non_mtls_local_conn_count": "0",
        }

    def _quota_gauges(self) -> list[tuple[str, str]]:
        """QuotaMetricsUtils: per top-level namespace quota limits and usage,
        from the /zookeeper/quota subtree (absent when no quota is set)."""
        from pyzk.datatree.quota import StatsTrack

        tree = self.server.tree
        found: dict[str, dict[str, int]] = {name: {} for name in QUOTA_GAUGE_SETS}
        root = "/zookeeper/quota"
        stack = [root]
        while stack:
            path = stack.pop()
            node = tree.get_node(path)
            if node is None:
                continue
            if node.children:
                stack.extend(f"{path}/{c}" for c in node.children)
                continue
            leaf = path.rsplit("/", 1)[-1]
            if leaf not in ("zookeeper_limits", "zookeeper_stats") or node.data is None:
                continue
            target = path[len(root):path.rfind("/")]
            parts = target.split("/")
            if len(parts) < 2 or not parts[1]:
                continue
            ns = parts[1]
            try:
                st = StatsTrack(node.data)
            except ValueError:
                continue
            if leaf == "zookeeper_limits":
                pairs = (("quota_count_limit_per_namespace", st.count_hard_limit, st.count),
                         ("quota_bytes_limit_per_namespace", st.byte_hard_limit, st.bytes))
                for name, hard, soft in pairs:
                    value = hard if hard > -1 else soft
                    found[name][ns] = found[name].get(ns, 0) + value
            else:
                found["quota_count_usage_per_namespace"][ns] = (
                    found["quota_count_usage_per_namespace"].get(ns, 0) + st.count)
                found["quota_bytes_usage_per_namespace"][ns] = (
                    found["quota_bytes_usage_per_namespace"].get(ns, 0) + st.bytes)
        out: list[tuple[str, str]] = []
        for name in QUOTA_GAUGE_SETS:
            for ns in java_string_order(found[name]):
                out.append((f"{ns}_{name}", str(found[name][ns])))
        return out

    def wchs(self, conn: Any) -> str:
        """WatchCommand wchs: Apache summarises the data watches only."""
        if not self.running:
            return ZK_NOT_SERVING + "\n"
        tree = self.server.tree
        summary = getattr(tree, "dump_watch_summary", None)
        conns, paths, total = summary() if summary else tree.data_watches.summary()
        return f"{conns} connections watching {paths} paths\nTotal watches:{total}\n"

    def wchc(self) -> str:
        """WatchCommand wchc: data watches by session."""
        if not self.running:
            return ZK_NOT_SERVING + "\n"
        out = []
        for watcher, paths in self.server.tree.data_watches.by_watcher().items():
            out.append(f"0x{hex64(getattr(watcher, 'session_id', 0))}\n")
            out.extend(f"\t{p}\n" for p in java_string_order(paths))
        return "".join(out) + "\n"

    def wchp(self) -> str:
        """WatchCommand wchp: data watches by path."""
        if not self.running:
            return ZK_NOT_SERVING + "\n"
        by_path = self.server.tree.data_watches.by_path()
        out = []
        for path in java_string_order(by_path):
            out.append(f"{path}\n")
            out.extend(f"\t0x{hex64(getattr(w, 'session_id', 0))}\n" for w in by_path[path])
        return "".join(out) + "\n"

    def dirs(self, conn: Any) -> str:
        """DirsCommand (Apache's datadir_size is the transaction log directory's size)."""
        if not self.running:
            return ZK_NOT_SERVING + "\n"
        snap, logd = self._data_dirs()
        return f"datadir_size: {dir_size(logd)}\nlogdir_size: {dir_size(snap)}\n"

    def isro(self, conn: Any) -> str:
        if not self.running:
            return "null"
        return "ro" if getattr(self.server, "read_only", False) else "rw"

    def srst(self, conn: Any) -> str:
        if not self.running:
            return ZK_NOT_SERVING + "\n"
        reset_server_stats(self.server.stats)
        return "Server stats reset.\n"

    def stmk(self, conn: Any) -> str:
        """SetTraceMaskCommand: the 8 bytes after the word are the new mask (a
        Java long); with fewer, Apache fails the read and closes silently."""
        buf = bytes(getattr(conn, "buf", b""))
        if len(buf) < 12:
            return ""
        self.trace_mask = _LONG.unpack_from(buf, 4)[0]
        log.info("Set text trace mask to 0x%s", hex64(self.trace_mask))
        return str(self.trace_mask)

    def hash(self, conn: Any) -> str:
        """DigestCommand: the digest log, one ``<zxid hex>: <digest>`` per line."""
        if not self.running:
            return ZK_NOT_SERVING
        return "".join(f"{hex64(zxid)}: {digest}\n"
                       for zxid, _version, digest in self.server.tree.digest_log)


__all__ = [
    "COMMANDS", "FOUR_LETTER_WORDS", "FourLetterWords", "ConnectionStats", "Summary",
    "LAST_OP_NAMES", "observe", "count", "reset_server_stats", "full_version",
    "java_double", "hex64",
]
