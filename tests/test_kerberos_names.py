"""Kerberos principal -> SASL id mapping (pyzk.core.kerberosname), checked by
hand and against Apache's own KerberosName (its ``main`` prints the mapping)."""

from __future__ import annotations

import subprocess

import pytest

from pyzk.core.kerberosname import (
    KerberosName,
    KerberosNameError,
    authorized_id,
    default_realm_of,
    parse_rules,
    short_name,
)
from pyzk.testing.servers import APACHE_CLASSPATH, require_reference

REALM = "EXAMPLE.COM"

#: (auth_to_local rules, principal, what KerberosName's main prints: "error" when it throws)
CASES = [
    ("DEFAULT", "client@EXAMPLE.COM", "client"),
    ("DEFAULT", "alice/host.example.com@EXAMPLE.COM", "alice"),
    ("DEFAULT", "bob@OTHER.ORG", "error"),              # DEFAULT maps the default realm only
    ("DEFAULT", "plain", "plain"),
    ("DEFAULT", "a@b@c", "error"),                      # malformed
    ("RULE:[1:$1@$0](.*@OTHER\\.ORG)s/@.*// DEFAULT", "bob@OTHER.ORG", "bob"),
    ("RULE:[1:$1@$0](.*@OTHER\\.ORG)s/@.*// DEFAULT", "carol@EXAMPLE.COM", "carol"),
    ("RULE:[2:$1](alice.*)s/a/A/g", "alice/h@EXAMPLE.COM", "Alice"),
    ("RULE:[2:$1;$2](^.*;h$)s/;.*$//", "svc/h@EXAMPLE.COM", "svc"),
    ("RULE:[2:$2]", "svc/h@EXAMPLE.COM", "h"),
    ("RULE:[2:$1/$2]", "svc/h@EXAMPLE.COM", "error"),   # a non-simple result
    ("RULE:[1:$1](x.*)s/(x)(.*)/$2$1/", "xyz@EXAMPLE.COM", "yzx"),
]


def _python_view(rules: str, name: str) -> str:
    try:
        k = KerberosName.parse(name)
        return f"Name: {k} to {short_name(k, parse_rules(rules), REALM)}"
    except KerberosNameError:
        return "error"


@pytest.mark.pure
def test_names_parse_as_kerberos_names() -> None:
    assert KerberosName.parse("svc/host@R") == KerberosName("svc", "host", "R")
    assert KerberosName.parse("user@R") == KerberosName("user", None, "R")
    assert KerberosName.parse("user") == KerberosName("user", None, None)
    assert str(KerberosName.parse("svc/host@R")) == "svc/host@R"
    with pytest.raises(KerberosNameError, match="Malformed"):
        KerberosName.parse("a/b/c@R")


@pytest.mark.pure
def test_sasl_ids_keep_host_and_realm_unless_removed() -> None:
    assert authorized_id("client@EXAMPLE.COM", {}, REALM) == "client@EXAMPLE.COM"
    assert authorized_id("svc/h@EXAMPLE.COM", {}, REALM) == "svc/h@EXAMPLE.COM"
    props = {"zookeeper.kerberos.removeHostFromPrincipal": "true"}
    assert authorized_id("svc/h@EXAMPLE.COM", props, REALM) == "svc@EXAMPLE.COM"
    props["zookeeper.kerberos.removeRealmFromPrincipal"] = "true"
    assert authorized_id("svc/h@EXAMPLE.COM", props, REALM) == "svc"
    assert authorized_id("bob", props, REALM) == "bob"  # a DIGEST-MD5 user name
    with pytest.raises(KerberosNameError, match="No rules applied"):
        authorized_id("bob@OTHER.ORG", {}, REALM)  # DEFAULT maps the default realm only


@pytest.mark.pure
def test_bad_rules_are_refused() -> None:
    with pytest.raises(KerberosNameError, match="Invalid rule"):
        parse_rules("RULE:nonsense")
    with pytest.raises(KerberosNameError, match="outside of the valid range"):
        short_name(KerberosName.parse("a@R"), parse_rules("RULE:[1:$5]"), "R")


@pytest.mark.pure
def test_the_default_realm_of_a_krb5_conf() -> None:
    conf = """
# comment
[libdefaults]
    dns_lookup_kdc = false
    default_realm = EXAMPLE.TEST
[realms]
    EXAMPLE.TEST = {
        default_realm = NOT.THIS
        kdc = 127.0.0.1:88
    }
"""
    assert default_realm_of(conf) == "EXAMPLE.TEST"
    assert default_realm_of("[realms]\n default_realm = X\n") is None


def _expected(name: str, short: str) -> str:
    return short if short == "error" else f"Name: {name} to {short}"


@pytest.mark.pure
@pytest.mark.parametrize(("rules", "name", "short"), CASES)
def test_rules_map_names(rules: str, name: str, short: str) -> None:
    assert _python_view(rules, name) == _expected(name, short)


@pytest.mark.server
@pytest.mark.reference
def test_rules_map_names_as_apaches_kerberos_name() -> None:
    require_reference()
    procs = [subprocess.Popen(
        ["java", "-cp", APACHE_CLASSPATH, f"-Djava.security.krb5.realm={REALM}",
         "-Djava.security.krb5.kdc=127.0.0.1", f"-Dzookeeper.security.auth_to_local={rules}",
         "org.apache.zookeeper.server.auth.KerberosName", name],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for rules, name, _ in CASES]
    java = []
    for p in procs:
        out, _err = p.communicate(timeout=120)
        java.append(out.strip() if p.returncode == 0 else "error")
    assert java == [_expected(n, short) for _, n, short in CASES]
