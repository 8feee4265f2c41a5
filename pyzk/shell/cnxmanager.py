"""The election port: Apache's QuorumCnxManager as an asyncio shell.

One TCP connection per pair of servers carries FLE notifications. Which
connection survives follows Apache's rule (only the one dialled by the larger
sid is kept; a smaller sid that dials us is hung up on and dialled back), so
pyzk and Apache peers agree on it. Each peer has a send queue of capacity one
where the newest message replaces an unsent older one (SEND_CAPACITY), and the
last message sent to a peer is sent again when a new connection to it starts,
as SendWorker does. Messages to ourselves are looped back without a socket.

The manager knows nothing about elections: it hands every payload it reads
to ``on_message(sid, payload)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

from pyzk.quorum.wire import (
    OBSERVER_ID,
    ElectionWireError,
    decode_frames,
    decode_initial_message,
    encode_frame,
    encode_initial_message,
    keep_connection,
)
from pyzk.shell import quorumauth, quorumtls

log = logging.getLogger(__name__)

#: How long a dial may take (Apache's cnxTimeout default is 5 s).
CONNECT_TIMEOUT = 5.0


class _Link:
    """One kept connection to a peer."""

    __slots__ = ("sid", "writer", "task")

    def __init__(self, sid: int, writer: asyncio.StreamWriter) -> None:
        self.sid = sid
        self.writer = writer
        self.task: asyncio.Task[None] | None = None


class QuorumCnxManager:
    """Election connections of server ``my_id`` listening on ``address``.

    ``peers`` maps every other member's sid to its election address; sids that
    dial us from elsewhere are learnt from their initial message.
    """

    def __init__(self, my_id: int, address: tuple[str, int], peers: dict[int, tuple[str, int]],
                 on_message: Callable[[int, bytes], None], *,
                 auth: quorumauth.QuorumAuth | None = None,
                 tls: quorumtls.QuorumTls | None = None) -> None:
        self.my_id = my_id
        self.auth = auth  # quorum SASL (pyzk.shell.quorumauth), None when off
        self.tls = tls  # sslQuorum/portUnification (pyzk.shell.quorumtls), None when off
        self.address = address
        self.peers = {sid: a for sid, a in peers.items() if sid != my_id}
        self.on_message = on_message
        self.links: dict[int, _Link] = {}
        self.queues: dict[int, bytes | None] = {}   # sid -> unsent message (capacity 1)
        self.last_sent: dict[int, bytes] = {}
        self._dialling: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._server: Any = None  # an asyncio Server, or quorumtls' UnifiedListener
        self._closed = False

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        host, port = self.address
        self._server = await quorumtls.start_server(self.tls, self._accepted, host, port)
        log.info("Election port listening on %s:%d", host, port)

    async def close(self) -> None:
        self._closed = True
        if self._server is not None:
            self._server.close()
        for link in list(self.links.values()):
            link.writer.close()
        self.links.clear()
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(BaseException):
                await t
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()

    # ------------------------------------------------------------------ sending

    def send(self, sid: int, payload: bytes) -> None:
        """QuorumCnxManager.toSend: queue ``payload`` for ``sid`` (ourselves: loop back)."""
        if self._closed:
            return
        if sid == self.my_id:
            asyncio.get_running_loop().call_soon(self._deliver, sid, payload)
            return
        link = self.links.get(sid)
        if link is not None and not link.writer.is_closing():
            self.queues[sid] = None
            self._write(link, payload)
            return
        self.queues[sid] = payload  # the newest replaces an unsent older one
        self.connect(sid)

    def have_delivered(self) -> bool:
        """QuorumCnxManager.haveDelivered: some peer's queue is empty."""
        return any(v is None for v in self.queues.values())

    def connect_all(self, sids: frozenset[int] | set[int]) -> None:
        """QuorumCnxManager.connectAll over ``sids``."""
        for sid in sids:
            if sid != self.my_id and sid not in self.links:
                self.connect(sid)

    def connected(self) -> frozenset[int]:
        return frozenset(self.links)

    def _write(self, link: _Link, payload: bytes) -> None:
        self.last_sent[link.sid] = payload
        link.writer.write(encode_frame(payload))

    def _deliver(self, sid: int, payload: bytes) -> None:
        if not self._closed:
            self.on_message(sid, payload)

    # ------------------------------------------------------------------ connections

    def _spawn(self, coro) -> None:  # type: ignore[no-untyped-def]
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def connect(self, sid: int) -> None:
        """connectOne: dial ``sid`` unless connected or already dialling."""
        if self._closed or sid in self.links or sid in self._dialling or sid not in self.peers:
            return
        self._dialling.add(sid)
        self._spawn(self._dial(sid))

    async def _dial(self, sid: int) -> None:
        try:
            host, port = self.peers[sid]
            try:
                reader, writer = await asyncio.wait_for(
                    quorumtls.open_connection(self.tls, host, port), CONNECT_TIMEOUT)
            except (TimeoutError, OSError) as e:
                log.debug("Cannot open channel to %d at election address %s:%d: %s",
                          sid, host, port, e)
                return
            writer.write(encode_initial_message(self.my_id, [self.address]))
            # startConnection: authenticate as a learner, kept connection or not
            rest = await quorumauth.authenticate_learner(self.auth, reader, writer,
                                                         f"{host}:{port}", host)
            if rest is None:
                writer.close()
                return
            if not keep_connection(self.my_id, sid, i_dialled=True) or sid in self.links:
                # "Have smaller server identifier, so dropping the connection":
                # the peer dials us back.
                with contextlib.suppress(OSError, ConnectionError):
                    await writer.drain()
                writer.close()
                return
            self._attach(sid, reader, writer, rest)
        finally:
            self._dialling.discard(sid)

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buf = b""
        try:
            while True:
                got = decode_initial_message(buf)
                if got is not None:
                    break
                chunk = await reader.read(4096)
                if not chunk:
                    writer.close()
                    return
                buf += chunk
        except (ElectionWireError, OSError) as e:
            log.warning("Bad initial message on the election port: %s", e)
            writer.close()
            return
        msg, used = got
        sid = msg.sid
        if sid == OBSERVER_ID or self._closed:
            writer.close()
            return
        if sid not in self.peers and msg.addresses:
            self.peers[sid] = msg.addresses[0]
        # handleConnection: authenticate the learner before keeping or dialling back
        rest = await quorumauth.authenticate_server(self.auth, reader, writer, buf[used:])
        if rest is None or self._closed:
            writer.close()
            return
        if not keep_connection(self.my_id, sid, i_dialled=False):
            # "Create new connection to server: sid": the larger id dials.
            writer.close()
            self.connect(sid)
            return
        old = self.links.pop(sid, None)
        if old is not None:
            old.writer.close()
        self._attach(sid, reader, writer, rest)

    def _attach(self, sid: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                rest: bytes) -> None:
        link = _Link(sid, writer)
        self.links[sid] = link
        pending = self.queues.get(sid)
        if pending is not None:
            self.queues[sid] = None
            self._write(link, pending)
        elif sid in self.last_sent:
            # SendWorker: a new connection starts with the last message sent.
            self._write(link, self.last_sent[sid])
        task = asyncio.get_running_loop().create_task(self._read(link, reader, rest))
        link.task = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _read(self, link: _Link, reader: asyncio.StreamReader, buf: bytes) -> None:
        try:
            while True:
                frames, used = decode_frames(buf)
                buf = buf[used:]
                for payload in frames:
                    self._deliver(link.sid, payload)
                chunk = await reader.read(65536)
                if not chunk:
                    break
                buf += chunk
        except (OSError, ElectionWireError) as e:
            log.info("Election connection to %d broken: %s", link.sid, e)
        finally:
            if self.links.get(link.sid) is link:
                del self.links[link.sid]
            link.writer.close()
