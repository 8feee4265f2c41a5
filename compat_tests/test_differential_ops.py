"""Every client opcode, run on Apache and pyzk from fresh servers; outcomes equal.

Each test also checks a few facts on Apache's outcome, so a scenario that
stopped exercising what it claims (a typo in a path, a harness bug) fails
rather than comparing two identical nothings.
"""

from __future__ import annotations

import pytest

from pyzk.jute import records as R
from pyzk.jute.constants import AddWatchMode, CreateMode, OpCode, WatcherType
from pyzk.testing.scenario import (
    Outcome,
    auth,
    connect,
    create,
    multi,
    op,
    raw,
    send,
    sleep,
)
from pyzk.testing.wire import frame

pytestmark = [pytest.mark.server, pytest.mark.reference]


def result(o: Outcome, i: int) -> tuple:
    """(err name, zxid, body) of step i."""
    return o.steps[i][-1]


def test_create_every_mode_and_read_back(diff):
    steps = [
        connect("a"),
        op("a", OpCode.create, create("/p", b"data")),
        op("a", OpCode.create, create("/p/seq-", b"1", CreateMode.PERSISTENT_SEQUENTIAL)),
        op("a", OpCode.create, create("/p/seq-", b"2", CreateMode.PERSISTENT_SEQUENTIAL)),
        op("a", OpCode.create, create("/p/eph", b"e", CreateMode.EPHEMERAL)),
        op("a", OpCode.create, create("/p/es-", b"", CreateMode.EPHEMERAL_SEQUENTIAL)),
        op("a", OpCode.create2, create("/p/c2", b"xy")),
        op("a", OpCode.create2, create("/p/c2s", b"", CreateMode.PERSISTENT_SEQUENTIAL)),
        op("a", OpCode.createContainer, create("/cont", b"", CreateMode.CONTAINER)),
        op("a", OpCode.create, create("/cont2", b"", CreateMode.CONTAINER)),
        op("a", OpCode.getData, R.GetDataRequest("/p", False)),
        op("a", OpCode.getData, R.GetDataRequest("/p/eph", False)),
        op("a", OpCode.getChildren, R.GetChildrenRequest("/p", False)),
        op("a", OpCode.getChildren2, R.GetChildren2Request("/p", False)),
        op("a", OpCode.exists, R.ExistsRequest("/p/seq-0000000000", False)),
        op("a", OpCode.exists, R.ExistsRequest("/cont", False)),
        op("a", OpCode.getAllChildrenNumber, R.GetAllChildrenNumberRequest("/")),
        op("a", OpCode.getAllChildrenNumber, R.GetAllChildrenNumberRequest("/p")),
        op("a", OpCode.getEphemerals, R.GetEphemeralsRequest("/")),
        op("a", OpCode.getEphemerals, R.GetEphemeralsRequest("/p/e")),
        op("a", OpCode.getData, R.GetDataRequest("/zookeeper", False)),
        op("a", OpCode.getChildren2, R.GetChildren2Request("/zookeeper", False)),
        op("a", OpCode.getData, R.GetDataRequest("/zookeeper/config", False)),
        op("a", OpCode.getACL, R.GetACLRequest("/zookeeper/config")),
    ]

    def check(o: Outcome) -> None:
        assert o.steps[0][2][1]["sessionId"] == "<session a>"
        assert result(o, 1) == ("OK", 2, ("CreateResponse", {"path": "/p"}))
        assert result(o, 2)[2][1]["path"] == "/p/seq-0000000000"
        assert result(o, 3)[2][1]["path"] == "/p/seq-0000000001"
        eph = result(o, 11)[2][1]["stat"][1]
        assert eph["ephemeralOwner"] == "<session a>"
        assert result(o, 16)[2] == ("GetAllChildrenNumberResponse", {"totalNumber": 12})

    diff(steps, check=check)


def test_ttl_nodes(diff):
    steps = [
        connect("a"),
        op("a", OpCode.createTTL, R.CreateTTLRequest(
            "/ttl", b"t", create("/").acl, CreateMode.PERSISTENT_WITH_TTL, 60000)),
        op("a", OpCode.createTTL, R.CreateTTLRequest(
            "/ttls-", b"", create("/").acl, CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL, 1000)),
        op("a", OpCode.exists, R.ExistsRequest("/ttl", False)),
        # Bad TTLs and a TTL mode through the plain create opcode.
        op("a", OpCode.createTTL, R.CreateTTLRequest(
            "/ttl0", b"", create("/").acl, CreateMode.PERSISTENT_WITH_TTL, 0)),
        op("a", OpCode.createTTL, R.CreateTTLRequest(
            "/ttlneg", b"", create("/").acl, CreateMode.PERSISTENT_WITH_TTL, -5)),
        op("a", OpCode.createTTL, R.CreateTTLRequest(
            "/ttlbig", b"", create("/").acl, CreateMode.PERSISTENT_WITH_TTL, 1 << 41)),
        op("a", OpCode.createTTL, R.CreateTTLRequest(
            "/ttlpers", b"", create("/").acl, CreateMode.PERSISTENT, 1000)),
        op("a", OpCode.create, create("/ttlviacreate", b"", CreateMode.PERSISTENT_WITH_TTL)),
        op("a", OpCode.create2, create("/ttlviacreate2", b"", CreateMode.PERSISTENT_WITH_TTL)),
    ]

    def check(o: Outcome) -> None:
        assert result(o, 1)[0] == "OK"
        stat = result(o, 3)[2][1]["stat"][1]
        # The TTL lives in StatPersisted.ephemeralOwner but Apache reports 0.
        assert stat["ephemeralOwner"] == 0 and stat["czxid"] == 2
        assert result(o, 4)[0] == "BADARGUMENTS"

    diff(steps, extra_cfg={"extendedTypesEnabled": "true"}, check=check)


def test_ttl_disabled_by_default(diff):
    steps = [
        connect("a"),
        op("a", OpCode.createTTL, R.CreateTTLRequest(
            "/ttl", b"t", create("/").acl, CreateMode.PERSISTENT_WITH_TTL, 60000)),
    ]

    def check(o: Outcome) -> None:
        assert result(o, 1)[0] != "OK"

    diff(steps, check=check)


def test_set_delete_versions(diff):
    steps = [
        connect("a"),
        op("a", OpCode.create, create("/n", b"v0")),
        op("a", OpCode.setData, R.SetDataRequest("/n", b"v1", 0)),
        op("a", OpCode.setData, R.SetDataRequest("/n", b"v2", 0)),  # BADVERSION
        op("a", OpCode.setData, R.SetDataRequest("/n", b"", -1)),
        op("a", OpCode.setData, R.SetDataRequest("/n", None, -1)),
        op("a", OpCode.getData, R.GetDataRequest("/n", False)),
        op("a", OpCode.setData, R.SetDataRequest("/missing", b"", -1)),
        op("a", OpCode.create, create("/n/c")),
        op("a", OpCode.delete, R.DeleteRequest("/n", -1)),  # NOTEMPTY
        op("a", OpCode.delete, R.DeleteRequest("/n/c", 5)),  # BADVERSION
        op("a", OpCode.delete, R.DeleteRequest("/n/c", 0)),
        op("a", OpCode.delete, R.DeleteRequest("/n/c", -1)),  # NONODE
        op("a", OpCode.getChildren2, R.GetChildren2Request("/n", False)),
        op("a", OpCode.delete, R.DeleteRequest("/n", 3)),
        op("a", OpCode.exists, R.ExistsRequest("/n", False)),
        op("a", OpCode.delete, R.DeleteRequest("/", -1)),
        op("a", OpCode.delete, R.DeleteRequest("/zookeeper", -1)),
        op("a", OpCode.delete, R.DeleteRequest("/zookeeper/quota", -1)),
        op("a", OpCode.setData, R.SetDataRequest("/zookeeper/config", b"x", -1)),
    ]

    def check(o: Outcome) -> None:
        assert result(o, 3)[0] == "BADVERSION"
        assert result(o, 9)[0] == "NOTEMPTY"
        assert result(o, 12)[0] == "NONODE"
        assert result(o, 15)[0] == "NONODE"

    diff(steps, check=check)


def test_create_errors(diff):
    steps = [
        connect("a"),
        op("a", OpCode.create, create("/x")),
        op("a", OpCode.create, create("/x")),  # NODEEXISTS
        op("a", OpCode.create, create("/nope/child")),  # NONODE
        op("a", OpCode.create, create("/e", b"", CreateMode.EPHEMERAL)),
        op("a", OpCode.create, create("/e/child")),  # NOCHILDRENFOREPHEMERALS
        op("a", OpCode.create, create("/e/child", b"", CreateMode.EPHEMERAL)),
        op("a", OpCode.create2, create("/e/s-", b"", CreateMode.EPHEMERAL_SEQUENTIAL)),
        op("a", OpCode.create, create("/y", b"", 7)),  # unknown create mode
        op("a", OpCode.create, create("/y", b"", -1)),
        op("a", OpCode.create, create("/z", b"", acl=[])),  # INVALIDACL
        op("a", OpCode.create, create("/z1", b"", acl=[R.ACL(31, R.Id("world", "nobody"))])),
        op("a", OpCode.create, R.CreateRequest("/z2", b"", None, 0)),
        op("a", OpCode.create, create("/z3", b"", acl=[R.ACL(31, R.Id("nope", "x"))])),
        op("a", OpCode.create, create("/z4", b"", acl=[R.ACL(31, R.Id("auth", ""))])),
        op("a", OpCode.create, create("/z5", b"", acl=[R.ACL(31, R.Id("digest", "bad"))])),
        op("a", OpCode.create, create("/z6", b"", acl=[R.ACL(31, R.Id("ip", "300.1.1.1"))])),
        op("a", OpCode.create, create("/z7", b"", acl=[R.ACL(31, R.Id("ip", "10.0.0.0/8"))])),
        op("a", OpCode.create, create("/z8", b"", acl=[R.ACL(0, R.Id("world", "anyone"))])),
        op("a", OpCode.create, create("/z9", b"", acl=[R.ACL(99, R.Id("world", "anyone"))])),
        op("a", OpCode.getACL, R.GetACLRequest("/z8")),
        op("a", OpCode.getACL, R.GetACLRequest("/z9")),
        op("a", OpCode.create, create("/zookeeper/x")),
        op("a", OpCode.create, create("/zookeeper/config/x")),
        op("a", OpCode.create, create("/big", b"x" * 1_000_000)),
    ]

    def check(o: Outcome) -> None:
        assert result(o, 2)[0] == "NODEEXISTS"
        assert result(o, 3)[0] == "NONODE"
        assert result(o, 5)[0] == "NOCHILDRENFOREPHEMERALS"
        assert result(o, 6)[0] == "NOCHILDRENFOREPHEMERALS"
        assert result(o, 10)[0] == "INVALIDACL"
        assert result(o, 14)[0] == "INVALIDACL"

    diff(steps, check=check)


INVALID_PATHS = [
    "", "a", "/a/", "//", "/a//b", "/a/./b", "/a/../b", "/.", "/..", "/a/.",
    "/a\u0000b", "/a\u0001", "/a\u001f", "/a\u007f", "/a\u009f", "/a\ufff0",
    "/a\ufffe", "/a\uf8ff", "/a\ue000", "/.a", "/a.", "/...", "/a b", "/zookeeper/",
]


def test_invalid_paths(diff):
    steps = [connect("a")]
    for p in INVALID_PATHS:
        steps.append(op("a", OpCode.create, create(p)))
        steps.append(op("a", OpCode.create, create(p, b"", CreateMode.PERSISTENT_SEQUENTIAL)))
        steps.append(op("a", OpCode.exists, R.ExistsRequest(p, False)))
        steps.append(op("a", OpCode.getData, R.GetDataRequest(p, False)))
        steps.append(op("a", OpCode.delete, R.DeleteRequest(p, -1)))
        steps.append(op("a", OpCode.setData, R.SetDataRequest(p, b"", -1)))
    # The connection survives (or not) identically; a final read shows state.
    steps.append(op("a", OpCode.getChildren, R.GetChildrenRequest("/", False)))

    def check(o: Outcome) -> None:
        assert result(o, 1)[0] == "BADARGUMENTS"  # "" is rejected
        assert result(o, 7)[0] == "BADARGUMENTS"  # "a"

    diff(steps, check=check)


def test_multi_success_and_failure(diff):
    acl = create("/").acl
    steps = [
        connect("a"),
        op("a", OpCode.create, create("/m", b"0")),
        multi("a", [
            (OpCode.check, R.CheckVersionRequest("/m", 0)),
            (OpCode.create, create("/m/a", b"a")),
            (OpCode.create2, create("/m/b", b"b")),
            (OpCode.create, create("/m/s-", b"", CreateMode.PERSISTENT_SEQUENTIAL)),
            (OpCode.setData, R.SetDataRequest("/m", b"1", 0)),
            (OpCode.delete, R.DeleteRequest("/m/a", 0)),
            (OpCode.createContainer, create("/m/c", b"", CreateMode.CONTAINER)),
        ]),
        multi("a", [
            (OpCode.create, create("/m/x")),
            (OpCode.check, R.CheckVersionRequest("/m", 0)),  # fails: version is 1
            (OpCode.create, create("/m/y")),
        ]),
        multi("a", [
            (OpCode.setData, R.SetDataRequest("/m", b"2", 1)),
            (OpCode.delete, R.DeleteRequest("/m", -1)),  # NOTEMPTY
        ]),
        multi("a", []),
        multi("a", [(OpCode.create, create("/m/e", b"", CreateMode.EPHEMERAL)),
                    (OpCode.create, create("/m/e/x"))]),
        multi("a", [(OpCode.createTTL, R.CreateTTLRequest(
            "/m/t", b"", acl, CreateMode.PERSISTENT_WITH_TTL, 100))]),
        multi("a", [(OpCode.getData, R.GetDataRequest("/m", False))]),  # read in multi
        multi("a", [(OpCode.create, create("/bad/"))]),
        op("a", OpCode.getChildren2, R.GetChildren2Request("/m", False)),
        op("a", OpCode.getData, R.GetDataRequest("/m", False)),
    ]

    def check(o: Outcome) -> None:
        ok = result(o, 2)
        assert ok[0] == "OK" and len(ok[2]) == 7
        assert ok[2][0] == ("result", OpCode.check, 0, None)
        failed = result(o, 3)
        # A failed multi is still "OK" at the top and consumes a zxid;
        # each sub-result is an error record (0 before the failure, then
        # the failing code, then RUNTIMEINCONSISTENCY).
        assert failed[0] == "OK" and failed[1] == ok[1] + 1
        assert [(r[1], r[2]) for r in failed[2]] == [(-1, 0), (-1, -103), (-1, -2)]

    diff(steps, check=check)


def test_multi_read(diff):
    steps = [
        connect("a"),
        op("a", OpCode.create, create("/r", b"r")),
        op("a", OpCode.create, create("/r/1")),
        multi("a", [
            (OpCode.getData, R.GetDataRequest("/r", False)),
            (OpCode.getChildren, R.GetChildrenRequest("/r", False)),
            (OpCode.getData, R.GetDataRequest("/missing", False)),
            (OpCode.getChildren, R.GetChildrenRequest("/missing", False)),
            (OpCode.getData, R.GetDataRequest("/r/1", True)),
        ], read=True),
        multi("a", [(OpCode.create, create("/r/2"))], read=True),
        multi("a", [], read=True),
        op("a", OpCode.setData, R.SetDataRequest("/r/1", b"x", -1)),
    ]

    def check(o: Outcome) -> None:
        res = result(o, 3)
        assert res[0] == "OK"
        assert [r[2] for r in res[2]] == [0, 0, -101, -101, 0]

    diff(steps, check=check)


def test_sync_whoami_acl_ops(diff):
    steps = [
        connect("a"),
        op("a", OpCode.sync, R.SyncRequest("/")),
        op("a", OpCode.sync, R.SyncRequest("/missing")),
        op("a", OpCode.whoAmI),
        auth("a", "digest", b"user:pw"),
        op("a", OpCode.whoAmI),
        op("a", OpCode.create, create("/acl", b"", acl=[R.ACL(31, R.Id("auth", ""))])),
        op("a", OpCode.getACL, R.GetACLRequest("/acl")),
        op("a", OpCode.setACL, R.SetACLRequest("/acl", [R.ACL(1, R.Id("world", "anyone"))], 5)),
        op("a", OpCode.setACL, R.SetACLRequest("/acl", [R.ACL(1, R.Id("world", "anyone"))], 0)),
        op("a", OpCode.getACL, R.GetACLRequest("/acl")),
        op("a", OpCode.setACL, R.SetACLRequest("/acl", [], -1)),
        op("a", OpCode.setACL, R.SetACLRequest("/missing", create("/").acl, -1)),
        op("a", OpCode.getACL, R.GetACLRequest("/missing")),
        op("a", OpCode.getACL, R.GetACLRequest("/")),
    ]

    def check(o: Outcome) -> None:
        assert result(o, 1) == ("OK", 1, ("SyncResponse", {"path": "/"}))
        assert result(o, 8)[0] == "BADVERSION"
        assert result(o, 11)[0] == "INVALIDACL"

    diff(steps, check=check)


def test_watch_management_ops(diff):
    steps = [
        connect("a"),
        op("a", OpCode.create, create("/w")),
        op("a", OpCode.getData, R.GetDataRequest("/w", True)),
        op("a", OpCode.getChildren, R.GetChildrenRequest("/w", True)),
        op("a", OpCode.checkWatches, R.CheckWatchesRequest("/w", WatcherType.Data)),
        op("a", OpCode.checkWatches, R.CheckWatchesRequest("/w", WatcherType.Children)),
        op("a", OpCode.checkWatches, R.CheckWatchesRequest("/w", WatcherType.Any)),
        op("a", OpCode.checkWatches, R.CheckWatchesRequest("/other", WatcherType.Any)),
        op("a", OpCode.removeWatches, R.RemoveWatchesRequest("/w", WatcherType.Data)),
        op("a", OpCode.removeWatches, R.RemoveWatchesRequest("/w", WatcherType.Data)),
        op("a", OpCode.removeWatches, R.RemoveWatchesRequest("/w", WatcherType.Any)),
        op("a", OpCode.addWatch, R.AddWatchRequest("/w", AddWatchMode.PERSISTENT)),
        op("a", OpCode.addWatch, R.AddWatchRequest("/", AddWatchMode.PERSISTENT_RECURSIVE)),
        op("a", OpCode.addWatch, R.AddWatchRequest("/w", 5)),
        op("a", OpCode.addWatch, R.AddWatchRequest("bad", AddWatchMode.PERSISTENT)),
        op("a", OpCode.checkWatches, R.CheckWatchesRequest("/w", WatcherType.Any)),
        op("a", OpCode.create, create("/w/c")),
        op("a", OpCode.setData, R.SetDataRequest("/w", b"1", -1)),
        op("a", OpCode.removeWatches, R.RemoveWatchesRequest("/w", WatcherType.Any)),
        op("a", OpCode.setData, R.SetDataRequest("/w", b"2", -1)),
        op("a", OpCode.delete, R.DeleteRequest("/w/c", -1)),
    ]

    def check(o: Outcome) -> None:
        assert result(o, 4)[0] == "OK"
        assert result(o, 7)[0] == "NOWATCHER"
        assert result(o, 9)[0] == "NOWATCHER"
        events = [t for t in o.traces["a"] if t[0] == "event"]
        assert events, "persistent watches must have fired"

    diff(steps, check=check)


def test_reconfig_and_config_standalone(diff):
    steps = [
        connect("a"),
        op("a", OpCode.reconfig, R.ReconfigRequest(None, None, "server.1=127.0.0.1:1:2", -1)),
        op("a", OpCode.getData, R.GetDataRequest("/zookeeper/config", True)),
        op("a", OpCode.exists, R.ExistsRequest("/zookeeper/config", False)),
    ]

    def check(o: Outcome) -> None:
        assert result(o, 1)[0] != "OK"

    diff(steps, check=check)


def test_unknown_opcode_and_standalone_check(diff):
    steps = [
        connect("a"),
        connect("b"),
        op("a", OpCode.create, create("/c")),
        # A bare check outside multi: Apache logs a txn but sends no reply;
        # the following exists shows the zxid it consumed.
        send("a", OpCode.check, R.CheckVersionRequest("/c", 0)),
        op("a", OpCode.exists, R.ExistsRequest("/c", False)),
        op("b", 999, b""),
        op("b", OpCode.exists, R.ExistsRequest("/c", False)),
        op("a", OpCode.deleteContainer, R.DeleteRequest("/c", -1)),
        op("a", OpCode.sasl, R.GetSASLRequest(b"")),
        op("a", OpCode.exists, R.ExistsRequest("/c", False)),
    ]

    def check(o: Outcome) -> None:
        assert result(o, 5)[0] == "UNIMPLEMENTED"
        assert result(o, 6) == "closed"

    diff(steps, check=check)


def test_malformed_frames(diff):
    steps = [
        connect("a"),
        op("a", OpCode.create, create("/f")),
        # A create whose path length runs past the end of the frame.
        raw("a", frame(R.RequestHeader(7, OpCode.create).to_bytes() + b"\x00\x00\x00\x50/f")),
        op("a", OpCode.exists, R.ExistsRequest("/f", False)),
        connect("b"),
        # A header only: no request body at all.
        raw("b", frame(R.RequestHeader(3, OpCode.getData).to_bytes())),
        op("b", OpCode.exists, R.ExistsRequest("/f", False)),
        connect("c"),
        # A frame length beyond jute.maxbuffer.
        raw("c", b"\x7f\xff\xff\xff" + b"\x00" * 16),
        op("c", OpCode.exists, R.ExistsRequest("/f", False)),
        connect("d"),
        op("d", OpCode.getData, R.GetDataRequest("/f", False)),
    ]

    def check(o: Outcome) -> None:
        assert result(o, 1)[0] == "OK"
        assert result(o, 12)[0] == "OK"

    diff(steps, check=check)


def test_containers_and_ttl_expire(diff):
    acl = create("/").acl
    steps = [
        connect("a"),
        op("a", OpCode.createContainer, create("/box", b"", CreateMode.CONTAINER)),
        op("a", OpCode.create, create("/box/item")),
        op("a", OpCode.createContainer, create("/never-used", b"", CreateMode.CONTAINER)),
        op("a", OpCode.createTTL, R.CreateTTLRequest(
            "/short", b"", acl, CreateMode.PERSISTENT_WITH_TTL, 200)),
        op("a", OpCode.createTTL, R.CreateTTLRequest(
            "/long", b"", acl, CreateMode.PERSISTENT_WITH_TTL, 3_600_000)),
        op("a", OpCode.exists, R.ExistsRequest("/box", True)),
        op("a", OpCode.delete, R.DeleteRequest("/box/item", -1)),
        sleep(2.5),
        op("a", OpCode.exists, R.ExistsRequest("/box", False)),
        op("a", OpCode.exists, R.ExistsRequest("/never-used", False)),
        op("a", OpCode.exists, R.ExistsRequest("/short", False)),
        op("a", OpCode.exists, R.ExistsRequest("/long", False)),
    ]

    def check(o: Outcome) -> None:
        assert result(o, 9)[0] == "NONODE"  # emptied container collected
        assert result(o, 10)[0] == "OK"  # never had children: kept
        assert result(o, 11)[0] == "NONODE"  # TTL expired
        assert result(o, 12)[0] == "OK"

    diff(steps, extra_cfg={"extendedTypesEnabled": "true"},
         jvm_flags=["-Dznode.container.checkIntervalMs=200"], check=check)
