"""One client connection: framing and batched writes (the I/O shell).

``data_received`` parses every complete frame of a read in one pass; replies
produced while handling them are gathered and written once per event-loop
iteration. The first frame is the ConnectRequest, unless the first four
bytes spell a four-letter word.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import os
import struct
from collections import deque
from typing import TYPE_CHECKING, Any

from pyzk.core.metrics import ConnectionStats
from pyzk.core.zkserver import encode_notification
from pyzk.jute.codec import JuteError
from pyzk.jute.records import Id

if TYPE_CHECKING:
    from pyzk.shell.clientport import ClientPortHost

log = logging.getLogger(__name__)

_LEN = struct.Struct(">i")
#: Reply bytes queued while handling one read before they are flushed and the
#: client's reading checked (back-pressure within a large read).
FLUSH_BYTES = 1 << 20


class ClientConnection(asyncio.Protocol):
    def __init__(self, shell: ClientPortHost, secure: bool = False) -> None:
        self.shell = shell
        #: Accepted on secureClientPort: asyncio has finished the TLS handshake
        #: by the time connection_made runs.
        self.secure = secure
        #: The SASL negotiation in progress (pyzk.core.digestmd5), made on the
        #: first sasl request.
        self.sasl: Any = None
        self.server = shell.server
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.out: list[bytes] = []
        self.out_bytes = 0
        self.flush_scheduled = False
        self.session_id = 0
        self.timeout = 0
        self.auth: list[Id] = []
        self.inflight: deque[Any] = deque()
        self.closed = False
        self.established = False
        self.handshake_seen = False
        self.old_client = False
        self.remote = "?"
        self.remote_ip = ""
        self.remote_port = 0
        self.packets_received = 0
        self.packets_sent = 0
        self.connected_at = 0
        self.last_zxid = 0
        # Back-pressure: reading stops while the client does not read its
        # replies (transport buffer full) or has too many requests in flight,
        # so one greedy client cannot exhaust the server's memory.
        self.write_paused = False
        self.read_paused = False
        self.max_inflight = max(1, shell.cfg.global_outstanding_limit)

    # -- asyncio callbacks ---------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        peer = transport.get_extra_info("peername") or ("?", 0)
        self.remote_ip, self.remote_port = peer[0], peer[1]
        self.remote = f"/{peer[0]}:{peer[1]}"
        self.auth.append(Id("ip", self.remote_ip))
        if self.server is None:
            # an ensemble member still loading its database at start has no
            # server yet: close at once, as Apache does while it is not running
            log.info("Closing connection from %s: ZooKeeperServer not running", self.remote)
            self.closed = True
            transport.close()
            return
        self.connected_at = self.server.wall_ms()
        self.cnxn_stats = ConnectionStats(self.server.now_ms())
        if self.secure and not self.shell.tls_authenticate(self, transport):
            self.closed = True
            transport.close()
            return
        if not self.shell.admit(self):
            self.closed = True
            transport.close()
            return
        self.server.connections.add(self)

    def data_received(self, data: bytes) -> None:
        if self.closed:
            return
        self.server.stats.bytes_received += len(data)
        buf = self.buf
        buf += data
        pos = 0
        n = len(buf)
        maxbuf = self.server.maxbuf
        try:
            while n - pos >= 4 and not self.closed:
                length = _LEN.unpack_from(buf, pos)[0]
                if not self.handshake_seen:
                    word = bytes(buf[pos:pos + 4])
                    if self.shell.is_four_letter_word(word):
                        self.shell.four_letter(self, word.decode("ascii"))
                        return
                if length < 0 or length > maxbuf:
                    log.warning("Len error. A message from %s with advertised length of %d "
                                "is either a malformed message or too large to process "
                                "(length is greater than jute.maxbuffer=%d)",
                                self.remote, length, maxbuf)
                    self.close()
                    return
                if n - pos - 4 < length:
                    break
                frame = bytes(buf[pos + 4:pos + 4 + length])
                pos += 4 + length
                self.packets_received += 1
                if not self.handshake_seen:
                    self.handshake_seen = True
                    self.server.connect(self, frame)
                else:
                    self.server.request(self, frame)
                if self.out_bytes > FLUSH_BYTES:
                    # one read can hold thousands of requests: hand their replies
                    # to the transport as they pile up, and stop while the client
                    # is not reading them (the rest waits in buf), so memory is
                    # bounded by the transport's high-water mark, not the read
                    self.flush()
                    if self.write_paused:
                        break
        except (JuteError, UnicodeDecodeError) as e:
            log.warning("Closing connection to %s: malformed packet: %s", self.remote, e)
            self.close()
            return
        except Exception:
            # Never let one connection's bad input take the server down.
            log.exception("Closing connection to %s after an internal error", self.remote)
            self.close()
            return
        if pos:
            del buf[:pos]
        if len(self.inflight) > self.max_inflight and not self.read_paused:
            self._pause_reading()
            self._watch_inflight()

    def _pause_reading(self) -> None:
        if self.transport is not None and not self.read_paused:
            self.read_paused = True
            self.transport.pause_reading()

    def _maybe_resume_reading(self) -> None:
        if (self.read_paused and not self.write_paused and not self.closed
                and len(self.inflight) <= self.max_inflight // 2
                and self.transport is not None):
            self.read_paused = False
            self.transport.resume_reading()
            if len(self.buf) >= 4:
                # requests read before the pause: the client may send nothing
                # more until they are answered
                self.shell.loop.call_soon(self._process_buffered)

    def _process_buffered(self) -> None:
        if not self.closed and not self.read_paused:
            self.data_received(b"")

    def _watch_inflight(self) -> None:
        """Resume reading once the in-flight requests have drained."""
        if self.closed or not self.read_paused:
            return
        self._maybe_resume_reading()
        if self.read_paused and not self.write_paused:
            self.shell.loop.call_later(0.001, self._watch_inflight)

    def pause_writing(self) -> None:
        # asyncio: the transport's write buffer passed its high-water mark.
        self.write_paused = True
        self._pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        self._maybe_resume_reading()
        if self.read_paused:
            self._watch_inflight()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.server is not None:
            self.server.disconnected(self)

    # -- output ---------------------------------------------------------------------

    def send(self, data: bytes) -> None:
        if self.closed:
            return
        self.out.append(data)
        self.out_bytes += len(data)
        self.packets_sent += 1
        if not self.flush_scheduled:
            self.flush_scheduled = True
            self.shell.loop.call_soon(self.flush)

    def flush(self) -> None:
        self.flush_scheduled = False
        self.out_bytes = 0
        if self.out and self.transport is not None and not self.transport.is_closing():
            data = self.out[0] if len(self.out) == 1 else b"".join(self.out)
            self.out.clear()
            self.transport.write(data)

    def send_event(self, etype: int, path: str) -> None:
        self.send(encode_notification(etype, path))

    def new_nonce(self) -> str:
        """A fresh DIGEST-MD5 nonce: randomness is the shell's, not the core's."""
        return base64.b64encode(os.urandom(32)).decode("ascii")

    def new_gssapi_server(self) -> Any:
        """A GSSAPI mechanism for this client: Kerberos is libkrb5's, the shell's."""
        return self.shell.new_gssapi_server()

    def close(self) -> None:
        """Flush what is queued, then close."""
        if self.closed:
            return
        self.flush()
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def __hash__(self) -> int:
        return id(self)

    def __eq__(self, other: object) -> bool:
        return self is other
