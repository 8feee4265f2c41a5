"""Quorum SASL on the sockets: the shell side of pyzk.quorum.auth.

Apache authenticates a quorum connection right after it is made, before
the protocol it carries: on the election port after the initial message
(QuorumCnxManager.startConnection / handleConnection, both sides, whichever
of them keeps the connection), on the quorum port before FOLLOWERINFO
(Learner.connectToLeader / LearnerHandler). This module holds what the
exchange needs from the configuration (:class:`QuorumAuth`, one per peer),
the two stream functions the election port awaits, and the protocol gates
the quorum port's asyncio protocols pass through. Each exchange has a
deadline: the election port's socket timeout (tickTime * syncLimit, or
zookeeper.quorumCnxnTimeoutMs) and the quorum port's tickTime * initLimit,
as Apache's soTimeout on those sockets.

The mechanisms are made here because they need randomness (nonces) and,
for GSSAPI, libkrb5: DIGEST-MD5 comes from pyzk.core.digestmd5; a Kerberos
login module is where GSSAPI plugs in (:meth:`QuorumAuth.server_mechanism`
and :meth:`QuorumAuth.learner_mechanism`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyzk.config.errors import ConfigError
from pyzk.config.jaas import (
    DIGEST_LOGIN_MODULE,
    digest_credentials,
    digest_users,
    kerberos_login,
)
from pyzk.core.digestmd5 import DigestMD5Client, DigestMD5Server
from pyzk.quorum.auth import (
    AUTHENTICATED,
    LET_THROUGH,
    PROTOCOL,
    REFUSED,
    SERVER_NAME,
    ClientMechanism,
    LearnerAuth,
    QuorumAuthError,
    ServerAuth,
    ServerMechanism,
)
from pyzk.shell.kerberos import GssapiAcceptor, GssapiInitiator

if TYPE_CHECKING:
    from pyzk.config import ServerConfig
    from pyzk.config.jaas import KerberosLogin, LoginModule

__all__ = ["QuorumAuth", "QuorumAuthError", "authenticate_learner", "authenticate_server",
           "election_socket_timeout", "learner_gate", "learner_ready", "server_gate"]

log = logging.getLogger(__name__)

_READ = 65536


def _nonce() -> str:
    return base64.b64encode(os.urandom(32)).decode("ascii")


class QuorumAuth:
    """One peer's quorum SASL settings and credentials (QuorumPeer.initialize
    makes SaslQuorumAuthServer and SaslQuorumAuthLearner from the same)."""

    __slots__ = ("server_required", "learner_required", "authz_hosts", "election_timeout",
                 "quorum_timeout", "service_principal", "server_realm", "_server_users",
                 "_learner_user", "_learner_password", "_learner_context", "acceptor",
                 "initiator")

    def __init__(self, *, server_required: bool, learner_required: bool,
                 server_users: dict[str, str], learner_user: str | None,
                 learner_password: str | None, authz_hosts: frozenset[str],
                 election_timeout: float, quorum_timeout: float,
                 service_principal: str = "zkquorum/localhost",
                 learner_context: str = "QuorumLearner") -> None:
        self.server_required = server_required
        self.learner_required = learner_required
        self.authz_hosts = authz_hosts
        self.election_timeout = election_timeout
        self.quorum_timeout = quorum_timeout
        self.service_principal = service_principal
        self._server_users = server_users
        self._learner_user = learner_user
        self._learner_password = learner_password
        self._learner_context = learner_context
        #: GSSAPI credentials, when a section logs in with Krb5LoginModule
        #: (the server's and the learner's sides are chosen separately, as
        #: SecurityUtils does from each JAAS subject)
        self.acceptor: GssapiAcceptor | None = None
        self.initiator: GssapiInitiator | None = None
        #: zookeeper.server.realm: the realm of a service principal without one
        self.server_realm: str | None = None

    def __repr__(self) -> str:  # never the passwords
        return (f"QuorumAuth(server_required={self.server_required}, "
                f"learner_required={self.learner_required})")

    @classmethod
    def from_config(cls, cfg: ServerConfig) -> QuorumAuth | None:
        """None without ``quorum.auth.enableSasl`` (NullQuorumAuthServer/Learner);
        ConfigError when a JAAS section is missing or uses a login module
        pyzk cannot run (Apache does not start then either)."""
        if not cfg.quorum_enable_sasl:
            return None
        server = _section(cfg.quorum_server_login, cfg.quorum_server_login_context)
        learner = _section(cfg.quorum_learner_login, cfg.quorum_learner_login_context)
        server_krb = kerberos_login(server)
        learner_krb = kerberos_login(learner)
        acceptor = _login(GssapiAcceptor, cfg, server_krb) if server_krb else None
        initiator = _login(GssapiInitiator, cfg, learner_krb) if learner_krb else None
        users = {} if acceptor is not None else digest_users(server)
        if users is None:
            raise ConfigError(_unsupported(cfg.quorum_server_login_context, server))
        creds = (None, None) if initiator is not None else digest_credentials(learner)
        if creds is None:
            raise ConfigError(_unsupported(cfg.quorum_learner_login_context, learner))
        auth = cls(server_required=cfg.quorum_server_require_sasl,
                   learner_required=cfg.quorum_learner_require_sasl,
                   server_users=users, learner_user=creds[0], learner_password=creds[1],
                   authz_hosts=frozenset(s.host for s in cfg.servers.values()),
                   election_timeout=election_socket_timeout(cfg),
                   quorum_timeout=cfg.tick_time * cfg.init_limit / 1000.0,
                   service_principal=cfg.quorum_service_principal,
                   learner_context=cfg.quorum_learner_login_context)
        auth.acceptor = acceptor
        auth.initiator = initiator
        auth.server_realm = cfg.system_properties.get("zookeeper.server.realm")
        return auth

    @property
    def kerberos_server(self) -> bool:
        """The server side is GSSAPI: its authorization also checks the host."""
        return self.acceptor is not None

    def server_mechanism(self) -> ServerMechanism:
        """SecurityUtils.createSaslServer for one accepted connection."""
        if self.acceptor is not None:
            return self.acceptor.new_server()
        return DigestMD5Server(self._server_users, _nonce(), protocol=PROTOCOL,
                               server_name=SERVER_NAME)

    def learner_mechanism(self, hostname: str) -> ClientMechanism:
        """SecurityUtils.createSaslClient towards the server at ``hostname`` (the
        Kerberos service principal's _HOST; DIGEST-MD5 does not use it)."""
        if self.initiator is not None:
            return self.initiator.new_client(
                service_principal(self.service_principal, hostname, self.server_realm))
        if self._learner_user is None or self._learner_password is None:
            raise QuorumAuthError(f"the JAAS section {self._learner_context} has no username "
                                  f"or password for {DIGEST_LOGIN_MODULE}")
        # the JDK client is made with authorizationId = the user name
        return DigestMD5Client(self._learner_user, self._learner_password, _nonce(),
                               protocol=PROTOCOL, server_name=SERVER_NAME,
                               authzid=self._learner_user)


def election_socket_timeout(cfg: ServerConfig) -> float:
    """Seconds an accepted election connection may take to say who it is (and,
    with quorum SASL, to authenticate): QuorumPeer.createCnxnManager's socket
    timeout, Integer.getInteger("zookeeper.quorumCnxnTimeoutMs", -1) when
    positive, else tickTime * syncLimit."""
    try:
        cnxn_ms = int(cfg.system_properties.get("zookeeper.quorumCnxnTimeoutMs", "-1"))
    except ValueError:
        cnxn_ms = -1
    return (cnxn_ms if cnxn_ms > 0 else cfg.tick_time * cfg.sync_limit) / 1000.0


def service_principal(configured: str, hostname: str, realm: str | None) -> str:
    """SecurityUtils.getServerPrincipal: ``_HOST`` in ``service/_HOST[@REALM]``
    becomes the server's host name, lower-cased; ``zookeeper.server.realm``
    is added when the principal names no realm (else the learner's own)."""
    parts = configured.replace("@", "/", 1).split("/") if "/" in configured else []
    principal = configured
    if len(parts) >= 2 and parts[1] == "_HOST":
        principal = f"{parts[0]}/{hostname.lower()}" + (f"@{parts[2]}" if len(parts) > 2 else "")
    if "@" not in principal and realm:
        principal += "@" + realm
    return principal


def _login(cls: Any, cfg: ServerConfig, login: KerberosLogin) -> Any:
    """A Kerberos login for quorum SASL; ConfigError as Apache's failed login."""
    try:
        return cls.login(cfg, login)
    except ConfigError as e:
        raise ConfigError(f"Failed to initialize authentication mechanism using SASL: {e}"
                          ) from None


def _section(modules: list[LoginModule] | None, context: str) -> list[LoginModule]:
    if not modules:
        raise ConfigError(f"Failed to initialize authentication mechanism using SASL: "
                          f"SASL-authentication failed because the specified JAAS "
                          f"configuration section '{context}' could not be found.")
    return modules


def _unsupported(context: str, modules: list[LoginModule]) -> str:
    names = ", ".join(m.name for m in modules)
    return f"JAAS section {context} has no {DIGEST_LOGIN_MODULE} ({names})"


# ---------------------------------------------------------------------- outcomes, logged

def _learner_failed(peer: str, reason: str) -> None:
    log.error("Quorum SASL authentication against server addr: %s failed, closing the "
              "connection: %s", peer, reason)


def _server_done(machine: ServerAuth, peer: str) -> None:
    if machine.outcome == AUTHENTICATED:
        log.info("Successfully completed the authentication using SASL. learner addr: %s", peer)
    elif machine.outcome == REFUSED:
        log.error("Failed to authenticate using SASL, learner addr: %s, closing the "
                  "connection: %s", peer, machine.reason)
    elif machine.outcome == LET_THROUGH and machine.reason:
        log.warning("Failed to authenticate using SASL: %s", machine.reason)
        log.warning("Maintaining learner connection despite SASL authentication failure. "
                    "server addr: %s, quorum.auth.serverRequireSasl: false", peer)


# ---------------------------------------------------------------------- the election port

async def authenticate_learner(auth: QuorumAuth | None, reader: asyncio.StreamReader,
                               writer: asyncio.StreamWriter, peer: str,
                               hostname: str) -> bytes | None:
    """SaslQuorumAuthLearner.authenticate on a dialled election connection,
    after its initial message: the bytes the server sent after the exchange,
    or None when the connection must be closed (failure already logged)."""
    if auth is None or not auth.learner_required:
        return b""
    try:
        machine = LearnerAuth(auth.learner_mechanism(hostname))
        writer.write(machine.start())
        async with asyncio.timeout(auth.election_timeout):
            while not machine.done:
                chunk = await reader.read(_READ)
                if not chunk:
                    raise QuorumAuthError("the server closed the connection")
                out = machine.feed(chunk)
                if out:
                    writer.write(out)
    except TimeoutError:
        _learner_failed(peer, f"no answer within {auth.election_timeout:g} s")
        return None
    except (QuorumAuthError, OSError) as e:
        _learner_failed(peer, str(e) or type(e).__name__)
        return None
    log.info("Successfully completed the authentication using SASL. server addr: %s, "
             "status: SUCCESS", peer)
    return machine.rest


async def authenticate_server(auth: QuorumAuth | None, reader: asyncio.StreamReader,
                              writer: asyncio.StreamWriter, buf: bytes) -> bytes | None:
    """SaslQuorumAuthServer.authenticate on an accepted election connection;
    ``buf`` holds what followed the initial message. The bytes for the
    election protocol, or None when the connection must be closed."""
    if auth is None:
        return buf
    name = writer.get_extra_info("peername") or ("?", 0)
    peer = f"{name[0]}:{name[1]}"
    machine = ServerAuth(auth.server_mechanism(), auth.server_required, auth.authz_hosts,
                         auth.kerberos_server)
    try:
        async with asyncio.timeout(auth.election_timeout):
            out = machine.feed(buf)
            while True:
                if out:
                    writer.write(out)
                if machine.outcome is not None:
                    break
                chunk = await reader.read(_READ)
                out = machine.feed(chunk) if chunk else machine.eof()
    except TimeoutError:
        out = machine.eof(f"no authentication within {auth.election_timeout:g} s")
        with contextlib.suppress(OSError):
            writer.write(out)
    except OSError as e:
        machine.eof(str(e) or type(e).__name__)
    _server_done(machine, peer)
    return None if machine.outcome == REFUSED else machine.rest


# ---------------------------------------------------------------------- the quorum port

class _Gate(asyncio.Protocol):
    """Holds a quorum-port connection until its authentication is over, then
    hands the transport to the protocol the role made (``factory``)."""

    def __init__(self, factory: Callable[[], asyncio.Protocol], timeout: float) -> None:
        self.factory = factory
        self.timeout = timeout
        self.transport: asyncio.Transport | None = None
        self.peer = "?"
        self.inner: asyncio.Protocol | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        name = transport.get_extra_info("peername") or ("?", 0)
        self.peer = f"{name[0]}:{name[1]}"
        self._timer = asyncio.get_running_loop().call_later(self.timeout, self._expired)
        self.start()

    def start(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _expired(self) -> None:  # pragma: no cover - overridden
        raise NotImplementedError

    def _write(self, data: bytes) -> None:
        if data and self.transport is not None and not self.transport.is_closing():
            self.transport.write(data)

    def _hand_over(self, rest: bytes) -> asyncio.Protocol:
        if self._timer is not None:
            self._timer.cancel()
        inner = self.factory()
        self.inner = inner
        assert self.transport is not None
        self.transport.set_protocol(inner)
        inner.connection_made(self.transport)
        if rest:
            inner.data_received(rest)
        return inner

    def _close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.transport is not None:
            self.transport.close()


class _ServerGate(_Gate):
    """LearnerHandler's authenticate, on the leader's quorum port."""

    def __init__(self, auth: QuorumAuth, factory: Callable[[], asyncio.Protocol]) -> None:
        super().__init__(factory, auth.quorum_timeout)
        self.auth = auth
        self.machine = ServerAuth(auth.server_mechanism(), auth.server_required,
                                  auth.authz_hosts, auth.kerberos_server)

    def start(self) -> None:
        pass

    def data_received(self, data: bytes) -> None:
        if self.inner is None and self.machine.outcome is None:
            self._write(self.machine.feed(data))
            self._check()

    def eof_received(self) -> bool | None:
        if self.machine.outcome is None:
            self._write(self.machine.eof())
            self._check()
        return None

    def _expired(self) -> None:
        if self.machine.outcome is None:
            self._write(self.machine.eof(f"no authentication within {self.timeout:g} s"))
            self._check()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self.machine.outcome is None:
            self.machine.eof(f"the learner closed the connection ({exc or 'EOF'})")
            _server_done(self.machine, self.peer)

    def _check(self) -> None:
        if self.machine.outcome is None:
            return
        _server_done(self.machine, self.peer)
        if self.machine.outcome == REFUSED:
            log.error("Server failed to authenticate quorum learner, addr: %s, closing "
                      "connection", self.peer)
            self._close()
        else:
            self._hand_over(self.machine.rest)


class _LearnerGate(_Gate):
    """Learner.connectToLeader's authenticate, on a learner's quorum connection."""

    def __init__(self, auth: QuorumAuth, hostname: str,
                 factory: Callable[[], asyncio.Protocol]) -> None:
        super().__init__(factory, auth.quorum_timeout)
        self.auth = auth
        self.hostname = hostname
        self.machine: LearnerAuth | None = None
        self.ready: asyncio.Future[asyncio.Protocol] = \
            asyncio.get_running_loop().create_future()

    def start(self) -> None:
        try:
            self.machine = LearnerAuth(self.auth.learner_mechanism(self.hostname))
            self._write(self.machine.start())
        except QuorumAuthError as e:
            self._fail(str(e))

    def data_received(self, data: bytes) -> None:
        if self.machine is None or self.ready.done():
            return
        try:
            self._write(self.machine.feed(data))
        except QuorumAuthError as e:
            self._fail(str(e))
            return
        if self.machine.done:
            log.info("Successfully completed the authentication using SASL. server addr: %s, "
                     "status: SUCCESS", self.peer)
            self.ready.set_result(self._hand_over(self.machine.rest))

    def eof_received(self) -> bool | None:
        self._fail("the server closed the connection")
        return None

    def _expired(self) -> None:
        self._fail(f"no answer within {self.timeout:g} s")

    def connection_lost(self, exc: Exception | None) -> None:
        self._fail(f"the connection was lost ({exc or 'EOF'})")

    def _fail(self, reason: str) -> None:
        if self.ready.done():
            return
        _learner_failed(self.peer, reason)
        self.ready.set_exception(QuorumAuthError(reason))
        self._close()


def server_gate(auth: QuorumAuth | None,
                factory: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
    """The protocol factory a leader's quorum port listens with: ``factory``
    itself without quorum SASL, else one that authenticates each learner
    first (the leader is the server of the exchange)."""
    if auth is None:
        return factory
    return lambda: _ServerGate(auth, factory)


def learner_gate(auth: QuorumAuth | None, hostname: str,
                 factory: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
    """The protocol factory a learner connects to its leader with: ``factory``
    itself unless ``learnerRequireSasl``; pass what create_connection
    returns to :func:`learner_ready`."""
    if auth is None or not auth.learner_required:
        return factory
    return lambda: _LearnerGate(auth, hostname, factory)


async def learner_ready(protocol: Any) -> Any:
    """The role's protocol once the learner has authenticated (at once
    without a gate); QuorumAuthError when authentication failed (logged,
    the connection closed)."""
    if not isinstance(protocol, _LearnerGate):
        return protocol
    return await protocol.ready
