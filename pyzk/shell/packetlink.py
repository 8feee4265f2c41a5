"""What every Zab packet link of the shell shares: one transport, closed once.

The quorum port's links (pyzk.shell.roles), the orderer's links to its
workers (pyzk.shell.workers) and a worker's link to its orderer
(pyzk.shell.workerproc) each read packets their own way; writing and
closing are the same for all of them. Links compare and hash by identity
(object's own rules), so a core can key its handlers by link.
"""

from __future__ import annotations

import asyncio


class PacketLink(asyncio.Protocol):
    """``send`` writes while the link is open; ``close`` closes it once and
    marks it closed first, so a subclass's ``connection_lost`` can tell a
    close of ours from the peer's."""

    transport: asyncio.Transport | None = None
    closed = False

    def send(self, data: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(data)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.transport is not None:
                self.transport.close()
