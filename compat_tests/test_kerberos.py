"""SASL GSSAPI (Kerberos) on the client port, against Apache: one MIT KDC made
here at run time, the same JAAS files and keytabs, the same clients (kazoo
over pure-sasl/pykerberos, Apache's Java client with a ``Client`` section),
the same ids, ACL outcomes and failures."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyzk.testing.kdc import TestKDC, kdc_available
from pyzk.testing.servers import (
    APACHE_CLASSPATH,
    ApacheServer,
    PyzkServer,
    require_reference,
    require_reference_tool,
)

pytestmark = [pytest.mark.server, pytest.mark.reference]

SASL_PROVIDER = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"

SERVER_JAAS = """
Server {
    com.sun.security.auth.module.Krb5LoginModule required
    useKeyTab=true
    keyTab="%s"
    storeKey=true
    useTicketCache=false
    principal="zookeeper/localhost@EXAMPLE.TEST";
};
"""

CLIENT_JAAS = """
Client {
    com.sun.security.auth.module.Krb5LoginModule required
    useKeyTab=true
    keyTab="%s"
    storeKey=true
    useTicketCache=false
    principal="%s";
};
"""


class Realm:
    """The KDC with the principals every test uses and their keytabs."""

    def __init__(self, kdc: TestKDC) -> None:
        self.kdc = kdc
        self.server_keytab = kdc.add_principal("zookeeper/localhost")
        self.keytabs = {name: kdc.add_principal(name)
                        for name in ("client", "alice/localhost", "bob")}

    def ccache(self, name: str, where: Path) -> Path:
        cc = where / (name.replace("/", "_") + ".ccache")
        self.kdc.kinit(name, self.keytabs[name], cc)
        return cc


@pytest.fixture(scope="module")
def realm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Realm]:
    require_reference()
    if not kdc_available():
        require_reference_tool("/usr/sbin/krb5kdc", "MIT Kerberos KDC (krb5-kdc)")
    kdc = TestKDC(tmp_path_factory.mktemp("kdc"))
    kdc.start()
    try:
        yield Realm(kdc)
    finally:
        kdc.stop()


def _server(cls: type, tmp: Path, realm: Realm, extra: dict[str, str] | None = None,
            jaas: str | None = None):  # type: ignore[no-untyped-def]
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "jaas.conf").write_text(jaas or SERVER_JAAS % realm.server_keytab)
    cfg = {"authProvider.1": SASL_PROVIDER, **(extra or {})}
    return cls(tmp / "data", extra_cfg=cfg,
               jvm_flags=[f"-Djava.security.auth.login.config={tmp / 'jaas.conf'}",
                          f"-Djava.security.krb5.conf={realm.kdc.krb5_conf}"])


def _kazoo_view(cls: type, tmp: Path, realm: Realm, extra: dict[str, str],
                monkeypatch: pytest.MonkeyPatch) -> list[object]:
    from kazoo.client import KazooClient
    from kazoo.exceptions import AuthFailedError, NoAuthError
    from kazoo.security import make_acl

    monkeypatch.setenv("KRB5_CONFIG", str(realm.kdc.krb5_conf))
    out: list[object] = []
    with _server(cls, tmp, realm, extra) as srv:
        def client(name: str | None, mechanism: str = "GSSAPI") -> KazooClient:
            if name is not None:
                monkeypatch.setenv("KRB5CCNAME", f"FILE:{realm.ccache(name, tmp)}")
            opts = ({"mechanism": "GSSAPI", "service": "zookeeper"} if mechanism == "GSSAPI"
                    else {"mechanism": "DIGEST-MD5", "username": "bob", "password": "x"})
            # the service principal is zookeeper/localhost: the client must
            # name the host "localhost", as the Java client's canonical name does
            return KazooClient(hosts=f"localhost:{srv.port}", timeout=5,
                               connection_retry={"max_tries": 0}, sasl_options=opts)

        ids = ("client@EXAMPLE.TEST", "client", "alice/localhost@EXAMPLE.TEST", "alice",
               "alice@EXAMPLE.TEST", "alice/localhost")
        first = client("client")
        first.start(timeout=10)
        try:
            for ident in ids:
                first.create(f"/k-{ident.replace('/', '_')}", ident.encode(),
                             acl=[make_acl("sasl", ident, all=True)])
        finally:
            first.stop()
            first.close()
        for name, mech in (("client", "GSSAPI"), ("alice/localhost", "GSSAPI"),
                           (None, "DIGEST-MD5")):
            zk = client(name, mech)
            try:
                zk.start(timeout=10)
                for ident in ids:
                    try:
                        zk.get(f"/k-{ident.replace('/', '_')}")
                        out.append((name, mech, "reads", ident))
                    except NoAuthError:
                        pass
            except AuthFailedError:
                out.append((name, mech, "AuthFailed"))
            finally:
                zk.stop()
                zk.close()
    return out


@pytest.mark.parametrize("extra", [
    {},
    {"kerberos.removeHostFromPrincipal": "true", "kerberos.removeRealmFromPrincipal": "true"},
    {"kerberos.removeRealmFromPrincipal": "true"},
], ids=["default", "remove-host-and-realm", "remove-realm"])
def test_kazoo_gssapi_ids_as_against_apache(realm: Realm, tmp_path: Path, extra: dict[str, str],
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    apache = _kazoo_view(ApacheServer, tmp_path / "apache", realm, extra, monkeypatch)
    # each principal reads exactly the node whose ACL names its id
    assert sum(1 for o in apache if o[:2] == ("client", "GSSAPI")) == 1, apache
    assert (None, "DIGEST-MD5", "AuthFailed") in apache
    assert _kazoo_view(PyzkServer, tmp_path / "pyzk", realm, extra, monkeypatch) == apache


def _java_client_view(cls: type, tmp: Path, realm: Realm, principal: str,
                      keytab: Path) -> list[str]:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "client.conf").write_text(CLIENT_JAAS % (keytab, principal))
    with _server(cls, tmp, realm) as srv:
        p = subprocess.run(
            ["java", "-cp", APACHE_CLASSPATH, "-Dzookeeper.jline=false",
             f"-Djava.security.auth.login.config={tmp / 'client.conf'}",
             f"-Djava.security.krb5.conf={realm.kdc.krb5_conf}",
             "org.apache.zookeeper.ZooKeeperMain", "-server", f"localhost:{srv.port}"],
            input="whoami\ncreate /java x sasl:bob@EXAMPLE.TEST:cdrwa\ngetAcl /java\n"
                  "get /java\nquit\n",
            capture_output=True, text=True, timeout=120)
    keep = ("Auth scheme", "sasl:", "ip:", "Created", "'sasl", "KeeperErrorCode", ": cdrwa",
            "x")
    return [ln.replace(str(srv.port), "<port>") for ln in (p.stdout + p.stderr).splitlines()
            if ln.strip().startswith(keep) or "AuthFailed" in ln]


def test_the_java_client_gssapi_as_against_apache(realm: Realm, tmp_path: Path) -> None:
    apache = _java_client_view(ApacheServer, tmp_path / "apache", realm, "bob@EXAMPLE.TEST",
                               realm.keytabs["bob"])
    assert "sasl: bob@EXAMPLE.TEST" in [ln.strip() for ln in apache], apache
    pyzk = _java_client_view(PyzkServer, tmp_path / "pyzk", realm, "bob@EXAMPLE.TEST",
                             realm.keytabs["bob"])
    assert pyzk == apache


def _starts(cls: type, tmp: Path, realm: Realm, jaas: str) -> bool:
    srv = _server(cls, tmp, realm, jaas=jaas)
    try:
        srv.start(timeout=20)
    except Exception:  # noqa: BLE001 - not starting is the outcome looked at
        return False
    srv.stop()
    return True


@pytest.mark.parametrize("case", ["missing-keytab", "wrong-principal"])
def test_a_server_login_that_fails_stops_the_server_as_apache(realm: Realm, tmp_path: Path,
                                                               case: str) -> None:
    if case == "missing-keytab":
        jaas = SERVER_JAAS % (tmp_path / "no-such.keytab")
    else:
        jaas = (SERVER_JAAS % realm.server_keytab).replace("zookeeper/localhost@",
                                                            "zookeeper/otherhost@")
    apache = _starts(ApacheServer, tmp_path / "apache", realm, jaas)
    assert _starts(PyzkServer, tmp_path / "pyzk", realm, jaas) == apache


def _bad_token_view(cls: type, tmp: Path, realm: Realm, tokens: list[bytes]) -> list[object]:
    from pyzk.jute import records as R
    from pyzk.jute.constants import OpCode
    from pyzk.testing.wire import ConnectionClosed, WireClient

    out: list[object] = []
    with _server(cls, tmp, realm) as srv:
        c = WireClient(timeout=10)
        c.connect(srv.host, srv.port)
        try:
            for tok in tokens:
                r = c.call_reply(OpCode.sasl, R.GetSASLRequest(tok))
                out.append(r.err)
            c.call_reply(OpCode.exists, R.ExistsRequest("/", False))
            out.append("still open")
        except (ConnectionClosed, OSError):
            out.append("closed")
        finally:
            c.close()
        # the server is still there for the next client
        ok = WireClient(timeout=10)
        ok.connect(srv.host, srv.port)
        out.append(ok.call_reply(OpCode.exists, R.ExistsRequest("/", False)).err)
        ok.close()
    return out


@pytest.mark.parametrize("tokens", [
    [b"not a kerberos token"],
    [b"\x60\x82\xff\xff" + b"\x00" * 64],   # a GSS header claiming far more than it has
    [b""],
], ids=["garbage", "truncated-gss-header", "empty"])
def test_bad_gssapi_tokens_as_against_apache(realm: Realm, tmp_path: Path,
                                             tokens: list[bytes]) -> None:
    apache = _bad_token_view(ApacheServer, tmp_path / "apache", realm, tokens)
    assert _bad_token_view(PyzkServer, tmp_path / "pyzk", realm, tokens) == apache
