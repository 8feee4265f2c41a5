"""The request pipeline of an ensemble member: the same ZooKeeperServer, with
the log stage replaced by Zab.

* :class:`LeaderServer` prepares writes as a standalone server does (its own
  clients' and those learners forward, through the same ``prepare`` and
  ``submit``), and its ``propose`` is ``LeaderCore.propose``: a txn is applied
  when its COMMIT comes, through the same ``committed`` that answers a
  standalone server's client. Only the leader expires sessions.
* :class:`LearnerServer` (follower and observer) prepares nothing: writes,
  createSession, closeSession and sync go to the leader as REQUEST packets
  (Apache's format), and the client is answered when the committed txn with
  that session and cxid is applied here. Reads are local, behind the session's
  earlier requests (``conn.inflight``), and reconnecting sessions are
  revalidated by the leader. Session touches are reported in PING replies.

Both start with ``running`` false: until the role is established a client's
connection is closed at once, as Apache does while no ZooKeeperServer runs.
"""

from __future__ import annotations

import logging
import struct
from collections import deque
from collections.abc import Callable
from typing import Any

from pyzk.config import ServerConfig
from pyzk.core.prep import WRITE_OPS, Prepared
from pyzk.core.sessions import SessionTracker
from pyzk.core.zkserver import Entry, ZooKeeperServer
from pyzk.jute.constants import Err, OpCode
from pyzk.jute.records import ConnectRequest, ErrorTxn, Id, TxnHeader
from pyzk.txnlog.txn import decode_txn
from pyzk.zab import actions as A
from pyzk.zab.packets import ForwardedRequest

# Plain ints for comparisons on hot paths: an IntEnum member costs an
# attribute lookup through its metaclass each time it is named.
_OP_CLOSESESSION = int(OpCode.closeSession)
_OP_CREATESESSION = int(OpCode.createSession)
_OP_SYNC = int(OpCode.sync)

log = logging.getLogger(__name__)

_INT = struct.Struct(">i")
_REQ_HDR = struct.Struct(">ii")

#: The owner of sessions whose clients are connected to the leader itself.
LOCAL = "leader"

#: ``Entry.prepared`` of a request forwarded to the leader and not yet committed.
FORWARDED = Prepared(None, None, 0)


class RoleServer(ZooKeeperServer):
    """A ZooKeeperServer that serves only while its role is established."""

    state = "leaderelection"

    def __init__(self, cfg: ServerConfig, **kw: Any) -> None:
        super().__init__(cfg, **kw)
        self.running = False

    def connect(self, conn: Any, frame: bytes) -> None:
        if not self.running:
            log.info("Closing connection from %s: ZooKeeperServer not running", conn.remote)
            conn.close()
            return
        super().connect(conn, frame)

    def close_all(self) -> None:
        """Learner/Leader shutdown: every client reconnects elsewhere."""
        self.running = False
        for c in list(self.connections):
            c.close()


class LeaderServer(RoleServer):
    """The leader's pipeline: prepare, then ``LeaderCore.propose``; apply on COMMIT.

    ``propose(hdr, data)`` is the role's way into the core; the role calls
    :meth:`committed` for every Commit action.
    """

    state = "leader"

    def __init__(self, cfg: ServerConfig, propose: Callable[[TxnHeader, bytes], None],
                 **kw: Any) -> None:
        super().__init__(cfg, **kw)
        self.propose = propose
        # Which server a session's client talks to (SessionTrackerImpl's
        # owner): a learner's link, or LOCAL for the leader's own clients. A
        # write arriving through any other server is SessionMoved.
        self.owners: dict[int, Any] = {}

    def _owned_by(self, sid: int, owner: Any) -> bool:
        """SessionTracker.checkSession's owner test (the first owner sticks)."""
        current = self.owners.get(sid)
        if current is None:
            self.owners[sid] = owner
            return True
        return current is owner

    def _session_moved(self, sid: int, cxid: int, op: int) -> Prepared:
        hdr = TxnHeader(sid, cxid, self.next_zxid(), self.wall_ms(), OpCode.error)
        log.info("Session 0x%x moved: refusing request type %d", sid & (2**64 - 1), op)
        return Prepared(hdr, ErrorTxn(Err.SESSIONMOVED), Err.SESSIONMOVED)

    def write(self, conn: Any, xid: int, op: int, body: bytes, now: float) -> None:
        sid = conn.session_id
        if op != _OP_CLOSESESSION and not self._owned_by(sid, LOCAL):
            entry = Entry(conn, xid, op, body, self._session_moved(sid, xid, op), now)
            conn.inflight.append(entry)
            self.stats.outstanding += 1
            self.submit(entry)
            return
        super().write(conn, xid, op, body, now)

    def create_session(self, conn: Any, sid: int, timeout: int, now: float) -> None:
        self.owners[sid] = LOCAL
        super().create_session(conn, sid, timeout, now)

    def finish_session_init(self, conn: Any, valid: bool) -> None:
        if valid and conn.session_id:
            # A client that reconnects here with its session moves it here.
            self.owners[conn.session_id] = LOCAL
        super().finish_session_init(conn, valid)

    def committed(self, zxid: int) -> None:
        entry = self.proposed.get(zxid)
        if (entry is not None and entry.op == _OP_CLOSESESSION
                and entry.prepared.hdr.type == _OP_CLOSESESSION):
            self.owners.pop(entry.prepared.hdr.clientId, None)
        super().committed(zxid)

    def forwarded(self, req: ForwardedRequest, now: float, owner: Any = None) -> None:
        """A learner's REQUEST (Leader's PrepRequestProcessor on a forwarded
        request); ``owner`` is the learner link it came through."""
        op = req.type
        sid = req.session_id
        if op not in WRITE_OPS:
            log.warning("Ignoring a forwarded request of type %d", op)
            return
        if op == _OP_CREATESESSION:
            if owner is not None:
                self.owners[sid] = owner
            timeout = _INT.unpack_from(req.request, 0)[0] if len(req.request) >= 4 else 0
            self.sessions.add(sid, timeout, int(now))
        elif op != _OP_CLOSESESSION:
            if owner is not None and not self._owned_by(sid, owner):
                self.submit(Entry(None, req.cxid, op, req.request,
                                  self._session_moved(sid, req.cxid, op), now))
                return
            self.sessions.touch(sid, int(now))
        prepared = self.prepare(sid, req.cxid, op, req.request, list(req.authinfo or []))
        self.submit(Entry(None, req.cxid, op, req.request, prepared, now))

    def touch(self, touches: list[tuple[int, int]], now: float) -> None:
        """A learner's PING: its clients' sessions are alive."""
        for sid, timeout in touches:
            self.sessions.touch(sid, int(now), timeout)

    def revalidate(self, sid: int, timeout: int, now: float, owner: Any = None) -> bool:
        """LeaderSessionTracker.touchSession for a REVALIDATE; a valid session
        now belongs to the learner that asked (Leader.revalidateSession)."""
        valid = self.sessions.touch(sid, int(now), timeout)
        if valid and owner is not None:
            self.owners[sid] = owner
        return valid


class LearnerSessions(SessionTracker):
    """LearnerSessionTracker: the global session table, never expired here; every
    touch of a session is also reported to the leader with the next PING."""

    def __init__(self, server_id: int, tick_time: int, now_ms: int,
                 report: Callable[[int, int], None]) -> None:
        super().__init__(server_id, tick_time, now_ms)
        self.report = report

    def touch(self, sid: int, now_ms: int, timeout: int | None = None) -> bool:
        s = self.sessions.get(sid)
        if s is not None and not s.closing:
            self.report(sid, s.timeout if timeout is None else timeout)
        return super().touch(sid, now_ms, timeout)

    def expire(self, now_ms: int) -> list[int]:
        return []


class LearnerServer(RoleServer):
    """A follower's or observer's pipeline. ``forward(session, cxid, op, body, auth)``
    sends a REQUEST, ``revalidate(session, timeout)`` a REVALIDATE."""

    def __init__(self, cfg: ServerConfig, *, observer: bool, server_id: int,
                 forward: Callable[[int, int, int, bytes, list[Id] | None], None],
                 revalidate: Callable[[int, int], None], touch: Callable[[int, int], None],
                 **kw: Any) -> None:
        sessions = kw.pop("sessions", None) or {}
        super().__init__(cfg, server_id=server_id, **kw)
        self.state = "observer" if observer else "follower"
        self._forward = forward
        self._revalidate = revalidate
        tracker = LearnerSessions(server_id, cfg.tick_time, int(self.now_ms()), touch)
        for sid, timeout in sessions.items():
            tracker.add(sid, timeout, int(self.now_ms()))
        self.sessions = tracker
        self.pending_syncs: deque[Entry] = deque()
        self.revalidating: dict[int, Any] = {}

    # -- sessions -----------------------------------------------------------------

    def connect(self, conn: Any, frame: bytes) -> None:
        if not self.running:
            RoleServer.connect(self, conn, frame)
            return
        req, _pos = ConnectRequest.decode(frame, 0, self.maxbuf)
        if req.sessionId == 0 or req.lastZxidSeen > self.tree.last_processed_zxid:
            # a new session, or a refusal: the standalone path does both (a new
            # session's createSession goes through write() below)
            super().connect(conn, frame)
            return
        self.stats.packets_received += 1
        conn.old_client = _pos >= len(frame)
        timeout = max(self.min_session_timeout, min(req.timeOut, self.max_session_timeout))
        conn.timeout = timeout
        sid = req.sessionId
        conn.session_id = sid
        if req.passwd != self.sessions.password(sid):
            self.finish_session_init(conn, False)
            return
        old = self.conn_by_session.get(sid)
        if old is not None and old is not conn:
            old.close()
        prev = self.revalidating.get(sid)
        if prev is not None and prev is not conn:
            prev.close()
        self.revalidating[sid] = conn
        self._revalidate(sid, timeout)

    def session_validated(self, sid: int, valid: bool) -> None:
        """The leader's answer to a REVALIDATE (Learner.revalidate)."""
        conn = self.revalidating.pop(sid, None)
        if conn is None or conn.closed:
            return
        if valid:
            self.conn_by_session[sid] = conn
            self.sessions.add(sid, conn.timeout, int(self.now_ms()))
        self.finish_session_init(conn, valid)

    # -- requests ------------------------------------------------------------------

    def request(self, conn: Any, frame: bytes) -> None:
        if len(frame) >= 8 and _REQ_HDR.unpack_from(frame, 0)[1] == _OP_SYNC:
            xid = _REQ_HDR.unpack_from(frame, 0)[0]
            self.stats.packets_received += 1
            now = self.now_ms()
            conn.cnxn_stats.touch(now)
            self.sessions.touch(conn.session_id, int(now))
            entry = Entry(conn, xid, OpCode.sync, frame[8:], FORWARDED, now)
            conn.inflight.append(entry)
            self.stats.outstanding += 1
            self.pending_syncs.append(entry)
            self._forward(conn.session_id, xid, OpCode.sync, frame[8:], conn.auth)
            return
        super().request(conn, frame)

    def write(self, conn: Any, xid: int, op: int, body: bytes, now: float) -> None:
        if op == _OP_CLOSESESSION:
            self.sessions.set_closing(conn.session_id)
        conn.inflight.append(Entry(conn, xid, op, body, FORWARDED, now))
        self.stats.outstanding += 1
        self._forward(conn.session_id, xid, op, body, conn.auth)

    def create_session(self, conn: Any, sid: int, timeout: int, now: float) -> None:
        entry = Entry(conn, 0, OpCode.createSession, b"", FORWARDED, now)
        conn.inflight.append(entry)
        self._forward(sid, 0, OpCode.createSession, _INT.pack(timeout), None)

    def next_zxid(self) -> int:  # a learner never numbers txns
        return self.tree.last_processed_zxid

    # -- commits -------------------------------------------------------------------

    def commit(self, zentry: A.Entry) -> None:
        """Apply a committed txn and answer the client if the request is ours."""
        hdr, txn, digest = decode_txn(zentry.data, digest_enabled=self.cfg.digest_enabled)
        err = txn.err if isinstance(txn, ErrorTxn) else 0
        prepared = Prepared(hdr, txn, err, digest)
        sid = hdr.clientId
        now = self.now_ms()
        if hdr.type == _OP_CREATESESSION:
            self.sessions.add(sid, txn.timeOut, int(now))
        conn = self.conn_by_session.get(sid)
        if conn is not None and not conn.closed and conn.inflight:
            head = conn.inflight[0]
            if head.prepared is FORWARDED and head.xid == hdr.cxid and head.op != _OP_SYNC:
                head.prepared = prepared
                self.apply(head)
                return
        self.apply(Entry(None, hdr.cxid, hdr.type, b"", prepared, now))

    def sync_done(self) -> None:
        """The leader's SYNC: the oldest pending sync is answered now."""
        if not self.pending_syncs:
            log.warning("Not expecting a sync.")
            return
        entry = self.pending_syncs.popleft()
        conn = entry.conn
        if conn.closed or not conn.inflight or conn.inflight[0] is not entry:
            return
        conn.inflight.popleft()
        self.stats.outstanding -= 1
        self._read(conn, entry.xid, entry.op, entry.body, entry.received)
        self.drain_reads(conn)

    def disconnected(self, conn: Any) -> None:
        sid = conn.session_id
        if sid and self.revalidating.get(sid) is conn:
            del self.revalidating[sid]
        super().disconnected(conn)
