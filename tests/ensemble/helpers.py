"""Helpers the ensemble tests share: a kazoo client, common settings, waits.

These were copied into several files of this directory; they live here once
so every file connects, waits and restarts members the same way. Plain
functions (not fixtures) because tests open several clients against
different members in the middle of a scenario, and nest them.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

from kazoo.client import KazooClient

from pyzk.testing.servers import Ensemble, ServerProcess, require_reference, wait_for

T = TypeVar("T")

#: Sessions may last up to 20 s, so the 10 s kazoo asks for is granted (at
#: tickTime 200 ms the default maximum, 20 ticks, is 4 s) and a session
#: outlives a leader's death and the election after it.
SESSION_CFG = {"maxSessionTimeout": "20000"}

#: How the clients reconnect: forever, every 50-200 ms, so one follows a
#: server's restart or an election within a few ticks rather than kazoo's
#: default back-off.
RECONNECT: dict[str, Any] = {"max_tries": -1, "delay": 0.05, "max_delay": 0.2}

#: The default wait of the files whose ensembles run at tickTime 500 ms
#: (read-only mode, reconfig); the others use wait_for's own 20 s.
SLOW_WAIT = 30.0


@contextmanager
def client(hosts: str, *, client_id: tuple[int, bytes] | None = None, timeout: float = 10.0,
           read_only: bool | None = None, auth_data: list[tuple[str, str]] | None = None,
           connection_retry: dict[str, Any] | None = RECONNECT) -> Iterator[KazooClient]:
    """A started KazooClient on ``hosts``, stopped and closed on the way out.

    The hosts are tried in the order given (tests name which member a session
    starts on), the start waits up to 30 s (an ensemble may still be electing),
    and the client reconnects as :data:`RECONNECT` says; ``connection_retry=None``
    keeps kazoo's own default (for a client that must give up, not reconnect).
    ``client_id`` reattaches an existing session, ``read_only`` asks for
    read-only service, ``auth_data`` authenticates on connect.
    """
    zk = KazooClient(hosts=hosts, timeout=timeout, client_id=client_id, randomize_hosts=False,
                     read_only=read_only, auth_data=auth_data, connection_retry=connection_retry)
    zk.start(timeout=30)
    try:
        yield zk
    finally:
        zk.stop()
        zk.close()


def wait_for_slow(cond: Callable[[], T], timeout: float = SLOW_WAIT,
                  what: str = "condition") -> T:
    """:func:`pyzk.testing.servers.wait_for` with a :data:`SLOW_WAIT` default."""
    return wait_for(cond, timeout, what)


def require_reference_for(*kinds: str) -> None:
    """Skip (or fail, see require_reference) unless Apache is installed, when
    any of ``kinds`` is "apache"; a pyzk-only scenario runs without it."""
    if "apache" in kinds:
        require_reference()


def ensemble_with_flags(base_dir: Path, kinds: dict[int, str], jvm_flags: Sequence[str],
                        **ensemble_kw: Any) -> Ensemble:
    """An :class:`Ensemble` whose every member gets ``jvm_flags`` (Apache's JVM
    flags, pyzk's SERVER_JVMFLAGS); ``ensemble_kw`` go to Ensemble as they are."""
    ens = Ensemble(base_dir, kinds, **ensemble_kw)
    for s in ens.servers.values():
        s.jvm_flags = list(jvm_flags)
    return ens


def rejoin(server: ServerProcess, timeout: float = 30.0) -> None:
    """Start a stopped ensemble member again and wait until it serves.

    Started without waiting and then waited on, as a member joining a running
    ensemble: a timeout fails the test with the log tail but leaves the process
    to the ensemble's own cleanup (``start(wait=True)`` would kill it first).
    """
    server.start(wait=False)
    server.wait_ready(timeout)
