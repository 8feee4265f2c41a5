"""``zkServer.py status`` on ensemble members prints their mode as Apache's
zkServer.sh does, whichever server (Apache or pyzk) the member is."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from pyzk.testing.servers import REPO_ROOT, ZKCLI, Ensemble
from tests.ensemble.helpers import require_reference_for

pytestmark = [pytest.mark.ensemble, pytest.mark.reference]

ZKSERVER_SH = str(Path(ZKCLI).with_name("zkServer.sh"))


def _status(cmd: list[str]) -> list[str]:
    got = subprocess.run(cmd, capture_output=True, text=True, timeout=60, check=False,
                         cwd=REPO_ROOT)
    return [ln for ln in (got.stdout + got.stderr).splitlines()
            if ln.startswith(("Mode:", "Client port found", "Error"))]


@pytest.mark.timeout(150)
def test_status_prints_each_members_mode_as_zkserver_sh(tmp_path: Path) -> None:
    require_reference_for("apache")
    ens = Ensemble(tmp_path, {1: "apache", 2: "pyzk", 3: "pyzk"})
    with ens:
        leader = ens.wait_leader()
        for sid, srv in ens.servers.items():
            cfg = str(srv.cfg_path)
            ours = _status([sys.executable, "-m", "pyzk", "status", cfg])
            apache = _status(["bash", ZKSERVER_SH, "status", cfg])
            expected = "Mode: leader" if sid == leader else "Mode: follower"
            assert expected in ours, (sid, ours)
            assert ours == apache, (sid, ours, apache)
