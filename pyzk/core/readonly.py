"""The read-only server a partitioned ensemble member runs while it looks for a leader.

Apache's QuorumPeer starts a ReadOnlyZooKeeperServer when ``readonlymode.enabled``
is set and an election has not ended within ``max(2000 ms, tickTime)``. It keeps
serving reads from the database the member last loaded, so clients that asked
for it (``ConnectRequest.readOnly``) can still read during a partition:

* a client that did not ask for read-only service, or an old client without the
  flag, is disconnected at once (ZooKeeperServer.processConnectRequest);
* a session of the ensemble (a *global* session from the database) may not be
  renewed here: ReadOnlyZooKeeperServer.validateSession closes the connection;
* new sessions are local sessions (LearnerSessionTracker with
  ``localSessionsEnabled``): they take no zxid and are never logged. Without
  local sessions Apache's ReadOnlyRequestProcessor answers the createSession
  with a NotReadOnly reply header instead of a ConnectResponse, and so does
  this server;
* writes, sync and check are answered with NotReadOnly (ReadOnlyRequestProcessor),
  reads as usual; the ConnectResponse's readOnly flag is true, srvr says
  ``Mode: read-only`` and isro ``ro``.

Nothing here changes the data tree, so the database the next role starts from is
exactly the one loaded before the election.
"""

from __future__ import annotations

import logging
import struct
from typing import Any

from pyzk.config import ServerConfig
from pyzk.core.roleservers import RoleServer
from pyzk.jute.constants import Err, OpCode
from pyzk.jute.records import ConnectRequest

log = logging.getLogger(__name__)

_REQ_HDR = struct.Struct(">ii")

#: What ReadOnlyRequestProcessor refuses with NotReadOnly.
REFUSED_OPS = frozenset({
    OpCode.sync, OpCode.create, OpCode.create2, OpCode.createTTL, OpCode.createContainer,
    OpCode.delete, OpCode.deleteContainer, OpCode.setData, OpCode.reconfig, OpCode.setACL,
    OpCode.multi, OpCode.check,
})


class ReadOnlyServer(RoleServer):
    """ReadOnlyZooKeeperServer: reads for read-only clients, local sessions only."""

    state = "read-only"
    read_only = True

    def __init__(self, cfg: ServerConfig, **kw: Any) -> None:
        sessions: dict[int, int] = kw.pop("sessions", None) or {}
        super().__init__(cfg, **kw)
        # the ensemble's sessions: known, but not to be renewed here
        self.global_sessions = frozenset(sessions)
        self.local_sessions = cfg.local_sessions_enabled

    # -- sessions -----------------------------------------------------------------

    def connect(self, conn: Any, frame: bytes) -> None:
        if not self.running:
            super().connect(conn, frame)
            return
        req, pos = ConnectRequest.decode(frame, 0, self.maxbuf)
        if pos >= len(frame) or frame[pos] == 0:
            log.info("Refusing session request for not-read-only client %s", conn.remote)
            conn.close()
            return
        if req.sessionId != 0 and req.sessionId in self.global_sessions:
            log.info("Refusing global session reconnection in RO mode %s", conn.remote)
            conn.close()
            return
        super().connect(conn, frame)

    def create_session(self, conn: Any, sid: int, timeout: int, now: float) -> None:
        if self.local_sessions:
            # a local session: no txn, no zxid, answered at once
            self.finish_session_init(conn, True)
            return
        # ReadOnlyRequestProcessor refuses a global createSession with a reply
        # header where the client waits for a ConnectResponse.
        self.sessions.remove(sid)
        self.conn_by_session.pop(sid, None)
        self.reply(conn, 0, Err.NOTREADONLY)

    def expire_sessions(self) -> list[int]:
        """LocalSessionTracker expiry: the session and its connection go away."""
        expired = self.sessions.expire(int(self.now_ms()))
        for sid in expired:
            log.info("Expiring session 0x%x, timeout of %dms exceeded", sid & (2**64 - 1),
                     self.sessions.sessions[sid].timeout if sid in self.sessions.sessions else 0)
            self.sessions.remove(sid)
            conn = self.conn_by_session.pop(sid, None)
            if conn is not None:
                conn.close()
        return expired

    # -- requests ------------------------------------------------------------------

    def request(self, conn: Any, frame: bytes) -> None:
        if len(frame) >= 8:
            xid, op = _REQ_HDR.unpack_from(frame, 0)
            if op in REFUSED_OPS:
                self.stats.packets_received += 1
                now = self.now_ms()
                conn.cnxn_stats.touch(now)
                self.sessions.touch(conn.session_id, int(now))
                self.reply(conn, xid, Err.NOTREADONLY)
                return
            if op == OpCode.closeSession:
                self.stats.packets_received += 1
                sid = conn.session_id
                self.sessions.remove(sid)
                self.conn_by_session.pop(sid, None)
                self.reply(conn, xid, 0)
                conn.close()
                return
        super().request(conn, frame)
