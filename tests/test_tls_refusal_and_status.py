"""Units behind the TLS differential tests: which alert a refused handshake
sends (pyzk.shell.unified.refusal_alert), how ``zkServer.py status`` finds
its port the way zkServer.sh greps for it (pyzk.cli.status_target), and the
client TLS settings it takes from CLIENT_JVMFLAGS."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from pyzk import cli
from pyzk.shell.unified import refusal_alert

pytestmark = pytest.mark.pure


def _ctx(top: ssl.TLSVersion) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.maximum_version = top
    return ctx


def _ssl_error(reason: str) -> ssl.SSLError:
    e = ssl.SSLError(1, f"[SSL: {reason}] ...")
    e.reason = reason
    return e


def _verify_error() -> ssl.SSLCertVerificationError:
    e = ssl.SSLCertVerificationError(1, "certificate verify failed")
    e.reason = "CERTIFICATE_VERIFY_FAILED"
    return e


def test_refusal_alerts_are_javas() -> None:
    tls12 = _ctx(ssl.TLSVersion.TLSv1_2)
    assert refusal_alert(_ssl_error("PEER_DID_NOT_RETURN_A_CERTIFICATE"), tls12) == \
        bytes((21, 3, 3, 0, 2, 2, 42))  # bad_certificate
    assert refusal_alert(_verify_error(), tls12) == bytes((21, 3, 3, 0, 2, 2, 46))
    assert refusal_alert(_ssl_error("UNSUPPORTED_PROTOCOL"), tls12)[-1] == 70
    assert refusal_alert(_ssl_error("NO_SHARED_CIPHER"), tls12)[-1] == 40
    # what Java answers without an alert, or pyzk cannot tell: nothing
    assert refusal_alert(_ssl_error("WRONG_VERSION_NUMBER"), tls12) is None
    assert refusal_alert(TimeoutError(), tls12) is None
    assert refusal_alert(ConnectionResetError(), tls12) is None


@pytest.mark.parametrize("top", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.MAXIMUM_SUPPORTED])
def test_no_plaintext_alert_after_a_tls13_server_hello(top: ssl.TLSVersion) -> None:
    """With TLS 1.3 possible, a certificate refusal comes after the ServerHello,
    where an alert must be encrypted: none is sent. Refusals before the
    ServerHello are plaintext in every version."""
    ctx = _ctx(top)
    assert refusal_alert(_verify_error(), ctx) is None
    assert refusal_alert(_ssl_error("PEER_DID_NOT_RETURN_A_CERTIFICATE"), ctx) is None
    assert refusal_alert(_ssl_error("UNSUPPORTED_PROTOCOL"), ctx) is not None


def _cfg(tmp_path: Path, text: str, myid: str | None = None) -> str:
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    if myid is not None:
        (data / "myid").write_text(myid + "\n")
    path = tmp_path / "zoo.cfg"
    path.write_text(f"dataDir={data}\n{text}")
    return str(path)


def test_status_target_client_port(tmp_path: Path) -> None:
    t = cli.status_target(_cfg(tmp_path, "clientPort=2181\nclientPortAddress=10.0.0.1\n"
                                          "secureClientPort=2281\n"))
    assert (t.messages, t.host, t.port, t.ssl) == ([], "10.0.0.1", "2181", False)


def test_status_target_secure_port_only(tmp_path: Path) -> None:
    t = cli.status_target(_cfg(tmp_path, "secureClientPort=2281\n"
                                          "secureClientPortAddress=127.0.0.2\n"))
    assert t.messages == [
        "myid could not be determined, will not able to locate clientPort in the server configs.",
        "Client port not found. Looking for secureClientPort in the static config.",
    ]
    assert (t.host, t.port, t.ssl, t.secure_port, t.found) == ("127.0.0.2", "2281", True,
                                                                "2281", True)


def test_status_target_from_server_lines(tmp_path: Path) -> None:
    t = cli.status_target(_cfg(tmp_path, "server.1=h1:2888:3888;2181\n"
                                          "server.2=h2:2888:3888;[::1]:2182\n", myid="2"))
    assert (t.messages, t.host, t.port, t.ssl) == ([], "::1", "2182", False)
    dyn = tmp_path / "zoo.cfg.dynamic"
    dyn.write_text("server.3=h3:2888:3888;127.0.0.3:2183\n")
    t = cli.status_target(_cfg(tmp_path, f"dynamicConfigFile={dyn}\n", myid="3"))
    assert t.messages == ["Client port not found in static config file. Looking in dynamic "
                          "config file."]
    assert (t.host, t.port) == ("127.0.0.3", "2183")


def test_status_target_nothing(tmp_path: Path) -> None:
    t = cli.status_target(_cfg(tmp_path, "", myid="1"))
    assert not t.found
    assert t.messages == [
        "Client port not found in static config file. Looking in dynamic config file.",
        "Client port not found in the server configs",
        "Client port not found. Looking for secureClientPort in the static config.",
        "Unable to find either secure or unsecure client port in any configs. Terminating.",
    ]


def test_status_tls_settings_from_the_environment() -> None:
    """CLIENT_JVMFLAGS first, then SERVER_JVMFLAGS and JVMFLAGS: the last -D wins."""
    tls = cli.status_tls_settings({
        "CLIENT_JVMFLAGS": "-Dzookeeper.ssl.trustStore.location=/a.jks "
                           "-Dzookeeper.ssl.hostnameVerification=false",
        "SERVER_JVMFLAGS": "-Dzookeeper.ssl.keyStore.location=/k.p12",
        "JVMFLAGS": "-Dzookeeper.ssl.trustStore.location=/b.pem",
    })
    assert tls.truststore is not None and tls.truststore.location == "/b.pem"
    assert tls.truststore.type == "PEM"
    assert tls.keystore is not None and tls.keystore.type == "PKCS12"
    assert tls.hostname_verification is False
