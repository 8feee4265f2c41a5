"""A small synchronous raw-protocol ZooKeeper client, for byte-level tests.

Real clients (kazoo, the Java and C clients) hide what the server actually
sent: they reorder, retry and swallow. Differential tests need the bytes, so
this client does nothing on its own: no pings, no reconnects, no watch
bookkeeping. Every frame read is recorded in arrival order (`trace`), so a
test can tell whether a watch event came before or after a given reply.
"""

from __future__ import annotations

import socket
import ssl
import struct
from dataclasses import dataclass
from typing import Any, Self

from pyzk.jute import records as R
from pyzk.jute.constants import (
    XID_AUTH,
    XID_NOTIFICATION,
    XID_PING,
    XID_SET_WATCHES,
    OpCode,
)

_LEN = struct.Struct(">i")
_HDR = struct.Struct(">iqi")  # ReplyHeader: xid, zxid, err

# Requests that the Java client always sends with a reserved xid; Apache
# answers a ping with xid -2 whatever xid it carried.
_SPECIAL_XIDS = {
    OpCode.ping: XID_PING,
    OpCode.auth: XID_AUTH,
    OpCode.setWatches: XID_SET_WATCHES,
    OpCode.setWatches2: XID_SET_WATCHES,
}

# Request record per opcode (what follows the RequestHeader).
REQUEST_RECORDS: dict[int, Any] = {
    OpCode.create: R.CreateRequest,
    OpCode.create2: R.CreateRequest,
    OpCode.createContainer: R.CreateRequest,
    OpCode.createTTL: R.CreateTTLRequest,
    OpCode.delete: R.DeleteRequest,
    OpCode.deleteContainer: R.DeleteRequest,
    OpCode.exists: R.ExistsRequest,
    OpCode.getData: R.GetDataRequest,
    OpCode.setData: R.SetDataRequest,
    OpCode.getACL: R.GetACLRequest,
    OpCode.setACL: R.SetACLRequest,
    OpCode.getChildren: R.GetChildrenRequest,
    OpCode.getChildren2: R.GetChildren2Request,
    OpCode.check: R.CheckVersionRequest,
    OpCode.sync: R.SyncRequest,
    OpCode.reconfig: R.ReconfigRequest,
    OpCode.checkWatches: R.CheckWatchesRequest,
    OpCode.removeWatches: R.RemoveWatchesRequest,
    OpCode.getEphemerals: R.GetEphemeralsRequest,
    OpCode.getAllChildrenNumber: R.GetAllChildrenNumberRequest,
    OpCode.addWatch: R.AddWatchRequest,
    OpCode.setWatches: R.SetWatches,
    OpCode.setWatches2: R.SetWatches2,
    OpCode.auth: R.AuthPacket,
}

# Response record per opcode, as Apache's FinalRequestProcessor sends them
# (note check -> SetDataResponse and reconfig -> GetDataResponse).
RESPONSE_RECORDS: dict[int, Any] = {
    OpCode.create: R.CreateResponse,
    OpCode.create2: R.Create2Response,
    OpCode.createContainer: R.Create2Response,
    OpCode.createTTL: R.Create2Response,
    OpCode.exists: R.ExistsResponse,
    OpCode.getData: R.GetDataResponse,
    OpCode.setData: R.SetDataResponse,
    OpCode.getACL: R.GetACLResponse,
    OpCode.setACL: R.SetACLResponse,
    OpCode.getChildren: R.GetChildrenResponse,
    OpCode.getChildren2: R.GetChildren2Response,
    OpCode.check: R.SetDataResponse,
    OpCode.sync: R.SyncResponse,
    OpCode.reconfig: R.GetDataResponse,
    OpCode.getEphemerals: R.GetEphemeralsResponse,
    OpCode.getAllChildrenNumber: R.GetAllChildrenNumberResponse,
    OpCode.addWatch: R.ErrorResponse,
    OpCode.whoAmI: R.WhoAmIResponse,
}

# Sub-operation results inside a multi/multiRead response (MultiResponse).
MULTI_RESULT_RECORDS: dict[int, Any] = {
    OpCode.create: R.CreateResponse,
    OpCode.create2: R.Create2Response,
    OpCode.setData: R.SetDataResponse,
    OpCode.getChildren: R.GetChildrenResponse,
    OpCode.getData: R.GetDataResponse,
    OpCode.error: R.ErrorResponse,
}


class ConnectionClosed(ConnectionError):
    """The server closed the connection (EOF) while we waited for a frame."""


@dataclass(frozen=True)
class Handshake:
    """The ConnectResponse and the readOnly byte Apache appends (None if absent)."""

    response: Any  # ConnectResponse
    read_only: bool | None
    raw: bytes

    @property
    def session_id(self) -> int:
        return self.response.sessionId

    @property
    def timeout(self) -> int:
        return self.response.timeOut

    @property
    def passwd(self) -> bytes:
        return self.response.passwd


@dataclass
class Reply:
    """A reply frame: its header, raw body and arrival index on the connection."""

    header: Any  # ReplyHeader
    body: bytes
    seq: int
    opcode: int | None = None

    @property
    def err(self) -> int:
        return self.header.err

    @property
    def zxid(self) -> int:
        return self.header.zxid

    def decode(self) -> Any:
        if self.opcode is None:
            raise ValueError("reply to an unknown request; pass the opcode to decode_body")
        return decode_body(self.opcode, self.body)


@dataclass
class Event:
    """A watch notification (xid -1) with its zxid and arrival index."""

    event: Any  # WatcherEvent
    zxid: int
    seq: int

    @property
    def as_tuple(self) -> tuple[int, int, str]:
        return (self.event.type, self.event.state, self.event.path)


@dataclass
class MultiResult:
    """One sub-result of a multi: its header type, error and decoded record."""

    type: int
    err: int
    record: Any = None


def encode_multi(ops: list[tuple[int, Any]]) -> bytes:
    """MultiOperationRecord: (MultiHeader, request)* then the done header."""
    out = bytearray()
    for opcode, rec in ops:
        R.MultiHeader(int(opcode), False, -1).encode(out)
        if isinstance(rec, (bytes, bytearray)):
            out += rec
        else:
            rec.encode(out)
    R.MultiHeader(-1, True, -1).encode(out)
    return bytes(out)


def decode_multi(body: bytes) -> list[MultiResult]:
    """MultiResponse: (MultiHeader, result)* until a header with done set."""
    pos = 0
    out: list[MultiResult] = []
    while True:
        h, pos = R.MultiHeader.decode(body, pos)
        if h.done:
            return out
        cls = MULTI_RESULT_RECORDS.get(h.type)
        rec = None
        if cls is not None:
            rec, pos = cls.decode(body, pos)
        elif h.type not in (OpCode.delete, OpCode.check):
            raise ValueError(f"invalid type {h.type} in MultiResponse")
        out.append(MultiResult(h.type, h.err, rec))


def decode_body(opcode: int, body: bytes) -> Any:
    """Decode a reply body for ``opcode``; None when there is no body."""
    if not body:
        return None
    if opcode in (OpCode.multi, OpCode.multiRead):
        return decode_multi(body)
    cls = RESPONSE_RECORDS.get(opcode)
    if cls is None:
        raise ValueError(f"opcode {opcode} has no response record but got {len(body)} bytes")
    return cls.from_bytes(body)


def frame(body: bytes) -> bytes:
    """Prefix ``body`` with its length, as every client-protocol frame is."""
    return _LEN.pack(len(body)) + body


def _to_bytes(req: Any) -> bytes:
    if req is None:
        return b""
    if isinstance(req, (bytes, bytearray, memoryview)):
        return bytes(req)
    return req.to_bytes()


class WireClient:
    """One TCP connection speaking the client protocol, synchronously."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.handshake: Handshake | None = None
        self.trace: list[Reply | Event] = []
        self.events: list[Event] = []  # not yet taken by next_event()
        self._replies: list[Reply] = []  # not yet taken by recv()
        self._opcodes: dict[int, int] = {}
        self._next_xid = 1
        self._seq = 0
        self._buf = bytearray()
        self.last_zxid = 0

    # --- connection ---------------------------------------------------
    def connect(
        self,
        host: str,
        port: int,
        *,
        timeout: float | None = None,
        session_timeout: int = 30000,
        session_id: int = 0,
        passwd: bytes = b"\0" * 16,
        last_zxid: int = 0,
        read_only: bool | None = False,
        protocol_version: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> Handshake:
        """Open the socket and do the ConnectRequest handshake.

        ``read_only=None`` omits the trailing readOnly byte, as pre-3.3
        clients did. Raises ConnectionClosed when the server refuses by
        closing (e.g. a client whose lastZxidSeen is ahead of the server).
        ``tls`` wraps the socket in TLS first (a secureClientPort).
        """
        if timeout is not None:
            self.timeout = timeout
        sock = socket.create_connection((host, port), timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if tls is not None:
            # a refused handshake raises ssl.SSLError (or OSError when the
            # server hangs up first); the caller sees either
            try:
                sock = tls.wrap_socket(sock, server_hostname=host)
            except BaseException:
                sock.close()
                raise
        self.sock = sock
        req = R.ConnectRequest(protocol_version, last_zxid, session_timeout, session_id, passwd)
        body = req.to_bytes()
        if read_only is not None:
            body += b"\1" if read_only else b"\0"
        self.send_bytes(_LEN.pack(len(body)) + body)
        raw = self._read_frame()
        resp, pos = R.ConnectResponse.decode(raw, 0)
        ro = bool(raw[pos]) if len(raw) > pos else None
        self.handshake = Handshake(resp, ro, raw)
        return self.handshake

    @property
    def session_id(self) -> int:
        return self.handshake.session_id if self.handshake else 0

    def close(self) -> None:
        """Drop the TCP connection without closing the session."""
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- framing --------------------------------------------------------
    def send_bytes(self, data: bytes) -> None:
        """Write raw bytes (fuzzing, malformed frames)."""
        assert self.sock is not None, "not connected"
        self.sock.sendall(data)

    def _fill(self, n: int) -> None:
        assert self.sock is not None, "not connected"
        while len(self._buf) < n:
            try:
                b = self.sock.recv(65536)
            except ConnectionResetError as e:
                raise ConnectionClosed("connection reset by server") from e
            if not b:
                raise ConnectionClosed("connection closed by server")
            self._buf += b

    def _read_frame(self) -> bytes:
        self._fill(4)
        (n,) = _LEN.unpack_from(self._buf, 0)
        if n < 0:
            raise ValueError(f"negative frame length {n}")
        self._fill(4 + n)
        frame = bytes(self._buf[4 : 4 + n])
        del self._buf[: 4 + n]
        return frame

    def _read_one(self) -> Reply | Event:
        frame = self._read_frame()
        xid, zxid, err = _HDR.unpack_from(frame, 0)
        seq = self._seq
        self._seq += 1
        item: Reply | Event
        if xid == XID_NOTIFICATION:
            ev = R.WatcherEvent.from_bytes(frame[_HDR.size :])
            item = Event(ev, zxid, seq)
            self.events.append(item)
        else:
            item = Reply(R.ReplyHeader(xid, zxid, err), frame[_HDR.size :], seq)
            item.opcode = self._opcodes.pop(xid, None)
            self._replies.append(item)
        if zxid > 0:
            self.last_zxid = max(self.last_zxid, zxid)
        self.trace.append(item)
        return item

    # --- requests -------------------------------------------------------
    def send(self, opcode: int, request: Any = None, xid: int | None = None) -> int:
        """Send one request without waiting; returns its xid."""
        if xid is None:
            xid = _SPECIAL_XIDS.get(opcode)
        if xid is None:
            xid = self._next_xid
            self._next_xid += 1
        body = R.RequestHeader(xid, int(opcode)).to_bytes() + _to_bytes(request)
        self._opcodes[xid] = int(opcode)
        self.send_bytes(_LEN.pack(len(body)) + body)
        return xid

    def recv(self) -> Reply:
        """The next reply (not event) in arrival order."""
        while not self._replies:
            self._read_one()
        return self._replies.pop(0)

    def call(self, opcode: int, request: Any = None, xid: int | None = None) -> tuple[Any, bytes]:
        """Send and wait for the reply with that xid: (ReplyHeader, body)."""
        r = self.call_reply(opcode, request, xid)
        return r.header, r.body

    def call_reply(self, opcode: int, request: Any = None, xid: int | None = None) -> Reply:
        xid = self.send(opcode, request, xid)
        while True:
            r = self.recv()
            if r.header.xid == xid:
                return r

    def next_event(self, timeout: float | None = None) -> Event:
        """The oldest unread event, reading the socket up to ``timeout``."""
        assert self.sock is not None, "not connected"
        old = self.sock.gettimeout()
        if timeout is not None:
            self.sock.settimeout(timeout)
        try:
            while not self.events:
                self._read_one()
        finally:
            if self.sock is not None:
                self.sock.settimeout(old)
        return self.events.pop(0)

    # --- conveniences ---------------------------------------------------
    def ping(self) -> Reply:
        return self.call_reply(OpCode.ping, None, XID_PING)

    def auth(self, scheme: str, auth: bytes) -> Reply:
        return self.call_reply(OpCode.auth, R.AuthPacket(0, scheme, auth), XID_AUTH)

    def set_watches(self, rec: Any, opcode: int = OpCode.setWatches) -> Reply:
        return self.call_reply(opcode, rec, XID_SET_WATCHES)

    def close_session(self) -> Reply:
        """closeSession, wait for its reply, then drop the socket."""
        r = self.call_reply(OpCode.closeSession)
        self.close()
        return r

    def multi(self, ops: list[tuple[int, Any]], read: bool = False) -> Reply:
        return self.call_reply(OpCode.multiRead if read else OpCode.multi, encode_multi(ops))


def connect(host: str, port: int, **kw: Any) -> WireClient:
    """Open a WireClient and handshake; keyword arguments as WireClient.connect."""
    c = WireClient()
    c.connect(host, port, **kw)
    return c

