"""QuorumPeer: the election shell and the LOOKING -> role -> LOOKING loop.

The peer owns the election port (:class:`QuorumCnxManager`), feeds the FLE
core (pyzk.quorum.election) with what arrives and with its timer, and keeps
answering other servers' notifications for as long as it runs, as Apache's
WorkerReceiver does while a server leads or follows. What a role does is not
its business: when an election ends it awaits ``host.run_role(decision)``
and, once that returns, looks for a leader again with the database state the
host reports.

It also owns the ``acceptedEpoch``/``currentEpoch`` files (QuorumPeer's
loadDataBase checks and writeLongToFile), so the Zab roles persist epochs
through :meth:`QuorumPeer.persist_epoch`, and the configurations: the
committed one (``verifier``) and the last one seen (``last_seen``), which
with reconfigEnabled change through :meth:`QuorumPeer.process_reconfig` and
are written to the dynamic config files (pyzk.shell.dynamicfile). A reconfig
that names our next role (a designated leader, a new learner type) skips the
next election, as QuorumPeer.updateServerState does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable
from typing import Any, Protocol

from pyzk.config import ServerConfig
from pyzk.quorum.election import (
    CancelTimer,
    ConnectAll,
    Decided,
    FastLeaderElection,
    NewerConfig,
    Send,
    ServerState,
    SetTimer,
    Vote,
)
from pyzk.quorum.verifier import QuorumMaj
from pyzk.quorum.wire import ElectionWireError, decode_notification, encode_notification
from pyzk.shell import dynamicfile as dynamic
from pyzk.shell.cnxmanager import QuorumCnxManager
from pyzk.shell.datadir import (
    ACCEPTED_EPOCH,
    CURRENT_EPOCH,
    read_epochs,
    read_long_file,
    version_dir,
    write_accepted_epoch,
    write_current_epoch,
)
from pyzk.shell.quorumauth import QuorumAuth, election_socket_timeout
from pyzk.shell.quorumtls import QuorumTls
from pyzk.txnlog.replay import RecoveryError
from pyzk.zab.zxid import epoch_of

log = logging.getLogger(__name__)


class RoleHost(Protocol):
    """What the peer needs from the server that plays the roles."""

    async def prepare_election(self) -> int:
        """Stop serving, (re)load the database; return its last zxid."""
        ...

    def run_role(self, decision: Decided) -> Awaitable[None]:
        """Lead, follow or observe until the role ends."""
        ...

    def config_changed(self) -> None:
        """The committed configuration changed: refresh /zookeeper/config."""
        ...


def load_epochs(data_dir: str, last_zxid: int) -> tuple[int, int]:
    """(acceptedEpoch, currentEpoch) as QuorumPeer.loadDataBase settles them.

    A missing file is created from the epoch of the last zxid; an epoch file
    behind the log, or an accepted epoch behind the current one, refuses to
    start (Apache throws the same IOExceptions).
    """
    accepted, current = read_epochs(data_dir)
    zxid_epoch = epoch_of(last_zxid) if last_zxid > 0 else 0
    if current is None:
        current = zxid_epoch
        log.info("%s not found! Creating with a reasonable default of %d. This should only "
                 "happen when you are upgrading your installation", CURRENT_EPOCH, current)
        write_current_epoch(data_dir, current)
    if zxid_epoch > current:
        # A crash between writing currentEpoch.tmp and renaming it over
        # currentEpoch leaves the new epoch only in the temporary file
        # (Apache's loadDataBase takes it from there and writes it back).
        tmp = version_dir(data_dir) / (CURRENT_EPOCH + ".tmp")
        from_tmp = read_long_file(tmp)
        if from_tmp is None:
            raise RecoveryError(f"The current epoch, {current:x}, is older than the last "
                                f"zxid, {last_zxid:x}")
        log.info("%s found. Setting current epoch to %d.", tmp, from_tmp)
        current = from_tmp
        write_current_epoch(data_dir, current)
    if accepted is None:
        accepted = zxid_epoch
        log.info("%s not found! Creating with a reasonable default of %d. This should only "
                 "happen when you are upgrading your installation", ACCEPTED_EPOCH, accepted)
        write_accepted_epoch(data_dir, accepted)
    if accepted < current:
        raise RecoveryError(f"The accepted epoch, {accepted:x} is less than the current "
                            f"epoch, {current:x}")
    return accepted, current


class QuorumPeer:
    """One ensemble member's election and role loop (cfg: pyzk.config.ServerConfig)."""

    def __init__(self, cfg: ServerConfig, host: RoleHost, *,
                 finalize_wait: int | None = None) -> None:
        if cfg.my_id is None or cfg.my_id not in cfg.servers:
            raise ValueError(f"myid {cfg.my_id} is not among the server.N lines")
        self.cfg = cfg
        self.host = host
        self.my_id: int = cfg.my_id
        self.verifier = QuorumMaj.from_config(cfg)
        #: QuorumPeer.lastSeenQuorumVerifier: the newest configuration proposed
        #: (NEWLEADER, a reconfig proposal); only kept with reconfigEnabled.
        self.last_seen = self.verifier
        self.reconfig_enabled = cfg.reconfig_enabled
        self.config_path: str | None = cfg.path
        self.data_dir = cfg.data_dir
        kw: dict[str, int] = {}
        if finalize_wait is not None:
            kw["finalize_wait"] = finalize_wait
        self.fle = FastLeaderElection(self.my_id, self.verifier, learner_type=cfg.peer_type,
                                      **kw)
        me = cfg.servers[self.my_id]
        peers = {sid: (s.host, s.election_port) for sid, s in cfg.servers.items()}
        #: quorum SASL for both ports (None without quorum.auth.enableSasl)
        self.quorum_auth = QuorumAuth.from_config(cfg)
        #: sslQuorum/portUnification for both ports (None when both are off)
        self.quorum_tls = QuorumTls.from_config(cfg)
        self.cnx = QuorumCnxManager(self.my_id, (me.host, me.election_port), peers,
                                    self._on_message, auth=self.quorum_auth,
                                    tls=self.quorum_tls,
                                    handshake_timeout=election_socket_timeout(cfg))
        self.state = ServerState.LOOKING
        self.accepted_epoch = 0
        self.current_epoch = 0
        self.leader_id: int | None = None
        self.election_started = 0.0
        self.last_election_ms = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._decided: asyncio.Future[Decided] | None = None
        self._stopping = False
        self._last_zxid = 0
        #: QuorumPeer.reconfigFlag: a committed reconfig named our next role, so
        #: the next round skips the election (updateServerState).
        self._reconfig_flag = False
        if cfg.last_seen_servers is not None:
            # QuorumPeerMain.runFromConfig: a zoo.cfg.dynamic.next left over
            # from a reconfig in flight is the last seen configuration (not
            # written back; ignored without reconfigEnabled, as Apache's)
            self.set_last_seen(QuorumMaj(cfg.last_seen_servers, cfg.last_seen_version),
                               write=False)

    # ------------------------------------------------------------------ epochs

    def persist_epoch(self, name: str, epoch: int) -> None:
        """Write ``acceptedEpoch`` or ``currentEpoch`` durably (fsynced) now."""
        if name == ACCEPTED_EPOCH:
            write_accepted_epoch(self.data_dir, epoch)
            self.accepted_epoch = epoch
        elif name == CURRENT_EPOCH:
            write_current_epoch(self.data_dir, epoch)
            self.current_epoch = epoch
        else:
            raise ValueError(f"unknown epoch file {name!r}")

    def established(self, epoch: int) -> None:
        """The role started serving in ``epoch`` (QuorumPeer.updateElectionVote)."""
        self.fle.update_peer_epoch(epoch)

    @property
    def state_name(self) -> str:
        """What srvr/mntr call this state (QuorumPeer.getServerState)."""
        return {ServerState.LOOKING: "leaderelection", ServerState.FOLLOWING: "follower",
                ServerState.LEADING: "leader", ServerState.OBSERVING: "observer"}[self.state]

    # ------------------------------------------------------------------ configurations

    def set_last_seen(self, qv: QuorumMaj, *, write: bool = True) -> None:
        """QuorumPeer.setLastSeenQuorumVerifier: a proposed configuration, kept
        in ``<zoo.cfg>.dynamic.next`` until it is committed."""
        if not self.reconfig_enabled:
            log.info("Dynamic reconfig is disabled, we don't store the last seen config.")
            return
        if self.last_seen.version > qv.version:
            log.error("setLastSeenQuorumVerifier called with stale config %d. Current version: "
                      "%d", qv.version, self.verifier.version)
        if self.last_seen.version == qv.version:
            return
        self.last_seen = qv
        self.fle.last_seen = qv
        self._know_peers(qv)
        if write and self.config_path:
            try:
                dynamic.write_dynamic_config(dynamic.next_file_name(self.config_path),
                                             qv.to_string(), keep_version=True)
            except OSError as e:
                log.error("Error writing next dynamic config file to disk: %s", e)

    def set_quorum_verifier(self, qv: QuorumMaj, *, write: bool = True) -> QuorumMaj:
        """QuorumPeer.setQuorumVerifier: commit ``qv`` (a newer version only), write
        ``<zoo.cfg>.dynamic.<version>`` and point zoo.cfg at it; returns the previous
        configuration."""
        prev = self.verifier
        if prev.version >= qv.version:
            log.debug("%d setQuorumVerifier called with known or old config %x. Current "
                      "version: %x", self.my_id, qv.version, prev.version)
            return prev
        self.verifier = qv
        if qv.version > self.last_seen.version:
            self.last_seen = qv
        if write and self.config_path:
            me = qv.members.get(self.my_id)
            erase = me is not None and me.client_port is not None and not me.client_from_static
            name = dynamic.dynamic_file_name(self.config_path, qv.version)
            try:
                dynamic.write_dynamic_config(name, qv.to_string(), keep_version=False)
                dynamic.edit_static_config(self.config_path, name, erase_client=erase)
            except OSError as e:
                log.error("Error writing the dynamic config file: %s", e)
        if qv.version == self.last_seen.version and self.config_path:
            dynamic.delete_file(dynamic.next_file_name(self.config_path))
        self.fle.verifier = qv
        self.fle.last_seen = self.last_seen
        self.cfg.servers = dict(qv.members)
        self.cfg.config_version = qv.version
        self._know_peers(qv)
        return prev

    def _know_peers(self, qv: QuorumMaj) -> None:
        """connectNewPeers: the election port of every member we may talk to."""
        for sid, spec in qv.members.items():
            self.cnx.know_peer(sid, (spec.host, spec.election_port))

    def process_reconfig(self, qv: QuorumMaj, suggested_leader: int | None, zxid: int | None,
                         ) -> bool:
        """QuorumPeer.processReconfig: activate ``qv``; True when this server must
        leave its role (it changed between voter and observer, or its leader is
        no longer the leader of the new configuration)."""
        if not self.reconfig_enabled:
            log.debug("Reconfig feature is disabled, skip reconfig processing.")
            return False
        prev = self.set_quorum_verifier(qv)
        self.host.config_changed()
        if prev.version >= qv.version or prev.same_members(qv):
            return False
        role_change = self._update_learner_type(qv)
        if suggested_leader is not None:
            cur = self.fle.current_vote
            leader_change = suggested_leader != cur.leader
            if leader_change:
                log.warning("Suggested leader: %d", suggested_leader)
                self.fle.current_vote = Vote(suggested_leader, zxid or 0, cur.election_epoch,
                                             cur.peer_epoch, cur.state)
                self._reconfig_flag = True
        else:
            leader = self.leader_id if self.leader_id is not None else self.fle.current_vote.leader
            old, new = prev.members.get(leader), qv.members.get(leader)
            leader_change = (leader not in prev.voting or leader not in qv.voting or old is None
                             or new is None
                             or (old.host, old.quorum_port) != (new.host, new.quorum_port))
            self._reconfig_flag = False  # no designated leader: elect one
        return role_change or leader_change

    def _update_learner_type(self, qv: QuorumMaj) -> bool:
        if self.my_id in qv.observing:
            wanted, what = "observer", "an observer"
        elif self.my_id in qv.voting:
            wanted, what = "participant", "a voting participant"
        else:
            wanted, what = "participant", "a non-voting participant"
        if self.fle.learner_type == wanted:
            return False
        log.info("Becoming %s", what)
        self.fle.learner_type = wanted
        self.cfg.peer_type = wanted
        self._reconfig_flag = True
        return True

    def _designated(self) -> Decided:
        """updateServerState after a reconfig: the role the new configuration gives
        us, under the leader it designated, without an election."""
        self._reconfig_flag = False
        vote = self.fle.current_vote
        if vote.leader == self.my_id:
            state = ServerState.LEADING
        elif self.fle.learner_type == "participant":
            state = ServerState.FOLLOWING
        else:
            state = ServerState.OBSERVING
        self.fle.state = state
        log.info("Reconfiguration: %s of %d without an election", state.name, vote.leader)
        return Decided(vote, state, frozenset())

    # ------------------------------------------------------------------ loop

    async def run(self) -> None:
        """Elect, play the role, elect again, until :meth:`stop`."""
        await self.cnx.start()
        try:
            while not self._stopping:
                self.state = ServerState.LOOKING
                self.fle.state = ServerState.LOOKING
                last_zxid = await self.host.prepare_election()
                self.accepted_epoch, self.current_epoch = load_epochs(self.data_dir, last_zxid)
                if self._stopping:
                    break
                if self._reconfig_flag:
                    decision: Decided | None = self._designated()
                else:
                    decision = await self._elect(last_zxid)
                if decision is None:
                    break
                self.state = decision.state
                self.leader_id = decision.vote.leader
                await self.host.run_role(decision)
                self.leader_id = None
        finally:
            self._cancel_timer()
            await self.cnx.close()

    def stop(self) -> None:
        self._stopping = True
        if self._decided is not None and not self._decided.done():
            self._decided.cancel()

    async def _elect(self, last_zxid: int) -> Decided | None:
        loop = asyncio.get_running_loop()
        self._decided = loop.create_future()
        self._last_zxid = last_zxid
        self.election_started = time.monotonic()
        log.info("LOOKING: my id %d, last zxid 0x%x, current epoch %d", self.my_id, last_zxid,
                 self.current_epoch)
        self._apply(self.fle.start(last_zxid, self.current_epoch))
        try:
            decision = await self._decided
        except asyncio.CancelledError:
            if self._stopping:
                return None
            raise
        self.last_election_ms = (time.monotonic() - self.election_started) * 1000.0
        log.info("Election took %.0f ms: %s of %d", self.last_election_ms,
                 decision.state.name, decision.vote.leader)
        return decision

    # ------------------------------------------------------------------ the core's actions

    def _on_message(self, sid: int, payload: bytes) -> None:
        try:
            n = decode_notification(payload)
        except ElectionWireError as e:
            log.warning("Dropping a bad notification from %d: %s", sid, e)
            return
        self._apply(self.fle.receive(sid, n))

    def _fire(self) -> None:
        self._timer = None
        self._apply(self.fle.timeout(have_delivered=self.cnx.have_delivered()))

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _apply(self, actions: list[Any]) -> None:
        loop = asyncio.get_running_loop()
        for a in actions:
            if isinstance(a, Send):
                self.cnx.send(a.to, encode_notification(a.notification))
            elif isinstance(a, SetTimer):
                self._cancel_timer()
                self._timer = loop.call_later(a.delay_ms / 1000.0, self._fire)
            elif isinstance(a, CancelTimer):
                self._cancel_timer()
            elif isinstance(a, ConnectAll):
                self.cnx.connect_all(self.fle.voters())
            elif isinstance(a, Decided):
                if self._decided is not None and not self._decided.done():
                    self._decided.set_result(a)
            elif isinstance(a, NewerConfig) and self.reconfig_enabled:
                if self.state != ServerState.LOOKING:
                    continue
                old = self.verifier
                self.process_reconfig(a.verifier, None, None)
                if not a.verifier.same_members(old):
                    log.info("restarting leader election")
                    self._apply(self.fle.start(self._last_zxid, self.current_epoch))
                    return
            elif isinstance(a, NewerConfig):
                log.warning("Server %d has a newer configuration (version %x); dynamic "
                            "reconfiguration is not supported, keeping ours",
                            a.from_sid, a.verifier.version)
