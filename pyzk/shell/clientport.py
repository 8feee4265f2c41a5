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

from pyzk.shell.connection import ClientConnection
from pyzk.shell.fourletter import FOUR_LETTER_WORD_BYTES

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
        self.listeners: list[asyncio.base_events.Server] = []

    async def listen(self) -> None:
        """Open clientPort on clientPortAddress (all interfaces when unset)."""
        cfg = self.cfg
        if cfg.client_port is None:
            raise ValueError("clientPort is not set")
        srv = await self.loop.create_server(
            lambda: ClientConnection(self), host=cfg.client_port_address or None,
            port=cfg.client_port, reuse_address=True, backlog=1024)
        self.listeners.append(srv)
        log.info("binding to port %s", ", ".join(
            f"{s.getsockname()[0]}:{s.getsockname()[1]}" for s in srv.sockets))
        if cfg.secure_client_port:
            log.warning("secureClientPort=%s: TLS client connections are not supported yet; "
                        "only clientPort is served", cfg.secure_client_port)

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
