"""Four-letter words (ruok, srvr, stat, mntr, ...) in Apache ZooKeeper 3.8's formats.

Monitoring scripts, ``zkServer.sh status``, kazoo and Prometheus exporters
parse these answers, so every command prints what Apache 3.8's
``server/command/*Command.java`` prints, byte for byte where the facts are
the same: the same keys, separators, line ends (``PrintWriter.println`` is
``\\n``), Java's number formatting (``Long.toHexString``, ``Double.toString``)
and Java's collection orders where pyzk can reproduce them (``HashSet<String>``
of paths, ``ConcurrentHashMap<Long, ...>`` of session ids); those helpers are
pyzk.javacompat's.

The whitelist (``4lw.commands.whitelist``, resolved by pyzk.config) behaves
as FourLetterCommands.isEnabled: a known word that is not enabled is answered
``<cmd> is not executed because it is not in the whitelist.`` and the
connection is closed; ``srvr`` is always enabled.  The known words are
pyzk.config's ``FOUR_LETTER_WORDS``.

What the commands print comes from elsewhere: the server's statistics and
mntr's metric registry (with its names in Apache's order) from
pyzk.core.metrics, the host facts (fd counts, directory sizes, the version
string, ``envi``) from pyzk.shell.probes, whose docstring says how pyzk
fills Apache's Java-specific keys.
"""

from __future__ import annotations

import logging
import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pyzk.config import FOUR_LETTER_WORDS
from pyzk.core.metrics import (
    MNTR_COUNTERS,
    MNTR_GAUGES,
    MNTR_PERCENTILE_SUMMARIES,
    MNTR_SUMMARIES,
    NAMESPACE_SUMMARY_SETS,
    QUOTA_GAUGE_SETS,
    ConnectionStats,
    Summary,
    reset_server_stats,
)
from pyzk.javacompat import (
    chm_long_order,
    hex64,
    java_date,
    java_double,
    java_round4,
    java_socket_address,
    java_string_order,
)
from pyzk.shell.probes import (
    dir_size,
    environment,
    full_version,
    local_time,
    max_fd_count,
    open_fd_count,
)

if TYPE_CHECKING:
    from pyzk.config import ServerConfig
    from pyzk.core.zkserver import ZooKeeperServer
    from pyzk.shell.connection import ClientConnection

log = logging.getLogger(__name__)

#: The words as the first four bytes of a connection carry them.
FOUR_LETTER_WORD_BYTES = frozenset(c.encode("ascii") for c in FOUR_LETTER_WORDS)

ZK_NOT_SERVING = "This ZooKeeper instance is not currently serving requests"
# ZooTrace's default mask: CLIENT_REQUEST | SERVER_PACKET | SESSION | WARNING.
DEFAULT_TRACE_MASK = (1 << 1) | (1 << 4) | (1 << 5) | (1 << 8)
# NIOServerCnxnFactory: zookeeper.nio.sessionlessCnxnTimeout, also the
# bucket width of its connection expiry queue.
SESSIONLESS_CNXN_TIMEOUT_MS = 10000
_LONG = struct.Struct(">q")


class FourLetterHost(Protocol):
    """What the commands read of their shell (StandaloneShell, EnsembleShell)."""

    @property
    def cfg(self) -> ServerConfig: ...

    @property
    def server(self) -> ZooKeeperServer: ...


class FourLetterWords:
    """Answers the four-letter words for one server shell.

    ``shell`` provides ``cfg`` (pyzk.config.ServerConfig) and ``server``
    (ZooKeeperServer); ``run`` returns the text to write before the shell
    closes the connection ("" writes nothing).
    """

    def __init__(self, shell: FourLetterHost) -> None:
        self.shell = shell
        self.server: ZooKeeperServer = shell.server
        self.trace_mask = DEFAULT_TRACE_MASK
        self._handlers: dict[str, Callable[[ClientConnection], str]] = {
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

    def run(self, cmd: str, conn: ClientConnection) -> str:
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

    def _packet_received(self, conn: ClientConnection) -> None:
        """ServerCnxn.packetReceived(4): the word counts as a received packet."""
        conn.packets_received = getattr(conn, "packets_received", 0) + 1
        stats = self.server.stats
        stats.packets_received += 1
        stats.bytes_received += 4

    @property
    def running(self) -> bool:
        return bool(getattr(self.server, "running", True))

    # -- helpers ---------------------------------------------------------------------

    @property
    def netty(self) -> bool:
        """Whether the shell answers as Apache's NettyServerCnxnFactory (the
        only factory that serves TLS; see ClientPortHost.netty)."""
        return bool(getattr(self.shell, "netty", False))

    def _factory_connections(self, current: ClientConnection) -> list[ClientConnection]:
        """The connections of the factory ``current`` came in on: Apache runs one
        for clientPort and one for secureClientPort, and cons, stat and crst see
        only their own (``factory`` is set by ClientPortHost)."""
        mine = getattr(current, "factory", "client")
        return [c for c in self.server.connections if getattr(c, "factory", "client") == mine]

    def _connections(self, current: ClientConnection) -> list[ClientConnection]:
        """Live connections of ``current``'s factory, oldest first (Apache's
        order is identity-hash order)."""
        return sorted(self._factory_connections(current),
                      key=lambda c: (getattr(c, "connected_at", 0), getattr(c, "remote_port", 0)))

    @staticmethod
    def _queued(conn: ClientConnection) -> int:
        """Outstanding requests as Apache counts them (xid > 0 only)."""
        return sum(1 for e in getattr(conn, "inflight", ()) if getattr(e, "xid", 0) > 0)

    def connection_info(self, conn: ClientConnection, current: ClientConnection,
                        brief: bool) -> str:
        """ServerCnxn.dumpConnectionInfo."""
        closed = bool(getattr(conn, "closed", False))
        addr = "null" if closed else java_socket_address(conn.remote_ip, conn.remote_port)
        # NIO has cleared the asking connection's interest ops; Netty reports
        # OP_READ for every open channel
        interest = "0" if closed or (conn is current and not self.netty) else "1"
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

    def stat(self, conn: ClientConnection, *, clients: bool) -> str:
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
            for c in self._connections(conn):
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

    def conf(self, conn: ClientConnection) -> str:
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

    def cons(self, conn: ClientConnection) -> str:
        """ConsCommand: full connection info, one per line, then an empty line."""
        if not self.running:
            return ZK_NOT_SERVING + "\n"
        lines = [self.connection_info(c, conn, brief=False) + "\n"
                 for c in self._connections(conn)]
        return "".join(lines) + "\n"

    def crst(self, conn: ClientConnection) -> str:
        """CnxnStatResetCommand: every connection's counters, this one's included."""
        if not self.running:
            return ZK_NOT_SERVING + "\n"
        for c in self._factory_connections(conn):
            c.packets_received = 0
            c.packets_sent = 0
            st = getattr(c, "cnxn_stats", None)
            if st is not None:
                st.reset()
        return "Connection stats reset.\n"

    def dump(self, conn: ClientConnection) -> str:
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
            out.append(f"{len(members)} expire at {java_date(local_time(int(wall + at - now)))}:\n")
            out.extend(f"\t0x{hex64(sid)}\n" for sid in members)
        out.append("ephemeral nodes dump:\n")
        ephemerals = server.tree.ephemerals
        out.append(f"Sessions with Ephemerals ({len(ephemerals)}):\n")
        for sid in chm_long_order(ephemerals):
            out.append(f"0x{hex64(sid)}:\n")
            out.extend(f"\t{p}\n" for p in ephemerals[sid].java_order())
        out.append("Connections dump:\n")
        if not self.netty:  # only NIOServerCnxnFactory dumps its connections
            out.append(self._connection_buckets(conn, now, wall))
        return "".join(out)

    def _connection_buckets(self, current: ClientConnection, now: float, wall: int) -> str:
        """NIOServerCnxnFactory.dumpConnections: connections by expiry bucket
        (a connection expires its session timeout, or 10 s while it has no
        session, after its last packet; buckets are 10 s wide)."""
        width = SESSIONLESS_CNXN_TIMEOUT_MS
        buckets: dict[int, list[ClientConnection]] = {}
        conns = self._connections(current)
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
            out.append(f"{len(members)} expire at {java_date(local_time(int(wall + at - now)))}:\n")
            for c in members:
                addr = java_socket_address(c.remote_ip, c.remote_port)
                out.append(f"\tip: {addr} sessionId: 0x{hex64(getattr(c, 'session_id', 0))}\n")
        return "".join(out)

    def envi(self, conn: ClientConnection) -> str:
        """EnvCommand (answered even when the server is not serving)."""
        return "Environment:\n" + "".join(f"{k}={v}\n" for k, v in environment())

    def mntr(self, conn: ClientConnection) -> str:
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
            "non_mtls_remote_conn_count": str(getattr(self.shell, "non_mtls_remote", 0)),
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
            "non_mtls_local_conn_count": str(getattr(self.shell, "non_mtls_local", 0)),
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

    def wchs(self, conn: ClientConnection) -> str:
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

    def dirs(self, conn: ClientConnection) -> str:
        """DirsCommand (Apache's datadir_size is the transaction log directory's size)."""
        if not self.running:
            return ZK_NOT_SERVING + "\n"
        snap, logd = self._data_dirs()
        return f"datadir_size: {dir_size(logd)}\nlogdir_size: {dir_size(snap)}\n"

    def isro(self, conn: ClientConnection) -> str:
        if not self.running:
            return "null"
        return "ro" if getattr(self.server, "read_only", False) else "rw"

    def srst(self, conn: ClientConnection) -> str:
        if not self.running:
            return ZK_NOT_SERVING + "\n"
        reset_server_stats(self.server.stats)
        return "Server stats reset.\n"

    def stmk(self, conn: ClientConnection) -> str:
        """SetTraceMaskCommand: the 8 bytes after the word are the new mask (a
        Java long); with fewer, Apache fails the read and closes silently."""
        buf = bytes(getattr(conn, "buf", b""))
        if len(buf) < 12:
            return ""
        self.trace_mask = _LONG.unpack_from(buf, 4)[0]
        log.info("Set text trace mask to 0x%s", hex64(self.trace_mask))
        return str(self.trace_mask)

    def hash(self, conn: ClientConnection) -> str:
        """DigestCommand: the digest log, one ``<zxid hex>: <digest>`` per line."""
        if not self.running:
            return ZK_NOT_SERVING
        return "".join(f"{hex64(zxid)}: {digest}\n"
                       for zxid, _version, digest in self.server.tree.digest_log)



__all__ = [
    "DEFAULT_TRACE_MASK", "FOUR_LETTER_WORD_BYTES", "FourLetterHost", "FourLetterWords",
    "SESSIONLESS_CNXN_TIMEOUT_MS", "ZK_NOT_SERVING",
]
