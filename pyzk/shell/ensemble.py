"""An ensemble member's process: client port, election, and the current role.

The client port opens at start, as Apache's connection factory does before
the first election; while no role is established a client is disconnected
right after its ConnectRequest and srvr/stat/mntr answer "not currently
serving". The :class:`~pyzk.shell.quorumpeer.QuorumPeer` elects, this shell plays
the role it is given (pyzk.shell.roles) and, when the role ends, keeps its
database in memory for the next election, brought up to the end of the log
(or, when the role cannot hand it over, loads it from disk). With
``readonlymode.enabled`` an
election that outlasts max(2 s, tickTime) puts a read-only server
(pyzk.core.readonly) in front of clients until a role starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Any

from pyzk.config import ServerConfig
from pyzk.core.readonly import ReadOnlyServer
from pyzk.core.roleservers import RoleServer
from pyzk.quorum.confignode import init_config_node
from pyzk.quorum.election import Decided, ServerState
from pyzk.shell.admin import AdminServer
from pyzk.shell.clientport import ClientPortHost
from pyzk.shell.fourletter import FourLetterWords
from pyzk.shell.prometheus import PrometheusEndpoint
from pyzk.shell.quorumpeer import QuorumPeer
from pyzk.shell.roles import LeaderRole, LearnerRole, commit_log_count, read_recent_txns
from pyzk.shell.store import Store
from pyzk.shell.timers import ServerTimers, now_ms, wall_ms
from pyzk.zab.actions import Entry

log = logging.getLogger(__name__)


class QuorumFourLetterWords(FourLetterWords):
    """srvr/stat/mntr with what a leader adds (Leader's gauges, proposal sizes)."""

    def stat(self, conn: Any, *, clients: bool) -> str:
        text = super().stat(conn, clients=clients)
        role = self.shell.role
        if isinstance(role, LeaderRole) and self.running:
            last, mn, mx = role.proposal_sizes or (-1, -1, -1)
            text += f"Proposal sizes last/min/max: {last}/{mn}/{mx}\n"
        return text

    # Where Apache's quorum gauges fall among the standalone ones (the metrics
    # provider lists gauges in its hash order): key -> the key it follows.
    _AFTER = {
        "peer_state": "server_state", "observer_master_id": "peer_state",
        "min_proposal_size": "avg_latency", "max_proposal_size": "packets_received",
        "synced_followers": "max_client_response_size",
        "synced_non_voting_followers": "watch_count",
        "synced_observers": "synced_non_voting_followers",
        "last_proposal_size": "open_file_descriptor_count",
        "pending_syncs": "last_proposal_size", "leader_uptime": "pending_syncs",
        "learners": "outstanding_tls_handshake", "quorum_size": "non_mtls_local_conn_count",
    }

    def mntr(self, conn: Any) -> str:
        text = super().mntr(conn)
        if not self.running:
            return text
        extra: dict[str, str] = {}
        role = self.shell.role
        if isinstance(role, LeaderRole):
            extra["peer_state"] = "leading - broadcast"
            last, mn, mx = role.proposal_sizes or (-1, -1, -1)
            extra.update(min_proposal_size=str(mn), max_proposal_size=str(mx),
                         last_proposal_size=str(last))
            extra.update((k, str(v)) for k, v in role.learner_counts().items())
            extra["leader_uptime"] = str(int(self.server.now_ms() - role.started_ms))
        elif isinstance(role, LearnerRole):
            extra["peer_state"] = ("observing" if role.observer else "following") + " - broadcast"
            if role.observer:
                extra["observer_master_id"] = str(role.leader_id)
        extra["quorum_size"] = str(len(self.shell.peer.verifier.voting))
        lines = text.splitlines(keepends=True)
        for key in sorted(extra, key=list(self._AFTER).index):
            anchor = f"zk_{self._AFTER[key]}\t"
            at = next((i + 1 for i, line in enumerate(lines) if line.startswith(anchor)),
                      len(lines))
            lines.insert(at, f"zk_{key}\t{extra[key]}\n")
        return "".join(lines)


class EnsembleShell(ClientPortHost):
    """The ensemble member: what pyzk.shell.connection needs of a shell, and the
    :class:`~pyzk.shell.quorumpeer.RoleHost` its QuorumPeer runs roles on."""

    def __init__(self, cfg: ServerConfig, loop: asyncio.AbstractEventLoop, *,
                 finalize_wait: int | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        self.loop = loop
        self.store = Store(cfg)
        self.peer = QuorumPeer(cfg, self, finalize_wait=finalize_wait)
        self.role: LeaderRole | LearnerRole | None = None
        self.db: tuple[Any, dict[int, int], int] | None = None
        self.idle: RoleServer | None = None
        self._fourlw: tuple[Any, QuorumFourLetterWords] | None = None
        self._peer_task: asyncio.Task[None] | None = None
        self._fresh = False  # the database was just loaded by start()
        #: What the last role left in memory for the next election (Role.handoff).
        self._handoff: tuple[Any, dict[int, int], int] | None = None
        #: The last commitLogCount + 1 txns of the log (ZKDatabase.committedLog),
        #: kept across roles; None when unknown (a new leader reads the log).
        self._recent_window = commit_log_count(cfg) + 1
        self.recent_txns: deque[Entry] | None = None
        self._ro_timer: asyncio.TimerHandle | None = None
        self._ro_timers = ServerTimers(loop, cfg)
        #: Autopurge runs for the member's lifetime, whatever its role.
        self.timers = ServerTimers(loop, cfg)
        self.admin = AdminServer(self, cfg)
        self.metrics = PrometheusEndpoint(self, cfg)
        #: Completes when the quorum peer ends on its own (with its error if it failed).
        self.fatal: asyncio.Future[None] = loop.create_future()

    now_ms = staticmethod(now_ms)
    wall_ms = staticmethod(wall_ms)

    # -- what connections and 4lw see ----------------------------------------------------

    @property
    def server(self) -> Any:
        if self.role is not None:
            return self.role.server
        return self.idle

    @property
    def fourlw(self) -> QuorumFourLetterWords:
        server = self.server
        if self._fourlw is None or self._fourlw[0] is not server:
            self._fourlw = (server, QuorumFourLetterWords(self))
        return self._fourlw[1]

    # -- RoleHost ------------------------------------------------------------------------

    def init_config_node(self, tree: Any) -> None:
        """QuorumPeer.initConfigInZKDatabase: /zookeeper/config holds our verifier."""
        verifier = self.peer.verifier
        init_config_node(tree, verifier.to_string(), verifier.version, self.wall_ms())

    def txn_logged(self, entry: Entry) -> None:
        """RoleHost: a role appended ``entry`` to the log."""
        if self.recent_txns is not None:
            self.recent_txns.append(entry)

    def forget_recent_txns(self, *, keep_window: bool) -> None:
        """RoleHost: the log's history was replaced: after a SNAP the window
        starts empty (``keep_window``); after a TRUNC it is read again."""
        self.recent_txns = deque(maxlen=self._recent_window) if keep_window else None

    def _reload(self) -> tuple[Any, dict[int, int], int]:
        """The database from disk, and the log's last txns with it."""
        db = self.store.recover()
        self.recent_txns = read_recent_txns(self.cfg.data_log_dir or self.cfg.data_dir,
                                            self._recent_window)
        return db

    def config_changed(self) -> None:
        """RoleHost: a configuration was activated; /zookeeper/config follows it."""
        server = self.server
        if server is not None:
            self.init_config_node(server.tree)

    async def prepare_election(self) -> int:
        if self._fresh and self.db is not None:
            self._fresh = False
            self._arm_read_only()
            return self.db[2]
        self._end_read_only()
        if self.idle is not None:
            self.idle.close_all()
        handoff, self._handoff = self._handoff, None
        if handoff is not None:
            tree, sessions, zxid = await self.loop.run_in_executor(
                None, self.store.fast_forward, *handoff)
        else:
            tree, sessions, zxid = await self.loop.run_in_executor(None, self._reload)
        self.init_config_node(tree)
        self.db = (tree, sessions, zxid)
        self.idle = RoleServer(self.cfg, now_ms=self.now_ms, wall_ms=self.wall_ms,
                               server_id=self.peer.my_id, tree=tree, sessions=sessions,
                               zxid=zxid)
        self._arm_read_only()
        return zxid

    # -- read-only mode (QuorumPeer.run, LOOKING with readonlymode.enabled) ------------

    def _arm_read_only(self) -> None:
        """Start a read-only server if this election outlasts the grace period."""
        if not self.cfg.read_only_mode_enabled:
            return
        self._end_read_only()
        log.info("Attempting to start ReadOnlyZooKeeperServer")
        grace = max(2000, self.cfg.tick_time) / 1000.0
        self._ro_timer = self.loop.call_later(grace, self._start_read_only)

    def _start_read_only(self) -> None:
        self._ro_timer = None
        if self.role is not None or self.peer.state != ServerState.LOOKING or self.db is None:
            return
        tree, sessions, zxid = self.db
        server = ReadOnlyServer(self.cfg, now_ms=self.now_ms, wall_ms=self.wall_ms,
                                server_id=self.peer.my_id, tree=tree, sessions=sessions,
                                zxid=zxid)
        if self.idle is not None:
            self.idle.close_all()
        self.idle = server
        server.running = True
        log.info("Read-only server started")
        self._ro_timers.expire_sessions(server)

    def _end_read_only(self) -> None:
        """The election ended (or starts again): no read-only server any more."""
        if self._ro_timer is not None:
            self._ro_timer.cancel()
        self._ro_timer = None
        self._ro_timers.cancel()
        if isinstance(self.idle, ReadOnlyServer):
            self.idle.close_all()
            log.info("Read-only server stopped")

    async def run_role(self, decision: Decided) -> None:
        self._end_read_only()
        if decision.state == ServerState.LEADING:
            role: LeaderRole | LearnerRole = LeaderRole(self, decision)
        else:
            role = LearnerRole(self, decision, observer=decision.state == ServerState.OBSERVING)
        self.role = role
        try:
            reason = await role.run()
            log.info("Role %s ended: %s", role.server.state, reason)
            if role.disk_error is not None and not self.fatal.done():
                # Stop, as a standalone server does: a member that cannot log
                # (or write its epoch) would only be elected and fail again.
                log.critical("The disk under %s failed (%s): stopping this member; restart "
                             "it once the disk is writable again and it rejoins",
                             self.store.log_dir, role.disk_error)
                self.fatal.set_exception(role.disk_error)
        finally:
            role.server.close_all()
            self.role = None
            self._handoff = role.handoff()

    # -- lifecycle ------------------------------------------------------------------------

    async def start(self) -> None:
        # QuorumPeerMain starts the metrics provider first; a failure stops the start
        await self.metrics.start()
        await self.listen()
        # QuorumPeer.start: the client port, then the AdminServer, then the election
        await self.admin.start()
        # the idle server answers until the first election ends
        await self.prepare_election()
        self._fresh = True
        self._peer_task = self.loop.create_task(self._run_peer())
        self.timers.purge(self.store)

    async def _run_peer(self) -> None:
        try:
            await self.peer.run()
            if not self.fatal.done():
                self.fatal.set_result(None)
        except Exception as e:
            log.exception("The quorum peer failed")
            if not self.fatal.done():
                self.fatal.set_exception(e)
            raise

    async def stop(self) -> None:
        await self.admin.stop()
        self.timers.cancel()
        self._end_read_only()
        self.peer.stop()
        if self.role is not None:
            self.role.stop()
        if self._peer_task is not None:
            with contextlib.suppress(BaseException):
                await asyncio.wait_for(self._peer_task, 10)
        self.close_listeners()
        server = self.server
        if server is not None:
            server.close_all()
        await self.metrics.stop()
        if self.fatal.done():
            self.fatal.exception()  # retrieved: the log line above said it
