"""A small blocking client for setting up benchmark data and firing triggers.

Setup (creating 10,000 children, or a million znodes for `scale`) must be
quick, so requests are pipelined: up to ``window`` are written before the
first reply is read. Replies are matched by order, which the server keeps
per session; a reply's xid is checked against the request's.
"""

from __future__ import annotations

import logging
import socket
import time
from collections import deque
from collections.abc import Iterable

from benchmarks.frames import (
    FRAME_LEN,
    REPLY_PAYLOAD_HEAD,
    Op,
    close_session,
    connect_frame,
    decode_connect_response,
    encode_request,
)
from pyzk.jute.constants import XID_NOTIFICATION, XID_PING, Err, OpCode

log = logging.getLogger(__name__)


class ZkError(Exception):
    """A request failed with a ZooKeeper error code."""

    def __init__(self, err: int, op: Op) -> None:
        try:
            name = Err(err).name
        except ValueError:
            name = str(err)
        super().__init__(f"{OpCode(op[0]).name} failed: {name} ({err})")
        self.err = err


class RawClient:
    """One session over one blocking socket."""

    def __init__(self, host: str, port: int, *, timeout_ms: int = 30000,
                 connect_deadline: float = 20.0) -> None:
        self._buf = bytearray()
        self._xid = 0
        self.notifications: list[bytes] = []
        self.session_id = 0
        self.timeout_ms = 0
        deadline = time.monotonic() + connect_deadline
        while True:
            try:
                self._sock = socket.create_connection((host, port), timeout=10)
                self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                self._sock.sendall(connect_frame(timeout_ms))
                resp = decode_connect_response(self._read_frame())
                break
            except (OSError, EOFError) as e:
                # A just-started Apache may accept and close before serving.
                if time.monotonic() > deadline:
                    raise ConnectionError(f"no session from {host}:{port}: {e}") from e
                time.sleep(0.1)
        if resp.timeOut <= 0:
            raise ConnectionError("server refused the session")
        self.session_id = resp.sessionId
        self.timeout_ms = resp.timeOut

    def _read_frame(self) -> bytes:
        buf = self._buf
        while True:
            if len(buf) >= 4:
                (n,) = FRAME_LEN.unpack_from(buf, 0)
                if len(buf) >= 4 + n:
                    payload = bytes(buf[4 : 4 + n])
                    del buf[: 4 + n]
                    return payload
            chunk = self._sock.recv(1 << 20)
            if not chunk:
                raise EOFError("server closed the connection")
            buf += chunk

    def _read_reply(self) -> tuple[int, int, bytes]:
        """Next reply that is not a notification or ping: (xid, err, body)."""
        while True:
            payload = self._read_frame()
            xid, _zxid, err = REPLY_PAYLOAD_HEAD.unpack_from(payload, 0)
            if xid == XID_NOTIFICATION:
                self.notifications.append(payload)
            elif xid != XID_PING:
                return xid, err, payload[16:]

    def _next_xid(self) -> int:
        self._xid = self._xid + 1 if self._xid < 0x7FFFFFFF else 1
        return self._xid

    def call(self, op: Op, *, check: bool = True) -> tuple[int, bytes]:
        """Send one request and wait for its reply: (err, body bytes)."""
        return self.pipeline([op], check=check)[0]

    def pipeline(self, ops: Iterable[Op], *, window: int = 512, check: bool = True,
                 keep: bool = True) -> list[tuple[int, bytes]]:
        """Send ``ops`` keeping up to ``window`` in flight; replies in order.

        With ``check`` a failed request raises `ZkError`; without ``keep``
        replies are dropped (and an empty list returned) to bound memory.
        """
        results: list[tuple[int, bytes]] = []
        inflight: deque[tuple[int, Op]] = deque()
        pending = bytearray()
        it = iter(ops)
        exhausted = False
        while True:
            while not exhausted and len(inflight) < window:
                op = next(it, None)
                if op is None:
                    exhausted = True
                    break
                xid = self._next_xid()
                pending += encode_request(xid, op)
                inflight.append((xid, op))
            if pending:
                self._sock.sendall(pending)
                pending.clear()
            if not inflight:
                return results
            # Read half a window before refilling, so writes stay batched.
            target = len(inflight) // 2 if not exhausted else 0
            while len(inflight) > target:
                xid, err, body = self._read_reply()
                want, op = inflight.popleft()
                if xid != want:
                    raise RuntimeError(f"reply xid {xid}, expected {want}")
                if check and err:
                    raise ZkError(err, op)
                if keep:
                    results.append((err, body))

    def send(self, op: Op) -> None:
        """Send one request without waiting (its reply is read by `drain_one`)."""
        self._sock.sendall(encode_request(self._next_xid(), op))

    def drain_one(self) -> tuple[int, bytes]:
        _, err, body = self._read_reply()
        return err, body

    def close(self) -> None:
        try:
            self.call(close_session(), check=False)
        except (OSError, EOFError):
            pass
        finally:
            self._sock.close()

    def __enter__(self) -> RawClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
