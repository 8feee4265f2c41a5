"""SASL DIGEST-MD5 on the client port, against Apache: the same JAAS file, the
same clients (kazoo over pure-sasl, Apache's Java client), the same outcomes."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pyzk.testing.servers import (
    APACHE_CLASSPATH,
    ApacheServer,
    PyzkServer,
    require_reference,
)

pytestmark = [pytest.mark.server, pytest.mark.reference]

SERVER_JAAS = """
// the users DigestLoginModule knows
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="adminsecret"
    user_bob="bob-secret"
    user_alice="alice \\"quoted\\" secret";
};
"""
SASL_PROVIDER = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"


def _kazoo_view(cls: type, tmp: Path) -> list[object]:
    from kazoo.client import KazooClient
    from kazoo.exceptions import AuthFailedError, NoAuthError
    from kazoo.security import make_acl

    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "jaas.conf").write_text(SERVER_JAAS)
    out: list[object] = []
    cfg = {"authProvider.1": SASL_PROVIDER, "superUser": "super"}
    with cls(tmp / "data", extra_cfg=cfg,
             jvm_flags=[f"-Djava.security.auth.login.config={tmp / 'jaas.conf'}"]) as srv:
        def client(user: str, password: str) -> KazooClient:
            return KazooClient(hosts=srv.address, timeout=5, connection_retry={"max_tries": 0},
                               sasl_options={"mechanism": "DIGEST-MD5", "username": user,
                                             "password": password})

        for user, password in (("bob", "bob-secret"), ("alice", 'alice "quoted" secret'),
                               ("super", "adminsecret"), ("bob", "wrong"), ("mallory", "x")):
            zk = client(user, password)
            try:
                zk.start(timeout=10)
                try:
                    if user == "bob" and password == "bob-secret":
                        zk.create("/sasl", b"bob's", acl=[make_acl("sasl", "bob", all=True)])
                        out.append(zk.get_acls("/sasl")[0])
                    out.append((user, "read", zk.get("/sasl")[0]))
                except NoAuthError:
                    out.append((user, "NoAuth"))
                except AuthFailedError:
                    out.append((user, "AuthFailed"))
            finally:
                zk.stop()
                zk.close()
    return out


def test_kazoo_digest_md5_as_against_apache(tmp_path: Path) -> None:
    require_reference()
    apache = _kazoo_view(ApacheServer, tmp_path / "apache")
    assert apache[1] == ("bob", "read", b"bob's")
    assert ("alice", "NoAuth") in apache and ("super", "read", b"bob's") in apache
    assert ("bob", "AuthFailed") in apache and ("mallory", "AuthFailed") in apache
    assert _kazoo_view(PyzkServer, tmp_path / "pyzk") == apache


CLIENT_JAAS = """
Client {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="bob"
    password="%s";
};
"""


def _java_client_view(cls: type, tmp: Path, password: str) -> list[str]:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "jaas.conf").write_text(SERVER_JAAS)
    (tmp / "client.conf").write_text(CLIENT_JAAS % password)
    cfg = {"authProvider.1": SASL_PROVIDER}
    with cls(tmp / "data", extra_cfg=cfg,
             jvm_flags=[f"-Djava.security.auth.login.config={tmp / 'jaas.conf'}"]) as srv:
        p = subprocess.run(
            ["java", "-cp", APACHE_CLASSPATH, "-Dzookeeper.jline=false",
             f"-Djava.security.auth.login.config={tmp / 'client.conf'}",
             "org.apache.zookeeper.ZooKeeperMain", "-server", srv.address],
            input="whoami\ncreate /java sasl:bob:cdrwa\ngetAcl /java\nquit\n",
            capture_output=True, text=True, timeout=120)
    keep = ("Auth scheme", "sasl:", "ip:", "Created", "'sasl", "KeeperErrorCode", ": cdrwa")
    return [ln.replace(str(srv.port), "<port>") for ln in (p.stdout + p.stderr).splitlines()
            if ln.strip().startswith(keep) or "AuthFailed" in ln]


@pytest.mark.parametrize("password", ["bob-secret", "wrong"])
def test_the_java_client_digest_md5_as_against_apache(tmp_path: Path, password: str) -> None:
    require_reference()
    apache = _java_client_view(ApacheServer, tmp_path / "apache", password)
    if password == "bob-secret":
        assert "sasl: bob" in apache, apache
    assert _java_client_view(PyzkServer, tmp_path / "pyzk", password) == apache


def _enforced_view(cls: type, tmp: Path, extra: dict[str, str]) -> list[object]:
    """enforce.auth.*: what an unauthenticated and an authenticated client get."""
    from pyzk.jute import records as R
    from pyzk.jute.constants import OpCode
    from pyzk.testing.wire import ConnectionClosed, WireClient

    out: list[object] = []
    try:
        srv = cls(tmp / "data", extra_cfg=extra)
        srv.start(timeout=20)
    except Exception as e:  # noqa: BLE001 - a refused config is an outcome here
        return ["did not start", type(e).__name__]
    try:
        c = WireClient(timeout=10)
        c.connect(srv.host, srv.port)
        r = c.call_reply(OpCode.exists, R.ExistsRequest("/", False))
        out.append(("unauthenticated exists", r.err))
        try:
            c.call_reply(OpCode.exists, R.ExistsRequest("/", False))
            out.append("still open")
        except (ConnectionClosed, OSError):
            out.append("closed")
        c.close()
        a = WireClient(timeout=10)
        a.connect(srv.host, srv.port)
        out.append(("addauth", a.call_reply(OpCode.auth, R.AuthPacket(0, "digest", b"u:p")).err))
        out.append(("authenticated exists",
                    a.call_reply(OpCode.exists, R.ExistsRequest("/", False)).err))
        a.close()
    finally:
        srv.stop()
    return out


@pytest.mark.parametrize("extra", [
    {"enforce.auth.enabled": "true", "enforce.auth.schemes": "digest"},
    {"enforce.auth.enabled": "true", "enforce.auth.schemes": "sasl,digest",
     "authProvider.1": SASL_PROVIDER},
    {"enforce.auth.enabled": "true"},
    {"enforce.auth.enabled": "true", "enforce.auth.schemes": "kerberos"},
], ids=["digest", "sasl-or-digest", "no-schemes", "unknown-scheme"])
def test_enforced_auth_as_against_apache(tmp_path: Path, extra: dict[str, str]) -> None:
    require_reference()
    apache = _enforced_view(ApacheServer, tmp_path / "apache", extra)
    assert _enforced_view(PyzkServer, tmp_path / "pyzk", extra) == apache
    if "enforce.auth.schemes" in extra and "kerberos" not in extra["enforce.auth.schemes"]:
        assert apache[:2] == [("unauthenticated exists", -124), "closed"], apache
