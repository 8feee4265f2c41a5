"""The AdminServer of a real pyzk process: keys, bad input, and the client port.

Apache parity of the answers is compat_tests/test_adminserver.py; here: the
``admin.*`` keys and their ``-Dzookeeper.admin.*`` forms, a port in use
(logged, the server runs on), clients that misbehave over HTTP, and polling
that must not disturb the client port.
"""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from pyzk.testing.servers import PyzkServer, free_port, wait_for

pytestmark = pytest.mark.server


def get(port: int, path: str, timeout: float = 10.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_defaults_off_in_harness_and_sysprop_form(tmp_path: Path) -> None:
    """The harness keeps the admin server off unless asked; the JVM-flag form
    of the keys (SERVER_JVMFLAGS) turns it on and moves it."""
    port = free_port()
    with PyzkServer(tmp_path / "off") as srv:
        assert srv.four_letter("ruok") == "imok"
        assert "Started AdminServer" not in srv.log_path.read_text()
    flags = ["-Dzookeeper.admin.enableServer=true", f"-Dzookeeper.admin.serverPort={port}",
             "-Dzookeeper.admin.serverAddress=127.0.0.1", "-Dzookeeper.admin.commandURL=/cmd"]
    srv = PyzkServer(tmp_path / "flags", jvm_flags=flags,
                     extra_cfg={"admin.enableServer": "true"})
    with srv:
        status, body = get(port, "/cmd/ruok")
        assert status == 200 and json.loads(body) == {"command": "ruok", "error": None}
        assert get(port, "/commands/ruok")[0] == 404
        status, body = get(port, "/cmd")
        assert status == 200 and '<a href="/cmd/monitor">monitor</a>' in body


def test_port_in_use_is_logged_and_server_runs(tmp_path: Path) -> None:
    """As Apache: "Problem starting AdminServer" and the server goes on."""
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 0)
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    try:
        port = blocker.getsockname()[1]
        with PyzkServer(tmp_path / "d", admin_port=port) as srv:
            assert srv.four_letter("ruok") == "imok"
            wait_for(lambda: "Problem starting AdminServer" in srv.log_path.read_text(),
                     what="the admin error in the log")
    finally:
        blocker.close()
    with PyzkServer(tmp_path / "bad", extra_cfg={
            "admin.enableServer": "true", "admin.serverAddress": "256.1.2.3",
            "admin.serverPort": str(free_port())}) as srv:
        assert srv.four_letter("ruok") == "imok"
        assert "Problem starting AdminServer" in srv.log_path.read_text()


def _raw(port: int, data: bytes, *, read: bool = True) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        if not read:
            return b""
        s.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except (ConnectionResetError, TimeoutError):
            pass
        return b"".join(chunks)


def test_bad_http_never_hurts(tmp_path: Path) -> None:
    """Garbage, half requests, hang-ups mid-request, odd query strings, huge
    headers: answered or dropped, and the server still answers both ports."""
    admin = free_port()
    with PyzkServer(tmp_path / "d", admin_port=admin,
                    extra_cfg={"admin.idleTimeout": "500"}) as srv:
        _raw(admin, b"\x16\x03\x01\x00\xff garbage\r\n\r\n")
        _raw(admin, b"GET /commands/monitor HTTP/1.1\r\nHost: x\r\n", read=False)
        _raw(admin, b"GET /commands/mon", read=False)
        for _ in range(20):  # hang up right after asking: the answer has no reader
            _raw(admin, b"GET /commands/monitor HTTP/1.1\r\nHost: x\r\n\r\n", read=False)
        out = _raw(admin, b"GET /commands/ruok HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 100000
                   + b"\r\n\r\n")
        assert out == b"" or out.startswith(b"HTTP/1.1 4")
        for path in ("/commands/stmk?traceMask=%ZZ", "/commands/stmk?=&&=&traceMask",
                     "/commands/%00", "/commands/" + "x" * 5000, "/commands/../commands/ruok",
                     "/commands/dump?" + "&".join(f"k{i}=v" for i in range(500))):
            status, _ = get(admin, path)
            assert status in (200, 400, 404, 414), path
        # an idle keep-alive connection is closed after admin.idleTimeout
        with socket.create_connection(("127.0.0.1", admin), timeout=5) as s:
            s.sendall(b"GET /commands/ruok HTTP/1.1\r\nHost: x\r\n\r\n")
            deadline = time.monotonic() + 5
            data = b""
            while time.monotonic() < deadline:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
            assert data.startswith(b"HTTP/1.1 200") and time.monotonic() < deadline
        assert get(admin, "/commands/ruok")[0] == 200
        assert srv.four_letter("ruok") == "imok"
        log = srv.log_path.read_text()
        assert "Traceback" not in log and "Error handling request" not in log


def test_polling_does_not_break_the_client_port(tmp_path: Path) -> None:
    """Two pollers read monitor/stats/dump/dirs as fast as they can while a
    client reads and writes: every client op succeeds, promptly."""
    from kazoo.client import KazooClient

    admin = free_port()
    with PyzkServer(tmp_path / "d", admin_port=admin) as srv:
        stop = threading.Event()
        polled = [0]
        errors: list[BaseException] = []

        def poll(paths: list[str]) -> None:
            try:
                while not stop.is_set():
                    for p in paths:
                        status, body = get(admin, p)
                        assert status == 200 and json.loads(body)["error"] is None, body
                        polled[0] += 1
            except BaseException as e:  # reported below
                errors.append(e)

        threads = [threading.Thread(target=poll, args=(ps,), daemon=True) for ps in (
            ["/commands/monitor", "/commands/stats"], ["/commands/dump", "/commands/dirs"])]
        for t in threads:
            t.start()
        zk = KazooClient(hosts=srv.address, timeout=10)
        zk.start(timeout=30)
        try:
            zk.create("/p", b"0")
            slowest = 0.0
            for i in range(300):
                t0 = time.monotonic()
                if i % 10 == 0:
                    zk.set("/p", str(i).encode())
                assert zk.get("/p")[0]
                slowest = max(slowest, time.monotonic() - t0)
            assert slowest < 2.0
        finally:
            stop.set()
            for t in threads:
                t.join(15)
            zk.stop()
            zk.close()
        assert not errors, errors[0]
        assert polled[0] > 10
        mntr = json.loads(get(admin, "/commands/mntr")[1])
        assert mntr["znode_count"] == 6 and mntr["server_state"] == "standalone"
