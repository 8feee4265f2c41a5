"""Fixtures: Apache ZooKeeper and pyzk servers in temporary directories.

`apache` / `pyzk` are fresh per test (zxids start from 0, so tests may compare
them exactly); the `*_module` variants are shared by a module's tests that
work in their own subtrees; `server` and `server_module` run a test once per
implementation. Every fixture that starts Apache first calls
`require_reference()`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pyzk.testing.scenario import Outcome, Step, assert_same, run_scenario
from pyzk.testing.servers import (
    SERVER_CLASSES,
    ServerProcess,
    require_reference,
    second_kind,
)

KINDS = ["apache", "pyzk"]


def start_server(kind: str, data_dir: Path, **kw: object) -> ServerProcess:
    if kind == "apache":
        require_reference()
    srv = SERVER_CLASSES[kind](data_dir, **kw)  # type: ignore[arg-type]
    srv.start()
    return srv


@pytest.fixture
def make_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """Factory: make_server(kind, **ServerProcess kwargs); all stopped at teardown."""
    started: list[ServerProcess] = []

    def make(kind: str, **kw: object) -> ServerProcess:
        srv = start_server(kind, tmp_path / f"{kind}{len(started)}", **kw)
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


@pytest.fixture
def apache(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = start_server("apache", tmp_path / "apache")
    yield srv
    srv.stop()


@pytest.fixture
def pyzk(tmp_path: Path) -> Iterator[ServerProcess]:
    srv = start_server("pyzk", tmp_path / "pyzk")
    yield srv
    srv.stop()


@pytest.fixture(params=KINDS)
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerProcess]:
    srv = start_server(request.param, tmp_path / request.param)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def apache_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server("apache", tmp_path_factory.mktemp("apache"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def pyzk_module(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    srv = start_server("pyzk", tmp_path_factory.mktemp("pyzk"))
    yield srv
    srv.stop()


@pytest.fixture(scope="module", params=KINDS)
def server_module(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    srv = start_server(request.param, tmp_path_factory.mktemp(request.param))
    yield srv
    srv.stop()


SECOND = second_kind()


@pytest.fixture
def diff(tmp_path: Path) -> Callable[..., Outcome]:
    """diff(steps, extra_cfg=..., jvm_flags=..., check=fn) -> Apache's outcome.

    Runs the scenario on a fresh Apache, calls ``check`` on that outcome
    (so each test also pins what the scenario exercises), then on a fresh
    second server, and asserts both outcomes are equal.
    """
    require_reference()
    runs = 0

    def run(
        steps: list[Step],
        *,
        extra_cfg: dict[str, str] | None = None,
        jvm_flags: list[str] | None = None,
        check: Callable[[Outcome], None] | None = None,
        timeout: float = 10.0,
    ) -> Outcome:
        nonlocal runs
        runs += 1
        outcomes = []
        for kind in ("apache", SECOND):
            srv = SERVER_CLASSES[kind](
                tmp_path / f"{kind}-{runs}-{len(outcomes)}", extra_cfg=extra_cfg,
                jvm_flags=jvm_flags,
            )
            srv.start()
            try:
                outcomes.append(run_scenario(srv.host, srv.port, steps, timeout))
            finally:
                srv.stop()
            if check is not None and len(outcomes) == 1:
                check(outcomes[0])
        assert_same(outcomes[0], outcomes[1], ("apache", SECOND))
        return outcomes[0]

    return run
