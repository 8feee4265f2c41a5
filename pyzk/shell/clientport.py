"""The client port, as both kinds of server shell serve it.

What a :class:`~pyzk.shell.connection.ClientConnection` asks of the shell
that accepted it: admission (maxClientCnxns per IP, as Apache's
NIOServerCnxnFactory), four-letter words, the event loop, and the server
now serving (``server``: the standalone server, or an ensemble member's
current role's server, which changes with each election).
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import ssl
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from pyzk.config.errors import ConfigError
from pyzk.config.tls import CLIENT_PREFIX, TlsSettings, tls_settings
from pyzk.core import metrics
from pyzk.datatree.acl import X509Provider
from pyzk.jute.records import Id
from pyzk.shell.connection import ClientConnection
from pyzk.shell.fourletter import FOUR_LETTER_WORD_BYTES
from pyzk.shell.kerberos import GssapiAcceptor, GssapiServer
from pyzk.shell.tlscontext import server_context, subject_id
from pyzk.shell.unified import UnifiedListener, accept_forever, accept_tls, listening_socket

if TYPE_CHECKING:
    from pyzk.config import ServerConfig

log = logging.getLogger(__name__)

NETTY_FACTORY = "org.apache.zookeeper.server.NettyServerCnxnFactory"


class SecurePortListener:
    """secureClientPort: a listening socket whose connections all start with TLS.

    It accepts connections itself rather than through ``loop.create_server``
    so that a refused handshake still sends the alert Apache sends
    (pyzk.shell.unified.accept_tls). Looks enough like an asyncio Server
    (``sockets``, ``close``) for the shell's bookkeeping.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket,
                 make_protocol: Callable[[], asyncio.Protocol], ctx: ssl.SSLContext,
                 timeout_s: float, on_refused: Callable[[], None]) -> None:
        self.loop = loop
        self.sockets = [sock]
        self.make_protocol = make_protocol
        self.ctx = ctx
        self.timeout_s = timeout_s
        self.on_refused = on_refused
        self.handshakes: set[asyncio.Task[None]] = set()
        self.task = loop.create_task(self._accept_loop())

    @classmethod
    async def open(cls, loop: asyncio.AbstractEventLoop, host: str | None, port: int,
                   make_protocol: Callable[[], asyncio.Protocol], ctx: ssl.SSLContext,
                   timeout_s: float, on_refused: Callable[[], None],
                   backlog: int = 1024, *, reuse_port: bool = False) -> SecurePortListener:
        sock = await listening_socket(loop, host, port, backlog, reuse_port=reuse_port)
        return cls(loop, sock, make_protocol, ctx, timeout_s, on_refused)

    def close(self) -> None:
        self.task.cancel()
        for t in list(self.handshakes):
            t.cancel()
        self.sockets[0].close()

    async def wait_closed(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def _accept_loop(self) -> None:
        await accept_forever(self.loop, self.sockets[0], "secureClientPort", self._accepted)

    def _accepted(self, conn: socket.socket) -> None:
        task = self.loop.create_task(self._handshake(conn))
        self.handshakes.add(task)
        task.add_done_callback(self.handshakes.discard)

    async def _handshake(self, conn: socket.socket) -> None:
        peer = "?"
        with contextlib.suppress(OSError):
            peer = "/{}:{}".format(*conn.getpeername()[:2])
        try:
            await accept_tls(self.loop, conn, self.make_protocol, self.ctx, self.timeout_s)
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as e:
            log.info("TLS handshake on secureClientPort from %s failed: %s", peer, e)
            conn.close()
            self.on_refused()


class ClientPortHost:
    """Base of the standalone and the ensemble shells; they provide ``server`` and ``fourlw``."""

    cfg: ServerConfig
    loop: asyncio.AbstractEventLoop
    server: Any
    fourlw: Any
    #: SO_REUSEPORT on the client ports: with pyzk.workers the server and its
    #: worker processes each listen on them (pyzk.shell.workers), and the
    #: kernel spreads new connections over them.
    reuse_port = False

    def __init__(self) -> None:
        #: asyncio Servers, and a UnifiedListener for client.portUnification
        self.listeners: list[Any] = []
        self.client_tls: TlsSettings | None = None
        #: ServerStats' nonMTLS{Local,Remote}ConnCount: plaintext channels the
        #: Netty factory accepted (from loopback, from elsewhere)
        self.non_mtls_local = 0
        self.non_mtls_remote = 0
        #: Kerberos credentials when the JAAS Server section is Krb5LoginModule
        self.gssapi: GssapiAcceptor | None = None

    async def listen(self) -> None:
        """Open clientPort on clientPortAddress (all interfaces when unset) and
        secureClientPort on secureClientPortAddress, with TLS.

        The TLS context is built before either port opens. When it cannot be
        built (a missing or unreadable store, a bad password, a bad setting),
        the server still starts, as Apache does, and serves clientPort only,
        with an ERROR line saying why; Apache opens the secure port and fails
        every handshake on it, which to a client is much the same.
        """
        cfg = self.cfg
        if cfg.client_port is None and not cfg.secure_client_port:
            raise ValueError("clientPort is not set")
        if cfg.sasl_kerberos is not None and self.gssapi is None:
            # configureSaslLogin: a failed login stops the server (ConfigError)
            self.gssapi = GssapiAcceptor.login(cfg, cfg.sasl_kerberos)
        ctx = None
        if cfg.secure_client_port or cfg.client_port_unification:
            try:
                self.client_tls = tls_settings(cfg.system_properties, CLIENT_PREFIX)
                ctx = server_context(self.client_tls)
            except ConfigError as e:
                what = (f"secureClientPort {cfg.secure_client_port}" if cfg.secure_client_port
                        else "TLS on the client port (client.portUnification)")
                log.error("%s is not served: %s", what, e)
        secure_srv: SecurePortListener | None = None
        if ctx is not None and cfg.secure_client_port:
            # bound before clientPort serves: a client that found clientPort
            # answering must find the secure port too, as with Apache
            assert self.client_tls is not None
            secure_srv = await SecurePortListener.open(
                self.loop, cfg.secure_client_port_address, cfg.secure_client_port,
                lambda: self._connection("secure", True), ctx,
                self.client_tls.handshake_timeout_ms / 1000, self.tls_refused,
                reuse_port=self.reuse_port)
        if cfg.client_port is not None:
            try:
                if ctx is not None and cfg.client_port_unification:
                    assert self.client_tls is not None
                    srv: Any = await UnifiedListener.open(
                        self.loop, cfg.client_port_address, cfg.client_port,
                        lambda secure: self._connection("client", secure), ctx,
                        self.client_tls.handshake_timeout_ms / 1000, reuse_port=self.reuse_port)
                    srv.on_refused = self.tls_refused
                else:
                    srv = await self.loop.create_server(
                        lambda: self._connection("client", False),
                        host=cfg.client_port_address or None,
                        port=cfg.client_port, reuse_address=True,
                        reuse_port=self.reuse_port or None, backlog=1024)
            except BaseException:
                if secure_srv is not None:
                    secure_srv.close()
                raise
            self.listeners.append(srv)
            log.info("binding to port %s", ", ".join(
                f"{s.getsockname()[0]}:{s.getsockname()[1]}" for s in srv.sockets))
        if secure_srv is not None:
            self.listeners.append(secure_srv)
            self.secure_listener = secure_srv
            log.info("binding to secure port %s", ", ".join(
                f"{s.getsockname()[0]}:{s.getsockname()[1]}" for s in secure_srv.sockets))

    secure_listener: SecurePortListener | None = None

    @property
    def netty(self) -> bool:
        """Whether Apache would run NettyServerCnxnFactory here: when
        serverCnxnFactory names it, and always with TLS on a client port
        (NIOServerCnxnFactory refuses a secure port). Some four-letter-word
        numbers follow the Netty factory's accounting (pyzk.shell.fourletter)."""
        cfg = self.cfg
        return bool(cfg.system_properties.get("zookeeper.serverCnxnFactory") == NETTY_FACTORY
                    or cfg.secure_client_port or cfg.client_port_unification)

    @property
    def secure_port(self) -> int | None:
        """The port secureClientPort listens on (conf's secureClientPort), None without one."""
        if self.secure_listener is None:
            return None
        return self.secure_listener.sockets[0].getsockname()[1]

    @property
    def client_port_bound(self) -> int | None:
        """The port clientPort listens on (conf's clientPort), None without one."""
        srv = next((s for s in self.listeners if s is not self.secure_listener), None)
        return None if srv is None else srv.sockets[0].getsockname()[1]

    def _connection(self, factory: str, secure: bool) -> ClientConnection:
        """A connection on one of Apache's two connection factories: ``client``
        (clientPort, with port unification too) or ``secure`` (secureClientPort);
        cons and stat list the connections of the factory they were asked on."""
        conn = ClientConnection(self, secure=secure)
        conn.factory = factory  # type: ignore[attr-defined]
        return conn

    def tls_refused(self) -> None:
        """CertificateVerifier on a failed handshake: an auth failure and an
        unsuccessful handshake in the server's statistics."""
        stats = self.server.stats
        stats.auth_failed += 1
        metrics.count(stats, "unsuccessful_handshake")

    def tls_authenticate(self, conn: ClientConnection, transport: asyncio.BaseTransport) -> bool:
        """After the handshake: the x509 scheme's id for a client certificate.

        As NettyServerCnxnFactory's CertificateVerifier: nothing to do when no
        certificate was asked for (clientAuth=none) or none was given (want);
        otherwise the provider named by ssl.authProvider (x509) must be
        registered (authProvider.N), or the connection is closed. The chain
        was already checked against the trust store during the handshake.
        """
        tls = self.client_tls
        assert tls is not None
        if tls.client_auth == "NONE":
            return True
        ssl_object = transport.get_extra_info("ssl_object")
        der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
        if not der:
            return True
        provider = self.server.providers.get(tls.auth_provider)
        if not isinstance(provider, X509Provider):
            log.error("X509 Auth provider not found: %s", tls.auth_provider)
            return False
        ident = subject_id(der)
        if provider.super_user is not None and ident == provider.super_user:
            conn.auth.append(Id("super", ident))
            log.info("Authenticated Id '%s' as super user", ident)
        conn.auth.append(Id("x509", ident))
        log.info("Authenticated Id '%s' for Scheme 'x509'", ident)
        return True

    def new_gssapi_server(self) -> GssapiServer:
        assert self.gssapi is not None
        return self.gssapi.new_server()

    def close_listeners(self) -> None:
        for srv in self.listeners:
            srv.close()

    @property
    def port(self) -> int:
        return self.listeners[0].sockets[0].getsockname()[1]

    def admit(self, conn: ClientConnection) -> bool:
        limit = self.cfg.max_client_cnxns
        count = sum(1 for c in self.server.connections if c.remote_ip == conn.remote_ip)
        if limit > 0 and count >= limit:
            log.warning("Too many connections from %s - max is %d", conn.remote, limit)
            return False
        if self.netty and getattr(conn, "factory", "client") == "client":
            # channelActive: a channel without an SslHandler counts as non-mTLS;
            # on a unified port that is every channel (DualModeSslHandler is not one)
            try:
                ip = ipaddress.ip_address(conn.remote_ip.split("%")[0])
            except ValueError:
                loopback = True
            else:
                mapped = getattr(ip, "ipv4_mapped", None)
                loopback = (mapped or ip).is_loopback
            if loopback:
                self.non_mtls_local += 1
            else:
                self.non_mtls_remote += 1
        return True

    def is_four_letter_word(self, word: bytes) -> bool:
        return word in FOUR_LETTER_WORD_BYTES

    def four_letter(self, conn: ClientConnection, cmd: str) -> None:
        text = self.fourlw.run(cmd, conn)
        conn.handshake_seen = True
        if text:
            conn.send(text.encode("utf-8"))
            if self.netty:
                # NettyServerCnxn counts each buffer its SendBufferWriter sends as a
                # packet: one per 8192 characters (BufferedWriter's buffer)
                self.server.stats.packets_sent += -(-len(text) // 8192)
        conn.close()
