"""deploy/pyzk.service: systemd accepts it, and its command and environment
serve a zoo.cfg laid out as Debian's zookeeperd lays it out."""

from __future__ import annotations

import configparser
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pyzk.testing.servers import REPO_ROOT, four_letter, free_port, wait_for

UNIT = REPO_ROOT / "deploy" / "pyzk.service"


def _unit() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(UNIT.read_text())
    return parser


@pytest.mark.server
def test_systemd_accepts_the_unit(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    script = shutil.which("zkServer.py")
    if analyze is None or script is None:
        pytest.skip("systemd-analyze or an installed zkServer.py is missing")
    unit = tmp_path / "pyzk.service"
    unit.write_text(UNIT.read_text().replace("/usr/local/bin/zkServer.py", script))
    got = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                         timeout=60, check=False)
    assert got.returncode == 0, got.stdout + got.stderr


@pytest.mark.server
def test_the_units_command_serves_the_debian_layout(tmp_path: Path) -> None:
    service = _unit()["Service"]
    assert service["ExecStart"].endswith("zkServer.py start-foreground")
    env = dict(os.environ)
    env.pop("ZOOCFG", None)
    for line in UNIT.read_text().splitlines():
        if line.startswith("Environment="):
            key, _, value = line[len("Environment="):].partition("=")
            env[key] = value
    # /etc/zookeeper/conf and /var/lib/zookeeper, moved under tmp_path
    conf = tmp_path / "etc" / "zookeeper" / "conf"
    conf.mkdir(parents=True)
    port = free_port()
    (conf / "zoo.cfg").write_text(f"tickTime=2000\ndataDir={tmp_path / 'var' / 'lib' / 'zk'}\n"
                                  f"clientPort={port}\nclientPortAddress=127.0.0.1\n"
                                  "4lw.commands.whitelist=*\nadmin.enableServer=false\n")
    env["ZOOCFGDIR"] = str(conf)
    env["ZOO_LOG_DIR"] = str(tmp_path / "log")
    env["PYTHONPATH"] = str(REPO_ROOT)
    cmd = service["ExecStart"].split()
    argv = [sys.executable, "-m", "pyzk", *cmd[1:]]
    proc = subprocess.Popen(argv, env=env, cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        def ruok() -> bool:
            try:
                return four_letter("127.0.0.1", port, "ruok", timeout=1) == "imok"
            except OSError:
                return proc.poll() is not None
        wait_for(ruok, 30, "pyzk started by the unit's command")
        assert proc.poll() is None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(15)
