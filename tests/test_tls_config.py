"""TLS settings read as X509Util reads them, and the x509 auth scheme's rules."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyzk.config import ConfigError
from pyzk.config.tls import (
    CLIENT_PREFIX,
    DEFAULT_CIPHERS,
    QUORUM_PREFIX,
    host_mismatch,
    store_type,
    tls_settings,
)
from pyzk.datatree.acl import X509Provider, check_acl, configured_providers, fixup_acl
from pyzk.jute.records import ACL, Id
from pyzk.shell.configfile import load_config
from pyzk.shell.tlscontext import openssl_cipher_name

pytestmark = pytest.mark.pure

X509 = "org.apache.zookeeper.server.auth.X509AuthenticationProvider"


def test_defaults_are_apache_38s() -> None:
    t = tls_settings({})
    assert t.keystore is None and t.truststore is None
    assert t.protocol == "TLSv1.2" and t.enabled_protocols == ("TLSv1.2",)
    assert t.ciphersuites == DEFAULT_CIPHERS and len(DEFAULT_CIPHERS) == 12
    assert t.client_auth == "NEED" and t.hostname_verification
    assert t.handshake_timeout_ms == 5000 and t.auth_provider == "x509"


def test_keys_under_the_client_and_quorum_prefixes() -> None:
    props = {
        "zookeeper.ssl.keyStore.location": "/k/server.p12",
        "zookeeper.ssl.keyStore.password": "s3cret",
        "zookeeper.ssl.trustStore.location": "/k/trust.bin",
        "zookeeper.ssl.trustStore.type": "jks",
        "zookeeper.ssl.protocol": "TLSv1.3",
        "zookeeper.ssl.ciphersuites": "A,B",
        "zookeeper.ssl.clientAuth": "want",
        "zookeeper.ssl.handshakeDetectionTimeoutMillis": "0",
        "zookeeper.ssl.quorum.keyStore.location": "/k/quorum.pem",
    }
    t = tls_settings(props)
    assert t.keystore is not None and t.keystore.type == "PKCS12"
    assert t.keystore.password == "s3cret" and "s3cret" not in repr(t.keystore)
    assert t.truststore is not None and t.truststore.type == "JKS"
    assert t.enabled_protocols == ("TLSv1.3",)  # follows ssl.protocol when not set
    assert t.ciphersuites == ("A", "B")
    assert t.client_auth == "WANT"
    assert t.handshake_timeout_ms == 5000  # below 1 falls back, as Apache warns
    q = tls_settings(props, QUORUM_PREFIX)
    assert q.keystore is not None and q.keystore.type == "PEM" and q.truststore is None
    assert CLIENT_PREFIX == "zookeeper.ssl."


@pytest.mark.parametrize(("prop", "location", "expected"), [
    (None, "/a/b.jks", "JKS"), (None, "x.p12", "PKCS12"), (None, "x.pem", "PEM"),
    (None, "x.bcfks", "BCFKS"), ("Pkcs12", "x.jks", "PKCS12"), ("", "x.pem", "PEM"),
])
def test_store_type_from_property_or_extension(prop: str | None, location: str,
                                               expected: str) -> None:
    assert store_type(prop, location, "k") == expected


def test_store_type_errors_use_apaches_words() -> None:
    with pytest.raises(ConfigError, match="^Unable to auto-detect store file type from file "
                                          "name: /a/store.pfx$"):
        store_type(None, "/a/store.pfx", "k")
    with pytest.raises(ConfigError, match="^Bad value for zookeeper.ssl.keyStore.type: JCEKS$"):
        tls_settings({"zookeeper.ssl.keyStore.location": "a.jks",
                      "zookeeper.ssl.keyStore.type": "JCEKS"})
    with pytest.raises(ConfigError, match="clientAuth: maybe"):
        tls_settings({"zookeeper.ssl.clientAuth": "maybe"})
    t = tls_settings({"zookeeper.ssl.handshakeDetectionTimeoutMillis": "soon"})
    assert t.handshake_timeout_ms == 5000  # logged, not fatal, as Apache


def test_java_cipher_names_become_openssls() -> None:
    assert [openssl_cipher_name(c) for c in DEFAULT_CIPHERS[:4]] == [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384"]
    assert openssl_cipher_name("TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA") == "ECDHE-RSA-AES128-SHA"
    assert openssl_cipher_name("TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384") == (
        "ECDHE-RSA-AES256-SHA384")
    assert openssl_cipher_name("TLS_DHE_RSA_WITH_AES_128_GCM_SHA256") == (
        "DHE-RSA-AES128-GCM-SHA256")
    assert openssl_cipher_name("TLS_RSA_WITH_AES_128_CBC_SHA") == "AES128-SHA"
    assert openssl_cipher_name("TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256") == (
        "ECDHE-RSA-CHACHA20-POLY1305")
    assert openssl_cipher_name("TLS_RSA_WITH_RC4_128_MD5") is None
    assert openssl_cipher_name("TLS_AES_128_GCM_SHA256") is None  # TLS 1.3: not narrowed


def _cfg(tmp_path: Path, extra: str):
    (tmp_path / "zoo.cfg").write_text(f"dataDir={tmp_path}\nclientPort=2181\n{extra}")
    return load_config(tmp_path / "zoo.cfg")


def test_a_secure_port_registers_the_x509_provider(tmp_path: Path) -> None:
    """QuorumPeerConfig.configureSSLAuth: as Apache, x509 ACLs work with a
    secure port even when no authProvider.N names the class."""
    assert _cfg(tmp_path, "").auth_provider_classes == ()
    cfg = _cfg(tmp_path, "secureClientPort=2281\n")
    assert cfg.auth_provider_classes == (X509,)
    assert cfg.system_properties["zookeeper.authProvider.x509"] == X509
    with pytest.raises(ConfigError, match="No auth provider configured for the SSL "
                                          "authentication scheme 'mtls'"):
        _cfg(tmp_path, "secureClientPort=2281\nssl.authProvider=mtls\n")
    cfg = _cfg(tmp_path,
               f"secureClientPort=2281\nssl.authProvider=mtls\nauthProvider.mtls={X509}\n")
    assert cfg.auth_provider_classes == (X509,)


def test_x509_acl_ids_and_matching() -> None:
    p = X509Provider()
    for ok in ("CN=client", "CN=a,OU=b,O=c\\, d,C=US", "", "1.2.3.4=#0c0178", "EMAILADDRESS=a@b"):
        assert p.is_valid(ok), ok
    for bad in ("client", "CN", "FOO=bar", "CN=a,junk"):
        assert not p.is_valid(bad), bad
    assert p.matches("CN=a", "CN=a") and not p.matches("CN=a", "CN=b")
    sup = X509Provider(super_user="CN=admin")
    assert sup.matches("CN=admin", "CN=anyone-else") and not sup.matches("CN=b", "CN=a")


def test_configured_providers_feed_acl_checks(caplog: pytest.LogCaptureFixture) -> None:
    reg = configured_providers([X509, "org.example.Nope"], x509_super_user="CN=root")
    assert set(reg) == {"ip", "digest", "x509"}
    assert "Problems loading org.example.Nope" in caplog.text
    acl = [ACL(31, Id("x509", "CN=client"))]
    assert fixup_acl(acl, [], providers=reg) == acl
    with pytest.raises(Exception):  # noqa: B017 - InvalidACL: no x509 provider by default
        fixup_acl(acl, [])
    assert check_acl(acl, 1, [Id("x509", "CN=client")], providers=reg)
    assert not check_acl(acl, 1, [Id("x509", "CN=other")], providers=reg)
    assert check_acl(acl, 1, [Id("x509", "CN=root")], providers=reg)
    # the auth scheme expands to the connection's x509 id
    assert fixup_acl([ACL(31, Id("auth", ""))], [Id("ip", "1.2.3.4"), Id("x509", "CN=c")],
                     providers=reg) == [ACL(31, Id("x509", "CN=c"))]
    assert set(configured_providers([], digest_enabled=False)) == {"ip"}


def test_first_bytes_tell_tls_from_plaintext() -> None:
    from pyzk.shell.unified import looks_like_tls

    hello = bytes([0x16, 3, 1, 0x02, 0x00])
    assert looks_like_tls(hello) is True
    assert looks_like_tls(hello[:3]) is None  # could still be TLS
    assert looks_like_tls(b"") is None
    assert looks_like_tls(b"ruok") is False  # a four-letter word, before 5 bytes
    assert looks_like_tls(b"\x00\x00\x00\x2d\x00") is False  # a ConnectRequest
    assert looks_like_tls(bytes([0x16, 2, 0, 0, 5])) is False  # not TLS 1.x
    assert looks_like_tls(bytes([0x16, 3, 3, 0, 0])) is False  # empty record
    assert looks_like_tls(bytes([0x17, 3, 3, 0x50, 0x00])) is False  # longer than any record


def test_port_unification_registers_x509_too_late_for_the_registry(tmp_path: Path,
                                                                   caplog) -> None:
    """As NettyServerCnxnFactory: configureSSLAuth runs after ProviderRegistry
    read the properties, so only an explicit authProvider.x509 registers it."""
    cfg = _cfg(tmp_path, "client.portUnification=true\n")
    assert cfg.client_port_unification and cfg.auth_provider_classes == ()
    assert cfg.system_properties["zookeeper.authProvider.x509"] == X509
    cfg = _cfg(tmp_path, f"client.portUnification=true\nauthProvider.x509={X509}\n")
    assert cfg.auth_provider_classes == (X509,)
    cfg = _cfg(tmp_path, "client.portUnification=true\nssl.authProvider=mtls\n")
    assert not cfg.client_port_unification
    assert "turning off client port unification" in caplog.text


def test_quorum_keys_and_defaults(tmp_path: Path, caplog) -> None:
    """sslQuorum/portUnification/sslQuorumReloadCertFiles are QuorumPeerConfig
    booleans (strict, as its parseBoolean); ssl.quorum.* become system
    properties QuorumX509Util reads, used without an "accepted but not used"."""
    cfg = _cfg(tmp_path, "sslQuorum=true\nportUnification=TRUE\nsslQuorumReloadCertFiles=false\n"
                         "ssl.quorum.keyStore.location=/k/q.jks\n"
                         "ssl.quorum.keyStore.password=hush\n")
    assert cfg.ssl_quorum and cfg.quorum_port_unification and not cfg.ssl_quorum_reload_cert_files
    assert "not used" not in caplog.text and "hush" not in caplog.text
    q = tls_settings(cfg.system_properties, QUORUM_PREFIX)
    assert q.keystore is not None and q.keystore.type == "JKS" and q.keystore.password == "hush"
    # QuorumX509Util: reverse lookups and checking the dialler's address are on
    assert q.hostname_verification and q.client_hostname_verification and q.allow_reverse_dns
    c = tls_settings(cfg.system_properties)
    assert not c.client_hostname_verification and not c.allow_reverse_dns
    off = tls_settings({"zookeeper.ssl.quorum.hostnameVerification": "false",
                        "zookeeper.ssl.quorum.allowReverseDnsLookup": "false"}, QUORUM_PREFIX)
    assert not off.client_hostname_verification and not off.allow_reverse_dns
    with pytest.raises(ConfigError, match="Invalid option yes for sslQuorum"):
        _cfg(tmp_path, "sslQuorum=yes\n")
    assert not _cfg(tmp_path, "").ssl_quorum


def test_host_mismatch_follows_zkhostnameverifier() -> None:
    """An address matches IP entries only, a name DNS entries only (one
    wildcard, within one label); the CN only without any subjectAltName."""
    ips, dns = ["127.0.0.1", "::1"], ["localhost", "*.zk.example"]
    assert host_mismatch("127.0.0.1", ips, dns, "x") is None
    assert host_mismatch("0:0:0:0:0:0:0:1", ips, dns, "x") is None  # normalised IPv6
    assert host_mismatch("LocalHost", ips, dns, "x") is None
    assert host_mismatch("a.zk.example", ips, dns, "x") is None
    assert host_mismatch("a.b.zk.example", ips, dns, "x") is not None
    assert host_mismatch("10.0.0.1", ips, dns, "10.0.0.1") is not None  # no CN fallback
    assert "doesn't match any of the subject alternative names" in (
        host_mismatch("127.0.0.2", ips, dns, None) or "")
    assert host_mismatch("localhost", ["127.0.0.1"], [], None) is not None
    assert host_mismatch("server1", [], [], "server1") is None
    assert host_mismatch("server2", [], [], "server1") is not None
    assert "doesn't contain a common name" in (host_mismatch("h", [], [], None) or "")
