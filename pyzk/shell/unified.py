"""client.portUnification: TLS and plaintext clients on one port.

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
import socket
import ssl
from collections.abc import Callable

log = logging.getLogger(__name__)

TLS_HANDSHAKE = 0x16
_TLS_CONTENT_TYPES = range(20, 24)  # change_cipher_spec, alert, handshake, application_data


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


class UnifiedListener:
    """A listening socket whose connections are told apart by their first bytes.

    ``make_protocol(secure)`` builds the connection's protocol; ``ctx`` is the
    TLS context for the ones that start with a TLS record. Looks enough like
    an asyncio Server (``sockets``, ``close``) for the shell's bookkeeping.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket,
                 make_protocol: Callable[[bool], asyncio.Protocol], ctx: ssl.SSLContext,
                 timeout_s: float) -> None:
        self.loop = loop
        self.sockets = [sock]
        self.make_protocol = make_protocol
        self.ctx = ctx
        self.timeout_s = timeout_s
        self.pending: set[socket.socket] = set()
        self.task = loop.create_task(self._accept_loop())

    @classmethod
    async def open(cls, loop: asyncio.AbstractEventLoop, host: str | None, port: int,
                   make_protocol: Callable[[bool], asyncio.Protocol], ctx: ssl.SSLContext,
                   timeout_s: float, backlog: int = 1024) -> UnifiedListener:
        infos = await loop.getaddrinfo(host or None, port, type=socket.SOCK_STREAM,
                                       flags=socket.AI_PASSIVE)
        family, kind, proto, _name, addr = infos[0]
        sock = socket.socket(family, kind, proto)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(addr)
            sock.listen(backlog)
            sock.setblocking(False)
        except OSError:
            sock.close()
            raise
        return cls(loop, sock, make_protocol, ctx, timeout_s)

    def close(self) -> None:
        self.task.cancel()
        for s in list(self.pending):
            self._drop(s)
        self.sockets[0].close()

    async def wait_closed(self) -> None:
        with contextlib.suppress(asyncio.CancelledError):
            await self.task

    async def _accept_loop(self) -> None:
        listener = self.sockets[0]
        while True:
            try:
                conn, _addr = await self.loop.sock_accept(listener)
            except asyncio.CancelledError:
                raise
            except OSError as e:  # EMFILE and friends: do not spin
                log.warning("accept on the unified client port failed: %s", e)
                await asyncio.sleep(0.1)
                continue
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.pending.add(conn)
            timer = self.loop.call_later(self.timeout_s, self._too_slow, conn)
            self.loop.add_reader(conn.fileno(), self._readable, conn, timer)

    def _drop(self, conn: socket.socket) -> None:
        self.pending.discard(conn)
        with contextlib.suppress(ValueError, OSError):
            self.loop.remove_reader(conn.fileno())
        conn.close()

    def _too_slow(self, conn: socket.socket) -> None:
        if conn in self.pending:
            log.warning("no TLS or plaintext request within %.1f s on the unified port; closing",
                        self.timeout_s)
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

    async def _hand_over(self, conn: socket.socket, tls: bool) -> None:
        try:
            await self.loop.connect_accepted_socket(
                lambda: self.make_protocol(tls), conn, ssl=self.ctx if tls else None,
                ssl_handshake_timeout=self.timeout_s if tls else None)
        except (OSError, ssl.SSLError, TimeoutError, ConnectionError) as e:
            log.info("TLS handshake on the unified client port failed: %s", e)
            conn.close()
