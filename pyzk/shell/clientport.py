"""The client port, as both kinds of server shell serve it.

What a :class:`~pyzk.shell.connection.ClientConnection` asks of the shell
that accepted it: admission (maxClientCnxns per IP, as Apache's
NIOServerCnxnFactory), four-letter words, the event loop, and the server
now serving (``server``: the standalone server, or an ensemble member's
current role's server, which changes with each election).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from pyzk.config.errors import ConfigError
from pyzk.config.tls import CLIENT_PREFIX, TlsSettings, tls_settings
from pyzk.datatree.acl import X509Provider
from pyzk.jute.records import Id
from pyzk.shell.connection import ClientConnection
from pyzk.shell.fourletter import FOUR_LETTER_WORD_BYTES
from pyzk.shell.tlscontext import server_context, subject_id
from pyzk.shell.unified import UnifiedListener

if TYPE_CHECKING:
    from pyzk.config import ServerConfig

log = logging.getLogger(__name__)


class ClientPortHost:
    """Base of the standalone and the ensemble shells; they provide ``server`` and ``fourlw``."""

    cfg: ServerConfig
    loop: asyncio.AbstractEventLoop
    server: Any
    fourlw: Any

    def __init__(self) -> None:
        #: asyncio Servers, and a UnifiedListener for client.portUnification
        self.listeners: list[Any] = []
        self.client_tls: TlsSettings | None = None

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
        ctx = None
        if cfg.secure_client_port or cfg.client_port_unification:
            try:
                self.client_tls = tls_settings(cfg.system_properties, CLIENT_PREFIX)
                ctx = server_context(self.client_tls)
            except ConfigError as e:
                what = (f"secureClientPort {cfg.secure_client_port}" if cfg.secure_client_port
                        else "TLS on the client port (client.portUnification)")
                log.error("%s is not served: %s", what, e)
        if cfg.client_port is not None:
            if ctx is not None and cfg.client_port_unification:
                assert self.client_tls is not None
                srv: Any = await UnifiedListener.open(
                    self.loop, cfg.client_port_address, cfg.client_port,
                    lambda secure: ClientConnection(self, secure=secure), ctx,
                    self.client_tls.handshake_timeout_ms / 1000)
            else:
                srv = await self.loop.create_server(
                    lambda: ClientConnection(self), host=cfg.client_port_address or None,
                    port=cfg.client_port, reuse_address=True, backlog=1024)
            self.listeners.append(srv)
            log.info("binding to port %s", ", ".join(
                f"{s.getsockname()[0]}:{s.getsockname()[1]}" for s in srv.sockets))
        if ctx is not None and cfg.secure_client_port:
            assert self.client_tls is not None
            srv = await self.loop.create_server(
                lambda: ClientConnection(self, secure=True),
                host=cfg.secure_client_port_address or None, port=cfg.secure_client_port,
                ssl=ctx, ssl_handshake_timeout=self.client_tls.handshake_timeout_ms / 1000,
                reuse_address=True, backlog=1024)
            self.listeners.append(srv)
            log.info("binding to secure port %s", ", ".join(
                f"{s.getsockname()[0]}:{s.getsockname()[1]}" for s in srv.sockets))

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
        return True

    def is_four_letter_word(self, word: bytes) -> bool:
        return word in FOUR_LETTER_WORD_BYTES

    def four_letter(self, conn: ClientConnection, cmd: str) -> None:
        text = self.fourlw.run(cmd, conn)
        conn.handshake_seen = True
        if text:
            conn.send(text.encode("utf-8"))
        conn.close()
