"""ACL cache, providers, checkACL and fixupACL (semantics from Apache 3.8's code)."""

from __future__ import annotations

import pytest

from pyzk.datatree.acl import (
    ACLCache,
    InvalidACL,
    SASLProvider,
    check_acl,
    digest_id,
    fixup_acl,
    ip_matches,
    is_valid_acl_id,
    open_acl_unsafe,
    providers_with,
)
from pyzk.jute.constants import Err, Perms
from pyzk.jute.records import ACL, Id

pytestmark = pytest.mark.pure

OPEN = [ACL(Perms.ALL, Id("world", "anyone"))]
READ = [ACL(Perms.READ, Id("world", "anyone"))]


def test_digest_id_is_sha1_base64():
    # DigestAuthenticationProvider.generateDigest("u:p") as printed by Apache
    assert digest_id("u:p") == "u:Jq7wMyA/w2Vd5WIDAKdu4OIIFEQ="
    assert digest_id("super:secret").startswith("super:")
    assert digest_id("nocolon").startswith("nocolon:")


@pytest.mark.parametrize(
    ("expr", "client", "ok"),
    [
        ("10.0.0.0/8", "10.255.1.1", True),
        ("10.0.0.0/8", "11.0.0.1", False),
        ("192.168.1.0/23", "192.168.0.7", True),
        ("192.168.1.0/24", "192.168.0.7", False),
        ("1.2.3.4", "1.2.3.4", True),
        ("1.2.3.4", "1.2.3.5", False),
        ("0.0.0.0/0", "8.8.8.8", True),
        ("1.2.3.4/33", "1.2.3.4", False),
        ("1.2.3.4/", "1.2.3.4", False),
        ("::1", "::1", False),  # Apache 3.8's ip provider is IPv4-only
        ("fe80::/10", "fe80::1", False),
        ("10.0.0.1", "0:0:0:0:0:0:0:1", False),
    ],
)
def test_ip_matches(expr, client, ok):
    assert ip_matches(expr, client) is ok


def test_check_acl_world_digest_ip_super():
    me = [Id("digest", digest_id("u:p")), Id("ip", "10.1.1.1")]
    assert check_acl(OPEN, Perms.DELETE, [])
    assert check_acl(READ, Perms.READ, [])
    assert not check_acl(READ, Perms.WRITE, [])
    d = [ACL(Perms.WRITE, Id("digest", digest_id("u:p")))]
    assert check_acl(d, Perms.WRITE, me)
    assert not check_acl(d, Perms.READ, me)
    assert not check_acl(d, Perms.WRITE, [Id("digest", digest_id("u:q"))])
    ip = [ACL(Perms.READ | Perms.ADMIN, Id("ip", "10.0.0.0/8"))]
    assert check_acl(ip, Perms.ADMIN, me)
    assert not check_acl(ip, Perms.ADMIN, [Id("ip", "11.1.1.1")])
    assert check_acl(d, Perms.ADMIN, [Id("super", "")])
    assert check_acl(d, Perms.ADMIN, [], super_user=True)
    assert check_acl([], Perms.ADMIN, [])  # an empty ACL allows everything
    # a scheme without a provider never matches
    assert not check_acl([ACL(31, Id("sasl", "bob"))], Perms.READ, [Id("sasl", "bob")])
    sasl = providers_with(SASLProvider())
    assert check_acl([ACL(31, Id("sasl", "bob"))], Perms.READ, [Id("sasl", "bob")],
                     providers=sasl)


def test_fixup_acl_cases():
    assert fixup_acl(OPEN, []) == OPEN
    assert fixup_acl(OPEN + OPEN, []) == OPEN
    for bad in ([], None, [ACL(1, Id("world", "x"))], [ACL(1, Id("digest", "nocolon"))],
                [ACL(1, Id("nosuch", "x"))], [ACL(1, Id("auth", ""))],
                [ACL(1, Id("ip", "::1"))], [ACL(1, Id("super", ""))]):
        with pytest.raises(InvalidACL) as e:
            fixup_acl(bad, [Id("ip", "1.2.3.4")], "/p")
        assert e.value.code == Err.INVALIDACL and e.value.path == "/p"
    ids = [Id("ip", "1.2.3.4"), Id("digest", "u:h="), Id("super", ""), Id("digest", "v:h=")]
    got = fixup_acl([ACL(5, Id("auth", "ignored"))], ids)
    assert got == [ACL(5, Id("digest", "u:h=")), ACL(5, Id("digest", "v:h="))]
    # expansion can reintroduce a duplicate, as in Apache
    dup = fixup_acl([ACL(31, Id("auth", "")), ACL(31, Id("digest", "u:h="))], ids[1:2])
    assert dup == [ACL(31, Id("digest", "u:h=")), ACL(31, Id("digest", "u:h="))]


def test_is_valid_acl_id():
    assert is_valid_acl_id("world", "anyone")
    assert not is_valid_acl_id("world", "nobody")
    assert is_valid_acl_id("digest", "u:x")
    assert not is_valid_acl_id("digest", "u:")
    assert is_valid_acl_id("ip", "10.0.0.0/8")
    assert not is_valid_acl_id("sasl", "x")
    assert is_valid_acl_id("sasl", "x", providers_with(SASLProvider()))
    assert not is_valid_acl_id("sasl", "a@b@c", providers_with(SASLProvider()))


def test_acl_cache_ids_refcounts_and_open_unsafe():
    c = ACLCache()
    assert c.convert_acls(None) == -1
    assert c.get(-1) == open_acl_unsafe()
    assert len(c) == 0
    a = c.convert_acls(OPEN)  # a real list gets a real id, even if it is OPEN_ACL_UNSAFE
    assert a == 1
    assert c.convert_acls([ACL(31, Id("world", "anyone"))]) == 1
    assert c.refcount(1) == 2
    b = c.convert_acls(READ)
    assert b == 2
    c.remove_usage(1)
    c.remove_usage(1)
    with pytest.raises(KeyError):
        c.get(1)
    assert c.convert_acls(OPEN) == 3  # ids are never reused
    c.remove_usage(-1)  # ignored
    c.add_usage(99)  # unknown: ignored
    assert [(i, r) for i, _, r in c] == [(2, 1), (3, 1)]


def test_acl_cache_load_and_purge():
    c = ACLCache()
    c.load([(5, OPEN), (7, READ)])
    assert c.acl_index == 5 + 2 and len(c) == 2
    c.add_usage(7)
    c.purge_unused()
    assert [i for i, _, _ in c] == [7]
    assert c.convert_acls([ACL(2, Id("world", "anyone"))]) == 8
