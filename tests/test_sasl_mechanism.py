"""JAAS files and the DIGEST-MD5 server, driven by an independent client
implementation (pure-sasl, what kazoo uses)."""

from __future__ import annotations

import pytest
from puresasl.client import SASLClient

from pyzk.config import ConfigError
from pyzk.config.jaas import DIGEST_LOGIN_MODULE, digest_users, parse_jaas
from pyzk.core.digestmd5 import DIGEST_URI, DigestMD5Server, SaslError, parse_directives

pytestmark = pytest.mark.pure

JAAS = """
/* a comment
   over lines */
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="adminsecret"   // trailing comment
    user_bob="bob \\"the\\" builder";
};

Client {
  com.sun.security.auth.module.Krb5LoginModule REQUIRED
  useKeyTab=true keyTab="/etc/zk.keytab" principal="zk/host@EXAMPLE.COM";
  other.Module optional;
};
"""


def test_jaas_sections_modules_and_options() -> None:
    sections = parse_jaas(JAAS)
    assert list(sections) == ["Server", "Client"]
    (server,) = sections["Server"]
    assert server.name == DIGEST_LOGIN_MODULE and server.flag == "required"
    assert digest_users(sections["Server"]) == {"super": "adminsecret",
                                                "bob": 'bob "the" builder'}
    krb, other = sections["Client"]
    assert krb.flag == "required" and krb.options == {
        "useKeyTab": "true", "keyTab": "/etc/zk.keytab", "principal": "zk/host@EXAMPLE.COM"}
    assert other.options == {} and digest_users(sections["Client"]) is None
    assert "adminsecret" not in repr(sections)


@pytest.mark.parametrize("text", [
    "Server { a.B required user_x=\"s3cr3t\" }",          # no ';' after the module
    "Server { a.B mandatory; };",                        # not a control flag
    "Server { a.B required key=; };",                    # no value
    "Server a.B required; };",                           # no '{'
    "Server { a.B required user_x=\"s3cr3t\"; }",        # no ';' after the section
])
def test_bad_jaas_is_refused_without_echoing_values(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_jaas(text)
    assert "s3cr3t" not in str(info.value)


def _negotiate(users: dict[str, str], username: str, password: str,
               server: DigestMD5Server | None = None) -> DigestMD5Server:
    server = server or DigestMD5Server(users, "OA6MG9tEQGm2hh")
    client = SASLClient("zk-sasl-md5", service="zookeeper", mechanism="DIGEST-MD5",
                        username=username, password=password)
    token = client.process(None) or b""
    challenge = server.evaluate(token)
    assert b'realm="zk-sasl-md5"' in challenge and b'nonce="OA6MG9tEQGm2hh"' in challenge
    response = client.process(challenge)
    assert b'digest-uri="' + DIGEST_URI.encode() + b'"' in response
    rspauth = server.evaluate(response)
    client.process(rspauth)  # pure-sasl checks rspauth and raises if it is wrong
    assert client.complete
    return server


def test_pure_sasl_authenticates_and_checks_the_servers_rspauth() -> None:
    users = {"bob": "bob-secret", "x": 'with "quotes", commas'}
    s = _negotiate(users, "bob", "bob-secret")
    assert s.complete and s.authorization_id == "bob"
    assert _negotiate(users, "x", 'with "quotes", commas').authorization_id == "x"


def test_credentials_are_hashed_in_latin1_when_they_fit() -> None:
    """RFC 2831 2.1.2, as the JDK: ISO-8859-1 whenever possible, UTF-8 only for
    characters beyond it. (pure-sasl always hashes UTF-8 and sends no charset,
    so a non-ASCII password fails with it, against Apache too.)"""
    from pyzk.core.digestmd5 import _octets

    assert _octets("caf\u00e9", True) == b"caf\xe9"
    assert _octets("\u4e2d", True) == "\u4e2d".encode()
    assert _octets("caf\u00e9", False) == b"caf\xe9"
    with pytest.raises(UnicodeEncodeError):
        _octets("\u4e2d", False)


@pytest.mark.parametrize(("user", "password", "message"), [
    ("bob", "wrong", "Mismatched response"),
    ("mallory", "x", "cannot acquire password for mallory"),
])
def test_wrong_credentials_are_refused(user: str, password: str, message: str) -> None:
    with pytest.raises(SaslError, match=message) as info:
        _negotiate({"bob": "bob-secret"}, user, password)
    assert "bob-secret" not in str(info.value)


def test_protocol_violations_are_refused() -> None:
    s = DigestMD5Server({"bob": "pw"}, "n1")
    with pytest.raises(SaslError, match="initial response"):
        s.evaluate(b"username=bob")
    s = DigestMD5Server({"bob": "pw"}, "n1")
    s.evaluate(b"")
    base = 'username="bob",realm="zk-sasl-md5",nonce="n1",cnonce="c",nc=00000001,qop=auth,' \
           'digest-uri="{uri}",response=00'
    with pytest.raises(SaslError, match="Mismatched URI"):
        s.evaluate(base.format(uri="ldap/zk-sasl-md5").encode())
    for bad, msg in [(base.replace('nonce="n1"', 'nonce="n2"'), "Mismatched nonce"),
                     (base.replace("nc=00000001", "nc=00000002"), "nonce count"),
                     (base.replace("qop=auth", "qop=auth-conf"), "qop auth-conf"),
                     ('username="bob",nonce="n1"', "no cnonce"),
                     ('username="bob",,', "format violation")]:
        s = DigestMD5Server({"bob": "pw"}, "n1")
        s.evaluate(b"")
        with pytest.raises(SaslError, match=msg):
            s.evaluate(bad.format(uri=DIGEST_URI).encode())
    assert parse_directives(b'a="x\\"y", b=2') == {"a": 'x"y', "b": "2"}


def test_enforcement_settings(tmp_path) -> None:
    from pyzk.shell.configfile import load_config

    def cfg(extra: str):
        (tmp_path / "zoo.cfg").write_text(f"dataDir={tmp_path}\nclientPort=2181\n{extra}")
        return load_config(str(tmp_path / "zoo.cfg"))

    c = cfg("")
    assert not c.enforce_auth_enabled and c.enforce_auth_schemes == ()
    sasl = "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n"
    c = cfg(sasl + "enforce.auth.enabled=true\nenforce.auth.schemes= sasl , digest\n")
    assert c.enforce_auth_enabled and c.enforce_auth_schemes == ("sasl", "digest")
    # sessionRequireClientSASLAuth wins over the other two
    c = cfg(sasl + "sessionRequireClientSASLAuth=true\nenforce.auth.schemes=digest\n")
    assert c.enforce_auth_enabled and c.enforce_auth_schemes == ("sasl",)
    assert cfg("allowSaslFailedClients=true\n").allow_sasl_failed_clients


def test_bad_enforcement_fails_when_the_config_is_loaded(tmp_path) -> None:
    """Before any server object exists, so an ensemble member fails at start."""
    from pyzk.shell.configfile import load_config

    (tmp_path / "zoo.cfg").write_text(
        f"dataDir={tmp_path}\nclientPort=2181\nenforce.auth.enabled=true\n"
        "enforce.auth.schemes=sasl\n")
    with pytest.raises(ConfigError, match="Authentication scheme sasl is not available"):
        load_config(str(tmp_path / "zoo.cfg"))
    (tmp_path / "zoo.cfg").write_text(
        f"dataDir={tmp_path}\nclientPort=2181\nenforce.auth.enabled=true\n")
    with pytest.raises(ConfigError, match="enforce.auth.schemes must be  configured"):
        load_config(str(tmp_path / "zoo.cfg"))
