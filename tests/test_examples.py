"""examples/: each example project's own tests pass, run as its user would
run them (its own directory, only the plugin's fixtures, no repository conftest)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pyzk.testing.servers import REPO_ROOT


@pytest.mark.ensemble
@pytest.mark.timeout(180)
def test_the_leader_election_example_passes() -> None:
    where = REPO_ROOT / "examples" / "leader_election"
    got = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--confcutdir=.",
         "-c", "/dev/null", "."], cwd=where, capture_output=True, text=True, timeout=170,
        check=False)
    assert got.returncode == 0, got.stdout[-3000:] + got.stderr[-2000:]
    assert "2 passed" in got.stdout
