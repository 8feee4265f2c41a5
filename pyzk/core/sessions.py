"""Session tracking by expiry buckets, as Apache's SessionTrackerImpl/ExpiryQueue.

Pure: the caller passes the current monotonic time in milliseconds. Sessions
expire in buckets of ``tick_time``: a session touched at ``now`` with timeout
``t`` expires at ``(now + t) // tick * tick + tick``, which is what makes
Apache's expiry granular to a tick and cheap to check.
"""

from __future__ import annotations

from pyzk.core.javarandom import session_password

CONTAINER_EPHEMERAL_OWNER = -0x8000000000000000  # Long.MIN_VALUE


def initial_session_id(server_id: int, now_ms: int) -> int:
    """Apache's initializeNextSessionId: server id in the top byte."""
    sid = ((now_ms << 24) & 0xFFFFFFFFFFFFFFFF) >> 8
    sid |= (server_id & 0xFF) << 56
    sid &= 0xFFFFFFFFFFFFFFFF
    if sid >= 1 << 63:
        sid -= 1 << 64
    if sid == CONTAINER_EPHEMERAL_OWNER:
        sid += 1
    return sid


class Session:
    __slots__ = ("id", "timeout", "expire_at", "closing")

    def __init__(self, sid: int, timeout: int) -> None:
        self.id = sid
        self.timeout = timeout
        self.expire_at = 0
        self.closing = False


class SessionTracker:
    """Which sessions exist, when each expires, and which are closing."""

    def __init__(self, server_id: int, tick_time: int, now_ms: int) -> None:
        self.tick = tick_time
        self.sessions: dict[int, Session] = {}
        self._buckets: dict[int, set[int]] = {}
        self._next_id = initial_session_id(server_id, now_ms)
        self.next_expiration = self._round(now_ms)

    def _round(self, t: int) -> int:
        return (t // self.tick + 1) * self.tick

    def new_session_id(self) -> int:
        sid = self._next_id
        self._next_id += 1
        return sid

    @staticmethod
    def password(sid: int) -> bytes:
        return session_password(sid)

    def add(self, sid: int, timeout: int, now_ms: int) -> Session:
        s = self.sessions.get(sid)
        if s is None:
            s = self.sessions[sid] = Session(sid, timeout)
        s.timeout = timeout
        self._schedule(s, now_ms + timeout)
        return s

    def _schedule(self, s: Session, deadline: int) -> None:
        at = self._round(deadline)
        if at == s.expire_at:
            return
        if s.expire_at:
            b = self._buckets.get(s.expire_at)
            if b is not None:
                b.discard(s.id)
                if not b:
                    del self._buckets[s.expire_at]
        s.expire_at = at
        self._buckets.setdefault(at, set()).add(s.id)

    def touch(self, sid: int, now_ms: int, timeout: int | None = None) -> bool:
        """Push a live session's expiry out; False if unknown or closing."""
        s = self.sessions.get(sid)
        if s is None or s.closing:
            return False
        self._schedule(s, now_ms + (s.timeout if timeout is None else timeout))
        return True

    def is_live(self, sid: int) -> bool:
        s = self.sessions.get(sid)
        return s is not None and not s.closing

    def set_closing(self, sid: int) -> None:
        s = self.sessions.get(sid)
        if s is not None:
            s.closing = True

    def remove(self, sid: int) -> None:
        s = self.sessions.pop(sid, None)
        if s is not None and s.expire_at:
            b = self._buckets.get(s.expire_at)
            if b is not None:
                b.discard(sid)
                if not b:
                    del self._buckets[s.expire_at]

    def expire(self, now_ms: int) -> list[int]:
        """Sessions whose bucket has passed; they are marked closing."""
        out: list[int] = []
        while self.next_expiration <= now_ms:
            b = self._buckets.pop(self.next_expiration, None)
            if b:
                for sid in sorted(b):
                    s = self.sessions.get(sid)
                    if s is not None:
                        s.expire_at = 0
                        s.closing = True
                        out.append(sid)
            self.next_expiration += self.tick
        return out
