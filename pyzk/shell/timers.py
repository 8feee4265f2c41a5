"""The server's clocks and timers, in one place.

The cores never read a clock: they are handed ``now_ms`` (monotonic, for
timeouts) and ``wall_ms`` (epoch, for znode times), both defined here. The
periodic work a ZooKeeper server does on its own runs from
:class:`ServerTimers`: session expiry (SessionTrackerImpl's tick buckets),
the container and TTL reaper (ContainerManager) and autopurge
(DatadirCleanupManager). A standalone server, an ensemble's leader and a
read-only server each start the ones they run.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyzk.config import ServerConfig
    from pyzk.core.zkserver import ZooKeeperServer
    from pyzk.shell.store import Store

log = logging.getLogger(__name__)


def now_ms() -> float:
    """Monotonic milliseconds: session timeouts, latencies, elections."""
    return time.monotonic() * 1000.0


def wall_ms() -> int:
    """Milliseconds since the epoch: ctime/mtime, as Apache's Time.currentWallTime."""
    return int(time.time() * 1000)


class ServerTimers:
    """Timers that drive one server: :meth:`expire_sessions`, :meth:`reap_containers`
    and :meth:`purge`, each started once; :meth:`cancel` stops them all."""

    def __init__(self, loop: asyncio.AbstractEventLoop, cfg: ServerConfig) -> None:
        self.loop = loop
        self.cfg = cfg
        self._handles: dict[str, asyncio.TimerHandle] = {}
        self._server: ZooKeeperServer | None = None
        self._store: Store | None = None

    def _at(self, name: str, delay: float, fn: object) -> None:
        self._handles[name] = self.loop.call_later(delay, fn)  # type: ignore[arg-type]

    def expire_sessions(self, server: ZooKeeperServer) -> None:
        """Expire sessions at each tick bucket's end (the tracker says when the next is)."""
        self._server = server
        self._expire()

    def _expire(self) -> None:
        server = self._server
        assert server is not None
        server.expire_sessions()
        delay = max(0.0, (server.sessions.next_expiration - server.now_ms()) / 1000.0)
        self._at("expire", delay + 0.001, self._expire)

    def reap_containers(self, server: ZooKeeperServer) -> None:
        """Every znode.container.checkIntervalMs: delete empty containers and expired TTL nodes."""
        self._server = server
        self._reap()

    def _reap(self) -> None:
        cfg = self.cfg
        assert self._server is not None
        self._server.reap_containers(cfg.container_max_per_minute,
                                     cfg.container_max_never_used_interval_ms)
        self._at("reap", max(1, cfg.container_check_interval_ms) / 1000.0, self._reap)

    def purge(self, store: Store) -> None:
        """autopurge.purgeInterval (hours) > 0: keep autopurge.snapRetainCount
        snapshots and the logs they need, off the loop."""
        self._store = store
        self._schedule_purge()

    def _schedule_purge(self) -> None:
        hours = self.cfg.autopurge_purge_interval
        if self._store is None or hours <= 0:
            return
        self._at("purge", hours * 3600.0, self._purge_now)

    def _purge_now(self) -> None:
        assert self._store is not None
        self.loop.run_in_executor(None, self._store.purge)
        self._schedule_purge()

    def cancel(self) -> None:
        for handle in self._handles.values():
            handle.cancel()
        self._handles.clear()
