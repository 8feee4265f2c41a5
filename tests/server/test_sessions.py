"""Session tracker (pure) and the session password generator."""

from __future__ import annotations

import pytest

from pyzk.core.javarandom import JavaRandom, session_password
from pyzk.core.sessions import SessionTracker, initial_session_id

pytestmark = pytest.mark.pure


def test_java_random_matches_the_jdk() -> None:
    # new java.util.Random(42).nextInt() x3, and a password the JDK produced.
    r = JavaRandom(42)
    assert [r.next_int() for _ in range(3)] == [-1170105035, 234785527, -1360544799]
    assert session_password(0x123456789ABCDEF).hex() == "f7cd1b8b3f946c477425d41be3f667c6"


def test_session_ids_carry_the_server_id_in_the_top_byte() -> None:
    sid = initial_session_id(1, 1_700_000_000_000)
    assert (sid >> 56) & 0xFF == 1
    assert initial_session_id(5, 123) >> 56 == 5
    t = SessionTracker(1, 2000, 0)
    a, b = t.new_session_id(), t.new_session_id()
    assert b == a + 1


def test_expiry_is_bucketed_by_tick() -> None:
    t = SessionTracker(1, 2000, 0)
    t.add(10, 4000, now_ms=100)  # expires at round(4100) = 6000
    t.add(11, 6000, now_ms=100)  # round(6100) = 8000
    assert t.expire(5999) == []
    assert t.expire(6000) == [10]
    assert t.sessions[10].closing
    assert t.expire(7999) == []
    assert t.touch(11, now_ms=7000)  # moves to round(13000) = 14000
    assert t.expire(13999) == []
    assert t.expire(14000) == [11]


def test_closing_or_unknown_sessions_cannot_be_touched() -> None:
    t = SessionTracker(1, 2000, 0)
    t.add(7, 4000, 0)
    t.set_closing(7)
    assert not t.touch(7, 10)
    assert not t.touch(8, 10)
    t.remove(7)
    assert not t.is_live(7)
    assert t.expire(100000) == []
