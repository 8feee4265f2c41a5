"""pytest plugin: real ZooKeeper servers and ensembles for tests, no JVM.

Registered through the ``pytest11`` entry point as ``pyzk``, so installing
pyzk-server is enough. Fixtures:

``zk_server``
    one standalone pyzk for the whole session, on a free port with a
    temporary data directory (started in about half a second).
``zk_hosts``
    its connection string.
``zk_client``
    a started kazoo client chrooted to a fresh path for each test, so tests
    never see each other's znodes; the path is deleted afterwards.
``zk_ensemble``
    a factory: ``zk_ensemble(3, observers=1)`` starts an ensemble (size and
    observers default to the test's ``@pytest.mark.zk_ensemble(size=...,
    observers=...)`` marker, else 3 and 0) whose quorum and election traffic
    goes through pyzk's fault proxy, with ``kill``, ``restart``, ``pause``,
    ``resume``, ``partition``, ``heal``, ``leader`` and ``expire_session``.

Options: ``--zk-server=HOST:PORT`` runs the same tests against a server
that is already running (Apache or pyzk; ``zk_ensemble`` is then not
available), ``--zk-apache`` against Debian's Apache ZooKeeper instead of
pyzk, ``--zk-kazoo-harness`` makes kazoo's own test harness
(``kazoo.testing``) start pyzk where it would start Java.

Safe under pytest-xdist: every worker picks its own free ports and
directories. Servers run in their own process groups and are killed at
exit, even when the run is interrupted; when a test fails, the tail of the
log of each server it used is attached to its report.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import subprocess
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pyzk.testing.faultproxy import FaultProxy, route_ensemble
from pyzk.testing.servers import (
    ApacheServer,
    Ensemble,
    PyzkServer,
    ServerProcess,
    apache_available,
    wait_for,
)

#: How long a fixture waits for a server or an ensemble to serve.
START_TIMEOUT = 60.0
LOG_TAIL_LINES = 60

_USED = pytest.StashKey[list[ServerProcess]]()


class ExternalServer:
    """A server given by ``--zk-server``: already running, not ours to stop."""

    def __init__(self, address: str) -> None:
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise pytest.UsageError(f"--zk-server wants HOST:PORT, not {address!r}")
        self.host = host
        self.port = int(port)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return "(an external server: its log is not ours)"


class ZkEnsemble:
    """A started ensemble and the faults a test can put on it.

    Members are numbered from 1; observers are the last ``observers`` sids.
    """

    def __init__(self, ensemble: Ensemble, proxy: FaultProxy) -> None:
        self.ensemble = ensemble
        self.proxy = proxy

    @property
    def servers(self) -> dict[int, ServerProcess]:
        return self.ensemble.servers

    @property
    def hosts(self) -> str:
        """The connection string of every member."""
        return self.ensemble.hosts()

    def address(self, sid: int) -> str:
        return self.ensemble[sid].address

    def leader(self, timeout: float = 30.0) -> int:
        """The sid of the leader, once every running member serves."""
        return self.ensemble.wait_leader(timeout)

    def kill(self, sid: int) -> None:
        """SIGKILL member ``sid`` (its data directory stays)."""
        self.ensemble[sid].kill()

    def restart(self, sid: int, timeout: float = START_TIMEOUT) -> None:
        """Stop ``sid`` if it runs, start it again on the same ports and data."""
        srv = self.ensemble[sid]
        srv.stop()
        srv.start(timeout, wait=False)
        srv.wait_ready(timeout)

    def pause(self, sid: int) -> None:
        """SIGSTOP ``sid``'s process group: alive to TCP, silent to peers."""
        self._signal(sid, signal.SIGSTOP)

    def resume(self, sid: int) -> None:
        self._signal(sid, signal.SIGCONT)

    def _signal(self, sid: int, sig: int) -> None:
        pid = self.ensemble[sid].pid
        if pid is None:
            raise ValueError(f"member {sid} is not running")
        os.killpg(pid, sig)

    def partition(self, *groups: int | list[int] | tuple[int, ...]) -> None:
        """Cut the ensemble into groups: ``partition([1], [2, 3])``; plain sids
        are one group and every other member the other: ``partition(1)``."""
        if all(isinstance(g, int) for g in groups):
            side = {int(g) for g in groups}  # type: ignore[arg-type]
            rest = [s for s in self.servers if s not in side]
            self.proxy.partition(sorted(side), rest)
        else:
            self.proxy.partition(*[[g] if isinstance(g, int) else list(g) for g in groups])

    def heal(self) -> None:
        """Undo partitions and blocks: every link carries traffic again."""
        self.proxy.heal()

    def expire_session(self, client: Any, timeout: float = 30.0) -> None:
        """Expire ``client``'s session the way kazoo's harness does: another
        connection takes the session over and closes it, so the server ends
        it; returns once ``client`` saw its session lost and reconnected."""
        expire_session(client, timeout)

    def stop(self) -> None:
        for sid in self.servers:
            # a paused member would ignore SIGTERM until its timeout
            with contextlib.suppress(ValueError, ProcessLookupError):
                self.resume(sid)
        self.ensemble.stop()


def expire_session(client: Any, timeout: float = 30.0) -> None:
    """Expire a started kazoo client's session from a second connection."""
    from kazoo.client import KazooClient
    from kazoo.protocol.states import KazooState

    lost = threading.Event()
    back = threading.Event()

    def listen(state: Any) -> bool | None:
        if state == KazooState.LOST:
            lost.set()
        elif lost.is_set() and state == KazooState.CONNECTED:
            back.set()
            return True
        return None

    client.add_listener(listen)
    session_id, password = client.client_id
    hosts = ",".join(f"{h}:{p}" for h, p in client.hosts)
    other = KazooClient(hosts=hosts, client_id=(session_id, password), timeout=10)
    other.start(timeout=timeout)
    other.stop()  # closing it ends the session for the first connection too
    other.close()
    # the first connection learns it at its next reply; nudge it
    with contextlib.suppress(Exception):
        client.exists_async("/")
    if not lost.wait(timeout):
        raise AssertionError("the client was not told its session expired")
    if not back.wait(timeout):
        raise AssertionError("the client did not reconnect with a new session")


# ---------------------------------------------------------------------- options


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("pyzk", "ZooKeeper servers for tests (pyzk)")
    group.addoption("--zk-server", metavar="HOST:PORT", default=None,
                    help="run the zk_* fixtures against this running server")
    group.addoption("--zk-apache", action="store_true", default=False,
                    help="start Debian's Apache ZooKeeper instead of pyzk")
    group.addoption("--zk-kazoo-harness", action="store_true", default=False,
                    help="make kazoo.testing's harness start pyzk where it starts Java")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "zk_ensemble(size=3, observers=0): the ensemble zk_ensemble() starts")
    if config.getoption("--zk-kazoo-harness"):
        _use_pyzk_in_kazoo_harness()


# ---------------------------------------------------------------------- processes

class _Reaper:
    """Every server the plugin started, killed at interpreter exit."""

    def __init__(self) -> None:
        self.servers: list[ServerProcess] = []
        atexit.register(self.kill_all)

    def add(self, srv: ServerProcess) -> ServerProcess:
        self.servers.append(srv)
        return srv

    def kill_all(self) -> None:
        for srv in self.servers:
            with contextlib.suppress(Exception):
                srv.kill()


@pytest.fixture(scope="session")
def _zk_reaper() -> _Reaper:
    return _Reaper()


def _server_class(config: pytest.Config) -> type[ServerProcess]:
    if config.getoption("--zk-apache"):
        if not apache_available():
            pytest.skip("--zk-apache: Apache ZooKeeper (Debian's zookeeper package) "
                        "is not installed")
        return ApacheServer
    return PyzkServer


def _note_used(request: pytest.FixtureRequest, *servers: Any) -> None:
    node = request.node
    used = node.stash.setdefault(_USED, [])
    used.extend(s for s in servers if s not in used)


@pytest.fixture(scope="session")
def zk_server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
              _zk_reaper: _Reaper) -> Iterator[Any]:
    """A standalone server for the session (or the ``--zk-server`` one)."""
    external = request.config.getoption("--zk-server")
    if external:
        yield ExternalServer(external)
        return
    cls = _server_class(request.config)
    srv = _zk_reaper.add(cls(tmp_path_factory.mktemp("zk_server")))
    srv.start(START_TIMEOUT)
    try:
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="session")
def zk_hosts(zk_server: Any) -> str:
    """The connection string of ``zk_server``."""
    return str(zk_server.address)


@pytest.fixture
def zk_client(request: pytest.FixtureRequest, zk_server: Any, zk_hosts: str) -> Iterator[Any]:
    """A started kazoo client chrooted to a path of its own."""
    from kazoo.client import KazooClient

    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    root = f"/pytest-{worker}-{uuid.uuid4().hex[:12]}"
    admin = KazooClient(hosts=zk_hosts, timeout=10)
    admin.start(timeout=30)
    try:
        admin.ensure_path(root)
        client = KazooClient(hosts=zk_hosts + root, timeout=10)
        client.start(timeout=30)
        try:
            yield client
        finally:
            client.stop()
            client.close()
        admin.delete(root, recursive=True)
    finally:
        admin.stop()
        admin.close()


@pytest.fixture
def zk_ensemble(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
                _zk_reaper: _Reaper) -> Iterator[Callable[..., ZkEnsemble]]:
    """Factory: ``zk_ensemble(size, observers=0, **zoo_cfg)`` -> a started
    :class:`ZkEnsemble`, stopped after the test."""
    if request.config.getoption("--zk-server"):
        pytest.skip("zk_ensemble starts its own servers: not with --zk-server")
    marker = request.node.get_closest_marker("zk_ensemble")
    defaults = dict(marker.kwargs) if marker else {}
    kind = "apache" if _server_class(request.config) is ApacheServer else "pyzk"
    made: list[tuple[ZkEnsemble, FaultProxy]] = []

    def make(size: int | None = None, observers: int | None = None,
             **zoo_cfg: str) -> ZkEnsemble:
        n = int(size if size is not None else defaults.get("size", 3))
        obs = int(observers if observers is not None else defaults.get("observers", 0))
        if n < 1 or not 0 <= obs < n:
            raise ValueError(f"an ensemble of {n} with {obs} observers")
        sids = list(range(1, n + 1))
        ens = Ensemble(tmp_path_factory.mktemp("zk_ensemble"), dict.fromkeys(sids, kind),
                       observers=tuple(sids[n - obs:]), extra_cfg=dict(zoo_cfg))
        proxy = FaultProxy()
        proxy.start()
        try:
            route_ensemble(ens, proxy)
            for srv in ens.servers.values():
                _zk_reaper.add(srv)
            ens.start(START_TIMEOUT)
            handle = ZkEnsemble(ens, proxy)
            handle.leader(START_TIMEOUT)
        except BaseException:
            ens.stop()
            proxy.stop()
            raise
        made.append((handle, proxy))
        _note_used(request, *ens.servers.values())
        return handle

    try:
        yield make
    finally:
        for handle, proxy in made:
            handle.stop()
            proxy.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        used = list(item.stash.get(_USED, []))
        funcargs = getattr(item, "funcargs", {})
        if "zk_server" in funcargs and funcargs["zk_server"] not in used:
            used.insert(0, funcargs["zk_server"])
        for srv in used:
            report.sections.append((f"zk server {srv.address} log (tail)",
                                    srv.log_tail(LOG_TAIL_LINES)))


# ---------------------------------------------------------------------- kazoo's harness

JAVA_MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"


def java_to_pyzk(args: list[str]) -> tuple[list[str], dict[str, str]] | None:
    """The pyzk command for a ``java ... QuorumPeerMain zoo.cfg`` command line,
    and its environment (the ``-D`` flags as SERVER_JVMFLAGS); None for any
    other command."""
    if not args or Path(str(args[0])).name != "java" or JAVA_MAIN not in args:
        return None
    i = args.index(JAVA_MAIN)
    if i + 1 >= len(args):
        return None
    flags = [a for a in args[1:i] if a.startswith("-D")]
    env = dict(os.environ)
    env["SERVER_JVMFLAGS"] = " ".join(flags)
    env["PYZK_DIE_WITH_PARENT"] = str(os.getpid())  # no orphan if the run is killed
    return [sys.executable, "-m", "pyzk", "start-foreground", args[i + 1]], env


class _SubprocessShim:
    """Stands in for the ``subprocess`` module inside kazoo.testing.common:
    a ZooKeeper server launch runs pyzk (logging where kazoo's harness reads
    its log), everything else goes to the real module."""

    def __getattr__(self, name: str) -> Any:
        return getattr(subprocess, name)

    def Popen(self, args: Any, **kw: Any) -> subprocess.Popen[bytes]:  # noqa: N802
        got = java_to_pyzk(list(args)) if isinstance(args, list | tuple) else None
        if got is None:
            return subprocess.Popen(args, **kw)
        argv, env = got
        log_path = Path(argv[-1]).parent / "zookeeper.log"
        logf = open(log_path, "ab")  # noqa: SIM115 - the child's stdout
        try:
            return subprocess.Popen(argv, env=env, stdout=logf, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL)
        finally:
            logf.close()


def _kazoo_ssl_configuration(cluster: Any) -> None:
    """Stands in for ZookeeperCluster.perform_ssl_certs_generation, whose
    pyOpenSSL calls (X509.add_extensions) newer pyOpenSSL releases removed:
    the same CA, server and client material, made with cryptography."""
    if cluster._ssl_configuration:
        return
    import jks  # pyjks, as kazoo's harness uses
    from cryptography.hazmat.primitives import serialization

    from pyzk.testing.certs import TestPKI

    der, pem = serialization.Encoding.DER, serialization.Encoding.PEM
    pki = TestPKI("ca.kazoo.org")
    server = pki.issue("localhost")
    client = pki.issue("client")
    key_der = server.key.private_bytes(der, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption())
    chain = [server.cert.public_bytes(der), pki.ca_cert.public_bytes(der)]
    cluster._ssl_configuration = {
        "ca_cert_pem": pki.ca_pem(),
        "client_cert_pem": client.cert.public_bytes(pem),
        "client_key_pem": client.key_pem(),
        "truststore": jks.KeyStore.new(
            "jks", [jks.TrustedCertEntry.new("kazoo ca", pki.ca_cert.public_bytes(der))]),
        "keystore": jks.KeyStore.new(
            "jks", [jks.PrivateKeyEntry.new("server cert", chain, key_der, "pkcs8")]),
    }


def _use_pyzk_in_kazoo_harness() -> None:
    try:
        import kazoo.testing.common as common
    except ImportError as e:
        raise pytest.UsageError(f"--zk-kazoo-harness needs kazoo and pyOpenSSL: {e}") from None
    common.subprocess = _SubprocessShim()  # type: ignore[assignment]
    common.ZookeeperCluster.perform_ssl_certs_generation = _kazoo_ssl_configuration
    # the harness insists on knowing where ZooKeeper is and which version it
    # is; pyzk speaks 3.8 and needs no jars
    os.environ.setdefault("ZOOKEEPER_VERSION", "3.8.0")
    os.environ.setdefault("ZOOKEEPER_CLASSPATH", "pyzk")


__all__ = ["ExternalServer", "ZkEnsemble", "expire_session", "java_to_pyzk", "wait_for"]
