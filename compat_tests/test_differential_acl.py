"""ACLs, authentication, the super user and quotas: Apache vs pyzk."""

from __future__ import annotations

import base64
import hashlib

import pytest

from pyzk.jute import records as R
from pyzk.jute.constants import OpCode, Perms
from pyzk.testing.scenario import Outcome, auth, connect, create, op

pytestmark = [pytest.mark.server, pytest.mark.reference]


def digest(user: str, password: str) -> str:
    """DigestAuthenticationProvider.generateDigest: user:base64(sha1(user:pw))."""
    h = hashlib.sha1(f"{user}:{password}".encode()).digest()  # noqa: S324 - ZK's scheme
    return f"{user}:{base64.b64encode(h).decode()}"


def acl(perms: int, scheme: str, ident: str) -> R.ACL:
    return R.ACL(perms, R.Id(scheme, ident))


def result(o: Outcome, i: int) -> tuple:
    return o.steps[i][-1]


def test_world_digest_ip_auth_schemes(diff):
    steps = [
        connect("owner"),
        connect("anon"),
        auth("owner", "digest", b"alice:secret"),
        op("owner", OpCode.create, create("/ro", b"r", acl=[acl(Perms.READ, "world", "anyone")])),
        op("anon", OpCode.setData, R.SetDataRequest("/ro", b"x", -1)),  # NOAUTH
        op("anon", OpCode.getData, R.GetDataRequest("/ro", False)),
        op("anon", OpCode.create, create("/ro/child")),  # NOAUTH
        op("anon", OpCode.delete, R.DeleteRequest("/ro", -1)),  # no DELETE on parent "/"? ok
        op("owner", OpCode.create, create("/dg", b"d", acl=[acl(Perms.ALL, "digest",
                                                              digest("alice", "secret"))])),
        op("anon", OpCode.getData, R.GetDataRequest("/dg", False)),  # NOAUTH
        op("anon", OpCode.getACL, R.GetACLRequest("/dg")),
        op("owner", OpCode.getData, R.GetDataRequest("/dg", False)),
        op("owner", OpCode.create, create("/au", b"", acl=[acl(Perms.ALL, "auth", "")])),
        op("owner", OpCode.getACL, R.GetACLRequest("/au")),
        op("anon", OpCode.create, create("/au2", b"", acl=[acl(Perms.ALL, "auth", "")])),
        op("owner", OpCode.create, create("/ip", b"", acl=[acl(Perms.ALL, "ip", "127.0.0.1")])),
        op("anon", OpCode.getData, R.GetDataRequest("/ip", False)),
        op("owner", OpCode.create, create("/ipn", b"", acl=[acl(Perms.ALL, "ip", "10.0.0.0/8")])),
        op("anon", OpCode.getData, R.GetDataRequest("/ipn", False)),
        op("owner", OpCode.create, create("/ipn/c")),  # NOAUTH: no CREATE
        op("owner", OpCode.setACL, R.SetACLRequest("/ipn", [acl(31, "world", "anyone")], -1)),
        # Perms: write-only node; getData and getACL need READ / READ|ADMIN.
        op("owner", OpCode.create, create("/wo", b"", acl=[acl(Perms.WRITE, "world", "anyone")])),
        op("anon", OpCode.getData, R.GetDataRequest("/wo", False)),
        op("anon", OpCode.setData, R.SetDataRequest("/wo", b"w", -1)),
        op("anon", OpCode.getACL, R.GetACLRequest("/wo")),
        op("anon", OpCode.exists, R.ExistsRequest("/wo", False)),
        op("anon", OpCode.getChildren, R.GetChildrenRequest("/wo", False)),
        op("owner", OpCode.whoAmI),
        auth("anon", "digest", b"bob:pw"),
        auth("anon", "digest", b"alice:secret"),
        op("anon", OpCode.getData, R.GetDataRequest("/dg", False)),
        op("anon", OpCode.whoAmI),
        auth("anon", "ip", b"127.0.0.1"),
        auth("anon", "nosuchscheme", b"x"),
        op("anon", OpCode.getData, R.GetDataRequest("/dg", False)),
    ]

    def check(o: Outcome) -> None:
        assert result(o, 4)[0] == "NOAUTH"
        assert result(o, 9)[0] == "NOAUTH"
        assert result(o, 11)[0] == "OK"
        assert result(o, 14)[0] == "INVALIDACL"
        assert result(o, 16)[0] == "OK"
        assert result(o, 18)[0] == "NOAUTH"
        assert result(o, 30)[0] == "OK"

    diff(steps, check=check)


SUPER_PW = "superpw"


def test_super_digest(diff):
    steps = [
        connect("owner"),
        connect("root"),
        auth("owner", "digest", b"alice:secret"),
        op("owner", OpCode.create, create("/locked", b"l",
                                          acl=[acl(Perms.ALL, "digest", digest("alice", "s"))])),
        op("root", OpCode.getData, R.GetDataRequest("/locked", False)),
        auth("root", "digest", f"super:{SUPER_PW}".encode()),
        op("root", OpCode.getData, R.GetDataRequest("/locked", False)),
        op("root", OpCode.setACL, R.SetACLRequest("/locked", [acl(31, "world", "anyone")], -1)),
        op("root", OpCode.whoAmI),
        op("owner", OpCode.getData, R.GetDataRequest("/locked", False)),
    ]

    def check(o: Outcome) -> None:
        assert result(o, 4)[0] == "NOAUTH"
        assert result(o, 6)[0] == "OK"

    flag = "-Dzookeeper.DigestAuthenticationProvider.superDigest=" + digest("super", SUPER_PW)
    diff(steps, jvm_flags=[flag], check=check)


def quota_steps(path: str, limits: bytes) -> list:
    """The nodes zkCli's setquota creates, in the same order."""
    q = "/zookeeper/quota" + path
    parts = path.strip("/").split("/")
    steps = []
    for i in range(1, len(parts) + 1):
        steps.append(op("a", OpCode.create, create("/zookeeper/quota/" + "/".join(parts[:i]))))
    steps += [
        op("a", OpCode.create, create(q + "/zookeeper_limits", limits)),
        op("a", OpCode.create, create(q + "/zookeeper_stats", b"count=0,bytes=0")),
    ]
    return steps


def test_quota_stats_nodes(diff):
    steps = [
        connect("a"),
        op("a", OpCode.create, create("/qa", b"12345")),
        op("a", OpCode.create, create("/qa/b", b"xx")),
        *quota_steps("/qa", b"count=3,bytes=-1"),
        op("a", OpCode.getData, R.GetDataRequest("/zookeeper/quota/qa/zookeeper_stats", False)),
        op("a", OpCode.create, create("/qa/c", b"abc")),
        op("a", OpCode.create, create("/qa/d", b"")),
        op("a", OpCode.create, create("/qa/e", b"overflow")),  # beyond soft limit: allowed
        op("a", OpCode.setData, R.SetDataRequest("/qa", b"1", -1)),
        op("a", OpCode.delete, R.DeleteRequest("/qa/b", -1)),
        op("a", OpCode.getData, R.GetDataRequest("/zookeeper/quota/qa/zookeeper_stats", False)),
        op("a", OpCode.getData, R.GetDataRequest("/zookeeper/quota/qa/zookeeper_limits", False)),
        op("a", OpCode.getChildren, R.GetChildrenRequest("/zookeeper/quota", False)),
        op("a", OpCode.getAllChildrenNumber, R.GetAllChildrenNumberRequest("/zookeeper")),
        # A hard limit (new StatsTrack format) with enforcement on.
        op("a", OpCode.create, create("/qh")),
        *quota_steps("/qh", b"count=-1,bytes=-1=;countHardLimit=2"),
        op("a", OpCode.create, create("/qh/1")),
        op("a", OpCode.create, create("/qh/2")),
        op("a", OpCode.create, create("/qh/3")),
        op("a", OpCode.getData, R.GetDataRequest("/zookeeper/quota/qh/zookeeper_stats", False)),
    ]

    def check(o: Outcome) -> None:
        stats = result(o, 12)[2][1]["data"]
        # /qa ("1"), /qa/c, /qa/d, /qa/e after /qa/b's deletion.
        assert stats == b"count=4,bytes=12", stats
        assert result(o, 21)[0] == "QUOTAEXCEEDED"

    diff(steps, jvm_flags=["-Dzookeeper.enforceQuota=true"], check=check)
