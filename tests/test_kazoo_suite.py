"""kazoo's own test suite, shipped in its wheel, run through the plugin's
``--zk-kazoo-harness`` against pyzk with Java hidden from PATH: kazoo's
harness starts what it thinks is ``java ... QuorumPeerMain`` and gets pyzk.

CI runs the recipe modules on a 3-server ensemble (a few minutes would be
the whole suite, which the closing notes report); the rest of the suite is
one command away: ``pytest --pyargs kazoo.tests --zk-kazoo-harness``."""

from __future__ import annotations

import os
import random
import socket
import subprocess
import sys
from pathlib import Path

import pytest

#: kazoo recipe modules: locks, elections, queues, counters, barriers, parties
MODULES = ("test_lock", "test_election", "test_queue", "test_counter", "test_barrier",
           "test_party", "test_lease")


def _free_block(size: int = 40) -> int:
    """A port offset whose ``size`` ports are free (kazoo's harness numbers
    its servers' ports from ZOOKEEPER_PORT_OFFSET)."""
    for _ in range(200):
        base = random.randrange(20000, 60000, 10)
        try:
            socks = []
            for p in range(base, base + size):
                s = socket.socket()
                socks.append(s)
                s.bind(("127.0.0.1", p))
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
        return base
    raise RuntimeError("no free block of ports")


@pytest.mark.ensemble
@pytest.mark.timeout(600)
def test_kazoo_recipes_suite_passes_on_pyzk_without_java(tmp_path: Path) -> None:
    pytest.importorskip("kazoo.testing.common")  # needs pyOpenSSL as well
    nojava = tmp_path / "bin"
    nojava.mkdir()
    (nojava / "python").symlink_to(sys.executable)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZOOKEEPER_", "JAVA"))}
    env["PATH"] = str(nojava)
    env["ZOOKEEPER_PORT_OFFSET"] = str(_free_block())
    got = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--zk-kazoo-harness",
         "--timeout", "120", "--pyargs", *(f"kazoo.tests.{m}" for m in MODULES)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=580, check=False)
    tail = got.stdout[-4000:] + got.stderr[-2000:]
    assert got.returncode == 0, tail
    summary = got.stdout.strip().splitlines()[-1]
    passed = int(summary.split(" passed")[0].split()[-1])
    assert passed >= 70 and "skipped" not in summary, summary  # they ran, not skipped
