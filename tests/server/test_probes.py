"""pyzk.shell.probes: the host facts the four-letter words report."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyzk.javacompat import java_date
from pyzk.shell import probes
from tests.server.helpers import time_zone

pytestmark = pytest.mark.pure


def test_dir_size_sums_a_tree_and_is_zero_for_nothing(tmp_path: Path) -> None:
    (tmp_path / "d" / "e").mkdir(parents=True)
    (tmp_path / "d" / "a").write_bytes(b"x" * 10)
    (tmp_path / "d" / "e" / "b").write_bytes(b"y" * 5)
    assert probes.dir_size(tmp_path / "d") == 15
    assert probes.dir_size(str(tmp_path / "d" / "a")) == 10
    assert probes.dir_size(tmp_path / "missing") == 0


def test_fd_counts() -> None:
    before = probes.open_fd_count()
    fd = os.open(os.devnull, os.O_RDONLY)
    try:
        assert probes.open_fd_count() == before + 1
    finally:
        os.close(fd)
    assert probes.max_fd_count() >= before > 0


@pytest.fixture
def new_york() -> Iterator[None]:
    with time_zone("America/New_York"):
        yield


def test_local_time_is_the_local_zone_at_that_instant(new_york: None) -> None:
    # 2023-11-05 01:30 happens twice in New York: EDT, then EST an hour later.
    first = 1699162200000
    assert java_date(probes.local_time(first)) == "Sun Nov 05 01:30:00 EDT 2023"
    assert java_date(probes.local_time(first + 3600_000)) == "Sun Nov 05 01:30:00 EST 2023"
    assert java_date(probes.local_time(1_700_000_000_000)) == "Tue Nov 14 17:13:20 EST 2023"


def test_version_keeps_apaches_shape() -> None:
    assert re.fullmatch(r"3\.8\.0-pyzk-[\w.]+, built on \d{4}-\d\d-\d\d \d\d:\d\d UTC",
                        probes.full_version())


def test_environment_has_a_value_for_every_key() -> None:
    env = dict(probes.environment())
    assert len(env) == 18
    assert env["zookeeper.version"] == probes.full_version()
    assert env["user.dir"] == os.getcwd()
    assert all(v for v in env.values())
