"""pyzk's secure client port under bad input and bad configuration.

(What a good or bad client certificate gets is compared with Apache in
compat_tests/test_tls.py; these are the cases where only pyzk's own
behaviour can be checked: its error messages, its timeouts, its logs.)
"""

from __future__ import annotations

import os
import socket
import ssl
import time
from pathlib import Path

import pytest

from pyzk.config import ConfigError
from pyzk.config.tls import tls_settings
from pyzk.jute import records as R
from pyzk.jute.constants import OpCode
from pyzk.shell.tlscontext import load_keystore, load_truststore, server_context
from pyzk.testing.certs import TestPKI, write_keystore
from pyzk.testing.servers import PyzkServer, free_port
from pyzk.testing.wire import WireClient

pytestmark = pytest.mark.server

SECRET = "hunter2-not-in-any-log"


@pytest.fixture(scope="module")
def pki() -> TestPKI:
    return TestPKI()


@pytest.mark.parametrize("kind", ["JKS", "PKCS12", "PEM"])
def test_each_store_format_loads_and_a_wrong_password_is_refused_without_saying_it(
        tmp_path: Path, pki: TestPKI, kind: str) -> None:
    ident = pki.issue("localhost")
    ext = {"JKS": ".jks", "PKCS12": ".p12", "PEM": ".pem"}[kind]
    ks = write_keystore(ident, tmp_path / f"ks{ext}", kind, SECRET)
    ts = pki.write_truststore(tmp_path / f"ts{ext}", kind, SECRET)
    props = {"zookeeper.ssl.keyStore.location": str(ks), "zookeeper.ssl.keyStore.password": SECRET,
             "zookeeper.ssl.trustStore.location": str(ts),
             "zookeeper.ssl.trustStore.password": SECRET}
    settings = tls_settings(props)
    assert settings.keystore is not None and settings.truststore is not None
    key, chain = load_keystore(settings.keystore)
    assert chain[0] == ident.cert and chain[-1] == pki.ca_cert
    if kind != "PEM":  # a PEM trust store has no password
        assert load_truststore(settings.truststore) == [pki.ca_cert]
    server_context(settings)
    wrong = tls_settings({**props, "zookeeper.ssl.keyStore.password": "wrong-" + SECRET})
    with pytest.raises(ConfigError) as info:
        server_context(wrong)
    assert str(ks) in str(info.value) and SECRET not in str(info.value)


def test_password_path_wins_and_bcfks_is_refused(tmp_path: Path, pki: TestPKI) -> None:
    ks = write_keystore(pki.issue("localhost"), tmp_path / "ks.p12", "PKCS12", SECRET)
    secret_file = tmp_path / "pw"
    secret_file.write_text(SECRET + "\n")
    settings = tls_settings({"zookeeper.ssl.keyStore.location": str(ks),
                             "zookeeper.ssl.keyStore.password": "ignored",
                             "zookeeper.ssl.keyStore.passwordPath": str(secret_file),
                             "zookeeper.ssl.clientAuth": "none"})
    server_context(settings)
    (tmp_path / "k.bcfks").write_bytes(b"x")
    with pytest.raises(ConfigError, match="BCFKS key stores are not supported"):
        server_context(tls_settings({"zookeeper.ssl.keyStore.location": str(tmp_path / "k.bcfks"),
                                     "zookeeper.ssl.clientAuth": "none"}))


def test_protocol_and_cipher_settings_reach_the_context(tmp_path: Path, pki: TestPKI) -> None:
    ks = write_keystore(pki.issue("localhost"), tmp_path / "ks.pem", "PEM")
    base = {"zookeeper.ssl.keyStore.location": str(ks), "zookeeper.ssl.clientAuth": "none"}
    ctx = server_context(tls_settings(base))
    assert ctx.minimum_version == ctx.maximum_version == ssl.TLSVersion.TLSv1_2
    names = {c["name"] for c in ctx.get_ciphers() if not c["name"].startswith("TLS_")}
    assert names == {"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
                     "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
                     "ECDHE-ECDSA-AES128-SHA256", "ECDHE-RSA-AES128-SHA256",
                     "ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES128-SHA",
                     "ECDHE-ECDSA-AES256-SHA384", "ECDHE-RSA-AES256-SHA384",
                     "ECDHE-ECDSA-AES256-SHA", "ECDHE-RSA-AES256-SHA"}
    ctx = server_context(tls_settings({**base, "zookeeper.ssl.enabledProtocols": "TLSv1.3,TLSv1.2",
                                       "zookeeper.ssl.ciphersuites":
                                       "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"}))
    assert (ctx.minimum_version, ctx.maximum_version) == (ssl.TLSVersion.TLSv1_2,
                                                          ssl.TLSVersion.TLSv1_3)
    assert {c["name"] for c in ctx.get_ciphers() if not c["name"].startswith("TLS_")} == {
        "ECDHE-RSA-AES256-GCM-SHA384"}
    with pytest.raises(ConfigError, match="unsupported protocol SSLv3"):
        server_context(tls_settings({**base, "zookeeper.ssl.enabledProtocols": "SSLv3"}))
    with pytest.raises(ConfigError, match="no usable cipher suite"):
        server_context(tls_settings({**base, "zookeeper.ssl.ciphersuites": "TLS_FAKE"}))


def _tls_server(tmp_path: Path, pki: TestPKI, **extra: str) -> tuple[PyzkServer, int]:
    ks = write_keystore(pki.issue("localhost"), tmp_path / "ks.p12", "PKCS12", SECRET)
    ts = pki.write_truststore(tmp_path / "ts.pem", "PEM")
    port = free_port()
    cfg = {"secureClientPort": str(port), "ssl.keyStore.location": str(ks),
           "ssl.keyStore.password": SECRET, "ssl.trustStore.location": str(ts), **extra}
    return PyzkServer(tmp_path / "data", extra_cfg=cfg), port


def test_a_key_store_that_cannot_be_read_leaves_only_the_plain_port(
        tmp_path: Path, pki: TestPKI) -> None:
    """As Apache (which starts and fails every handshake), the server runs;
    the secure port is not served and the log says why, without the password."""
    srv, port = _tls_server(tmp_path, pki, **{"ssl.keyStore.password": "Wr0ngPassw0rd"})
    with srv:
        log = srv.log_tail(10_000)
        assert f"secureClientPort {port} is not served: cannot load the PKCS12 key store" in log
        assert "wrong password or damaged file?" in log
        assert SECRET not in log and "Wr0ngPassw0rd" not in log
        ctx = ssl.create_default_context(cafile=str(tmp_path / "ts.pem"))
        with pytest.raises(OSError):
            WireClient(timeout=5).connect("127.0.0.1", port, tls=ctx)
        c = WireClient()
        c.connect(srv.host, srv.port)
        c.close()


def test_garbage_and_silence_on_the_tls_port_are_dropped(tmp_path: Path, pki: TestPKI) -> None:
    srv, port = _tls_server(tmp_path, pki, **{"ssl.clientAuth": "none",
                                             "ssl.handshakeDetectionTimeoutMillis": "700"})
    with srv:
        client_ctx = ssl.create_default_context(cafile=str(tmp_path / "ts.pem"))
        # not TLS at all
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(os.urandom(64) + b"\x16\x03\x01\x00\x05hello")
            while s.recv(100):  # perhaps an alert, then EOF (a hang would time out)
                pass
        # a handshake that stops halfway: the server gives up after the timeout
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
            t0 = time.monotonic()
            while s.recv(100):
                pass
            # closed by ssl.handshakeDetectionTimeoutMillis, not by anything sooner
            assert 0.5 <= time.monotonic() - t0 < 8
        # a client that vanishes mid-handshake
        raw = socket.create_connection(("127.0.0.1", port), timeout=10)
        raw.sendall(b"\x16\x03\x01")
        raw.close()
        # and the server still serves TLS sessions and plaintext ones
        c = WireClient()
        c.connect("127.0.0.1", port, tls=client_ctx)
        assert c.call_reply(OpCode.exists, R.ExistsRequest("/", False)).err == 0
        c.close()
        p = WireClient()
        p.connect(srv.host, srv.port)
        p.close()
        assert SECRET not in srv.log_tail(10_000)


def test_the_load_generator_runs_over_tls(tmp_path: Path, pki: TestPKI) -> None:
    """benchmarks/tls.py's path: measured connections over TLS, setup in plaintext."""
    from benchmarks.loadgen import run_workload

    client = pki.issue("bench")
    (tmp_path / "c.crt").write_bytes(client.cert_pem())
    (tmp_path / "c.key").write_bytes(client.key_pem())
    srv, port = _tls_server(tmp_path, pki)
    with srv:
        r = run_workload(srv.host, srv.port, "get", connections=2, window=2, processes=1,
                         duration=0.3, warmup=0.1,
                         tls=(str(tmp_path / "ts.pem"), str(tmp_path / "c.crt"),
                              str(tmp_path / "c.key")), tls_port=port)
        assert r.ops > 0 and r.errors == 0
        assert "Authenticated Id 'CN=bench' for Scheme 'x509'" in srv.log_tail(10_000)


def _until_closed(s: socket.socket) -> None:
    """Read until the server closes (EOF or reset); a hang times out and fails."""
    try:
        while s.recv(100):
            pass
    except ConnectionResetError:
        pass


def test_the_unified_port_under_bad_input(tmp_path: Path, pki: TestPKI) -> None:
    """client.portUnification: garbage that starts like TLS, silence, a client
    that leaves before its first byte; then plaintext and TLS still work."""
    ks = write_keystore(pki.issue("localhost"), tmp_path / "ks.p12", "PKCS12", SECRET)
    (tmp_path / "ca.pem").write_bytes(pki.ca_pem())
    cfg = {"client.portUnification": "true", "ssl.keyStore.location": str(ks),
           "ssl.keyStore.password": SECRET, "ssl.clientAuth": "none",
           "ssl.handshakeDetectionTimeoutMillis": "700"}
    with PyzkServer(tmp_path / "data", extra_cfg=cfg) as srv:
        port = srv.port
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"\x16\x03\x01\x00\x10" + os.urandom(16))  # a TLS record of junk
            _until_closed(s)
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"\x16\x03")  # too few bytes to tell, then nothing
            t0 = time.monotonic()
            _until_closed(s)
            assert 0.5 <= time.monotonic() - t0 < 8
        socket.create_connection(("127.0.0.1", port), timeout=10).close()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(b"ruok")
            assert s.recv(100) == b"imok"
        plain = WireClient()
        plain.connect("127.0.0.1", port)
        assert plain.call_reply(OpCode.exists, R.ExistsRequest("/", False)).err == 0
        plain.close()
        secure = WireClient()
        secure.connect("127.0.0.1", port,
                       tls=ssl.create_default_context(cafile=str(tmp_path / "ca.pem")))
        assert secure.call_reply(OpCode.exists, R.ExistsRequest("/", False)).err == 0
        secure.close()
        assert "no TLS or plaintext request within 0.7 s" in srv.log_tail(10_000)


def test_a_key_store_whose_key_and_certificate_differ_is_a_config_error(
        tmp_path: Path, pki: TestPKI) -> None:
    from pyzk.testing.certs import Identity

    a, b = pki.issue("localhost"), pki.issue("other")
    ks = write_keystore(Identity(a.cert, b.key, a.chain), tmp_path / "ks.pem", "PEM")
    with pytest.raises(ConfigError, match="OpenSSL refused its key and certificate"):
        server_context(tls_settings({"zookeeper.ssl.keyStore.location": str(ks),
                                     "zookeeper.ssl.clientAuth": "none"}))
