"""Bad input never takes the server down or loses acknowledged data."""

from __future__ import annotations

import random
import socket
import struct

import pytest

from pyzk.jute import records as R
from pyzk.jute.constants import Err, OpCode
from pyzk.testing.wire import ConnectionClosed, WireClient, connect

pytestmark = pytest.mark.server

OPEN = [R.ACL(31, R.Id("world", "anyone"))]


def _healthy(server) -> WireClient:
    c = connect(server.host, server.port)
    r = c.call_reply(OpCode.exists, R.ExistsRequest("/", False))
    assert r.err == 0
    return c


def _recv_all(sock: socket.socket) -> bytes:
    out = b""
    sock.settimeout(5)
    try:
        while chunk := sock.recv(65536):
            out += chunk
    except (ConnectionResetError, TimeoutError):
        pass
    return out


def test_oversized_length_closes_connection_only(pyzk_server) -> None:
    c = _healthy(pyzk_server)
    c.call_reply(OpCode.create, R.CreateRequest("/keep", b"data", OPEN, 0))
    s = socket.create_connection((pyzk_server.host, pyzk_server.port))
    s.sendall(struct.pack(">i", 0x7FFFFFF0) + b"x" * 100)
    assert _recv_all(s) == b""  # closed without a reply
    s.close()
    s = socket.create_connection((pyzk_server.host, pyzk_server.port))
    s.sendall(struct.pack(">i", -5))
    assert _recv_all(s) == b""
    s.close()
    r = c.call_reply(OpCode.getData, R.GetDataRequest("/keep", False))
    assert r.err == 0 and r.decode().data == b"data"
    c.close()


def test_truncated_connect_request_closes(pyzk_server) -> None:
    s = socket.create_connection((pyzk_server.host, pyzk_server.port))
    s.sendall(struct.pack(">i", 6) + b"\0" * 6)
    assert _recv_all(s) == b""
    s.close()
    _healthy(pyzk_server).close()


def test_malformed_request_body_closes_that_session_only(pyzk_server) -> None:
    c = connect(pyzk_server.host, pyzk_server.port)
    other = _healthy(pyzk_server)
    # A create whose path length runs past the frame.
    c.send_bytes(struct.pack(">iii", 12, 7, OpCode.create) + struct.pack(">i", 1000))
    # Apache answers a write it cannot decode with MarshallingError (an error
    # txn that consumes a zxid) and keeps the session.
    r = c.recv()
    assert r.err == Err.MARSHALLINGERROR
    assert c.call_reply(OpCode.exists, R.ExistsRequest("/", False)).err == 0
    assert other.call_reply(OpCode.exists, R.ExistsRequest("/", False)).err == 0
    other.close()


def test_fuzzed_frames_after_handshake(pyzk_server) -> None:
    rng = random.Random(1234)
    keep = _healthy(pyzk_server)
    keep.call_reply(OpCode.create, R.CreateRequest("/fuzz", b"v", OPEN, 0))
    for _ in range(60):
        c = connect(pyzk_server.host, pyzk_server.port)
        body = bytes(rng.getrandbits(8) for _ in range(rng.randrange(0, 40)))
        opcode = rng.choice([1, 2, 3, 4, 5, 6, 7, 8, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21,
                             22, 100, 101, 103, 104, 105, 106, 107, 999, -11])
        frame = struct.pack(">ii", rng.randrange(1, 1000), opcode) + body
        try:
            c.send_bytes(struct.pack(">i", len(frame)) + frame)
            c.sock.settimeout(2)
            c.recv()
        except (ConnectionClosed, OSError):
            pass
        c.close()
    r = keep.call_reply(OpCode.getData, R.GetDataRequest("/fuzz", False))
    assert r.err == 0 and r.decode().data == b"v"
    keep.close()


def test_abrupt_disconnect_mid_pipeline_keeps_acknowledged_writes(pyzk_server) -> None:
    c = connect(pyzk_server.host, pyzk_server.port)
    c.call_reply(OpCode.create, R.CreateRequest("/pipe", b"", OPEN, 0))
    for i in range(200):
        c.send(OpCode.create, R.CreateRequest(f"/pipe/n{i}", b"x", OPEN, 0))
    acked = [c.recv() for _ in range(50)]
    assert all(r.err == 0 for r in acked)
    c.sock.close()  # vanish with requests outstanding
    check = _healthy(pyzk_server)
    kids = check.call_reply(OpCode.getChildren, R.GetChildrenRequest("/pipe", False)).decode()
    names = set(kids.children)
    assert {f"n{i}" for i in range(50)} <= names
    check.close()


def test_half_frames_are_reassembled(pyzk_server) -> None:
    c = connect(pyzk_server.host, pyzk_server.port)
    frame = struct.pack(">ii", 5, OpCode.exists) + R.ExistsRequest("/", False).to_bytes()
    data = struct.pack(">i", len(frame)) + frame
    for b in data:
        c.send_bytes(bytes([b]))
    r = c.recv()
    assert r.header.xid == 5 and r.err == 0
    c.close()


def test_max_client_cnxns_per_ip(pyzk_server) -> None:
    # The fixture sets maxClientCnxns=20; the 21st connection is refused.
    held = [connect(pyzk_server.host, pyzk_server.port) for _ in range(20)]
    s = socket.create_connection((pyzk_server.host, pyzk_server.port))
    assert _recv_all(s) == b""
    s.close()
    for c in held:
        c.close()
    _healthy(pyzk_server).close()


def test_client_that_does_not_read_cannot_exhaust_memory(pyzk_server) -> None:
    """Back-pressure: while a client leaves its replies unread, the server
    stops reading its requests; memory stays bounded and others are served."""
    setup = _healthy(pyzk_server)
    setup.call_reply(OpCode.create, R.CreateRequest("/big", b"b" * 50_000, OPEN, 0))
    rss_before = pyzk_server.rss_bytes()
    greedy = socket.create_connection((pyzk_server.host, pyzk_server.port))
    # a big send buffer lets thousands of requests arrive in one read: the
    # server must still stop producing replies the client does not take
    greedy.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
    hs = R.ConnectRequest(0, 0, 30000, 0, bytes(16)).to_bytes()
    greedy.sendall(struct.pack(">i", len(hs)) + hs)
    frame = struct.pack(">ii", 1, OpCode.getData) + R.GetDataRequest("/big", False).to_bytes()
    one = struct.pack(">i", len(frame)) + frame
    greedy.setblocking(False)
    sent = 0
    # Offer 20,000 requests (1 GB of replies); the kernel buffers fill and
    # the server stops reading long before that.
    try:
        while sent < 20_000:
            greedy.send(one * 100)
            sent += 100
    except BlockingIOError:
        pass
    other = _healthy(pyzk_server)  # still served
    other.close()
    grown = pyzk_server.rss_bytes() - rss_before
    # (before replies were flushed within a read, one read of 20,000 requests
    # queued about 350 MB of replies; now 50-190 MB, what the transport
    # buffers before asyncio pauses the protocol)
    assert grown < 250 * 1024 * 1024, f"server grew by {grown >> 20} MB"
    greedy.close()
    setup.close()
