"""secureClientPort against Apache: the same stores, the same clients, the same outcomes.

Each scenario starts Apache (NettyServerCnxnFactory, as TLS needs) and pyzk
on one zoo.cfg whose key and trust stores the test makes at run time, then
runs the same TLS clients against both: a client with a good certificate, one
without, one whose certificate another CA signed, one with an expired
certificate, and a plaintext client knocking on the TLS port. What each gets
(refused, or a session with its whoAmI ids and its x509 ACL outcomes) must be
equal.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from pyzk.jute import records as R
from pyzk.jute.constants import OpCode
from pyzk.testing.certs import Identity, TestPKI, write_keystore
from pyzk.testing.servers import (
    ApacheServer,
    PyzkServer,
    free_port,
    require_reference,
    require_reference_tool,
    wait_for,
)
from pyzk.testing.wire import ConnectionClosed, WireClient

pytestmark = [pytest.mark.server, pytest.mark.reference]

CLIENT_DN = x509.Name([x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
                       x509.NameAttribute(NameOID.ORGANIZATION_NAME, "pyzk, tests"),
                       x509.NameAttribute(NameOID.COMMON_NAME, "client")])
CLIENT_ID = "CN=client,O=pyzk\\, tests,C=US"
ADMIN_ID = "CN=admin"
OPEN = [R.ACL(31, R.Id("world", "anyone"))]


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    d = tmp_path_factory.mktemp("pki")
    ca, other_ca = TestPKI(), TestPKI("another CA")
    ids: dict[str, Identity] = {
        "server": ca.issue("localhost"),
        "client": ca.issue(CLIENT_DN),
        "admin": ca.issue(ADMIN_ID[3:]),
        "untrusted": other_ca.issue(CLIENT_DN),
        "expired": ca.issue(CLIENT_DN, expired=True),
    }
    (d / "ca.pem").write_bytes(ca.ca_pem())
    for name, ident in ids.items():
        (d / f"{name}.crt").write_bytes(ident.cert_pem())
        (d / f"{name}.key").write_bytes(ident.key_pem())
    return {"dir": d, "ca": ca, "ids": ids}


def _client_context(pki: dict[str, object], who: str | None) -> ssl.SSLContext:
    d: Path = pki["dir"]  # type: ignore[assignment]
    ctx = ssl.create_default_context(cafile=str(d / "ca.pem"))
    if who is not None:
        ctx.load_cert_chain(d / f"{who}.crt", d / f"{who}.key")
    return ctx


def _server_cfg(pki: dict[str, object], d: Path, kind: str, port: int,
                extra: dict[str, str]) -> dict[str, str]:
    ca: TestPKI = pki["ca"]  # type: ignore[assignment]
    ids: dict[str, Identity] = pki["ids"]  # type: ignore[assignment]
    ext = {"JKS": ".jks", "PKCS12": ".p12", "PEM": ".pem"}[kind]
    # Java reads a PKCS12 trust store only with its own trusted-cert attribute,
    # which no Python library writes: PKCS12 scenarios trust through PEM.
    trust_kind = "PEM" if kind == "PKCS12" else kind
    trust_ext = {"JKS": ".jks", "PEM": ".pem"}[trust_kind]
    password = "" if kind == "PEM" else "storepass"
    ks = write_keystore(ids["server"], d / f"keystore{ext}", kind, password)
    ts = ca.write_truststore(d / f"truststore{trust_ext}", trust_kind,
                             "" if trust_kind == "PEM" else "trustpass")
    cfg = {
        "secureClientPort": str(port),
        "serverCnxnFactory": "org.apache.zookeeper.server.NettyServerCnxnFactory",
        "ssl.keyStore.location": str(ks),
        "ssl.trustStore.location": str(ts),
    }
    if password:
        cfg["ssl.keyStore.password"] = password
    if trust_kind != "PEM":
        cfg["ssl.trustStore.password"] = "trustpass"
    cfg.update(extra)
    return cfg


def _session(port: int, ctx: ssl.SSLContext, tag: str) -> list[object]:
    """A TLS client's view: its ids, then an x509 ACL's outcomes."""
    out: list[object] = []
    c = WireClient(timeout=10)
    try:
        c.connect("127.0.0.1", port, tls=ctx)
    except (ssl.SSLError, ConnectionClosed, OSError):
        # Java sends an alert, pyzk's asyncio server hangs up without one:
        # the client is refused either way, with a different exception.
        return ["refused"]
    try:
        try:
            who = c.call_reply(OpCode.whoAmI).decode()
        except ConnectionClosed:
            # a refused certificate may end the connection after the handshake
            return ["closed after handshake"]
        out.append(sorted((i.authScheme, i.user) for i in who.clientInfo if i.authScheme != "ip"))
        path = f"/x509-{tag}"
        acl = [R.ACL(31, R.Id("x509", CLIENT_ID))]
        out.append(c.call_reply(OpCode.create, R.CreateRequest(path, b"d", acl, 0)).err)
        out.append(c.call_reply(OpCode.getData, R.GetDataRequest(path, False)).err)
        out.append(c.call_reply(OpCode.create, R.CreateRequest(
            path + "-bad", b"", [R.ACL(31, R.Id("x509", "not a dn"))], 0)).err)
        out.append(c.call_reply(OpCode.create, R.CreateRequest(
            path + "-auth", b"", [R.ACL(31, R.Id("auth", ""))], 0)).err)
    finally:
        c.close()
    return out


def _plaintext_knock(port: int) -> str:
    """A plain ConnectRequest sent to the TLS port."""
    c = WireClient(timeout=10)
    try:
        c.connect("127.0.0.1", port)
    except (ConnectionClosed, OSError):
        return "closed"
    finally:
        c.close()
    return "answered"


def _accepts(port: int) -> bool:
    """The port takes a TCP connection (closed at once, before any TLS)."""
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _four_letter_over_tls(port: int, ctx: ssl.SSLContext) -> bytes:
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        s.sendall(b"ruok")
        out = b""
        while chunk := s.recv(100):
            out += chunk
    return out


def _run(cls: type, tmp: Path, pki: dict[str, object], kind: str,
         extra: dict[str, str]) -> list[object]:
    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    cfg = _server_cfg(pki, tmp, kind, port, extra)
    outcomes: list[object] = []
    with cls(tmp / "data", extra_cfg=cfg):
        # "started" is the plain client port; Apache opens the secure one
        # right after it (ZooKeeperServerMain starts the factories in turn)
        wait_for(lambda: _accepts(port), 20, f"the secure client port {port}")
        outcomes.append(("plaintext", _plaintext_knock(port)))
        outcomes.append(("ruok", _four_letter_over_tls(port, _client_context(pki, "client"))))
        for who in ("client", None, "untrusted", "expired", "admin"):
            outcomes.append((who, _session(port, _client_context(pki, who), str(who))))
        outcomes.append(("after", _session(port, _client_context(pki, "client"), "after")))
    return outcomes


SCENARIOS = [
    ("JKS", {}),
    ("PKCS12", {}),
    ("PEM", {}),
    ("JKS", {"ssl.clientAuth": "want",
             "X509AuthenticationProvider.superUser": ADMIN_ID}),
    ("JKS", {"ssl.clientAuth": "none"}),
]


@pytest.mark.parametrize(("kind", "extra"), SCENARIOS,
                         ids=["jks-need", "pkcs12-need", "pem-need", "jks-want-super", "jks-none"])
def test_tls_clients_get_what_apache_gives(tmp_path: Path, pki: dict[str, object], kind: str,
                                           extra: dict[str, str]) -> None:
    require_reference()
    apache = _run(ApacheServer, tmp_path / "apache", pki, kind, extra)
    mine = _run(PyzkServer, tmp_path / "pyzk", pki, kind, extra)
    assert mine == apache
    # and the scenario is not vacuous: the good client got its x509 id
    assert apache[1] == ("ruok", b"imok")
    assert apache[2][1][0] == [("x509", CLIENT_ID)] or extra.get("ssl.clientAuth") == "none"


def _kazoo_view(cls: type, tmp: Path, pki: dict[str, object]) -> list[object]:
    """kazoo's own TLS client (use_ssl, certfile/keyfile, ca), as its TestSSLClient."""
    from kazoo.client import KazooClient
    from kazoo.exceptions import NoAuthError
    from kazoo.security import make_acl

    tmp.mkdir(parents=True, exist_ok=True)
    port = free_port()
    d: Path = pki["dir"]  # type: ignore[assignment]
    out: list[object] = []
    with cls(tmp / "data", extra_cfg=_server_cfg(pki, tmp, "JKS", port, {})):
        for who in ("client", "admin"):
            zk = KazooClient(hosts=f"127.0.0.1:{port}", use_ssl=True, verify_certs=True,
                             ca=str(d / "ca.pem"), certfile=str(d / f"{who}.crt"),
                             keyfile=str(d / f"{who}.key"), timeout=10)
            zk.start(timeout=15)
            try:
                if who == "client":
                    zk.create("/tls", b"over tls", acl=[make_acl("x509", CLIENT_ID, all=True)])
                    out.append(zk.get("/tls")[0])
                    out.append(zk.get_acls("/tls")[0][0].id.id)
                else:
                    try:
                        zk.get("/tls")
                        out.append("admin read")
                    except NoAuthError:
                        out.append("admin refused")
            finally:
                zk.stop()
                zk.close()
    return out


def test_kazoo_over_tls_as_against_apache(tmp_path: Path, pki: dict[str, object]) -> None:
    require_reference()
    apache = _kazoo_view(ApacheServer, tmp_path / "apache", pki)
    assert apache == [b"over tls", CLIENT_ID, "admin refused"]
    assert _kazoo_view(PyzkServer, tmp_path / "pyzk", pki) == apache


def _java_client_over_tls(cls: type, tmp: Path, pki: dict[str, object]) -> list[str]:
    """Apache's Java client (ZooKeeperMain, what zkCli.sh runs) with
    zookeeper.client.secure=true over ClientCnxnSocketNetty."""
    import subprocess

    from pyzk.testing.servers import APACHE_CLASSPATH

    tmp.mkdir(parents=True, exist_ok=True)
    ca: TestPKI = pki["ca"]  # type: ignore[assignment]
    ids: dict[str, Identity] = pki["ids"]  # type: ignore[assignment]
    client_ks = write_keystore(ids["client"], tmp / "client.jks", "JKS", "clientpass")
    client_ts = ca.write_truststore(tmp / "client-trust.jks", "JKS", "clientpass")
    port = free_port()
    # (zkCli splits ACLs at commas, so a DN with commas cannot be typed there)
    script = "create /java-tls from-java\nget /java-tls\nwhoami\nquit\n"
    with cls(tmp / "data", extra_cfg=_server_cfg(pki, tmp, "JKS", port, {})):
        p = subprocess.run(
            ["java", "-cp", APACHE_CLASSPATH,
             "-Dzookeeper.jline=false",
             "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty",
             "-Dzookeeper.client.secure=true",
             f"-Dzookeeper.ssl.keyStore.location={client_ks}",
             "-Dzookeeper.ssl.keyStore.password=clientpass",
             f"-Dzookeeper.ssl.trustStore.location={client_ts}",
             "-Dzookeeper.ssl.trustStore.password=clientpass",
             "org.apache.zookeeper.ZooKeeperMain", "-server", f"127.0.0.1:{port}"],
            input=script, capture_output=True, text=True, timeout=120)
    lines = [ln for ln in (p.stdout + p.stderr).splitlines()
             if ln.strip() and not ln.startswith(("SLF4J:", "Connecting to ", "WATCHER::",
                                                  "WatchedEvent", "Welcome to", "JLine"))]
    return lines


def test_the_java_client_over_tls_as_against_apache(tmp_path: Path,
                                                    pki: dict[str, object]) -> None:
    require_reference()
    apache = _java_client_over_tls(ApacheServer, tmp_path / "apache", pki)
    assert "from-java" in apache and f"x509: {CLIENT_ID}" in apache, apache
    assert _java_client_over_tls(PyzkServer, tmp_path / "pyzk", pki) == apache


def _unified_view(cls: type, tmp: Path, pki: dict[str, object],
                  extra: dict[str, str]) -> list[object]:
    """client.portUnification: plaintext and TLS clients on the one clientPort."""
    import socket

    tmp.mkdir(parents=True, exist_ok=True)
    cfg = _server_cfg(pki, tmp, "JKS", free_port(), {"client.portUnification": "true", **extra})
    del cfg["secureClientPort"]
    out: list[object] = []
    with cls(tmp / "data", extra_cfg=cfg) as srv:
        port = srv.port
        c = WireClient(timeout=10)
        c.connect("127.0.0.1", port)
        who = c.call_reply(OpCode.whoAmI).decode()
        out.append(("plain", sorted(i.authScheme for i in who.clientInfo)))
        c.close()
        for who_name in ("client", None, "untrusted"):
            out.append((who_name, _session(port, _client_context(pki, who_name),
                                           f"u-{who_name}")))
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"ruok")
            data = b""
            while chunk := s.recv(100):
                data += chunk
        out.append(("plain ruok", data))
        out.append(("tls ruok", _four_letter_over_tls(port, _client_context(pki, "client"))))
    return out


X509_CLASS = "org.apache.zookeeper.server.auth.X509AuthenticationProvider"


@pytest.mark.parametrize("registered", [True, False], ids=["authProvider.x509", "no-provider"])
def test_port_unification_as_against_apache(tmp_path: Path, pki: dict[str, object],
                                            registered: bool) -> None:
    """Without an explicit authProvider.x509, Apache 3.8 closes TLS clients that
    bring a certificate on the unified port (its registry was read before
    port unification named the provider); pyzk does the same."""
    require_reference()
    extra = {"authProvider.x509": X509_CLASS} if registered else {}
    apache = _unified_view(ApacheServer, tmp_path / "apache", pki, extra)
    assert apache[0] == ("plain", ["ip"])
    if registered:
        assert apache[1][1][0] == [("x509", CLIENT_ID)]
    else:
        assert apache[1] == ("client", ["refused"]), apache
    assert _unified_view(PyzkServer, tmp_path / "pyzk", pki, extra) == apache


# -- four-letter words with TLS clients, refused handshakes, status, revocation --


def _4lw(port: int, cmd: str, ctx: ssl.SSLContext | None) -> str:
    """A four-letter word over plaintext, or over TLS with ``ctx``."""
    import socket

    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw:
        s = ctx.wrap_socket(raw, server_hostname="127.0.0.1") if ctx is not None else raw
        s.sendall(cmd.encode())
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    return out.decode()


def _number(text: str, key: str) -> int:
    """The integer value of ``key`` in a srvr/mntr answer."""
    for line in text.splitlines():
        for sep in (": ", "\t", "="):
            if line.startswith(key + sep):
                return int(line[len(key) + len(sep):])
    raise AssertionError(f"no {key} in {text!r}")


def _four_letter_view(cls: type, tmp: Path, pki: dict[str, object]) -> list[object]:
    """clientPort and secureClientPort side by side, one session on each: what
    cons/stat/srvr/conf/mntr say on either port. Values that are measurements
    are reduced to what must agree (counts, deltas, which port is which)."""
    import re

    tmp.mkdir(parents=True, exist_ok=True)
    secure = free_port()
    cfg = _server_cfg(pki, tmp, "JKS", secure, {})
    out: list[object] = []
    tls = _client_context(pki, "client")
    with cls(tmp / "data", extra_cfg=cfg) as srv:
        plain, over_tls = WireClient(timeout=10), WireClient(timeout=10)
        plain.connect("127.0.0.1", srv.port)
        over_tls.connect("127.0.0.1", secure, tls=tls)
        try:
            for name, port, ctx in (("plain", srv.port, None), ("tls", secure, tls)):
                cons = _4lw(port, "cons", ctx)
                lines = [ln for ln in cons.splitlines() if ln.strip()]
                # one session and the asking connection, both "[1]" under Netty
                sids = {f"{plain.session_id:x}": "plain", f"{over_tls.session_id:x}": "tls"}
                out.append((name, "cons", len(lines), sorted(
                    re.findall(r"\[\d\]", ln)[0]
                    + "".join(f",{sids.get(m, m)}" for m in re.findall(r"sid=0x([0-9a-f]+)", ln))
                    for ln in lines)))
                stat = _4lw(port, "stat", ctx)
                clients = stat.split("Clients:\n")[1].split("\n\n")[0].splitlines()
                out.append((name, "stat clients", len(clients),
                            _number(stat, "Connections")))
                conf = _4lw(port, "conf", ctx)
                ports = {"clientPort": _number(conf, "clientPort"),
                         "secureClientPort": _number(conf, "secureClientPort")}
                out.append((name, "conf", ports == {"clientPort": srv.port,
                                                    "secureClientPort": secure}))
                # NettyServerCnxn counts each 4lw answer as a sent packet
                before = _number(_4lw(port, "srvr", ctx), "Sent")
                _4lw(port, "ruok", ctx)
                _4lw(port, "mntr", ctx)
                out.append((name, "srvr Sent after ruok, srvr, mntr",
                            _number(_4lw(port, "srvr", ctx), "Sent") - before))
            mntr = _4lw(srv.port, "mntr", None)
            for _ in range(3):
                _4lw(secure, "ruok", tls)
            _4lw(srv.port, "ruok", None)
            after = _4lw(srv.port, "mntr", None)
            out.append(("non-mTLS local connections: 1 ruok + 1 mntr",
                        _number(after, "zk_non_mtls_local_conn_count")
                        - _number(mntr, "zk_non_mtls_local_conn_count"),
                        _number(after, "zk_non_mtls_remote_conn_count")))
            out.append(("zk_num_alive_connections", _number(after, "zk_num_alive_connections")))
        finally:
            plain.close()
            over_tls.close()
    return out


def test_four_letter_words_with_a_tls_client_as_against_apache(
        tmp_path: Path, pki: dict[str, object]) -> None:
    """cons and stat list the connections of the port they are asked on (Apache
    runs a connection factory per port), conf names both ports, and the
    counters follow the Netty factory every TLS deployment runs."""
    require_reference()
    apache = _four_letter_view(ApacheServer, tmp_path / "apache", pki)
    assert ("plain", "conf", True) in apache and ("tls", "conf", True) in apache, apache
    assert apache[0] == ("plain", "cons", 2, ["[1]", "[1],plain"]), apache
    assert _four_letter_view(PyzkServer, tmp_path / "pyzk", pki) == apache


def _refusals(cls: type, tmp: Path, pki: dict[str, object], unified: bool) -> list[object]:
    """What a TLS client's error says when the server refuses its handshake:
    Java's SSLEngine sends an alert naming the reason; so must pyzk."""
    tmp.mkdir(parents=True, exist_ok=True)
    cfg = _server_cfg(pki, tmp, "JKS", free_port(), {"4lw.commands.whitelist": "*"})
    if unified:
        cfg["client.portUnification"] = "true"
        cfg["authProvider.x509"] = X509_CLASS
        del cfg["secureClientPort"]
    out: list[object] = []
    with cls(tmp / "data", extra_cfg=cfg) as srv:
        port = srv.port if unified else int(cfg["secureClientPort"])
        before = _4lw(srv.port, "mntr", None)
        for who in (None, "untrusted", "expired", "tls1.3-only"):
            ctx = _client_context(pki, None if who == "tls1.3-only" else who)
            if who == "tls1.3-only":
                ctx.minimum_version = ssl.TLSVersion.TLSv1_3
            c = WireClient(timeout=10)
            try:
                c.connect("127.0.0.1", port, tls=ctx)
                out.append((who, "connected"))
            except ssl.SSLError as e:
                out.append((who, e.reason))
            except (ConnectionClosed, OSError) as e:
                out.append((who, type(e).__name__))
            finally:
                c.close()
        after = _4lw(srv.port, "mntr", None)
        for key in ("zk_unsuccessful_handshake", "zk_auth_failed_count"):
            out.append((key, _number(after, key) - _number(before, key)))
    return out


@pytest.mark.parametrize("unified", [False, True], ids=["secureClientPort", "portUnification"])
def test_refused_handshakes_get_apaches_alerts(tmp_path: Path, pki: dict[str, object],
                                              unified: bool) -> None:
    """No certificate (clientAuth=need) is bad_certificate, an untrusted or
    expired one certificate_unknown, a TLS 1.3-only client protocol_version."""
    require_reference()
    apache = _refusals(ApacheServer, tmp_path / "apache", pki, unified)
    assert apache[:4] == [(None, "SSLV3_ALERT_BAD_CERTIFICATE"),
                          ("untrusted", "SSLV3_ALERT_CERTIFICATE_UNKNOWN"),
                          ("expired", "SSLV3_ALERT_CERTIFICATE_UNKNOWN"),
                          ("tls1.3-only", "TLSV1_ALERT_PROTOCOL_VERSION")], apache
    assert _refusals(PyzkServer, tmp_path / "pyzk", pki, unified) == apache


class _TlsOnly:
    """A server with secureClientPort and no clientPort: ready once srvr over
    TLS reports a Mode (the harness's plaintext probe has no port to try)."""

    secure_port: int
    tls: ssl.SSLContext

    def config(self) -> dict[str, str]:
        cfg = super().config()  # type: ignore[misc]
        del cfg["clientPort"], cfg["clientPortAddress"]
        return cfg

    def wait_ready(self, timeout: float = 30.0) -> None:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.running():  # type: ignore[attr-defined]
                break
            try:
                if "Mode: " in _4lw(self.secure_port, "srvr", self.tls):
                    return
            except (OSError, ssl.SSLError):
                pass
            time.sleep(0.1)
        raise AssertionError(f"TLS-only server not ready:\n{self.log_tail()}")  # type: ignore[attr-defined]


class _ApacheTlsOnly(_TlsOnly, ApacheServer):
    pass


class _PyzkTlsOnly(_TlsOnly, PyzkServer):
    pass


def _status_view(cls: type, tmp: Path, pki: dict[str, object]) -> dict[str, list[str]]:
    """zkServer.sh status and zkServer.py status against a TLS-only server,
    without and with the client's TLS settings in CLIENT_JVMFLAGS."""
    import os
    import subprocess
    import sys

    tmp.mkdir(parents=True, exist_ok=True)
    ca: TestPKI = pki["ca"]  # type: ignore[assignment]
    ids: dict[str, Identity] = pki["ids"]  # type: ignore[assignment]
    client_ks = write_keystore(ids["client"], tmp / "client.jks", "JKS", "clientpass")
    client_ts = ca.write_truststore(tmp / "client-trust.jks", "JKS", "clientpass")
    secure = free_port()
    cfg = _server_cfg(pki, tmp, "JKS", secure, {"secureClientPortAddress": "127.0.0.1"})
    srv = cls(tmp / "data", extra_cfg=cfg)
    srv.secure_port, srv.tls = secure, _client_context(pki, "client")
    flags = {
        # (a trust store alone fails the same way: the server needs a certificate)
        "no TLS settings": "",
        "key and trust stores": f"-Dzookeeper.client.secure=true "
                                f"-Dzookeeper.ssl.keyStore.location={client_ks} "
                                f"-Dzookeeper.ssl.keyStore.password=clientpass "
                                f"-Dzookeeper.ssl.trustStore.location={client_ts} "
                                "-Dzookeeper.ssl.trustStore.password=clientpass",
    }
    tools = {"zkServer.sh": ["/usr/share/zookeeper/bin/zkServer.sh"],
             "zkServer.py": [sys.executable, "-m", "pyzk"]}
    out: dict[str, list[str]] = {}
    with srv:
        for name, flag in flags.items():
            env = {k: v for k, v in os.environ.items() if not k.endswith("JVMFLAGS")}
            env["ZOO_LOG_DIR"] = str(tmp)
            env["PYTHONPATH"] = str(Path(__file__).resolve().parents[1])
            if flag:
                env["CLIENT_JVMFLAGS"] = flag
            for tool, argv in tools.items():
                p = subprocess.run([*argv, "status", str(srv.cfg_path)], env=env,
                                   capture_output=True, text=True, timeout=60)
                out[f"{tool} {name}"] = [f"rc={p.returncode}",
                                         *p.stdout.replace(str(secure), "<port>").splitlines()]
    return out


def test_status_of_a_tls_only_server_as_zkserver_sh(tmp_path: Path,
                                                   pki: dict[str, object]) -> None:
    """Apache's zkServer.sh status finds secureClientPort, says "Client SSL:
    true" and asks srvr with ClientX509Util's settings from CLIENT_JVMFLAGS
    (failing, with its note, without them); zkServer.py does the same, line
    for line, against either server."""
    require_reference_tool("/usr/share/zookeeper/bin/zkServer.sh", "zkServer.sh")
    apache = _status_view(_ApacheTlsOnly, tmp_path / "apache", pki)
    sh = apache["zkServer.sh key and trust stores"]
    assert sh[0] == "rc=0" and sh[-1] == "Mode: standalone", sh
    assert "Client port found: <port>. Client address: 127.0.0.1. Client SSL: true." in sh
    assert apache["zkServer.sh no TLS settings"][0] == "rc=1"
    mine = _status_view(_PyzkTlsOnly, tmp_path / "pyzk", pki)
    for name, lines in apache.items():
        if name.startswith("zkServer.sh"):
            same = name.replace("zkServer.sh", "zkServer.py")
            assert apache[same] == lines, same
            assert mine[same] == lines, same
            assert mine[name] == lines, name


def test_crl_and_ocsp_are_a_warning(tmp_path: Path, pki: dict[str, object]) -> None:
    """ssl.crl/ssl.ocsp: Apache's JDK checks revocation, fetching CRLs from the
    certificate's distribution points (OCSP from its AIA) and refusing a
    certificate whose status it cannot determine, as the test CA's are.
    Python's ssl checks only CRLs loaded in advance and fetches nothing, so
    pyzk does not check revocation: it says so once, at start, and then
    serves as without the settings (here more permissive than Apache)."""
    require_reference()
    extra = {"ssl.crl": "true", "ssl.ocsp": "true"}
    results = {}
    for cls in (ApacheServer, PyzkServer):
        d = tmp_path / cls.kind
        d.mkdir()
        cfg = _server_cfg(pki, d, "JKS", free_port(), extra)
        with cls(d / "data", extra_cfg=cfg) as srv:
            results[cls.kind] = _session(int(cfg["secureClientPort"]),
                                         _client_context(pki, "client"), cls.kind)
            log_text = srv.log_path.read_text(errors="replace")
    assert results["apache"] == ["refused"], results
    assert results["pyzk"][0] == [("x509", CLIENT_ID)], results
    warnings = [ln for ln in log_text.splitlines()
                if "WARN" in ln and "revocation" in ln]
    assert len(warnings) == 1, warnings
    assert "crl" in warnings[0] and "ocsp" in warnings[0]
    assert "storepass" not in log_text and "trustpass" not in log_text
