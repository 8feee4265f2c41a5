"""Quorum TLS: ``sslQuorum`` and ``portUnification`` on the quorum and election ports.

Apache's QuorumPeer keeps one QuorumX509Util (``zookeeper.ssl.quorum.*``)
for both ports and both directions:

- listening (Leader's quorum port, QuorumCnxManager's election port) goes
  through UnifiedServerSocket whenever ``sslQuorum`` or ``portUnification``
  is on: the first bytes tell TLS from plaintext, and plaintext is hung up
  on unless ``portUnification`` allows it (pyzk.shell.unified does the
  peeking);
- dialling (a learner to its leader, an election connection) uses TLS
  exactly when ``sslQuorum`` is on, whatever ``portUnification`` says. So
  the rolling upgrade Apache documents works: portUnification everywhere,
  then sslQuorum everywhere, then portUnification off.

ZKTrustManager checks more than the certificate chain: with
``hostnameVerification`` (default true) the dialler checks that the server's
certificate names the address it dialled, and, on the quorum only, the
listener checks that the dialler's certificate names the address it came
from, each trying the address first and then a name (the configured host
name, or a reverse lookup when ``allowReverseDnsLookup``, true by default
on the quorum). OpenSSL has no such check on the server side and a
different one on the client side, so pyzk makes ZKTrustManager's after the
handshake (:class:`_PeerCheck`) and before the connection's protocol (quorum
SASL, then Zab or FLE) sees a byte; a failure is logged and the connection
closed, where Java would have failed the handshake itself.

``sslQuorumReloadCertFiles``: Apache watches the store files and rebuilds
its context when they change; pyzk looks at the files' stat at each new
quorum connection and rebuilds then, which is the same for every connection
made after the change (established connections keep their session in both).
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import ssl
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from pyzk.config.errors import ConfigError
from pyzk.config.tls import QUORUM_PREFIX, TlsSettings, host_mismatch, tls_settings
from pyzk.shell.tlscontext import certificate_names, client_context, server_context
from pyzk.shell.unified import UnifiedListener

if TYPE_CHECKING:
    from pyzk.config import ServerConfig

log = logging.getLogger(__name__)

#: How long a reverse lookup of a peer's address may take (Java's has no
#: bound but the resolver's; an unbounded wait would hold the connection).
REVERSE_LOOKUP_TIMEOUT = 5.0
#: The same dial failure is logged at WARNING at most this often (a learner
#: retries its leader every 100 ms, FLE its peers on every round).
_REPEAT_S = 10.0


class QuorumTlsError(ConnectionError):
    """A quorum connection refused for its TLS (handshake or peer check); the
    message never holds a password."""


class QuorumTls:
    """One server's quorum TLS: the settings, the two contexts, the modes.

    ``ssl`` says whether this server dials with TLS (sslQuorum), ``unified``
    whether its listeners also take plaintext (portUnification). A context
    that cannot be built (a missing store, a bad password) is None: the
    server runs and every connection needing it fails with a log line, as
    Apache's do when its SSLContext cannot be created.
    """

    def __init__(self, settings: TlsSettings | None, *, ssl_quorum: bool, unified: bool,
                 reload: bool) -> None:
        #: None when the ssl.quorum.* settings themselves are bad: no contexts then
        self.usable = settings is not None
        settings = settings or TlsSettings(prefix=QUORUM_PREFIX, keystore=None, truststore=None)
        self.settings = settings
        self.ssl = ssl_quorum
        self.unified = unified
        self.reload = reload
        self.timeout_s = settings.handshake_timeout_ms / 1000
        self._server: ssl.SSLContext | None = None
        self._client: ssl.SSLContext | None = None
        self._stamp = self._files_stamp()
        self._warned: dict[str, float] = {}
        self._build(initial=True)

    @classmethod
    def from_config(cls, cfg: ServerConfig) -> QuorumTls | None:
        """None when neither sslQuorum nor portUnification is on (plain sockets)."""
        log.info("Using %s quorum communication",
                 "TLS encrypted" if cfg.ssl_quorum else "insecure (non-TLS)")
        log.info("Port unification %s", "enabled" if cfg.quorum_port_unification else "disabled")
        if not (cfg.ssl_quorum or cfg.quorum_port_unification):
            if cfg.ssl_quorum_reload_cert_files:
                log.info("sslQuorumReloadCertFiles has no effect without sslQuorum or "
                         "portUnification")
            return None
        settings: TlsSettings | None
        try:
            settings = tls_settings(cfg.system_properties, QUORUM_PREFIX)
        except ConfigError as e:
            # Apache fails each connection that needs the context; so does pyzk
            log.error("Quorum TLS is not usable: %s", e)
            settings = None
        if cfg.ssl_quorum_reload_cert_files:
            log.info("enabling cert file reloading for the quorum key and trust stores")
        return cls(settings, ssl_quorum=cfg.ssl_quorum, unified=cfg.quorum_port_unification,
                   reload=cfg.ssl_quorum_reload_cert_files)

    # -- contexts -------------------------------------------------------------------

    def _files_stamp(self) -> tuple[Any, ...]:
        stamp: list[Any] = []
        for spec in (self.settings.keystore, self.settings.truststore):
            for path in ((spec.location, spec.password_path) if spec is not None else ()):
                if not path:
                    continue
                try:
                    st = os.stat(path)
                    stamp.append((path, st.st_mtime_ns, st.st_size, st.st_ino))
                except OSError:
                    stamp.append((path, None))
        return tuple(stamp)

    def _build(self, *, initial: bool) -> None:
        if not self.usable:
            return
        what = "build" if initial else "reload"
        try:
            server = server_context(self.settings)
        except ConfigError as e:
            log.error("Cannot %s the quorum TLS server context: %s", what, e)
            if initial:
                self._server = None
        else:
            self._server = server
        if not self.ssl:
            return
        try:
            client = client_context(self.settings)
        except ConfigError as e:
            log.error("Cannot %s the quorum TLS client context: %s", what, e)
            if initial:
                self._client = None
        else:
            self._client = client

    def _maybe_reload(self) -> None:
        if not self.reload:
            return
        stamp = self._files_stamp()
        if stamp != self._stamp:
            self._stamp = stamp
            log.info("Quorum key or trust store changed on disk; reloading the TLS contexts")
            self._build(initial=False)

    def server_context(self) -> ssl.SSLContext | None:
        """The context a listener accepts TLS with (None: refuse TLS)."""
        self._maybe_reload()
        return self._server

    def client_context(self) -> ssl.SSLContext | None:
        """The context a dialler connects with (None: cannot dial with TLS)."""
        self._maybe_reload()
        return self._client

    def warn(self, key: str, msg: str, *args: object) -> None:
        """A WARNING, unless the same one was logged in the last few seconds."""
        now = time.monotonic()
        if now - self._warned.get(key, -_REPEAT_S) >= _REPEAT_S:
            self._warned[key] = now
            log.warning(msg, *args)
        else:
            log.debug(msg, *args)


# ---------------------------------------------------------------------- peer check


def _is_address(host: str) -> bool:
    try:
        socket.inet_pton(socket.AF_INET6 if ":" in host else socket.AF_INET, host)
    except OSError:
        return False
    return True


async def _reverse_name(loop: asyncio.AbstractEventLoop, ip: str) -> str:
    """InetAddress.getHostName: the address's name, or the address itself."""
    try:
        name, _port = await asyncio.wait_for(
            loop.getnameinfo((ip, 0), socket.NI_NAMEREQD), REVERSE_LOOKUP_TIMEOUT)
    except (OSError, TimeoutError):
        return ip
    return name


async def check_peer(tls: TlsSettings, transport: asyncio.BaseTransport,
                     dialled: str | None) -> str | None:
    """ZKTrustManager.performHostVerification for one TLS connection: None
    when the peer's certificate names the peer (or no check is due), else why
    not. ``dialled`` is the host this side dialled, None on the listening side."""
    if dialled is None and not tls.client_hostname_verification:
        return None
    if dialled is not None and not tls.hostname_verification:
        return None
    ssl_object = transport.get_extra_info("ssl_object")
    der = ssl_object.getpeercert(binary_form=True) if ssl_object is not None else None
    if not der:
        return None  # clientAuth=want/none and no certificate: nothing to check
    ips, dns, cn = certificate_names(der)
    peer = transport.get_extra_info("peername") or ("?", 0)
    address = str(peer[0])
    first = host_mismatch(address, ips, dns, cn)
    if first is None:
        return None
    if dialled is not None and not _is_address(dialled):
        name = dialled  # the InetAddress carries the configured host name
    elif tls.allow_reverse_dns:
        name = await _reverse_name(asyncio.get_running_loop(), address)
    else:
        return f"Failed to verify host address {address}, and reverse lookup is disabled"
    second = host_mismatch(name, ips, dns, cn)
    if second is None:
        return None
    return f"Failed to verify both host address and host name ({first}; {second})"


class _PeerCheck(asyncio.Protocol):
    """Holds a TLS quorum connection until :func:`check_peer` passes, then
    hands the transport to the protocol ``factory`` makes (quorum SASL's
    gate, a Zab link, an election stream), bytes that came meanwhile first."""

    def __init__(self, quorum: QuorumTls, factory: Callable[[], asyncio.Protocol],
                 dialled: str | None, what: str) -> None:
        self.quorum = quorum
        self.factory = factory
        self.dialled = dialled
        self.what = what
        self.transport: asyncio.BaseTransport | None = None
        self.inner: asyncio.Protocol | None = None
        self.ready: asyncio.Future[asyncio.Protocol] = (
            asyncio.get_running_loop().create_future())
        self._buffer: list[bytes] = []
        self._eof = False
        self._task: asyncio.Task[None] | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport
        ssl_object = transport.get_extra_info("ssl_object")
        peer = transport.get_extra_info("peername") or ("?", 0)
        if ssl_object is not None:
            # UnifiedSocket's "Accepted TLS connection", QCM's "SSL handshake complete"
            log.info("%s TLS connection %s %s:%s - %s - %s", self.what,
                     "to" if self.dialled is not None else "from", peer[0], peer[1],
                     ssl_object.version(), (ssl_object.cipher() or ("?",))[0])
        self._task = asyncio.get_running_loop().create_task(self._check())

    async def _check(self) -> None:
        assert self.transport is not None
        try:
            reason = await check_peer(self.quorum.settings, self.transport, self.dialled)
        except Exception as e:  # noqa: BLE001 - a bad certificate must not kill the loop
            reason = f"cannot read the peer's certificate: {type(e).__name__}"
        if self.transport.is_closing():
            self._fail(QuorumTlsError("connection closed during the TLS peer check"))
            return
        if reason is not None:
            peer = self.transport.get_extra_info("peername") or ("?", 0)
            log.error("%s TLS connection with %s:%s refused: %s", self.what, peer[0], peer[1],
                      reason)
            self.transport.close()
            self._fail(QuorumTlsError(reason))
            return
        inner = self.factory()
        self.inner = inner
        self.transport.set_protocol(inner)
        inner.connection_made(self.transport)
        for chunk in self._buffer:
            inner.data_received(chunk)
        self._buffer.clear()
        if self._eof:
            inner.eof_received()
        if not self.ready.done():
            self.ready.set_result(inner)

    def _fail(self, exc: Exception) -> None:
        if not self.ready.done():
            self.ready.set_exception(exc)
            self.ready.exception()  # retrieved: a listener never awaits it

    def data_received(self, data: bytes) -> None:
        self._buffer.append(data)

    def eof_received(self) -> bool | None:
        self._eof = True
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._fail(QuorumTlsError(f"connection lost during the TLS peer check: {exc}"))


# ---------------------------------------------------------------------- the ports


async def create_server(quorum: QuorumTls | None, loop: asyncio.AbstractEventLoop,
                        factory: Callable[[], asyncio.Protocol], host: str | None, port: int,
                        what: str) -> Any:
    """``loop.create_server`` for a quorum or election port; with quorum TLS a
    :class:`UnifiedListener` (UnifiedServerSocket) instead. ``what`` names
    the port in log lines."""
    if quorum is None:
        return await loop.create_server(factory, host=host, port=port, reuse_address=True)

    def make(secure: bool) -> asyncio.Protocol:
        return _PeerCheck(quorum, factory, None, what) if secure else factory()

    log.info("Creating %s %s socket", "TLS-enabled" if quorum.unified else "TLS-only", what)
    return await UnifiedListener.open(
        loop, host, port, make, None, quorum.timeout_s, name=what,
        allow_plaintext=quorum.unified, plaintext_on_timeout=quorum.unified,
        ctx_source=quorum.server_context, refusal_level=logging.WARNING,
        accept_level=logging.INFO)


async def create_connection(quorum: QuorumTls | None, loop: asyncio.AbstractEventLoop,
                            factory: Callable[[], asyncio.Protocol], host: str, port: int,
                            what: str) -> tuple[asyncio.BaseTransport, asyncio.Protocol]:
    """``loop.create_connection`` for a quorum or election link: with sslQuorum
    a TLS handshake and the peer check first; the protocol returned is the
    one ``factory`` made. A refusal raises :class:`QuorumTlsError` (an
    OSError, as a failed dial is) after a WARNING."""
    if quorum is None or not quorum.ssl:
        return await loop.create_connection(factory, host, port)
    ctx = quorum.client_context()
    if ctx is None:
        quorum.warn(f"noctx {what}", "Cannot open secure channel to %s:%d (%s): no usable TLS "
                    "context", host, port, what)
        raise QuorumTlsError("no usable quorum TLS client context")
    try:
        transport, gate = await loop.create_connection(
            lambda: _PeerCheck(quorum, factory, host, what), host, port, ssl=ctx,
            server_hostname=host, ssl_handshake_timeout=quorum.timeout_s)
    except ssl.SSLError as e:
        quorum.warn(f"ssl {what} {host}:{port} {e.reason}",
                    "Cannot open secure channel to %s:%d (%s): TLS handshake failed: %s",
                    host, port, what, e.reason or e)
        raise QuorumTlsError(f"TLS handshake failed: {e.reason or e}") from None
    except TimeoutError:
        quorum.warn(f"timeout {what} {host}:{port}", "Cannot open secure channel to %s:%d "
                    "(%s): TLS handshake timed out", host, port, what)
        raise QuorumTlsError("TLS handshake timed out") from None
    assert isinstance(gate, _PeerCheck)
    try:
        inner = await gate.ready
    except BaseException:
        transport.close()
        raise
    return transport, inner


async def start_server(quorum: QuorumTls | None,
                       cb: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
                       host: str, port: int) -> Any:
    """``asyncio.start_server`` for the election port, through :func:`create_server`."""
    if quorum is None:
        return await asyncio.start_server(cb, host, port, reuse_address=True)
    loop = asyncio.get_running_loop()

    def factory() -> asyncio.Protocol:
        return asyncio.StreamReaderProtocol(asyncio.StreamReader(), cb)

    return await create_server(quorum, loop, factory, host, port, "election port")


async def open_connection(quorum: QuorumTls | None, host: str,
                          port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """``asyncio.open_connection`` for an election link, through :func:`create_connection`."""
    if quorum is None or not quorum.ssl:
        return await asyncio.open_connection(host, port)
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    protocol = asyncio.StreamReaderProtocol(reader)
    transport, _p = await create_connection(quorum, loop, lambda: protocol, host, port,
                                            "election port")
    writer = asyncio.StreamWriter(transport, protocol, reader, loop)  # type: ignore[arg-type]
    return reader, writer

