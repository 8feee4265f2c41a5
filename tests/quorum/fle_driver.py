"""A small asyncio driver that runs one election core on a real election port.

Test scaffolding only: it does what Apache's QuorumCnxManager does closely
enough for an election with real Apache servers (handshake, the larger-sid
connection rule, framing, one pending message per peer, loop-back to self)
and records the raw bytes it sees so tests can compare them with the codec.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from pyzk.quorum.election import (
    CancelTimer,
    ConnectAll,
    Decided,
    FastLeaderElection,
    Send,
    SetTimer,
)
from pyzk.quorum.wire import (
    decode_frames,
    decode_initial_message,
    decode_notification,
    encode_frame,
    encode_initial_message,
    encode_notification,
    keep_connection,
)

log = logging.getLogger(__name__)


class ElectionDriver:
    """Drive ``core`` (server ``core.my_id``) over TCP on 127.0.0.1."""

    def __init__(self, core: FastLeaderElection, election_ports: dict[int, int]) -> None:
        self.core = core
        self.ports = election_ports
        self.my_id = core.my_id
        self.writers: dict[int, asyncio.StreamWriter] = {}
        self.pending: dict[int, bytes] = {}
        self.last_sent: dict[int, bytes] = {}
        self.decided: asyncio.Future[Decided] | None = None
        self.initial_messages: list[bytes] = []
        self.frames: list[tuple[int, bytes]] = []
        self._timer: asyncio.TimerHandle | None = None
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        self.decided = asyncio.get_running_loop().create_future()
        self._server = await asyncio.start_server(
            self._accepted, "127.0.0.1", self.ports[self.my_id]
        )
        self._apply(self.core.start())

    async def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        if self._server is not None:
            self._server.close()
        for w in self.writers.values():
            w.close()
        for t in list(self._tasks):
            t.cancel()
        for t in list(self._tasks):
            with contextlib.suppress(BaseException):
                await t

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # --- core actions -------------------------------------------------
    def _apply(self, actions: list) -> None:
        loop = asyncio.get_running_loop()
        for a in actions:
            if isinstance(a, Send):
                if a.to == self.my_id:
                    loop.call_soon(self._deliver, self.my_id, a.notification)
                else:
                    self._send(a.to, encode_frame(encode_notification(a.notification)))
            elif isinstance(a, SetTimer):
                if self._timer is not None:
                    self._timer.cancel()
                self._timer = loop.call_later(a.delay_ms / 1000, self._fire)
            elif isinstance(a, CancelTimer):
                if self._timer is not None:
                    self._timer.cancel()
                self._timer = None
            elif isinstance(a, ConnectAll):
                for sid in self.core.voters():
                    if sid != self.my_id and sid not in self.writers:
                        self._spawn(self._dial(sid))
            elif isinstance(a, Decided):
                assert self.decided is not None
                if not self.decided.done():
                    self.decided.set_result(a)

    def _fire(self) -> None:
        self._timer = None
        self._apply(self.core.timeout(have_delivered=not self.pending))

    def _deliver(self, sid: int, n) -> None:
        self._apply(self.core.receive(sid, n))

    def _send(self, sid: int, frame: bytes) -> None:
        w = self.writers.get(sid)
        if w is None:
            self.pending[sid] = frame  # SEND_CAPACITY 1: only the newest waits
            self._spawn(self._dial(sid))
            return
        self.last_sent[sid] = frame
        w.write(frame)

    # --- connections --------------------------------------------------
    async def _dial(self, sid: int) -> None:
        if sid in self.writers or sid not in self.ports:
            return
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", self.ports[sid])
        except OSError:
            return
        writer.write(encode_initial_message(self.my_id, [("127.0.0.1", self.ports[self.my_id])]))
        await writer.drain()
        if not keep_connection(self.my_id, sid, i_dialled=True) or sid in self.writers:
            writer.close()  # the larger id dials back
            return
        self._attach(sid, reader, writer)

    async def _accepted(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        buf = b""
        while True:
            got = decode_initial_message(buf)
            if got is not None:
                break
            chunk = await reader.read(4096)
            if not chunk:
                writer.close()
                return
            buf += chunk
        msg, used = got
        self.initial_messages.append(buf[:used])
        if not keep_connection(self.my_id, msg.sid, i_dialled=False):
            writer.close()
            self._spawn(self._dial(msg.sid))
            return
        old = self.writers.pop(msg.sid, None)
        if old is not None:
            old.close()
        self._attach(msg.sid, reader, writer, buf[used:])

    def _attach(
        self, sid: int, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, rest=b""
    ) -> None:
        self.writers[sid] = writer
        frame = self.pending.pop(sid, None) or self.last_sent.get(sid)
        if frame is not None:
            self.last_sent[sid] = frame
            writer.write(frame)
        self._spawn(self._read(sid, reader, writer, rest))

    async def _read(self, sid, reader, writer, buf: bytes) -> None:
        try:
            while True:
                frames, used = decode_frames(buf)
                buf = buf[used:]
                for payload in frames:
                    self.frames.append((sid, payload))
                    self._deliver(sid, decode_notification(payload))
                chunk = await reader.read(65536)
                if not chunk:
                    break
                buf += chunk
        except (OSError, ValueError) as e:
            log.info("election connection to %d broken: %s", sid, e)
        finally:
            if self.writers.get(sid) is writer:
                del self.writers[sid]
            writer.close()
