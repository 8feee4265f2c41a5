"""pyzk's GSSAPI mechanisms (pyzk.shell.kerberos) against each other and
against pure-sasl's client (pykerberos), with a KDC started here."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyzk.config import ServerConfig
from pyzk.config.errors import ConfigError
from pyzk.config.jaas import KerberosLogin
from pyzk.core.digestmd5 import SaslError
from pyzk.testing.kdc import TestKDC, kdc_available

pytestmark = pytest.mark.server


@pytest.fixture(scope="module")
def kdc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestKDC]:
    if not kdc_available():
        pytest.skip("MIT Kerberos KDC (Debian krb5-kdc, krb5-admin-server) is not installed")
    pytest.importorskip("gssapi")
    k = TestKDC(tmp_path_factory.mktemp("kdc"))
    k.start()
    saved = os.environ.get("KRB5_CONFIG")
    os.environ["KRB5_CONFIG"] = str(k.krb5_conf)
    try:
        yield k
    finally:
        k.stop()
        if saved is None:
            os.environ.pop("KRB5_CONFIG", None)
        else:
            os.environ["KRB5_CONFIG"] = saved


def _cfg(kdc: TestKDC) -> ServerConfig:
    cfg = ServerConfig(data_dir="/nonexistent")
    cfg.system_properties["java.security.krb5.conf"] = str(kdc.krb5_conf)
    return cfg


def _acceptor(kdc: TestKDC, service: str = "zkquorum/localhost"):  # type: ignore[no-untyped-def]
    from pyzk.shell.kerberos import GssapiAcceptor

    kt = kdc.add_principal(service)
    return GssapiAcceptor.login(_cfg(kdc), KerberosLogin(kdc.principal(service), str(kt),
                                                         True, True))


def _initiator(kdc: TestKDC, name: str):  # type: ignore[no-untyped-def]
    from pyzk.shell.kerberos import GssapiInitiator

    kt = kdc.add_principal(name)
    return GssapiInitiator.login(_cfg(kdc), KerberosLogin(kdc.principal(name), str(kt),
                                                          True, True))


def _run(client, server) -> list[int]:  # type: ignore[no-untyped-def]
    """Drive the exchange; the sizes of the server's tokens (-1: none)."""
    sizes = []
    token = client.evaluate(b"")
    while True:
        answer = server.evaluate(token)
        sizes.append(-1 if answer is None else len(answer))
        if server.complete:
            return sizes
        token = client.evaluate(answer or b"")


def test_pyzk_client_and_server_agree(kdc: TestKDC) -> None:
    acceptor = _acceptor(kdc)
    learner = _initiator(kdc, "learner/localhost")
    client = learner.new_client("zkquorum/localhost")
    server = acceptor.new_server()
    sizes = _run(client, server)
    assert client.complete and server.complete
    # AP-REP, the wrapped offer, then nothing: the exchange GssKrb5Server makes
    assert sizes[0] > 0 and sizes[-1] == -1 and len(sizes) == 3
    assert server.authentication_id == "learner/localhost@EXAMPLE.TEST"
    assert server.authorization_id == "learner/localhost@EXAMPLE.TEST"


def test_pure_sasl_client_against_pyzk_server(kdc: TestKDC, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from puresasl.client import SASLClient

    acceptor = _acceptor(kdc, "zookeeper/localhost")
    kt = kdc.add_principal("kazoo")
    kdc.kinit("kazoo", kt, tmp_path / "cc")
    monkeypatch.setenv("KRB5CCNAME", f"FILE:{tmp_path / 'cc'}")
    client = SASLClient("localhost", "zookeeper", mechanism="GSSAPI")
    server = acceptor.new_server()
    token = client.process()
    while not server.complete:
        answer = server.evaluate(token or b"")
        if server.complete:
            break
        token = client.process(answer)
    assert server.authentication_id == "kazoo@EXAMPLE.TEST"


def test_bad_tokens_are_refused(kdc: TestKDC) -> None:
    acceptor = _acceptor(kdc)
    for token in (b"", b"garbage", b"\x60\x82\xff\xff" + b"\0" * 40):
        with pytest.raises(SaslError, match="GSS initiate failed"):
            acceptor.new_server().evaluate(token)
    # after the context, the security-layer answer must be the wrapped kind
    learner = _initiator(kdc, "learner2/localhost")
    client = learner.new_client("zkquorum/localhost")
    server = acceptor.new_server()
    server.evaluate(client.evaluate(b""))
    with pytest.raises(SaslError, match="expecting no response"):
        server.evaluate(b"unexpected")


def test_a_ticket_for_another_service_is_refused(kdc: TestKDC) -> None:
    acceptor = _acceptor(kdc)  # zkquorum/localhost
    kdc.add_principal("other/localhost")
    learner = _initiator(kdc, "learner3/localhost")
    client = learner.new_client("other/localhost")
    with pytest.raises(SaslError, match="GSS initiate failed"):
        acceptor.new_server().evaluate(client.evaluate(b""))


def test_logins_that_cannot_work_are_config_errors(kdc: TestKDC, tmp_path: Path) -> None:
    from pyzk.shell.kerberos import GssapiAcceptor

    with pytest.raises(ConfigError, match="authenticate itself properly"):
        GssapiAcceptor.login(_cfg(kdc), KerberosLogin("zk/localhost@EXAMPLE.TEST",
                                                      str(tmp_path / "missing.keytab"),
                                                      True, True))


def test_a_quorum_kerberos_login_that_fails_stops_the_server(kdc: TestKDC,
                                                             tmp_path: Path) -> None:
    """QuorumServer with Krb5LoginModule and a keytab that is not there: the
    config is refused at load, as Apache's SaslQuorumAuthServer fails."""
    from pyzk.shell.configfile import load_config

    jaas = tmp_path / "jaas.conf"
    jaas.write_text(
        'QuorumServer { com.sun.security.auth.module.Krb5LoginModule required '
        f'useKeyTab=true keyTab="{tmp_path / "missing.keytab"}" storeKey=true '
        'principal="zkquorum/127.0.0.1@EXAMPLE.TEST"; };\n'
        'QuorumLearner { org.apache.zookeeper.server.auth.DigestLoginModule required '
        'username="l" password="p"; };\n')
    cfg = tmp_path / "zoo.cfg"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "myid").write_text("1\n")
    cfg.write_text(f"tickTime=2000\ninitLimit=5\nsyncLimit=2\ndataDir={tmp_path / 'data'}\n"
                   "clientPort=2999\nquorum.auth.enableSasl=true\n"
                   "server.1=127.0.0.1:3001:3002\nserver.2=127.0.0.1:3003:3004\n"
                   "server.3=127.0.0.1:3005:3006\n")
    with pytest.raises(ConfigError, match="Failed to initialize authentication mechanism "
                                          "using SASL.*missing.keytab"):
        load_config(str(cfg), jvm_flags=f"-Djava.security.auth.login.config={jaas} "
                                        f"-Djava.security.krb5.conf={kdc.krb5_conf}")
