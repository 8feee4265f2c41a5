"""The AdminServer: Apache's HTTP command API (JettyAdminServer) on aiohttp.

Kubernetes probes hit ``/commands/ruok`` and dashboards poll
``/commands/monitor``, so the answers follow Apache 3.8's contract: the
command table, the JSON and the listing are pyzk.core.admincommands'; this
module gathers the facts each command reports and serves them.

- The HTTP server runs on the server's own asyncio loop (aiohttp's
  AppRunner and TCPSite), started and stopped by the shells. It binds
  ``admin.serverAddress:admin.serverPort`` (``zookeeper.admin.*``); as in
  Apache, a port in use or a bad address is logged as an error and the
  ZooKeeper server goes on without its admin server.
- Every request is answered on the loop from in-memory state, except what
  needs the disk (directory sizes, the newest snapshot), which is gathered in
  a worker thread first, so polling never blocks the client port.
- The facts are the four-letter words' (pyzk.shell.fourletter, whose
  helpers compute stat/mntr/cons/...): mntr's text is parsed back into typed
  values, so the two can never disagree.
- HTTP as Jetty answers it: ``GET`` (and ``HEAD``) under the command URL;
  ``TRACE`` is forbidden (403, JettyAdminServer's constraint); other methods
  are 405; paths outside the command URL are 404; every command, even an
  unknown one or one that fails, is HTTP 200 with ``error`` set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyzk.core.admincommands import (
    NOT_SERVING,
    command_links,
    host_port,
    metric_value,
    multiple_addresses,
    parse_trace_mask,
    resolve,
    response_map,
    to_json,
    unknown_command,
    zxid_hex,
)
from pyzk.core.metrics import reset_server_stats
from pyzk.javacompat import chm_long_order, java_socket_address, java_string_order
from pyzk.shell.probes import dir_size, environment, full_version
from pyzk.txnlog.names import zxid_from_name

if TYPE_CHECKING:
    from aiohttp import web

    from pyzk.config import ServerConfig
    from pyzk.shell.fourletter import FourLetterWords

log = logging.getLogger(__name__)


class _HttpLog(logging.LoggerAdapter):  # type: ignore[type-arg]
    """aiohttp's protocol log: a malformed request (bad request line, header
    too long, a hang-up) is the client's problem, answered 400 or dropped; at
    DEBUG, so a misbehaving client cannot fill the server log with tracebacks."""

    def exception(self, msg: object, *args: object, **kw: Any) -> None:
        kw.setdefault("exc_info", True)
        self.logger.debug(msg, *args, **kw)

    def error(self, msg: object, *args: object, **kw: Any) -> None:
        self.logger.debug(msg, *args, **kw)


_HTTP_LOG = _HttpLog(logging.getLogger(__name__ + ".http"), {})

JSON_ERROR_RESPONSE = '{"error": "Exception writing command response to JSON"}'
#: Commands whose answer includes something read from disk.
_DISK_COMMANDS = frozenset({"dirs", "server_stats", "stats", "last_snapshot"})
#: The Java system properties pyzk can state about itself (probes.environment
#: fills java.* with the Python runtime's facts) beside zoo.cfg's.
_SYSPROP_FROM_ENV = ("java.version", "java.vendor", "java.home", "java.class.path",
                     "java.library.path", "java.io.tmpdir", "os.name", "os.arch",
                     "os.version", "user.name", "user.home", "user.dir")


@dataclass(slots=True)
class DiskFacts:
    """What the disk says, gathered off the loop: FileTxnSnapLog's directory
    sizes (Apache's labels, as dirs prints them) and the newest snapshot."""

    datadir_size: int = 0
    logdir_size: int = 0
    snapshot_zxid: int = -1
    snapshot_time: int = -1


def gather_disk(cfg: ServerConfig) -> DiskFacts:
    """Runs in a worker thread: sizes of ``version-2`` of dataDir and
    dataLogDir, and the newest ``snapshot.<zxid>`` (its zxid and mtime in
    seconds, SnapshotInfo's)."""
    snap = Path(os.path.abspath(cfg.data_dir)) / "version-2"
    logd = Path(os.path.abspath(cfg.data_log_dir or cfg.data_dir)) / "version-2"
    facts = DiskFacts(datadir_size=dir_size(logd), logdir_size=dir_size(snap))
    best: tuple[int, Path] | None = None
    with contextlib.suppress(OSError):
        for entry in os.scandir(snap):
            if not entry.name.startswith("snapshot."):
                continue
            z = zxid_from_name(entry.name, "snapshot")
            if z < 0:
                continue
            if best is None or z > best[0]:
                best = (z, Path(entry.path))
    if best is not None:
        with contextlib.suppress(OSError):
            facts.snapshot_time = int(best[1].stat().st_mtime)
            facts.snapshot_zxid = best[0]
    return facts


class AdminCommands:
    """Runs the commands for one shell (StandaloneShell or EnsembleShell).

    ``shell.fourlw`` is the shell's current FourLetterWords (an ensemble
    makes a new one per role server); the trace mask is kept there, shared
    with stmk/gtmk as Apache's static ZooTrace level is.
    """

    def __init__(self, shell: Any) -> None:
        self.shell = shell

    # -- dispatch ------------------------------------------------------------------

    @staticmethod
    def needs_disk(name: str) -> bool:
        cmd = resolve(name)
        return cmd is not None and cmd.primary in _DISK_COMMANDS

    def run(self, name: str, kwargs: dict[str, str],
            disk: DiskFacts | None = None) -> dict[str, Any]:
        """Commands.runCommand: the response map of ``name``."""
        cmd = resolve(name)
        if cmd is None:
            return unknown_command(name)
        fourlw = self._fourlw()
        if cmd.server_required and (fourlw is None or not fourlw.running):
            return response_map(name, NOT_SERVING, {})
        handler = getattr(self, "_" + cmd.primary)
        error, data = handler(fourlw, kwargs, disk or DiskFacts())
        return response_map(cmd.primary, error, data)

    def _fourlw(self) -> FourLetterWords | None:
        try:
            return self.shell.fourlw if self.shell.server is not None else None
        except AttributeError:
            return None

    # -- facts -----------------------------------------------------------------------

    @property
    def cfg(self) -> ServerConfig:
        return self.shell.cfg

    def _role(self) -> Any:
        return getattr(self.shell, "role", None)

    def _peer(self) -> Any:
        return getattr(self.shell, "peer", None)

    @staticmethod
    def _conn_info(f: FourLetterWords, c: Any, brief: bool) -> dict[str, Any]:
        """ServerCnxn.getConnectionInfo (the asker is never a client connection,
        so every open one shows interest_ops 1)."""
        closed = bool(getattr(c, "closed", False))
        if closed:
            addr = None
        else:
            addr = java_socket_address(c.remote_ip, c.remote_port)[1:]
            if ":" in c.remote_ip:
                host, _, port = addr.rpartition(":")
                addr = f"[{host}]:{port}"
        info: dict[str, Any] = {
            "remote_socket_address": addr,
            "interest_ops": 0 if closed else 1,
            "outstanding_requests": f._queued(c),
            "packets_received": getattr(c, "packets_received", 0),
            "packets_sent": getattr(c, "packets_sent", 0),
        }
        if not brief:
            st = getattr(c, "cnxn_stats", None)
            info.update({
                "session_id": getattr(c, "session_id", 0),
                "last_operation": st.last_op if st else "NA",
                "established": getattr(c, "connected_at", 0),
                "session_timeout": getattr(c, "timeout", 0),
                "last_cxid": st.last_cxid if st else -1,
                "last_zxid": st.last_zxid if st else getattr(c, "last_zxid", -1),
                "last_response_time": st.last_response if st else 0,
                "last_latency": st.last_latency if st else 0,
                "min_latency": st.get_min_latency() if st else 0,
                "avg_latency": st.get_avg_latency() if st else 0,
                "max_latency": st.max_latency if st else 0,
            })
        return info

    def _connection_lists(self, f: FourLetterWords, brief: bool) -> dict[str, Any]:
        """connections and secure_connections: the clientPort factory's and the
        secureClientPort factory's (``factory`` is set by ClientPortHost)."""
        plain: list[dict[str, Any]] = []
        secure: list[dict[str, Any]] = []
        def order(c: Any) -> tuple[int, int]:
            return getattr(c, "connected_at", 0), getattr(c, "remote_port", 0)

        for c in sorted(f.server.connections, key=order):
            into = plain if getattr(c, "factory", "client") == "client" else secure
            into.append(self._conn_info(f, c, brief))
        return {"connections": plain, "secure_connections": secure}

    def _stats_bean(self, f: FourLetterWords, disk: DiskFacts) -> dict[str, Any]:
        """The ServerStats bean as Jackson writes it (its getters, snake_cased;
        Apache's own order varies with the JVM's reflection order)."""
        server = f.server
        stats = server.stats
        mn, avg, mx = f._latency_triplet()
        response = self._buffer_stats(stats.last_response_size, stats.min_response_size,
                                      stats.max_response_size)
        return {
            "packets_sent": stats.packets_sent,
            "packets_received": stats.packets_received,
            "fsync_threshold_exceed_count": stats.counters.get("fsync_threshold_exceed_count", 0),
            "client_response_stats": response,
            "data_dir_size": disk.datadir_size,
            "log_dir_size": disk.logdir_size,
            "server_state": f._server_state(),
            "last_processed_zxid": server.tree.last_processed_zxid,
            "outstanding_requests": stats.outstanding,
            "avg_latency": float(avg),
            "max_latency": mx,
            "min_latency": mn,
            "num_alive_client_connections": len(server.connections),
            "uptime": max(0, int(server.wall_ms() - server.started_ms)),
            "auth_failed_count": stats.auth_failed,
            "non_mtlsremote_conn_count": getattr(self.shell, "non_mtls_remote", 0),
            "non_mtlslocal_conn_count": getattr(self.shell, "non_mtls_local", 0),
            "provider_null": False,
        }

    @staticmethod
    def _buffer_stats(last: int, mn: int, mx: int) -> dict[str, int]:
        return {"last_buffer_size": last, "min_buffer_size": mn, "max_buffer_size": mx}

    def _is_leader(self) -> bool:
        from pyzk.shell.roles import LeaderRole

        return isinstance(self._role(), LeaderRole)

    # -- commands (each returns (error, data)) -----------------------------------------

    def _ruok(self, f: Any, kw: dict[str, str], d: DiskFacts) -> tuple[str | None, dict]:
        return None, {}

    def _configuration(self, f: FourLetterWords, kw: dict[str, str],
                       d: DiskFacts) -> tuple[str | None, dict]:
        """ZooKeeperServerConf.toMap."""
        cfg = self.cfg
        snap, logd = f._data_dirs()
        backlog = cfg.raw.get("clientPortListenBacklog", "-1") if cfg.raw else "-1"
        server_id = 0 if cfg.is_standalone() else (cfg.my_id if cfg.my_id is not None else -1)
        return None, {
            "client_port": cfg.client_port if cfg.client_port is not None else -1,
            "data_dir": str(snap),
            "data_log_dir": str(logd),
            "tick_time": cfg.tick_time,
            "max_client_cnxns": cfg.max_client_cnxns,
            "min_session_timeout": f.server.min_session_timeout,
            "max_session_timeout": f.server.max_session_timeout,
            "server_id": server_id,
            "client_port_listen_backlog": int(backlog) if backlog.lstrip("-").isdigit() else -1,
        }

    def _connection_stat_reset(self, f: FourLetterWords, kw: dict[str, str],
                               d: DiskFacts) -> tuple[str | None, dict]:
        """resetAllConnectionStats of the clientPort factory."""
        for c in f.server.connections:
            if getattr(c, "factory", "client") != "client":
                continue
            c.packets_received = 0
            c.packets_sent = 0
            st = getattr(c, "cnxn_stats", None)
            if st is not None:
                st.reset()
        return None, {}

    def _connections(self, f: FourLetterWords, kw: dict[str, str],
                     d: DiskFacts) -> tuple[str | None, dict]:
        return None, self._connection_lists(f, brief=False)

    def _hash(self, f: FourLetterWords, kw: dict[str, str],
              d: DiskFacts) -> tuple[str | None, dict]:
        digests = [{"zxid": z, "digest_version": v, "digest": g}
                   for z, v, g in f.server.tree.digest_log]
        return None, {"digests": digests}

    def _dirs(self, f: FourLetterWords, kw: dict[str, str],
              d: DiskFacts) -> tuple[str | None, dict]:
        return None, {"datadir_size": d.datadir_size, "logdir_size": d.logdir_size}

    def _dump(self, f: FourLetterWords, kw: dict[str, str],
              d: DiskFacts) -> tuple[str | None, dict]:
        """getSessionExpiryMap (expiry time -> session ids) and getEphemerals."""
        server = f.server
        buckets: dict[int, list[int]] = {}
        for sid, s in server.sessions.sessions.items():
            if s.expire_at:
                buckets.setdefault(int(s.expire_at), []).append(sid)
        expiry = {str(at): chm_long_order(buckets[at]) for at in sorted(buckets)}
        ephemerals = server.tree.ephemerals
        paths = {str(sid): list(ephemerals[sid].java_order())
                 for sid in chm_long_order(ephemerals)}
        return None, {"expiry_time_to_session_ids": expiry,
                      "session_id_to_ephemeral_paths": paths}

    def _environment(self, f: Any, kw: dict[str, str], d: DiskFacts) -> tuple[str | None, dict]:
        return None, dict(environment())

    def _get_trace_mask(self, f: Any, kw: dict[str, str],
                        d: DiskFacts) -> tuple[str | None, dict]:
        from pyzk.shell.fourletter import DEFAULT_TRACE_MASK

        return None, {"tracemask": f.trace_mask if f is not None else DEFAULT_TRACE_MASK}

    def _initial_configuration(self, f: Any, kw: dict[str, str],
                               d: DiskFacts) -> tuple[str | None, dict]:
        return None, {"initial_configuration": self.cfg.initial_config or None}

    def _is_read_only(self, f: FourLetterWords, kw: dict[str, str],
                      d: DiskFacts) -> tuple[str | None, dict]:
        return None, {"read_only": bool(getattr(f.server, "read_only", False))}

    def _last_snapshot(self, f: Any, kw: dict[str, str],
                       d: DiskFacts) -> tuple[str | None, dict]:
        return None, {"zxid": zxid_hex(d.snapshot_zxid), "timestamp": d.snapshot_time}

    def _leader(self, f: Any, kw: dict[str, str], d: DiskFacts) -> tuple[str | None, dict]:
        peer = self._peer()
        if peer is None:
            return None, {"error": "server is not initialized"}
        leader_id = peer.leader_id if peer.leader_id is not None else -1
        spec = peer.verifier.members.get(leader_id)
        return None, {"is_leader": self._is_leader(), "leader_id": leader_id,
                      "leader_ip": spec.host if spec is not None else ""}

    def _monitor(self, f: Any, kw: dict[str, str], d: DiskFacts) -> tuple[str | None, dict]:
        """dumpMonitorValues and the metrics provider's dump: mntr's lines, typed."""
        if f is None:
            return None, {}
        data: dict[str, Any] = {}
        for line in f.mntr(None).splitlines():
            key, sep, value = line.partition("\t")
            if sep and key.startswith("zk_"):
                data[key[3:]] = metric_value(value)
        return None, data

    def _observer_connection_stat_reset(self, f: Any, kw: dict[str, str],
                                        d: DiskFacts) -> tuple[str | None, dict]:
        return None, {}  # pyzk's learners keep no per-observer counters to reset

    def _set_trace_mask(self, f: Any, kw: dict[str, str],
                        d: DiskFacts) -> tuple[str | None, dict]:
        mask, error = parse_trace_mask(kw)
        if error is not None:
            return None, {"error": error}
        if f is not None:
            f.trace_mask = mask
        log.info("Set text trace mask to %s", mask)
        return None, {"tracemask": mask}

    def _server_stats(self, f: FourLetterWords, kw: dict[str, str],
                      d: DiskFacts) -> tuple[str | None, dict]:
        """SrvrCommand."""
        server = f.server
        stats = server.stats
        data: dict[str, Any] = {
            "version": full_version(),
            "read_only": bool(getattr(server, "read_only", False)),
            "server_stats": self._stats_bean(f, d),
            "client_response": self._buffer_stats(stats.last_response_size,
                                                  stats.min_response_size,
                                                  stats.max_response_size),
        }
        role = self._role()
        if self._is_leader():
            last, mn, mx = role.proposal_sizes or (-1, -1, -1)
            data["proposal_stats"] = self._buffer_stats(last, mn, mx)
        data["node_count"] = server.tree.node_count()
        return None, data

    def _stats(self, f: FourLetterWords, kw: dict[str, str],
               d: DiskFacts) -> tuple[str | None, dict]:
        _, data = self._server_stats(f, kw, d)
        data.update(self._connection_lists(f, brief=True))
        return None, data

    def _stat_reset(self, f: FourLetterWords, kw: dict[str, str],
                    d: DiskFacts) -> tuple[str | None, dict]:
        reset_server_stats(f.server.stats)
        return None, {}

    def _observers(self, f: Any, kw: dict[str, str], d: DiskFacts) -> tuple[str | None, dict]:
        """SyncedObserverConsCommand: the leader's synced observers."""
        role = self._role()
        if not self._is_leader():
            return None, {"synced_observers": 0, "observers": []}
        infos = []
        for h in role.core.observing:
            link = h.peer
            infos.append({
                "remote_socket_address": "/" + str(getattr(link, "remote", "?")),
                "sid": h.sid,
                "established": int(getattr(link, "established", 0)),
                "queued_packets": len(h.backlog),
                "queued_packets_size": 0,
                "packets_received": getattr(link, "packets_received", 0),
                "packets_sent": getattr(link, "packets_sent", 0),
                "requests": 0,
                # LearnerHandler.lastZxid: the zxid of the last packet sent; a
                # synced observer has been sent everything the leader applied
                "last_zxid": max(h.peer_last_zxid, f.server.tree.last_processed_zxid),
            })
        return None, {"synced_observers": len(role.core.observing), "observers": infos}

    def _system_properties(self, f: Any, kw: dict[str, str],
                           d: DiskFacts) -> tuple[str | None, dict]:
        """System.getProperties sorted: pyzk's stand-ins for the JVM's own,
        then every zookeeper.* property the config and JVM flags set."""
        props = {k: v for k, v in environment() if k in _SYSPROP_FROM_ENV}
        props.update({"file.separator": os.sep, "path.separator": os.pathsep,
                      "line.separator": "\n", "file.encoding": "UTF-8"})
        props.update(self.cfg.system_properties)
        return None, {k: props[k] for k in sorted(props)}

    def _voting_view(self, f: Any, kw: dict[str, str], d: DiskFacts) -> tuple[str | None, dict]:
        peer = self._peer()
        if peer is None:
            return None, {"current_config": {}}
        view: dict[str, Any] = {}
        me = peer.my_id
        for sid in sorted(peer.verifier.voting):
            s = peer.verifier.members[sid]
            client = ""
            if s.client_port is not None and not (s.client_from_static and sid != me):
                client = host_port(s.client_host or "0.0.0.0", s.client_port)
            elif sid == me and self.cfg.client_port is not None:
                client = host_port(self.cfg.client_port_address or "0.0.0.0",
                                   self.cfg.client_port)
            view[str(sid)] = {
                "server_addresses": [host_port(s.host, s.quorum_port)],
                "election_addresses": [host_port(s.host, s.election_port)],
                "client_address": client,
                "learner_type": "participant" if s.role == "participant" else "observer",
            }
        return None, {"current_config": view}

    def _watches(self, f: FourLetterWords, kw: dict[str, str],
                 d: DiskFacts) -> tuple[str | None, dict]:
        by_watcher = f.server.tree.data_watches.by_watcher()
        return None, {"session_id_to_watched_paths": {
            str(getattr(w, "session_id", 0)): java_string_order(paths)
            for w, paths in by_watcher.items()}}

    def _watches_by_path(self, f: FourLetterWords, kw: dict[str, str],
                         d: DiskFacts) -> tuple[str | None, dict]:
        by_path = f.server.tree.data_watches.by_path()
        return None, {"path_to_session_ids": {
            p: [getattr(w, "session_id", 0) for w in by_path[p]]
            for p in java_string_order(by_path)}}

    def _watch_summary(self, f: FourLetterWords, kw: dict[str, str],
                       d: DiskFacts) -> tuple[str | None, dict]:
        tree = f.server.tree
        summary = getattr(tree, "dump_watch_summary", None)
        conns, paths, total = summary() if summary else tree.data_watches.summary()
        return None, {"num_connections": conns, "num_paths": paths, "num_total_watches": total}

    def _zabstate(self, f: Any, kw: dict[str, str], d: DiskFacts) -> tuple[str | None, dict]:
        peer = self._peer()
        if peer is None or f is None:
            return None, {"voting": False, "zabstate": ""}
        from pyzk.quorum.election import ServerState

        me = peer.verifier.members.get(peer.my_id)
        cfg_me = self.cfg.servers.get(peer.my_id)
        spec = cfg_me or me
        zxid = f.server.tree.last_processed_zxid
        role = self._role()
        if peer.state == ServerState.LOOKING or role is None:
            state = "election"
        elif f.running:
            state = "broadcast"
        else:
            state = "synchronization"
        client = ""
        if self.cfg.client_port is not None:
            client = host_port(self.cfg.client_port_address or "0.0.0.0", self.cfg.client_port)
        return None, {
            "myid": peer.my_id,
            "is_leader": self._is_leader(),
            "quorum_address": multiple_addresses(spec.host, spec.quorum_port) if spec else None,
            "election_address": (multiple_addresses(spec.host, spec.election_port)
                                 if spec else None),
            "client_address": client,
            "voting": me is not None and peer.my_id in peer.verifier.voting,
            "last_zxid": "0x" + zxid_hex(zxid),
            "zab_epoch": zxid >> 32,
            "zab_counter": zxid & 0xFFFFFFFF,
            "zabstate": state,
        }


class AdminServer:
    """The HTTP side: one aiohttp site on the shell's loop.

    ``start`` never raises for a bind failure (Apache logs "Problem starting
    AdminServer" and the server runs on); ``stop`` closes the site and every
    open admin connection.
    """

    def __init__(self, shell: Any, cfg: ServerConfig) -> None:
        self.cfg = cfg
        self.commands = AdminCommands(shell)
        from pyzk.shell.adminsnap import SnapshotRestore

        self.snaprestore = SnapshotRestore(shell, cfg)
        self.url = cfg.admin_command_url.rstrip("/") or ""
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    async def start(self) -> None:
        cfg = self.cfg
        if not cfg.admin_enable_server:
            return
        # imported here: aiohttp costs a few hundred ms at start, which a
        # server without its admin port (and every failover) should not pay
        from aiohttp import web

        app = web.Application(handler_args={"max_field_size": 8190})
        app.router.add_route("*", "/{tail:.*}", self._handle)
        app.on_response_prepare.append(_strict_transport_security)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, logger=_HTTP_LOG,
                               keepalive_timeout=max(cfg.admin_idle_timeout, 0) / 1000.0)
        await runner.setup()
        try:
            ctx = admin_tls_context(cfg)
            if ctx is not None and not cfg.admin_force_https:
                # UnifiedConnectionFactory: TLS or plaintext, by the first bytes
                from pyzk.shell.unified import UnifiedListener

                loop = asyncio.get_running_loop()
                handler = runner.server
                assert handler is not None
                self._unified = await UnifiedListener.open(
                    loop, cfg.admin_server_address, cfg.admin_server_port,
                    lambda secure: handler(), ctx, 10.0, name="admin port",
                    plaintext_on_timeout=True)
                self._runner = runner
                self.port = self._unified.sockets[0].getsockname()[1]
                log.info("Started AdminServer on address %s, port %d and command URL %s "
                         "(port unification)", cfg.admin_server_address, self.port,
                         cfg.admin_command_url)
                return
            site = web.TCPSite(runner, cfg.admin_server_address, cfg.admin_server_port,
                               reuse_address=True, ssl_context=ctx)
            await site.start()
        except (OSError, ValueError) as e:
            log.error("Problem starting AdminServer on address %s, port %d and command URL %s: %s",
                      cfg.admin_server_address, cfg.admin_server_port, cfg.admin_command_url, e)
            await runner.cleanup()
            return
        self._runner = runner
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else cfg.admin_server_port
        log.info("Started AdminServer on address %s, port %d and command URL %s",
                 cfg.admin_server_address, self.port, cfg.admin_command_url)

    _unified: Any = None

    async def stop(self) -> None:
        unified, self._unified = self._unified, None
        if unified is not None:
            unified.close()
        runner, self._runner = self._runner, None
        if runner is not None:
            try:
                await runner.cleanup()
            except Exception:  # shutting down: say it, never fail the stop
                log.exception("Problem stopping AdminServer")

    # -- HTTP -------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import web

        path = request.path
        base = self.url
        if path != base and not path.startswith(base + "/"):
            return _jetty_error(404, "Not Found")
        if request.method == "TRACE":
            return web.Response(status=403)
        name = path[len(base):]
        from pyzk.shell.adminsnap import RESTORE_NAMES, SNAPSHOT_NAMES

        if name[1:] in SNAPSHOT_NAMES and request.method == "GET":
            return await self.snaprestore.snapshot(request)
        if name[1:] in RESTORE_NAMES and request.method == "POST":
            return await self.snaprestore.restore(request)
        if request.method not in ("GET", "HEAD"):
            return _jetty_error(405, f"HTTP method {request.method} is not supported by this URL")
        name = path[len(base):]
        if name in ("", "/"):
            return web.Response(body=command_links(base).encode("utf-8"),
                                content_type="text/html", charset="utf-8")
        name = name[1:]
        kwargs: dict[str, str] = {}
        for key in request.query:
            kwargs.setdefault(key, request.query[key])
        try:
            disk = None
            if self.commands.needs_disk(name):
                disk = await asyncio.to_thread(gather_disk, self.cfg)
            body = to_json(self.commands.run(name, kwargs, disk))
        except Exception:
            log.warning("Exception writing command response to JSON", exc_info=True)
            body = JSON_ERROR_RESPONSE
        return web.Response(body=body.encode("utf-8"), content_type="application/json")


def admin_tls_context(cfg: ServerConfig) -> ssl.SSLContext | None:
    """JettyAdminServer's SslContextFactory: with admin.portUnification or
    admin.forceHttps, the ssl.quorum.* key and trust stores (QuorumX509Util);
    Jetty asks no client certificate. None for plain HTTP."""
    if not (cfg.admin_port_unification or cfg.admin_force_https):
        return None
    import dataclasses

    from pyzk.config.tls import QUORUM_PREFIX, tls_settings
    from pyzk.shell.tlscontext import server_context

    settings = tls_settings(cfg.system_properties, QUORUM_PREFIX)
    ctx = server_context(dataclasses.replace(settings, client_auth="NONE"))
    log.info("Successfully loaded private key from %s",
             settings.keystore.location if settings.keystore else None)
    return ctx


#: SecureRequestCustomizer's Strict-Transport-Security on HTTPS answers (a day)
_STS = "max-age=86400; includeSubDomains"


async def _strict_transport_security(request: web.Request, response: web.StreamResponse) -> None:
    if request.secure:
        response.headers["Strict-Transport-Security"] = _STS


def _jetty_error(status: int, message: str) -> web.Response:
    """Jetty's error page, in short."""
    from aiohttp import web

    html = (f"<html>\n<head>\n<title>Error {status} {message}</title>\n</head>\n"
            f"<body><h2>HTTP ERROR {status} {message}</h2>\n</body>\n</html>\n")
    return web.Response(status=status, text=html, content_type="text/html",
                        charset="iso-8859-1")


__all__ = ["AdminCommands", "AdminServer", "DiskFacts", "gather_disk"]
