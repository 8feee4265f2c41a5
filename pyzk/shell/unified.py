"""Port unification: TLS and plaintext connections on one port.

Used by the client port (``client.portUnification``) and by the quorum and
election ports (``sslQuorum``/``portUnification``, Apache's
UnifiedServerSocket, which also serves a TLS-only quorum port: there a
plaintext peer is told apart the same way and hung up on).

Apache's Netty pipeline (DualModeSslHandler) looks at a connection's first
bytes: five bytes that make a TLS record header mean TLS; a first byte that
is not a TLS handshake record (a four-letter word, a ConnectRequest length)
means plaintext, even before five bytes arrived.

asyncio cannot hand bytes it has already read to a TLS layer, so this port
accepts connections itself and *peeks* (MSG_PEEK) at each new socket before
any transport owns it; once the first bytes tell, the socket goes to
``loop.connect_accepted_socket``, with or without TLS, and is read from its
first byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import ssl
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

TLS_HANDSHAKE = 0x16
_TLS_CONTENT_TYPES = range(20, 24)  # change_cipher_spec, alert, handshake, application_data


#: The alert SunJSSE sends when it refuses a client's handshake, by the
#: OpenSSL reason the refusal raises here: no certificate where one is needed
#: is bad_certificate; a certificate the trust manager rejects (untrusted,
#: expired, ...) certificate_unknown; no common version or cipher suite
#: protocol_version or handshake_failure.
_REFUSAL_ALERTS = {"PEER_DID_NOT_RETURN_A_CERTIFICATE": 42, "UNSUPPORTED_PROTOCOL": 70,
                   "NO_SHARED_CIPHER": 40}
_CERTIFICATE_UNKNOWN = 46
#: Refusals that happen before the ServerHello, when alerts are plaintext in every version.
_BEFORE_SERVER_HELLO = frozenset({"UNSUPPORTED_PROTOCOL", "NO_SHARED_CIPHER"})


def refusal_alert(exc: BaseException, ctx: ssl.SSLContext) -> bytes | None:
    """The fatal TLS alert record Java would send for the refused handshake ``exc``.

    asyncio and uvloop drop the alert OpenSSL wrote when a server-side
    handshake fails (they abort the transport without flushing it), so a
    client sees a bare EOF where Apache's client sees "bad certificate". The
    record is rebuilt here: plaintext, which is right for TLS 1.2, and for
    any version before the ServerHello; after a TLS 1.3 ServerHello it would
    have to be encrypted, so then (``ctx`` allows 1.3) nothing is sent.
    """
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason, desc = "CERTIFICATE_VERIFY_FAILED", _CERTIFICATE_UNKNOWN
    elif isinstance(exc, ssl.SSLError) and exc.reason in _REFUSAL_ALERTS:
        reason, desc = exc.reason, _REFUSAL_ALERTS[exc.reason]
    else:
        return None
    top = ctx.maximum_version
    tls13 = top == ssl.TLSVersion.MAXIMUM_SUPPORTED or top >= ssl.TLSVersion.TLSv1_3
    if tls13 and reason not in _BEFORE_SERVER_HELLO:
        return None
    return bytes((21, 3, 3, 0, 2, 2, desc))  # alert record, TLS 1.2, fatal, desc


async def accept_tls(loop: asyncio.AbstractEventLoop, conn: socket.socket,
                     make_protocol: Callable[[], asyncio.Protocol], ctx: ssl.SSLContext,
                     timeout_s: float) -> None:
    """``loop.connect_accepted_socket`` with TLS; a refused handshake still
    gets its alert (:func:`refusal_alert`) and then raises as before.

    The event loop closes ``conn`` when the handshake fails, so a duplicate
    of its descriptor is kept for the alert and closed here either way.
    """
    spare = os.dup(conn.fileno())
    try:
        await loop.connect_accepted_socket(make_protocol, conn, ssl=ctx,
                                           ssl_handshake_timeout=timeout_s)
    except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as e:
        alert = refusal_alert(e, ctx)
        if alert is not None:
            with contextlib.suppress(OSError):
                os.write(spare, alert)
        raise
    finally:
        os.close(spare)


def looks_like_tls(head: bytes) -> bool | None:
    """SslHandler.isEncrypted on a connection's first bytes: True, False, or
    None while too few bytes have arrived to tell."""
    if not head:
        return None
    if head[0] != TLS_HANDSHAKE and len(head) < 5:
        return False
    if len(head) < 5:
        return None
    if head[0] not in _TLS_CONTENT_TYPES or head[1] != 3:
        return False
    length = int.from_bytes(head[3:5], "big")
    return 0 < length <= 18713  # a TLS record is at most 2^14 + 2325 bytes


async def listening_socket(loop: asyncio.AbstractEventLoop, host: str | None, port: int,
                           backlog: int = 1024, *, reuse_port: bool = False) -> socket.socket:
    """A non-blocking listening socket on ``host:port`` (all interfaces when
    None), for the listeners that run their own accept loop. ``reuse_port``
    sets SO_REUSEPORT, so that a server's worker processes
    (pyzk.shell.workers) each accept a share of the port's connections."""
    infos = await loop.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                   flags=socket.AI_PASSIVE)
    family, kind, proto, _name, addr = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind(addr)
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


async def accept_forever(loop: asyncio.AbstractEventLoop, listener: socket.socket, what: str,
                         on_accept: Callable[[socket.socket], None]) -> None:
    """Accept on ``listener`` until cancelled, handing each new non-blocking
    TCP_NODELAY socket to ``on_accept``; a failed accept (EMFILE and friends)
    is logged and retried after a pause instead of spinning."""
    while True:
        try:
            conn, _addr = await loop.sock_accept(listener)
        except asyncio.CancelledError:
            raise
        except OSError as e:
            log.warning("accept on %s failed: %s", what, e)
            await asyncio.sleep(0.1)
            continue
        conn.setblocking(False)
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        on_accept(conn)


class UnifiedListener:
    """A listening socket whose connections are told apart by their first bytes.

    ``make_protocol(secure)`` builds the connection's protocol; ``ctx`` is the
    TLS context for the ones that start with a TLS record (``ctx_source``,
    when set, is asked for the context at each TLS connection instead, so
    reloaded certificates apply to new connections; None refuses them).
    Without ``allow_plaintext`` a plaintext connection is logged and closed
    (UnifiedServerSocket's "Blocked insecure connection attempt");
    ``plaintext_on_timeout`` treats a silent connection as plaintext, as
    UnifiedSocket.detectMode does, instead of closing it. ``name`` says which
    port in log lines, ``refusal_level`` is the level a failed handshake is
    logged at, ``accept_level`` a plaintext connection's. Looks enough like an
    asyncio Server (``sockets``, ``close``) for the shell's bookkeeping.
    """

    #: called after a refused TLS handshake (the shell counts it, as Apache's
    #: CertificateVerifier does)
    on_refused: Callable[[], None] | None = None

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket,
                 make_protocol: Callable[[bool], asyncio.Protocol], ctx: ssl.SSLContext | None,
                 timeout_s: float, *, name: str = "unified client port",
                 allow_plaintext: bool = True, plaintext_on_timeout: bool = False,
                 ctx_source: Callable[[], ssl.SSLContext | None] | None = None,
                 refusal_level: int = logging.INFO, accept_level: int = logging.DEBUG) -> None:
        self.loop = loop
        self.sockets = [sock]
        self.make_protocol = make_protocol
        self.ctx = ctx
        self.timeout_s = timeout_s
        self.name = name
        self.allow_plaintext = allow_plaintext
        self.plaintext_on_timeout = plaintext_on_timeout
        self.ctx_source = ctx_source
        self.refusal_level = refusal_level
        self.accept_level = accept_level
        self.pending: set[socket.socket] = set()
        self.task = loop.create_task(self._accept_loop())

    @classmethod
    async def open(cls, loop: asyncio.AbstractEventLoop, host: str | None, port: int,
                   make_protocol: Callable[[bool], asyncio.Protocol], ctx: ssl.SSLContext | None,
                   timeout_s: float, backlog: int = 1024, *, reuse_port: bool = False,
                   **options: Any) -> UnifiedListener:
        sock = await listening_socket(loop, host, port, backlog, reuse_port=reuse_port)
        return cls(loop, sock, make_protocol, ctx, timeout_s, **options)

    def close(self) -> None:
        self.task.cancel()
        for s in list(self.pending):
            self._drop(s)
        self.sockets[0].close()

    async def wait_closed(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def _accept_loop(self) -> None:
        await accept_forever(self.loop, self.sockets[0], f"the {self.name}", self._accepted)

    def _accepted(self, conn: socket.socket) -> None:
        self.pending.add(conn)
        timer = self.loop.call_later(self.timeout_s, self._too_slow, conn)
        self.loop.add_reader(conn.fileno(), self._readable, conn, timer)

    def _drop(self, conn: socket.socket) -> None:
        self.pending.discard(conn)
        with contextlib.suppress(ValueError, OSError):
            self.loop.remove_reader(conn.fileno())
        conn.close()

    def _too_slow(self, conn: socket.socket) -> None:
        if conn not in self.pending:
            return
        if self.plaintext_on_timeout:
            log.warning("Socket mode detection timed out after %d ms on the %s, assuming "
                        "PLAINTEXT", self.timeout_s * 1000, self.name)
            with contextlib.suppress(ValueError, OSError):
                self.loop.remove_reader(conn.fileno())
            self.pending.discard(conn)
            self.loop.create_task(self._hand_over(conn, False))
            return
        log.warning("no TLS or plaintext request within %.1f s on the %s; closing",
                    self.timeout_s, self.name)
        self._drop(conn)

    def _readable(self, conn: socket.socket, timer: asyncio.TimerHandle) -> None:
        try:
            head = conn.recv(5, socket.MSG_PEEK)
        except BlockingIOError:
            return
        except OSError:
            head = b""
        if not head:  # the client went away before saying anything
            timer.cancel()
            self._drop(conn)
            return
        tls = looks_like_tls(head)
        if tls is None:
            return  # wait for more bytes; the reader fires again when they come
        timer.cancel()
        self.loop.remove_reader(conn.fileno())
        self.pending.discard(conn)
        self.loop.create_task(self._hand_over(conn, tls))

    def _peer(self, conn: socket.socket) -> str:
        try:
            host, port = conn.getpeername()[:2]
        except OSError:
            return "?"
        return f"{host}:{port}"

    async def _hand_over(self, conn: socket.socket, tls: bool) -> None:
        if not tls and not self.allow_plaintext:
            log.warning("Blocked insecure connection attempt from %s on the TLS-only %s",
                        self._peer(conn), self.name)
            conn.close()
            return
        ctx = self.ctx_source() if self.ctx_source is not None else self.ctx
        if tls and ctx is None:
            log.warning("TLS connection from %s on the %s closed: no usable TLS context",
                        self._peer(conn), self.name)
            conn.close()
            return
        peer = self._peer(conn)
        try:
            if tls:
                assert ctx is not None
                await accept_tls(self.loop, conn, lambda: self.make_protocol(True), ctx,
                                 self.timeout_s)
            else:
                log.log(self.accept_level, "Accepted plaintext connection from %s on the %s",
                        peer, self.name)
                await self.loop.connect_accepted_socket(lambda: self.make_protocol(False), conn)
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as e:
            log.log(self.refusal_level, "TLS handshake with %s on the %s failed: %s", peer,
                    self.name, str(e) or type(e).__name__)
            conn.close()
            if tls and self.on_refused is not None:
                self.on_refused()
