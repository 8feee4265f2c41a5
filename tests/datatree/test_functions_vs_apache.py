"""Path rules, ip/digest providers, fixupACL and StatsTrack against Apache's own code."""

from __future__ import annotations

import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyzk.datatree.acl import (
    DigestProvider,
    InvalidACL,
    IPProvider,
    digest_id,
    fixup_acl,
    ip_matches,
)
from pyzk.datatree.paths import BadPath, validate_path
from pyzk.datatree.quota import StatsTrack
from pyzk.jute.records import ACL, Id, QuorumPacket, SetACLTxn

from .datatree_oracle import JavaOracle, java_available

if not java_available() and os.environ.get("PYZK_REQUIRE_REFERENCE") == "1":
    raise RuntimeError("PYZK_REQUIRE_REFERENCE=1 but java/javac or Apache's jars are missing")
pytestmark = [pytest.mark.reference,
              pytest.mark.skipif(not java_available(), reason="needs java and Apache's jars")]
_FAST = settings(max_examples=300, deadline=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.fixture(scope="module")
def oracle(tmp_path_factory):
    o = JavaOracle(tmp_path_factory.mktemp("oracle_fn"))
    yield o
    o.close()


def _h(s: str) -> str:
    return s.encode("utf-8").hex() or "~"


def _py_path(p: str, seq: bool) -> str:
    try:
        validate_path(p, seq)
        return "ok"
    except BadPath as e:
        return "bad " + str(e).encode("utf-8").hex()


_PATH_CHARS = st.sampled_from(
    list("/./..ab ") + ["\x00", "\x01", "\x1f", "\x7f", "\x9f", "\xa0", "\ud7ff", "\ue000",
                        "\uf8ff", "\uf900", "\uffef", "\ufff0", "\ufffd", "\U0001f600", "é"]
)


@_FAST
@given(st.lists(_PATH_CHARS, max_size=12).map("".join), st.booleans())
def test_validate_path_matches_apache(oracle, body, seq):
    path = body if body.startswith("/") or not body else "/" + body
    if path == "":
        return  # the oracle's hex protocol cannot carry an empty string
    assert _py_path(path, seq) == oracle.run(f"PATH {_h(path)} {int(seq)}")[0]


IP_CASES = [
    ("10.0.0.0/8", "10.1.2.3"), ("10.0.0.0/8", "11.1.2.3"), ("10.1.2.3", "10.1.2.3"),
    ("10.1.2.3/32", "10.1.2.4"), ("0.0.0.0/0", "1.2.3.4"), ("1.2.3.4/33", "1.2.3.4"),
    ("1.2.3.4/-1", "1.2.3.4"), ("1.2.3.4/", "1.2.3.4"), ("1.2.3", "1.2.3"), ("1.2.3.4.", "1.2.3.4"),
    ("256.1.1.1", "0.1.1.1"), ("+1.2.3.4", "1.2.3.4"), ("1.2.3.4/+8", "1.9.9.9"),
    ("01.2.3.4/08", "1.2.3.4"), ("::1", "::1"), ("0:0:0:0:0:0:0:1", "0:0:0:0:0:0:0:1"),
    ("192.168.1.0/23", "192.168.0.255"), ("192.168.1.0/23", "192.168.2.0"),
    (" 1.2.3.4", "1.2.3.4"), ("1.2.3.4/1_0", "1.2.3.4"), ("1.2.3.-0", "1.2.3.0"),
]


@pytest.mark.parametrize(("expr", "client"), IP_CASES)
def test_ip_provider_matches_apache(oracle, expr, client):
    want = oracle.run(f"IP {_h(expr)} {_h(client)}")[0]
    assert f"{str(IPProvider().is_valid(expr)).lower()} {str(ip_matches(expr, client)).lower()}" \
        == want


@pytest.mark.parametrize("idpw", ["u:p", "super:secret", "user", "a:b:c", ":x", "x:", "ü:ß", ""])
def test_digest_matches_apache(oracle, idpw):
    if not idpw:
        return
    got = oracle.run(f"DIGEST {_h(idpw)}")[0].split(" ")
    assert digest_id(idpw) == bytes.fromhex(got[0]).decode("utf-8")
    assert str(DigestProvider().is_valid(idpw)).lower() == got[1]


W = Id("world", "anyone")
FIX_CASES = [
    ([ACL(31, W)], []),
    ([ACL(31, W), ACL(31, W), ACL(1, W)], []),
    ([], []),
    ([ACL(31, Id("auth", ""))], []),
    ([ACL(31, Id("auth", ""))], [Id("ip", "1.2.3.4")]),
    ([ACL(31, Id("auth", "x"))], [Id("ip", "1.2.3.4"), Id("digest", "u:h="), Id("super", ""),
                                  Id("digest", "v:h=")]),
    ([ACL(31, Id("auth", "")), ACL(31, Id("digest", "u:h="))], [Id("digest", "u:h=")]),
    ([ACL(3, Id("digest", "u:h=")), ACL(1, Id("digest", "nocolon"))], []),
    ([ACL(3, Id("digest", "u:h=:"))], []),
    ([ACL(1, Id("world", "someone"))], []),
    ([ACL(1, Id("ip", "10.0.0.0/8")), ACL(1, Id("ip", "::1"))], []),
    ([ACL(1, Id("sasl", "x"))], []),
    ([ACL(1, Id("super", ""))], []),
    ([ACL(0, Id("ip", "10.0.0.0/8"))], []),
]


@pytest.mark.parametrize(("acls", "ids"), FIX_CASES)
def test_fixup_acl_matches_apache(oracle, acls, ids):
    want = oracle.run(
        f"FIX {SetACLTxn('/p', acls, 0).to_bytes().hex()} "
        f"{QuorumPacket(0, 0, None, ids).to_bytes().hex()}"
    )[0]
    try:
        got = "ok " + SetACLTxn("/p", fixup_acl(acls, ids, "/p"), 0).to_bytes().hex()
    except InvalidACL as e:
        got = f"err {int(e.code)}"
    assert got == want


_STATS_TEXT = st.lists(
    st.sampled_from(["count", "bytes", "countHardLimit", "byteHardLimit", "x", "=", ",", ";",
                     "1", "-1", "42", " ", ""]),
    max_size=10,
).map("".join)


@_FAST
@given(_STATS_TEXT)
def test_stats_track_matches_apache(oracle, text):
    if not text:
        return
    want = oracle.run(f"STATS {_h(text)}")[0]
    try:
        s = StatsTrack(text)
        got = (f"ok {s.to_bytes().hex()} {s.count} {s.bytes} {s.count_hard_limit} "
               f"{s.byte_hard_limit}")
    except ValueError:
        got = "error"
    assert got == want
