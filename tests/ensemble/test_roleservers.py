"""The learner's and leader's request pipelines without sockets.

A LearnerServer must forward writes, createSession and sync to the leader in
Apache's REQUEST layout, answer a client only when the committed txn with its
session and cxid is applied, keep later reads of that session behind it, and
answer a sync only after the leader's SYNC. A LeaderServer must prepare a
forwarded request as its own and apply it on COMMIT.
"""

from __future__ import annotations

import struct
from collections import deque
from typing import Any

import pytest

from pyzk.config import ServerConfig
from pyzk.core.metrics import ConnectionStats
from pyzk.core.roleservers import LeaderServer, LearnerServer
from pyzk.jute.constants import OpCode
from pyzk.jute.records import (
    ACL,
    ConnectRequest,
    CreateRequest,
    CreateResponse,
    GetDataRequest,
    Id,
    SyncRequest,
)
from pyzk.txnlog.txn import decode_txn
from pyzk.zab.actions import Entry as ZEntry
from pyzk.zab.packets import ForwardedRequest

pytestmark = pytest.mark.pure

OPEN = [ACL(31, Id("world", "anyone"))]
_REPLY = struct.Struct(">iiqi")


class Conn:
    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.closed = False
        self.inflight: deque[Any] = deque()
        self.session_id = 0
        self.auth = [Id("ip", "127.0.0.1")]
        self.cnxn_stats = ConnectionStats(0.0)
        self.remote = "/127.0.0.1:1"
        self.remote_ip = "127.0.0.1"
        self.old_client = False
        self.timeout = 0
        self.established = False

    def send(self, data: bytes) -> None:
        self.sent.append(data)

    def close(self) -> None:
        self.closed = True

    def send_event(self, etype: int, path: str) -> None:
        self.sent.append(b"event")

    def replies(self) -> list[tuple[int, int, int]]:
        """(xid, zxid, err) of every reply after the ConnectResponse."""
        return [_REPLY.unpack_from(f, 0)[1:] for f in self.sent[1:]]


def _cfg() -> ServerConfig:
    return ServerConfig(data_dir="data", tick_time=200, min_session_timeout=400,
                        max_session_timeout=40000, digest_enabled=True,
                        extended_types_enabled=False)


def _frame(xid: int, op: int, rec: Any) -> bytes:
    return struct.pack(">ii", xid, op) + rec.to_bytes()


def _pair() -> tuple[LeaderServer, LearnerServer, list[tuple], list[ZEntry]]:
    forwarded: list[tuple] = []
    proposals: list[ZEntry] = []
    clock = {"t": 1000.0}
    kw = dict(now_ms=lambda: clock["t"], wall_ms=lambda: 1_700_000_000_000)
    leader = LeaderServer(_cfg(), lambda hdr, data: proposals.append(ZEntry(hdr.zxid, data)),
                          server_id=3, **kw)
    learner = LearnerServer(_cfg(), observer=False, server_id=1,
                            forward=lambda *a: forwarded.append(a),
                            revalidate=lambda *a: forwarded.append(("revalidate", *a)),
                            touch=lambda *a: None, **kw)
    leader.running = learner.running = True
    leader.zxid = 0x100000000
    return leader, learner, forwarded, proposals


def _relay(leader: LeaderServer, learner: LearnerServer, forwarded: list[tuple],
           proposals: list[ZEntry]) -> None:
    """What the Zab cores would do: REQUEST to the leader, COMMIT back."""
    while forwarded:
        sid, cxid, op, body, auth = forwarded.pop(0)
        leader.forwarded(ForwardedRequest(sid, cxid, op, bytes(body), auth), 1000.0)
        while proposals:
            z = proposals.pop(0)
            leader.committed(z.zxid)
            learner.commit(z)


def test_learner_forwards_and_answers_on_commit() -> None:
    leader, learner, forwarded, proposals = _pair()
    conn = Conn()
    learner.connect(conn, ConnectRequest(0, 0, 4000, 0, bytes(16)).to_bytes() + b"\0")
    # createSession went to the leader: session id with our sid on top, cxid 0,
    # the timeout as the request body
    (sid, cxid, op, body, _auth), = forwarded
    assert op == OpCode.createSession and cxid == 0 and sid >> 56 == 1
    assert struct.unpack(">i", body) == (4000,)
    assert conn.sent == []
    _relay(leader, learner, forwarded, proposals)
    assert len(conn.sent) == 1 and conn.session_id == sid  # the ConnectResponse
    assert sid in leader.sessions.sessions and sid in learner.sessions.sessions

    # a write, then a read of the same node: the read waits for the write
    learner.request(conn, _frame(1, OpCode.create, CreateRequest("/a", b"x", OPEN, 0)))
    learner.request(conn, _frame(2, OpCode.getData, GetDataRequest("/a", False)))
    assert len(conn.sent) == 1 and [e.xid for e in conn.inflight] == [1, 2]
    (_s, cxid, op, body, auth), = forwarded
    assert (cxid, op) == (1, OpCode.create) and auth == conn.auth
    assert CreateRequest.from_bytes(body).path == "/a"
    _relay(leader, learner, forwarded, proposals)
    (x1, z1, e1), (x2, z2, e2) = conn.replies()
    assert (x1, e1, x2, e2) == (1, 0, 2, 0) and z1 == z2 == 0x100000002
    assert CreateResponse.from_bytes(conn.sent[1][20:]).path == "/a"
    assert learner.tree.get_node("/a").data == leader.tree.get_node("/a").data == b"x"

    # a failing write comes back as an error txn and an error reply
    learner.request(conn, _frame(3, OpCode.create, CreateRequest("/a", b"y", OPEN, 0)))
    _relay(leader, learner, forwarded, proposals)
    assert conn.replies()[-1] == (3, 0x100000003, -110)  # NODEEXISTS


def test_learner_answers_sync_after_the_leaders_sync() -> None:
    leader, learner, forwarded, proposals = _pair()
    conn = Conn()
    learner.connect(conn, ConnectRequest(0, 0, 4000, 0, bytes(16)).to_bytes() + b"\0")
    _relay(leader, learner, forwarded, proposals)
    learner.request(conn, _frame(5, OpCode.sync, SyncRequest("/")))
    learner.request(conn, _frame(6, OpCode.exists, GetDataRequest("/", False)))
    (_s, cxid, op, _b, _a), = forwarded
    assert (cxid, op) == (5, OpCode.sync)
    assert conn.replies() == []
    learner.sync_done()
    assert [r[0] for r in conn.replies()] == [5, 6]


def test_leader_prepares_forwarded_requests_like_its_own() -> None:
    leader, _learner, _fwd, proposals = _pair()
    sid = 0x0100000000000001
    leader.forwarded(ForwardedRequest(sid, 0, OpCode.createSession, struct.pack(">i", 6000),
                                      None), 1000.0)
    leader.forwarded(ForwardedRequest(sid, 1, OpCode.create,
                                      CreateRequest("/e", b"", OPEN, 1).to_bytes(),
                                      [Id("ip", "127.0.0.1")]),
                     1000.0)
    assert [z.zxid for z in proposals] == [0x100000001, 0x100000002]
    hdr, txn, digest = decode_txn(proposals[1].data)
    assert (hdr.clientId, hdr.cxid, hdr.type, txn.path, txn.ephemeral) == \
        (sid, 1, OpCode.create, "/e", True)
    assert digest is not None
    assert leader.sessions.sessions[sid].timeout == 6000
    for z in proposals:
        leader.committed(z.zxid)
    assert leader.tree.get_node("/e").ephemeralOwner == sid
    assert leader.revalidate(sid, 6000, 1000.0)
    assert not leader.revalidate(sid + 1, 6000, 1000.0)
