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

Whatever dials the election port is a stranger until its initial message
says who it is, so an accepted connection gets ``handshake_timeout``
seconds to send it (Apache's socket timeout on accepted sockets,
tickTime * syncLimit), a connection claiming our own sid is refused (Apache
logs ZOOKEEPER-2164's warning; dialling it back would dial ourselves in a
loop), and a sid outside the configuration is remembered only while it is
connected: its address, queue and last message go with its connection, as
Apache can reach an unknown sid only over a live connection ("Invalid
server id"). A connection whose initial message names a member that is
already connected replaces that member's connection (the larger sid's dial
wins, as in Apache). A smaller member is dialled back at its configured
address where Apache dials the one the message names (so a forged message
cannot point a member's link elsewhere); a smaller stranger at the address
its message names, as Apache does.
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
#: How long an accepted connection may take to send its initial message when
#: the caller does not say (a common tickTime * syncLimit: 2 s * 5).
HANDSHAKE_TIMEOUT = 10.0


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
                 tls: quorumtls.QuorumTls | None = None,
                 handshake_timeout: float = HANDSHAKE_TIMEOUT) -> None:
        self.my_id = my_id
        # Apache's socket timeout of 0 (no syncLimit) waits for ever; a
        # stranger must not hold a connection for good, so a default applies.
        self.handshake_timeout = handshake_timeout if handshake_timeout > 0 else HANDSHAKE_TIMEOUT
        self.auth = auth  # quorum SASL (pyzk.shell.quorumauth), None when off
        self.tls = tls  # sslQuorum/portUnification (pyzk.shell.quorumtls), None when off
        self.address = address
        self.peers = {sid: a for sid, a in peers.items() if sid != my_id}
        self.on_message = on_message
        self.links: dict[int, _Link] = {}
        self.queues: dict[int, bytes | None] = {}   # sid -> unsent message (capacity 1)
        self.last_sent: dict[int, bytes] = {}
        #: sids outside the configuration whose address came from their own
        #: initial message: forgotten when their connection ends
        self._learnt: set[int] = set()
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
        if sid not in self.peers:
            # Apache queues it and cannot dial ("Invalid server id"); keeping
            # nothing for a sid we cannot reach keeps strangers from growing it.
            log.debug("No connection to %d, which is not in the configuration", sid)
            return
        self.queues[sid] = payload  # the newest replaces an unsent older one
        self.connect(sid)

    def know_peer(self, sid: int, address: tuple[str, int]) -> None:
        """A member of a configuration (connectNewPeers): its election address
        is kept for good, whatever its connection does."""
        if sid == self.my_id:
            return
        self.peers[sid] = address
        self._learnt.discard(sid)

    def _forget_if_stranger(self, sid: int) -> None:
        """A sid only its own initial message told us of has no connection any
        more: drop what we kept for it."""
        if sid in self._learnt and sid not in self.links and sid not in self._dialling:
            self._learnt.discard(sid)
            self.peers.pop(sid, None)
            self.queues.pop(sid, None)
            self.last_sent.pop(sid, None)

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
            self._forget_if_stranger(sid)

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        name = writer.get_extra_info("peername") or ("?", 0)
        peer = f"{name[0]}:{name[1]}"
        buf = bytearray()
        try:
            async with asyncio.timeout(self.handshake_timeout):
                while True:
                    got = decode_initial_message(buf)
                    if got is not None:
                        break
                    chunk = await reader.read(4096)
                    if not chunk:
                        log.info("Election connection from %s closed before its initial "
                                 "message (%d bytes)", peer, len(buf))
                        writer.close()
                        return
                    buf += chunk
        except TimeoutError:
            log.warning("No initial message from %s on the election port within %g s, "
                        "closing it", peer, self.handshake_timeout)
            writer.close()
            return
        except (ElectionWireError, OSError) as e:
            log.warning("Bad initial message from %s on the election port: %s", peer, e)
            writer.close()
            return
        msg, used = got
        sid = msg.sid
        if sid == OBSERVER_ID or self._closed:
            writer.close()
            return
        if sid == self.my_id:
            # ZOOKEEPER-2164: never learnt, never dialled back (that would be a
            # dial to ourselves, answered by this same branch, forever)
            log.warning("We got a connection request from %s with our own ID %d. This should "
                        "be either a configuration error, or a bug.", peer, sid)
            writer.close()
            return
        if sid not in self.peers and msg.addresses:
            self.peers[sid] = msg.addresses[0]
            self._learnt.add(sid)
        try:
            # handleConnection: authenticate the learner before keeping or dialling back
            rest = await quorumauth.authenticate_server(self.auth, reader, writer,
                                                        bytes(buf[used:]))
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
                log.info("Election connection from %s (sid %d) replaces the one we had",
                         peer, sid)
                old.writer.close()
            self._attach(sid, reader, writer, rest)
        finally:
            self._forget_if_stranger(sid)

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

    async def _read(self, link: _Link, reader: asyncio.StreamReader, rest: bytes) -> None:
        # a bytearray: a frame trickled in small pieces is appended to, not
        # copied whole at every piece
        buf = bytearray(rest)
        try:
            while True:
                frames, used = decode_frames(buf)
                if used:
                    del buf[:used]
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
            self._forget_if_stranger(link.sid)
