"""A pytest plugin that keeps the test suite's kinds honest.

Every test says what it needs with one of four markers, so that a developer can
run the fast layer alone (``pytest -m pure`` runs in seconds) and CI can tell a
compat test that really ran from one that quietly skipped:

``pure``
    touches only the sans-IO cores: no network socket, no child process, no
    files beyond ``tmp_path``. The guard enforces the first two while the test
    runs (setup, call and teardown): an AF_INET/AF_INET6 socket or a spawned
    process fails the test, even if the code under test swallowed the error.
``server``
    starts one pyzk server (in process or as a child) and talks to it.
``ensemble``
    starts several pyzk servers that form a quorum.
``reference``
    runs Apache ZooKeeper's own code (a server, its jars, ``zkCli.sh`` or
    ``cli_mt``). With ``PYZK_REQUIRE_REFERENCE=1`` (set by ``.ci/run``) such a
    test that skips is reported as failed: the comparison must really run.

``pure`` excludes the other three; ``reference`` may go with ``server`` or
``ensemble``. A test without any of them, or with ``pure`` and another, stops
the run at collection with the list of offenders.

The markers themselves are registered in the project's ``pyproject.toml``
(with ``--strict-markers``); this module only checks them. It is loaded with
``-p pyzk.testing.markguard`` (the repository's ``conftest.py`` does so).
"""

from __future__ import annotations

import os
import socket
import subprocess
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

KINDS = ("pure", "server", "ensemble", "reference")
REQUIRE_ENV = "PYZK_REQUIRE_REFERENCE"
_INET = (socket.AF_INET, socket.AF_INET6)


class PurityError(RuntimeError):
    """Raised inside a ``pure`` test that tried to leave the process."""


def _kinds(item: pytest.Item) -> set[str]:
    return {k for k in KINDS if item.get_closest_marker(k) is not None}


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    unmarked: list[str] = []
    mixed: list[str] = []
    for item in items:
        kinds = _kinds(item)
        if not kinds:
            unmarked.append(item.nodeid)
        elif "pure" in kinds and len(kinds) > 1:
            mixed.append(f"{item.nodeid} ({', '.join(sorted(kinds))})")
    problems: list[str] = []
    if unmarked:
        problems.append("tests without a kind marker (one of " + ", ".join(KINDS) + "):")
        problems.extend(f"  {n}" for n in unmarked)
    if mixed:
        problems.append("tests marked pure and something else:")
        problems.extend(f"  {n}" for n in mixed)
    if problems:
        raise pytest.UsageError("\n".join(problems))


class _Fence:
    """Patches the ways out of the process for the length of one pure test.

    Violations are recorded as well as raised, because the code under test may
    catch the exception (a reconnect loop catching OSError, say) and go on.
    Threads that were already running when the fence went up (a client an
    earlier server test left behind, say) are let through: what they do is not
    this test's doing.
    """

    __slots__ = ("violations", "_saved", "_foreign")

    def __init__(self) -> None:
        self.violations: list[str] = []
        self._saved: list[tuple[Any, str, Any]] = []
        me = threading.get_ident()
        self._foreign = {t.ident for t in threading.enumerate() if t.ident != me}

    def _refuse(self, what: str) -> PurityError | None:
        """The error to raise here, or None when the caller is a foreign thread."""
        if threading.get_ident() in self._foreign:
            return None
        self.violations.append(what)
        return PurityError(f"a pure test must not {what}")

    def _patch(self, owner: Any, name: str, make: Callable[[Any], Any]) -> None:
        original = getattr(owner, name)
        self._saved.append((owner, name, original))
        setattr(owner, name, make(original))

    def __enter__(self) -> _Fence:
        fence = self

        def guard_socket(original: Any) -> Any:
            def init(sock: socket.socket, family: int = -1, type: int = -1,
                     proto: int = -1, fileno: Any = None) -> None:
                # family -1 with no fileno means the default, AF_INET.
                effective = socket.AF_INET if family == -1 and fileno is None else family
                if fileno is None and effective in _INET:
                    error = fence._refuse("open a network socket")
                    if error is not None:
                        raise error
                original(sock, family, type, proto, fileno)
            return init

        def guard_spawn(what: str) -> Callable[[Any], Any]:
            def make(original: Any) -> Any:
                def refused(*args: Any, **kwargs: Any) -> Any:
                    error = fence._refuse(what)
                    if error is not None:
                        raise error
                    return original(*args, **kwargs)
                return refused
            return make

        self._patch(socket.socket, "__init__", guard_socket)
        self._patch(subprocess.Popen, "__init__", guard_spawn("spawn a process"))
        for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp", "system"):
            if hasattr(os, name):
                self._patch(os, name, guard_spawn("spawn a process"))
        return self

    def __exit__(self, *exc: object) -> None:
        while self._saved:
            owner, name, original = self._saved.pop()
            setattr(owner, name, original)


_FENCE_KEY = pytest.StashKey[list[str]]()


def _fenced(item: pytest.Item) -> Iterator[None]:
    if item.get_closest_marker("pure") is None:
        yield
        return
    with _Fence() as fence:
        yield
    if fence.violations:
        item.stash.setdefault(_FENCE_KEY, []).extend(fence.violations)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Iterator[None]:
    yield from _fenced(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    yield from _fenced(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    yield from _fenced(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()
    # Each phase reports what it did; a phase that failed anyway keeps its own error.
    violations = item.stash.get(_FENCE_KEY, [])
    item.stash[_FENCE_KEY] = []
    if violations and not report.failed:
        report.outcome = "failed"
        report.longrepr = "pure test left the process: " + "; ".join(sorted(set(violations)))
        return
    if (report.skipped and not hasattr(report, "wasxfail")
            and os.environ.get(REQUIRE_ENV) == "1"
            and item.get_closest_marker("reference") is not None):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = f"reference test skipped under {REQUIRE_ENV}=1: {reason}"
