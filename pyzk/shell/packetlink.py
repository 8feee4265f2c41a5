"""What every Zab packet link of the shell shares: one transport, its writes
gathered per event-loop iteration, closed once.

The quorum port's links (pyzk.shell.roles), the orderer's links to its
workers (pyzk.shell.workers) and a worker's link to its orderer
(pyzk.shell.workerproc) each read packets their own way; writing and
closing are the same for all of them. Links compare and hash by identity
(object's own rules), so a core can key its handlers by link.
"""

from __future__ import annotations

import asyncio

#: Bytes at least this long are written at once (after what is queued), not
#: queued: a SNAP's tree or a DIFF's packed txns would otherwise be copied
#: again into one joined buffer, doubling the memory a large tree's SNAP takes.
DIRECT_WRITE = 1 << 16


class PacketLink(asyncio.Protocol):
    """``send`` queues bytes while the link is open and they go out in one
    write at the end of the loop iteration (``DIRECT_WRITE`` bytes or more at
    once, after what is queued); ``close`` writes what is queued,
    then closes the link once and marks it closed first, so a subclass's
    ``connection_lost`` can tell a close of ours from the peer's.

    Why gather across calls: a leader's PROPOSALs and COMMITs come from
    separate core calls (one per write proposed, one per ACK that makes a
    quorum), so each was its own write; on loopback each write is a send
    syscall that also does the receiving side's TCP work, and that was 30%
    of a leader's CPU under a write load. Order per link is kept: bytes leave
    in the order they were sent. A link that must not gather (``gather``
    False: the orderer's links with its workers, whose INFORM has to be on
    its way before the orderer's own reply to the client that wrote, so a
    second session served by a worker sees the write as it would on one
    server) writes at every send.
    """

    transport: asyncio.Transport | None = None
    closed = False
    #: queue sends until the end of the loop iteration (see the class doc)
    gather = True
    #: bytes sent this loop iteration, not yet written (None: nothing queued)
    _queued: list[bytes] | None = None

    def send(self, data: bytes) -> None:
        if self.closed or self.transport is None:
            return
        if len(data) >= DIRECT_WRITE or not self.gather:
            self.flush()
            self.transport.write(data)
            return
        queued = self._queued
        if queued is None:
            self._queued = [data]
            asyncio.get_running_loop().call_soon(self.flush)
        else:
            queued.append(data)

    def flush(self) -> None:
        """Write what is queued now (also run by the loop after a send)."""
        queued = self._queued
        if queued is None:
            return
        self._queued = None
        if not self.closed and self.transport is not None:
            self.transport.write(queued[0] if len(queued) == 1 else b"".join(queued))

    def close(self) -> None:
        if not self.closed:
            self.flush()
            self.closed = True
            if self.transport is not None:
                self.transport.close()
