"""Start Apache ZooKeeper and pyzk as child processes, the same way.

Both servers get a zoo.cfg written by us into their data directory, run in
their own process group (so a kill reaches the JVM or the Python process and
anything it spawned), log to a file beside the config and are ready only when
a real ConnectRequest handshake is answered. The readiness probe reconnects a
made-up session with a wrong password: Apache answers that with an "invalid
session" ConnectResponse without logging any transaction, so a fresh server
still numbers its first createSession zxid 0x1 and tests can compare zxids
exactly.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from pyzk.jute.records import ConnectRequest, ConnectResponse

log = logging.getLogger(__name__)
T = TypeVar("T")

REPO_ROOT = Path(__file__).resolve().parents[2]

APACHE_JARS = (
    "/usr/share/java/zookeeper.jar",
    "/usr/share/java/slf4j-nop.jar",
    # NettyServerCnxnFactory (needed for secureClientPort) uses more of Netty
    # than zookeeper.jar's manifest lists.
    "/usr/share/java/netty-codec.jar",
    "/usr/share/java/netty-handler.jar",
    "/usr/share/java/netty-resolver.jar",
    "/usr/share/java/netty-transport-native-unix-common.jar",
    # SnapStream's snappy mode (zookeeper.snapshot.compression.method=snappy)
    "/usr/share/java/snappy-java.jar",
)
APACHE_CLASSPATH = ":".join(("/etc/zookeeper/conf", *APACHE_JARS))
# Apache's Jetty AdminServer needs the servlet API, Jetty 9 and Jackson (Debian's).
APACHE_ADMIN_JARS = tuple(f"/usr/share/java/{j}.jar" for j in (
    "servlet-api", "jetty9-server", "jetty9-servlet", "jetty9-http", "jetty9-io",
    "jetty9-util", "jetty9-security", "jackson-databind", "jackson-core",
    "jackson-annotations"))
APACHE_MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"
CLI_MT = "/usr/lib/zookeeper/bin/cli_mt"

#: Run every standalone pyzk server the tests start with this many worker
#: processes (pyzk.shell.workers): the suite's workers variant.
TEST_WORKERS_ENV = "PYZK_TEST_WORKERS"

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
# A session id no server hands out (Apache's carry the start time in the
# high bits); reconnecting it with a zero password is refused without a txn.
_PROBE_SESSION = 0x7E57_0000_0000_0001
_LEN = struct.Struct(">i")


def apache_available() -> bool:
    """True when java and Apache's jars are installed."""
    return shutil.which("java") is not None and all(os.path.exists(j) for j in APACHE_JARS)


def require_reference() -> None:
    """Skip the calling test when Apache is missing; fail instead when required.

    CI sets PYZK_REQUIRE_REFERENCE=1 so a broken Apache install cannot turn
    the whole differential suite into silent skips.
    """
    if apache_available():
        return
    _reference_missing(
        "Apache ZooKeeper 3.8 reference is not installed (need java and "
        f"{', '.join(APACHE_JARS)}; apt-get install zookeeper zookeeper-bin)"
    )


def require_reference_tool(path: str, what: str) -> None:
    """Like require_reference, for one of Apache's programs (zkCli.sh, cli_mt):
    a missing one skips the test, or fails it under PYZK_REQUIRE_REFERENCE=1."""
    require_reference()
    if not os.access(path, os.X_OK):
        _reference_missing(f"{what} is not installed at {path} (apt-get install zookeeper-bin)")


def _reference_missing(msg: str) -> None:
    import pytest

    if os.environ.get("PYZK_REQUIRE_REFERENCE") == "1":
        pytest.fail(msg)
    pytest.skip(msg)


def second_kind() -> str:
    """The implementation compat tests compare with Apache (default pyzk).

    PYZK_COMPAT_SECOND=apache compares Apache with a second fresh Apache:
    outcomes must then be equal, which validates the harness itself.
    """
    kind = os.environ.get("PYZK_COMPAT_SECOND", "pyzk")
    if kind not in ("apache", "pyzk"):
        raise ValueError(f"PYZK_COMPAT_SECOND must be apache or pyzk, not {kind!r}")
    return kind


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free right now on ``host`` (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def free_ports(n: int, host: str = "127.0.0.1") -> list[int]:
    """``n`` distinct TCP ports free right now on ``host``.

    All ``n`` sockets are bound before any is closed, so the kernel cannot
    hand the same port out twice (separate :func:`free_port` calls can, and
    an ensemble then got a server line with equal quorum and election ports).
    """
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
                 for _ in range(n)]
        for s in socks:
            s.bind((host, 0))
        return [s.getsockname()[1] for s in socks]


def four_letter(host: str, port: int, cmd: str | bytes, timeout: float = 10.0) -> str:
    """Send a four-letter word and return everything the server writes back.

    ``cmd`` may be bytes to append arguments (stmk takes an 8-byte mask).
    """
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(cmd if isinstance(cmd, bytes) else cmd.encode("ascii"))
        with contextlib.suppress(OSError):
            s.shutdown(socket.SHUT_WR)
        chunks = []
        while True:
            try:
                b = s.recv(65536)
            except ConnectionResetError:
                break
            if not b:
                break
            chunks.append(b)
    return b"".join(chunks).decode("utf-8", "replace")


def _recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        b = sock.recv(n - len(buf))
        if not b:
            raise ConnectionError("connection closed by server")
        buf += b
    return bytes(buf)


def probe_handshake(host: str, port: int, timeout: float = 2.0) -> ConnectResponse:
    """One ConnectRequest/ConnectResponse exchange that creates no session."""
    req = ConnectRequest(0, 0, 30000, _PROBE_SESSION, b"\0" * 16).to_bytes() + b"\0"
    with socket.create_connection((host, port), timeout=timeout) as s:
        s.sendall(_LEN.pack(len(req)) + req)
        (n,) = _LEN.unpack(_recv_exact(s, 4))
        return ConnectResponse.from_bytes(_recv_exact(s, n))


class ServerError(RuntimeError):
    """A server did not start or died; the message carries its log's tail."""


class ServerProcess:
    """A ZooKeeper-protocol server run as a child process from its own zoo.cfg.

    Subclasses say which command to run; everything else (config, logging,
    readiness, cleanup) is shared so Apache and pyzk are treated identically.
    """

    kind = "server"

    def __init__(
        self,
        data_dir: str | Path,
        *,
        port: int | None = None,
        extra_cfg: dict[str, str] | None = None,
        jvm_flags: list[str] | None = None,
        myid: int | None = None,
        admin_port: int | None = None,
    ) -> None:
        self.host = "127.0.0.1"
        self.myid = myid
        #: With a port, the AdminServer listens there on 127.0.0.1 (default: disabled).
        self.admin_port = admin_port
        self.data_dir = Path(data_dir).resolve()
        self.port = port if port is not None else free_port(self.host)
        self.extra_cfg = dict(extra_cfg or {})
        self.jvm_flags = list(jvm_flags or [])
        self.cfg_path = self.data_dir / "zoo.cfg"
        self.log_path = self.data_dir / "server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._logf = None

    # --- subclass hooks -------------------------------------------------
    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def cwd(self) -> Path:
        return self.data_dir

    # --- lifecycle ------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def config(self) -> dict[str, str]:
        cfg = {
            "tickTime": "2000",
            "dataDir": str(self.data_dir),
            "clientPort": str(self.port),
            "clientPortAddress": self.host,
            "4lw.commands.whitelist": "*",
            "admin.enableServer": "false",
        }
        if self.admin_port is not None:
            cfg.update({"admin.enableServer": "true", "admin.serverPort": str(self.admin_port),
                        "admin.serverAddress": self.host})
        cfg.update(self.extra_cfg)
        return cfg

    def write_config(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        text = "".join(f"{k}={v}\n" for k, v in self.config().items())
        self.cfg_path.write_text(text)
        if self.myid is not None:
            (self.data_dir / "myid").write_text(f"{self.myid}\n")

    def start(self, timeout: float = READY_TIMEOUT, *, wait: bool = True) -> None:
        """Launch the server; unless ``wait`` is false, return once it serves
        (an ensemble member serves only once a quorum formed: start them all
        with ``wait=False``, then :meth:`wait_ready` each)."""
        if self.running():
            raise ServerError(f"{self.kind} already running (pid {self.pid})")
        self.write_config()
        self._logf = open(self.log_path, "ab")  # noqa: SIM115 - closed in _reap
        self._logf.write(f"--- start {' '.join(self.command())}\n".encode())
        self._logf.flush()
        self._proc = subprocess.Popen(
            self.command(),
            cwd=self.cwd(),
            env=self.environment(),
            stdin=subprocess.DEVNULL,
            stdout=self._logf,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.info("%s started pid %d on %s", self.kind, self._proc.pid, self.address)
        if not wait:
            return
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.kill()
            raise

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Retry the handshake until it is answered (Apache may accept TCP
        and even answer ruok before it serves sessions)."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self._proc is None or self._proc.poll() is not None:
                code = None if self._proc is None else self._proc.returncode
                raise ServerError(f"{self.kind} exited with {code}\n{self.log_tail()}")
            try:
                probe_handshake(self.host, self.port, timeout=2.0)
                return
            except (OSError, ValueError) as e:
                last = e
                time.sleep(0.05)
        raise ServerError(
            f"{self.kind} on {self.address} not ready after {timeout}s ({last!r})\n"
            + self.log_tail()
        )

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _signal_group(self, sig: int) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self._proc.pid, sig)

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """SIGTERM, then SIGKILL the group if it does not exit in time."""
        if self._proc is None:
            return
        if self._proc.poll() is None:
            self._signal_group(signal.SIGTERM)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                log.warning("%s pid %d ignored SIGTERM; killing", self.kind, self._proc.pid)
        self._reap()

    def kill(self) -> None:
        """SIGKILL the whole process group (a crash, for recovery tests)."""
        if self._proc is None:
            return
        self._reap()

    def _reap(self) -> None:
        assert self._proc is not None
        self._signal_group(signal.SIGKILL)
        try:
            self._proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:  # pragma: no cover - kernel trouble
            log.error("%s pid %d survived SIGKILL", self.kind, self._proc.pid)
        self._proc = None
        if self._logf is not None:
            self._logf.close()
            self._logf = None

    def restart(self, timeout: float = READY_TIMEOUT) -> None:
        self.stop()
        self.start(timeout)

    def rss_bytes(self) -> int:
        """Resident set size of the server process, from /proc."""
        if self._proc is None:
            return 0
        try:
            with open(f"/proc/{self._proc.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        return int(line.split()[1]) * 1024
        except FileNotFoundError:
            pass
        return 0

    def log_tail(self, lines: int = 40) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])

    def four_letter(self, cmd: str | bytes) -> str:
        return four_letter(self.host, self.port, cmd)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.address}, pid={self.pid}, dir={self.data_dir})"


class ApacheServer(ServerProcess):
    """Apache ZooKeeper 3.8 (Debian's jars) in the foreground, as the oracle."""

    kind = "apache"

    def command(self) -> list[str]:
        if self.admin_port is not None:
            return ["java", "-cp", ":".join((APACHE_CLASSPATH, *APACHE_ADMIN_JARS)),
                    *self.jvm_flags, APACHE_MAIN, str(self.cfg_path)]
        return [
            "java",
            "-cp",
            APACHE_CLASSPATH,
            "-Dzookeeper.admin.enableServer=false",
            *self.jvm_flags,
            APACHE_MAIN,
            str(self.cfg_path),
        ]


class PyzkServer(ServerProcess):
    """pyzk via its CLI, exactly as a user starts it.

    ``jvm_flags`` are passed as SERVER_JVMFLAGS, the variable through which
    users give Apache ``-Dzookeeper.X=Y`` settings and which pyzk honours.
    """

    kind = "pyzk"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "pyzk", "start-foreground", str(self.cfg_path)]

    def config(self) -> dict[str, str]:
        """PYZK_TEST_WORKERS=N (the suite's workers variant) gives every
        standalone server ``pyzk.workers=N`` unless the test set its own."""
        cfg = super().config()
        workers = os.environ.get(TEST_WORKERS_ENV, "")
        standalone = not any(k.startswith("server.") for k in cfg)
        if workers and standalone and "pyzk.workers" not in cfg:
            cfg["pyzk.workers"] = workers
        return cfg

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        path = env.get("PYTHONPATH")
        env["PYTHONPATH"] = str(REPO_ROOT) + (os.pathsep + path if path else "")
        if self.jvm_flags:
            env["SERVER_JVMFLAGS"] = " ".join(self.jvm_flags)
        else:
            env.pop("SERVER_JVMFLAGS", None)
        # the server shuts itself down if this process dies without stopping
        # it (a test run killed or crashed: no server is left behind)
        env["PYZK_DIE_WITH_PARENT"] = str(os.getpid())
        return env

    def cwd(self) -> Path:
        return REPO_ROOT


SERVER_CLASSES: dict[str, type[ServerProcess]] = {"apache": ApacheServer, "pyzk": PyzkServer}


class Ensemble:
    """Several servers (Apache, pyzk or a mix) configured as one ensemble on loopback.

    ``kinds`` maps each sid to "apache" or "pyzk"; ``observers`` are sids with
    the ``:observer`` role. Every member gets free client, quorum and election
    ports, a ``myid`` file and the same ``server.N`` lines, so a member can be
    killed and started again on the same ports and data directory. With
    ``admin`` each member also runs its AdminServer on a free port
    (``servers[sid].admin_port``).
    """

    def __init__(
        self,
        base_dir: str | Path,
        kinds: dict[int, str],
        *,
        observers: tuple[int, ...] = (),
        tick_time: int = 200,
        init_limit: int = 10,
        sync_limit: int = 5,
        extra_cfg: dict[str, str] | None = None,
        admin: bool = False,
    ) -> None:
        self.base_dir = Path(base_dir)
        self.kinds = dict(kinds)
        pool = free_ports(4 * len(kinds))
        ports = {sid: (pool[4 * i], pool[4 * i + 1], pool[4 * i + 2])
                 for i, sid in enumerate(kinds)}
        admin_ports = {sid: pool[4 * i + 3] for i, sid in enumerate(kinds)}
        self.quorum_ports = {sid: p[1] for sid, p in ports.items()}
        self.election_ports = {sid: p[2] for sid, p in ports.items()}
        lines = {}
        for sid, (_c, q, e) in ports.items():
            role = ":observer" if sid in observers else ""
            lines[f"server.{sid}"] = f"127.0.0.1:{q}:{e}{role}"
        self.servers: dict[int, ServerProcess] = {}
        for sid, kind in kinds.items():
            cfg = {"tickTime": str(tick_time), "initLimit": str(init_limit),
                   "syncLimit": str(sync_limit), **lines, **(extra_cfg or {})}
            if sid in observers:
                cfg["peerType"] = "observer"
            cls = SERVER_CLASSES[kind]
            self.servers[sid] = cls(self.base_dir / f"{kind}{sid}", port=ports[sid][0],
                                    extra_cfg=cfg, myid=sid,
                                    admin_port=admin_ports[sid] if admin else None)

    def __getitem__(self, sid: int) -> ServerProcess:
        return self.servers[sid]

    def start(self, timeout: float = 60.0) -> None:
        """Launch every member, then wait until each serves clients.

        Largest sid first: the members that come up first elect among
        themselves, and starting the largest sid first makes it one of them,
        so tests that expect the largest sid to lead rarely see a smaller
        one win a race against a slow start."""
        for sid in sorted(self.servers, reverse=True):
            self.servers[sid].start(timeout, wait=False)
        try:
            for s in self.servers.values():
                s.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        for s in self.servers.values():
            s.stop()

    def hosts(self, sids: list[int] | None = None) -> str:
        """A client connect string for ``sids`` (default: every member)."""
        return ",".join(self.servers[s].address for s in (sids or list(self.servers)))

    def mode(self, sid: int) -> str | None:
        """The ``Mode:`` srvr reports, None when not serving or not reachable."""
        try:
            text = self.servers[sid].four_letter("srvr")
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith("Mode: "):
                return line[6:]
        return None

    def wait_leader(self, timeout: float = 30.0, among: list[int] | None = None) -> int:
        """The sid that reports ``Mode: leader`` once every running member serves."""
        deadline = time.monotonic() + timeout
        while True:
            running = [s for s in (among or list(self.servers)) if self.servers[s].running()]
            modes = {s: self.mode(s) for s in running}
            leaders = [s for s, m in modes.items() if m == "leader"]
            if len(leaders) == 1 and all(m is not None for m in modes.values()):
                return leaders[0]
            if time.monotonic() > deadline:
                raise ServerError(f"no single leader after {timeout}s: {modes}")
            time.sleep(0.05)

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for(cond: Callable[[], T], timeout: float = 20.0, what: str = "condition") -> T:
    """Poll ``cond`` every 50 ms until it returns something true (returned),
    or fail the test after ``timeout`` seconds naming ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
