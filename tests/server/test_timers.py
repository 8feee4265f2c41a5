"""ServerTimers: the one place the server's periodic work is scheduled.

Driven with a fake loop, so the schedule itself is checked without waiting:
when each timer fires, what it calls, and that cancel() stops all of them.
"""

from __future__ import annotations

import types
from typing import Any

import pytest

from pyzk.shell.timers import ServerTimers

pytestmark = pytest.mark.pure


class FakeLoop:
    def __init__(self) -> None:
        self.timers: list[FakeHandle] = []
        self.executed: list[Any] = []

    def call_later(self, delay: float, fn: Any) -> FakeHandle:
        h = FakeHandle(delay, fn)
        self.timers.append(h)
        return h

    def run_in_executor(self, _executor: Any, fn: Any) -> None:
        self.executed.append(fn)

    def due(self) -> list[FakeHandle]:
        return [t for t in self.timers if not t.cancelled and not t.fired]

    def fire(self, handle: FakeHandle) -> None:
        handle.fired = True
        handle.fn()


class FakeHandle:
    def __init__(self, delay: float, fn: Any) -> None:
        self.delay = delay
        self.fn = fn
        self.cancelled = False
        self.fired = False

    def cancel(self) -> None:
        self.cancelled = True


def _cfg(**kw: Any) -> Any:
    base = dict(container_max_per_minute=10000, container_max_never_used_interval_ms=0,
                container_check_interval_ms=60000, autopurge_purge_interval=0)
    base.update(kw)
    return types.SimpleNamespace(**base)


class FakeServer:
    def __init__(self) -> None:
        self.clock = 1000.0
        self.expired = 0
        self.reaped: list[tuple[int, int]] = []
        self.sessions = types.SimpleNamespace(next_expiration=3000)

    def now_ms(self) -> float:
        return self.clock

    def expire_sessions(self) -> list[int]:
        self.expired += 1
        self.sessions.next_expiration += 2000
        return []

    def reap_containers(self, per_minute: int, never_used: int) -> int:
        self.reaped.append((per_minute, never_used))
        return 0


def test_session_expiry_follows_the_trackers_next_bucket() -> None:
    loop, server = FakeLoop(), FakeServer()
    timers = ServerTimers(loop, _cfg())  # type: ignore[arg-type]
    timers.expire_sessions(server)  # type: ignore[arg-type]
    assert server.expired == 1  # an expiry pass at once
    (h,) = loop.due()
    assert h.delay == pytest.approx((5000 - 1000) / 1000 + 0.001)
    server.clock = 5000.0
    loop.fire(h)
    assert server.expired == 2
    (h2,) = loop.due()
    assert h2.delay == pytest.approx((7000 - 5000) / 1000 + 0.001)


def test_reaper_uses_the_configured_interval_and_limits() -> None:
    loop, server = FakeLoop(), FakeServer()
    timers = ServerTimers(loop, _cfg(container_check_interval_ms=250,  # type: ignore[arg-type]
                                     container_max_per_minute=7,
                                     container_max_never_used_interval_ms=99))
    timers.reap_containers(server)  # type: ignore[arg-type]
    assert server.reaped == [(7, 99)]
    (h,) = loop.due()
    assert h.delay == pytest.approx(0.25)
    loop.fire(h)
    assert server.reaped == [(7, 99)] * 2


def test_autopurge_runs_off_the_loop_every_interval_and_only_when_enabled() -> None:
    loop = FakeLoop()
    store = types.SimpleNamespace(purge=lambda: None)
    ServerTimers(loop, _cfg()).purge(store)  # type: ignore[arg-type]
    assert loop.due() == []  # purgeInterval=0: off
    timers = ServerTimers(loop, _cfg(autopurge_purge_interval=2))  # type: ignore[arg-type]
    timers.purge(store)  # type: ignore[arg-type]
    (h,) = loop.due()
    assert h.delay == 2 * 3600.0 and loop.executed == []
    loop.fire(h)
    assert loop.executed == [store.purge]
    assert len(loop.due()) == 1  # and again after the next interval


def test_cancel_stops_every_timer() -> None:
    loop, server = FakeLoop(), FakeServer()
    timers = ServerTimers(loop, _cfg(autopurge_purge_interval=1))  # type: ignore[arg-type]
    timers.expire_sessions(server)  # type: ignore[arg-type]
    timers.reap_containers(server)  # type: ignore[arg-type]
    timers.purge(types.SimpleNamespace(purge=lambda: None))  # type: ignore[arg-type]
    assert len(loop.due()) == 3
    timers.cancel()
    assert loop.due() == []
