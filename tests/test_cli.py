"""zkServer.py: arguments, pid file, messages, and a real start/status/stop."""

from __future__ import annotations

import io
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyzk import cli
from pyzk.config import ServerConfig

USAGE = (
    "Usage: zkServer.py [--config <conf-dir>] "
    "{start|start-foreground|stop|version|restart|status|print-cmd}"
)
NOT_RUNNING = "Error contacting service. It is probably not running."

# What Apache 3.8's srvr answers (zkServer.sh status greps its Mode line).
APACHE_SRVR = (
    "Zookeeper version: 3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC\n"
    "Latency min/avg/max: 0/0.0/0\nReceived: 3\nSent: 2\nConnections: 1\n"
    "Outstanding: 0\nZxid: 0x0\nMode: standalone\nNode count: 5\n"
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(argv: list[str], env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    rc = cli.main(argv, env=env if env is not None else {}, out=out, err=err)
    return rc, out.getvalue(), err.getvalue()


def make_cfg(tmp_path: Path, body: str = "", port: int | None = None) -> Path:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    cfg = tmp_path / "zoo.cfg"
    port_line = f"clientPort={port}\nclientPortAddress=127.0.0.1\n" if port else ""
    cfg.write_text(f"dataDir={data}\n{port_line}{body}")
    return cfg


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    if proc.poll() is None:
        proc.kill()
    proc.wait()


# --------------------------------------------------------------------------
# arguments


@pytest.mark.pure
def test_usage_for_unknown_command() -> None:
    rc, out, err = run(["bogus"])
    assert rc == 1 and out == ""
    assert USAGE in err.splitlines()
    assert run([])[0] == 1


@pytest.mark.pure
def test_version() -> None:
    rc, out, _ = run(["version"])
    assert rc == 0 and out.startswith("pyzk ") and "Apache ZooKeeper 3.8.0" in out
    buf = io.StringIO()
    assert cli.tool_main(["version"], out=buf) == 0 and buf.getvalue() == out
    assert cli.tool_main(["frobnicate"], out=io.StringIO()) == 1


@pytest.mark.pure
def test_config_path_resolution(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "zoo.cfg").write_text("")
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "zoo.cfg").write_text("")
    (tmp_path / "etc" / "other.cfg").write_text("")
    etc = str(tmp_path / "etc")
    cwd = str(tmp_path)
    # default: conf/zoo.cfg relative to the current directory
    assert cli.resolve_config_path(None, None, {}, cwd) == "conf/zoo.cfg"
    # a path with a directory part is taken as is
    assert cli.resolve_config_path("x/y.cfg", etc, {}, cwd) == "x/y.cfg"
    # --config DIR wins, as in zkEnv.sh
    assert cli.resolve_config_path(None, etc, {}, cwd) == os.path.join(etc, "zoo.cfg")
    assert cli.resolve_config_path("other.cfg", etc, {}, cwd) == os.path.join(etc, "other.cfg")
    # then ZOOCFGDIR from the environment, with ZOOCFG as the file name
    env = {"ZOOCFGDIR": etc, "ZOOCFG": "other.cfg"}
    assert cli.resolve_config_path(None, None, env, str(tmp_path / "etc")) == os.path.join(
        etc, "other.cfg"
    )
    assert cli.resolve_config_path(None, None, {"ZOOCFGDIR": etc}, etc) == os.path.join(
        etc, "zoo.cfg"
    )
    # a bare name found nowhere else is relative to the current directory
    assert cli.resolve_config_path("zoo.cfg", None, {}, str(tmp_path / "conf")) == "zoo.cfg"
    # ZOOCFGDIR from the environment beats a conf/ in the current directory
    # (a systemd unit or container started from a directory with a conf/)
    assert cli.resolve_config_path(None, None, {"ZOOCFGDIR": etc}, cwd) == os.path.join(
        etc, "zoo.cfg")
    # but not when it lacks the file
    assert cli.resolve_config_path(None, None, {"ZOOCFGDIR": str(tmp_path / "none")},
                                   cwd) == "conf/zoo.cfg"


@pytest.mark.pure
def test_parse_args_with_config_dir(tmp_path: Path) -> None:
    inv = cli.parse_args(["--config", str(tmp_path), "status"], {}, "zkServer.py")
    assert inv.command == "status"
    assert inv.config_path == os.path.join(str(tmp_path), "zoo.cfg")
    assert cli.parse_args(["nope", "x.cfg"], {}, "zkServer.py").command is None


@pytest.mark.pure
def test_print_cmd(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    rc, out, _ = run(["print-cmd", str(cfg)], {"ZOO_LOG_DIR": str(tmp_path / "logs")})
    assert rc == 0
    assert f'"{sys.executable}" "-m" "pyzk" "start-foreground" "{cfg}"' in out
    assert f'> "{tmp_path / "logs"}/zookeeper-' in out and out.rstrip().endswith("< /dev/null")


@pytest.mark.pure
def test_jvm_flags_join_server_and_plain() -> None:
    env = {"SERVER_JVMFLAGS": "-Da=1", "JVMFLAGS": "-Db=2"}
    assert cli.jvm_flags(env) == "-Da=1 -Db=2"
    assert cli.jvm_flags({}) == ""


# --------------------------------------------------------------------------
# status


@pytest.mark.server
def test_status_not_running(tmp_path: Path) -> None:
    port = free_port()
    cfg = make_cfg(tmp_path, port=None, body=f"clientPort={port}\n")
    rc, out, err = run(["status", str(cfg)])
    assert rc == 1
    assert out.splitlines() == [
        f"Client port found: {port}. Client address: localhost. Client SSL: false.",
        NOT_RUNNING,
    ]
    assert f"Using config: {cfg}" in err


@pytest.mark.server
def test_status_secure_port_only(tmp_path: Path) -> None:
    port = free_port()
    cfg = make_cfg(tmp_path, body=f"secureClientPort={port}\n")
    rc, out, _ = run(["status", str(cfg)])
    assert rc == 1
    # as zkServer.sh: no clientPort sends it looking for myid first, and a
    # failed TLS srvr prints its note on CLIENT_JVMFLAGS
    lines = out.splitlines()
    assert lines[:3] == [
        "myid could not be determined, will not able to locate clientPort in the server configs.",
        "Client port not found. Looking for secureClientPort in the static config.",
        f"Client port found: {port}. Client address: localhost. Client SSL: true.",
    ]
    assert lines[3:] == cli.SECURE_STATUS_NOTE.format(port=port).splitlines() + [NOT_RUNNING]


@pytest.mark.pure
def test_status_without_any_port(tmp_path: Path) -> None:
    rc, out, _ = run(["status", str(make_cfg(tmp_path))])
    assert rc == 1
    assert out.splitlines()[-1] == (
        "Unable to find either secure or unsecure client port in any configs. Terminating."
    )


@pytest.fixture
def fake_srvr() -> Iterator[int]:
    """A TCP server answering srvr the way Apache does, to test status's parsing."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen()
    srv.settimeout(10)
    port = srv.getsockname()[1]

    def serve() -> None:
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        with conn:
            if conn.recv(4) == b"srvr":
                conn.sendall(APACHE_SRVR.encode())

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield port
    srv.close()
    thread.join(5)


@pytest.mark.server
def test_status_running_prints_mode(tmp_path: Path, fake_srvr: int) -> None:
    cfg = make_cfg(tmp_path, port=fake_srvr)
    rc, out, _ = run(["status", str(cfg)])
    assert rc == 0
    assert out.splitlines() == [
        f"Client port found: {fake_srvr}. Client address: 127.0.0.1. Client SSL: false.",
        "Mode: standalone",
    ]


# --------------------------------------------------------------------------
# pid file, start and stop without a server


@pytest.mark.pure
def test_stop_without_pid_file(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path)
    rc, out, _ = run(["stop", str(cfg)])
    assert rc == 0
    pid_file = tmp_path / "data" / "zookeeper_server.pid"
    assert out == f"Stopping zookeeper ... no zookeeper to stop (could not find file {pid_file})\n"


@pytest.mark.server
def test_stop_terminates_the_pid_file_process(
    tmp_path: Path, sleeper: subprocess.Popen[bytes]
) -> None:
    cfg = make_cfg(tmp_path)
    pid_file = tmp_path / "data" / "zookeeper_server.pid"
    pid_file.write_text(str(sleeper.pid))
    rc, out, _ = run(["stop", str(cfg)])
    assert (rc, out) == (0, "Stopping zookeeper ... STOPPED\n")
    assert not pid_file.exists()
    assert not cli.pid_alive(sleeper.pid)


@pytest.mark.server
def test_stop_with_stale_pid(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    sleeper.kill()
    sleeper.wait()
    cfg = make_cfg(tmp_path)
    pid_file = tmp_path / "data" / "zookeeper_server.pid"
    pid_file.write_text(str(sleeper.pid))
    rc, out, err = run(["stop", str(cfg)])
    assert (rc, out) == (0, "Stopping zookeeper ... STOPPED\n")
    assert f"({sleeper.pid}) - No such process" in err
    assert not pid_file.exists()


@pytest.mark.server
def test_zoopidfile_is_honoured(tmp_path: Path, sleeper: subprocess.Popen[bytes]) -> None:
    cfg = make_cfg(tmp_path, port=free_port())
    pid_file = tmp_path / "run" / "zk.pid"
    env = {"ZOOPIDFILE": str(pid_file)}
    assert cli.pid_file_path(str(cfg), env) == pid_file
    pid_file.parent.mkdir()
    pid_file.write_text(str(sleeper.pid))
    rc, out, _ = run(["start", str(cfg)], env)
    assert (rc, out) == (1, f"Starting zookeeper ... already running as process {sleeper.pid}.\n")
    rc, out, _ = run(["stop", str(cfg)], env)
    assert (rc, out) == (0, "Stopping zookeeper ... STOPPED\n")
    assert sleeper.wait(10) == -signal.SIGTERM


@pytest.mark.server
def test_pid_alive() -> None:
    assert cli.pid_alive(os.getpid())
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 10
    while cli.pid_alive(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not cli.pid_alive(proc.pid)  # an exited (zombie) child is not alive


@pytest.mark.server
def test_start_with_invalid_config(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, port=free_port(), body="tickTime=fast\n")
    rc, out, err = run(["start", str(cfg)])
    assert (rc, out) == (1, "Starting zookeeper ... FAILED TO START\n")
    assert "tickTime" in err
    assert not (tmp_path / "data" / "zookeeper_server.pid").exists()


@pytest.mark.server
def test_start_fails_when_port_is_taken(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cfg = make_cfg(tmp_path, port=port)
        env = {**os.environ, "ZOO_LOG_DIR": str(tmp_path / "logs"), "PYZK_START_GRACE": "20"}
        rc, out, err = run(["start", str(cfg)], env)
    assert (rc, out) == (1, "Starting zookeeper ... FAILED TO START\n")
    assert "see " in err
    assert not (tmp_path / "data" / "zookeeper_server.pid").exists()
    assert list((tmp_path / "logs").glob("zookeeper-*-server-*.out"))


# --------------------------------------------------------------------------
# start-foreground runs pyzk.shell.main.serve


@pytest.mark.server
def test_start_foreground_invalid_config(tmp_path: Path) -> None:
    cfg = make_cfg(tmp_path, port=free_port(), body="minSessionTimeout=9\nmaxSessionTimeout=8\n")
    rc, _, err = run(["start-foreground", str(cfg)])
    assert rc == cli.EXIT_INVALID_INVOCATION == 2
    assert "Invalid config, exiting abnormally" in err


@pytest.mark.server
def test_start_foreground_hands_config_to_serve(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: list[ServerConfig] = []
    fake = types.ModuleType("pyzk.shell.main")

    def serve(cfg: ServerConfig) -> int:
        seen.append(cfg)
        return 7

    fake.serve = serve  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pyzk.shell.main", fake)
    port = free_port()
    cfg = make_cfg(tmp_path, port=port)
    env = {"SERVER_JVMFLAGS": "-Dzookeeper.skipACL=yes", "JVMFLAGS": "-Djute.maxbuffer=1000"}
    rc, _, _ = run(["start-foreground", str(cfg)], env)
    assert rc == 7
    assert len(seen) == 1
    assert seen[0].client_port == port and seen[0].skip_acl and seen[0].jute_maxbuffer == 1000


@pytest.mark.pure
def test_log_format_is_apache_like() -> None:
    import logging

    fmt = cli._ApacheFormatter(lambda: "3")
    record = logging.LogRecord("pyzk.x", logging.WARNING, "/a/b/shell.py", 12, "hi", None, None)
    line = fmt.format(record)
    assert line.endswith(" [myid:3] - WARN  [MainThread:shell@12] - hi")
    assert record.levelname == "WARNING"


@pytest.mark.pure
@pytest.mark.parametrize(
    ("value", "level"), [("WARN", 30), ("debug", 10), ("ERROR", 40), ("bogus", 20), (None, 20)]
)
def test_pyzk_log_level(value: str | None, level: int) -> None:
    import logging

    root = logging.getLogger()
    saved = root.level
    env = {} if value is None else {"PYZK_LOG_LEVEL": value}
    handler = cli._install_log_handler(env, lambda: "")
    try:
        assert root.level == level
    finally:
        root.removeHandler(handler)
        root.setLevel(saved)


# --------------------------------------------------------------------------
# the real thing: start, status, restart, stop a pyzk server


def _ruok(port: int) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"ruok")
        s.shutdown(socket.SHUT_WR)
        return s.recv(100).decode()


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str], int]]:
    pytest.importorskip("pyzk.shell.main")
    port = free_port()
    cfg = make_cfg(tmp_path, port=port, body="4lw.commands.whitelist=*\n")
    env = {**os.environ, "ZOO_LOG_DIR": str(tmp_path / "logs")}
    yield cfg, env, port
    pid = cli.read_pid(tmp_path / "data" / "zookeeper_server.pid")
    if pid is not None and cli.pid_alive(pid):
        os.kill(pid, signal.SIGKILL)


@pytest.mark.server
def test_start_stop_real_server(daemon: tuple[Path, dict[str, str], int]) -> None:
    cfg, env, port = daemon
    pid_file = cfg.parent / "data" / "zookeeper_server.pid"
    rc, out, _ = run(["start", str(cfg)], env)
    assert (rc, out) == (0, "Starting zookeeper ... STARTED\n")
    pid = int(pid_file.read_text())  # written without a newline, like `echo -n $!`
    assert cli.pid_alive(pid)
    assert _ruok(port) == "imok"
    rc, out, _ = run(["start", str(cfg)], env)
    assert (rc, out) == (1, f"Starting zookeeper ... already running as process {pid}.\n")

    rc, out, _ = run(["restart", str(cfg)], env)
    assert rc == 0
    assert out == "Stopping zookeeper ... STOPPED\nStarting zookeeper ... STARTED\n"
    assert not cli.pid_alive(pid)
    new_pid = int(pid_file.read_text())
    assert new_pid != pid and cli.pid_alive(new_pid)

    rc, out, _ = run(["stop", str(cfg)], env)
    assert (rc, out) == (0, "Stopping zookeeper ... STOPPED\n")
    assert not pid_file.exists() and not cli.pid_alive(new_pid)
    rc, out, _ = run(["status", str(cfg)], env)
    assert rc == 1 and out.splitlines()[-1] == NOT_RUNNING


@pytest.mark.server
def test_status_real_server(daemon: tuple[Path, dict[str, str], int]) -> None:
    cfg, env, port = daemon
    assert run(["start", str(cfg)], env)[0] == 0
    try:
        rc, out, _ = run(["status", str(cfg)], env)
    finally:
        run(["stop", str(cfg)], env)
    assert out.splitlines() == [
        f"Client port found: {port}. Client address: 127.0.0.1. Client SSL: false.",
        "Mode: standalone",
    ]
    assert rc == 0
