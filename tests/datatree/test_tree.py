"""DataTree.process_txn: stats, errors, ephemerals, multi, quotas, digest, snapshots.

Expected values are worked out from Apache 3.8's DataTree/DataNode code (the
differential tests check the same things against the real class).
"""

from __future__ import annotations

import random
import zlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyzk.datatree import DataTree, QuotaExceeded, check_quota
from pyzk.datatree.ephemeral import (
    CONTAINER_EPHEMERAL_OWNER,
    EphemeralType,
    ephemeral_type,
    ttl_of,
    ttl_to_ephemeral_owner,
)
from pyzk.datatree.quota import StatsTrack
from pyzk.jute.constants import Err, EventType, OpCode
from pyzk.jute.records import (
    ACL,
    CheckVersionTxn,
    CloseSessionTxn,
    CreateContainerTxn,
    CreateTTLTxn,
    CreateTxn,
    DeleteTxn,
    ErrorTxn,
    Id,
    MultiTxn,
    SetACLTxn,
    SetDataTxn,
    Txn,
    TxnHeader,
)

pytestmark = pytest.mark.pure

OPEN = [ACL(31, Id("world", "anyone"))]
S1 = 0x1000000000001


class Driver:
    """Feeds txns with increasing zxids and times, like a commit processor."""

    def __init__(self, tree: DataTree | None = None) -> None:
        self.t = tree or DataTree()
        self.zxid = 1
        self.time = 1000

    def apply(self, type_, txn, session=S1):
        self.zxid += 1
        self.time += 10
        return self.t.process_txn(TxnHeader(session, 7, self.zxid, self.time, type_), txn)

    def create(self, path, data=b"", eph=False, pcv=-1, type_=OpCode.create, session=S1):
        return self.apply(type_, CreateTxn(path, data, OPEN, eph, pcv), session)


def test_initial_tree_is_apaches():
    t = DataTree()
    root = t.get_node("/")
    assert t.get_node("") is root
    assert root.stat().cversion == -1 and root.stat().numChildren == 1
    assert t.get_node("/zookeeper").stat().cversion == -2
    cfg = t.get_node("/zookeeper/config")
    assert cfg.aversion == -1 and t.acl_of(cfg) == [ACL(1, Id("world", "anyone"))]
    assert cfg.acl == 1 and t.acl_of(root) == OPEN and root.acl == -1
    assert t.node_count() == 5
    assert t.cached_approximate_data_size() == 44 == t.approximate_data_size()
    assert t.get_children("/zookeeper")[0] == ["config", "quota"]
    assert t.get_all_children_number("/") == 3
    # Apache prints 1371985504 for a fresh tree (see the oracle tests)
    assert t.digest() == 1371985504


def test_create_stats_and_parent_cversion():
    d = Driver()
    r = d.create("/a", b"hello", type_=OpCode.create2)
    assert r.err == 0 and r.path == "/a"
    s = r.stat
    assert (s.czxid, s.mzxid, s.pzxid, s.ctime, s.mtime) == (2, 2, 2, 1010, 1010)
    assert (s.version, s.cversion, s.aversion, s.dataLength, s.numChildren) == (0, 0, 0, 5, 0)
    root = d.t.get_node("/")
    assert root.cversion == 1 and root.pzxid == 2
    assert root.stat().cversion == 2 * 1 - 2
    r = d.create("/a/b")  # plain create: no stat in the result
    assert r.stat is None
    a = d.t.get_node("/a")
    assert (a.cversion, a.pzxid, a.stat().cversion) == (1, 3, 1)
    d.apply(OpCode.delete, DeleteTxn("/a/b"))
    # deletes do not touch the persisted cversion; clients see creations + deletions
    assert (a.cversion, a.pzxid, a.stat().cversion, a.stat().numChildren) == (1, 4, 2, 0)


def test_explicit_parent_cversion_only_moves_forward():
    d = Driver()
    d.create("/p")
    d.create("/p/x", pcv=5)
    p = d.t.get_node("/p")
    assert (p.cversion, p.pzxid) == (5, 3)
    d.create("/p/y", pcv=2)  # lower: cversion and pzxid untouched
    assert (p.cversion, p.pzxid) == (5, 3)
    assert "y" in p.children


def test_create_errors_and_nodeexists_fixup():
    d = Driver()
    assert d.create("/x/y").err == Err.NONODE
    d.create("/a")
    root = d.t.get_node("/")
    before = root.cversion
    r = d.create("/a", pcv=before + 3)
    assert r.err == Err.NODEEXISTS
    # replay fix-up: the parent still takes the txn's cversion and pzxid
    assert root.cversion == before + 3 and root.pzxid == d.zxid
    r = d.create("/a", pcv=-1, type_=OpCode.create2)
    assert r.err == Err.NODEEXISTS and root.cversion == before + 3  # create2: no fix-up
    assert d.t.last_processed_zxid == d.zxid


def test_set_data_set_acl_and_check():
    d = Driver()
    d.create("/a", b"12")
    r = d.apply(OpCode.setData, SetDataTxn("/a", b"12345", 7))
    assert r.err == 0 and r.stat.version == 7 and r.stat.mzxid == d.zxid
    assert r.stat.dataLength == 5 and r.stat.mtime == d.time and r.stat.czxid == 2
    assert d.t.cached_approximate_data_size() == 44 + 2 + 5
    r = d.apply(OpCode.setACL, SetACLTxn("/a", [ACL(1, Id("world", "anyone"))], 3))
    assert r.stat.aversion == 3 and r.stat.mzxid == 3
    assert d.apply(OpCode.setData, SetDataTxn("/nope", b"", 1)).err == Err.NONODE
    assert d.apply(OpCode.setACL, SetACLTxn("/nope", OPEN, 1)).err == Err.NONODE
    r = d.apply(OpCode.check, CheckVersionTxn("/a", 99))
    assert r.err == 0 and r.path == "/a"
    assert d.apply(OpCode.error, ErrorTxn(Err.BADVERSION)).err == Err.BADVERSION


def test_delete_missing_child_still_bumps_parent_pzxid():
    d = Driver()
    d.create("/a")
    r = d.apply(OpCode.delete, DeleteTxn("/a/ghost"))
    assert r.err == Err.NONODE
    assert d.t.get_node("/a").pzxid == d.zxid
    assert d.apply(OpCode.delete, DeleteTxn("/no/such")).err == Err.NONODE


def test_ephemerals_and_close_session():
    d = Driver()
    d.create("/e1", eph=True)
    d.create("/e2", eph=True)
    d.create("/other", eph=True, session=0x99)
    assert d.t.get_node("/e1").stat().ephemeralOwner == S1
    assert sorted(d.t.get_ephemerals(S1)) == ["/e1", "/e2"]
    assert d.t.get_ephemerals_with_prefix(S1, "/e2") == ["/e2"]
    assert d.t.ephemerals_count() == 3
    d.apply(OpCode.delete, DeleteTxn("/e1"))
    assert d.t.get_ephemerals(S1) == ["/e2"]
    r = d.apply(OpCode.closeSession, CloseSessionTxn(["/e2", "/gone"]))
    assert r.err == 0
    assert d.t.get_node("/e2") is None and S1 not in d.t.ephemerals
    # closeSession without a txn body deletes whatever the session owns
    d.apply(OpCode.closeSession, None, session=0x99)
    assert d.t.get_node("/other") is None
    assert d.t.get_node("/").pzxid == d.zxid


def test_close_session_deletes_unlisted_ephemerals_too():
    d = Driver()
    d.create("/e1", eph=True)
    d.create("/e2", eph=True)
    d.apply(OpCode.closeSession, CloseSessionTxn(["/e1"]))
    assert d.t.get_node("/e2") is None


def test_container_and_ttl_owners():
    assert CONTAINER_EPHEMERAL_OWNER == -(2**63)
    owner = ttl_to_ephemeral_owner(5000)
    assert owner == -0x100000000000000 + 5000  # 0xff00000000001388 as a signed long
    assert ttl_of(owner) == 5000
    assert ephemeral_type(owner, extended_types=True) is EphemeralType.TTL
    assert ephemeral_type(owner, extended_types=False) is EphemeralType.NORMAL
    with pytest.raises(ValueError):
        ttl_to_ephemeral_owner(0)
    with pytest.raises(ValueError):
        ttl_to_ephemeral_owner(2**40)
    d = Driver(DataTree(extended_types=True))
    r = d.apply(OpCode.createContainer, CreateContainerTxn("/c", b"", OPEN, -1))
    assert r.stat.ephemeralOwner == 0  # hidden from clients
    assert d.t.get_node("/c").ephemeralOwner == CONTAINER_EPHEMERAL_OWNER
    r = d.apply(OpCode.createTTL, CreateTTLTxn("/t", b"", OPEN, -1, 5000))
    assert r.stat.ephemeralOwner == 0 and d.t.get_node("/t").ephemeralOwner == owner
    assert d.t.containers == {"/c"} and d.t.ttls == {"/t"} and d.t.ephemerals == {}
    d.apply(OpCode.deleteContainer, DeleteTxn("/c"))
    d.apply(OpCode.delete, DeleteTxn("/t"))
    assert d.t.containers == set() and d.t.ttls == set()


def _multi(*ops):
    return MultiTxn([Txn(t, x.to_bytes()) for t, x in ops])


def test_multi_applies_all_sub_txns_with_one_zxid():
    d = Driver()
    r = d.apply(OpCode.multi, _multi(
        (OpCode.create, CreateTxn("/m", b"", OPEN, False, -1)),
        (OpCode.create, CreateTxn("/m/a", b"", OPEN, False, -1)),
        (OpCode.setData, SetDataTxn("/m", b"v", 1)),
        (OpCode.check, CheckVersionTxn("/m", 1)),
    ))
    assert r.err == 0 and [s.err for s in r.multi] == [0, 0, 0, 0]
    assert [s.type for s in r.multi] == [1, 1, 5, 13]
    assert {s.zxid for s in r.multi} == {d.zxid}
    assert d.t.get_node("/m/a").czxid == d.t.get_node("/m").mzxid == d.zxid
    assert d.t.last_processed_zxid == d.zxid


def test_multi_with_failed_op_becomes_error_results():
    d = Driver()
    d.create("/m")
    # what prep writes when op 2 of 3 failed: every op is an ErrorTxn
    r = d.apply(OpCode.multi, _multi(
        (OpCode.error, ErrorTxn(0)),
        (OpCode.error, ErrorTxn(Err.NONODE)),
        (OpCode.error, ErrorTxn(Err.RUNTIMEINCONSISTENCY)),
    ))
    assert r.err == Err.NONODE and [s.err for s in r.multi] == [0, -101, -2]
    # a real op mixed with errors is not applied: OK before, RUNTIMEINCONSISTENCY after
    r = d.apply(OpCode.multi, _multi(
        (OpCode.setData, SetDataTxn("/m", b"x", 1)),
        (OpCode.error, ErrorTxn(Err.BADVERSION)),
        (OpCode.delete, DeleteTxn("/m")),
    ))
    assert [(s.type, s.err) for s in r.multi] == [(-1, 0), (-1, -103), (-1, -2)]
    assert r.err == Err.BADVERSION and d.t.get_node("/m").version == 0


def test_multi_with_unknown_sub_type_stops_there():
    d = Driver()
    r = d.apply(OpCode.multi, MultiTxn([
        Txn(OpCode.create, CreateTxn("/m", b"", OPEN, False, -1).to_bytes()),
        Txn(OpCode.setACL, SetACLTxn("/m", OPEN, 1).to_bytes()),
        Txn(OpCode.create, CreateTxn("/n", b"", OPEN, False, -1).to_bytes()),
    ]))
    assert r.err == 0 and len(r.multi) == 1
    assert d.t.get_node("/m") is not None and d.t.get_node("/n") is None


def test_watch_events_in_apache_order():
    d = Driver()
    t = d.t
    assert t.stat_node("/a", "w1") is None  # exists watch on a missing node
    t.get_children("/", "w2")
    r = d.create("/a")
    assert r.events == [("w1", EventType.NodeCreated, "/a"),
                        ("w2", EventType.NodeChildrenChanged, "/")]
    t.get_data("/a", "w1")
    t.get_children("/a", "w1")
    t.get_children("/", "w2")
    r = d.apply(OpCode.delete, DeleteTxn("/a"))
    # data and child watches of one watcher on the node fire once
    assert r.events == [("w1", EventType.NodeDeleted, "/a"),
                        ("w2", EventType.NodeChildrenChanged, "/")]
    d.create("/b")
    t.add_watch("/", "r", 1)
    r = d.apply(OpCode.setData, SetDataTxn("/b", b"", 1))
    assert r.events == [("r", EventType.NodeDataChanged, "/b")]
    assert d.create("/b/c").events == [("r", EventType.NodeCreated, "/b/c")]
    t.remove_cnxn("r")
    assert d.create("/b/d").events == []


def test_set_watches_after_reconnect():
    d = Driver()
    d.create("/a")
    d.create("/b")
    zx = d.zxid
    d.apply(OpCode.setData, SetDataTxn("/a", b"1", 1))
    ev = d.t.set_watches(zx, ["/a", "/b", "/gone"], ["/a", "/new"], ["/", "/b"], [], [], "w")
    assert ev == [(EventType.NodeDataChanged, "/a"), (EventType.NodeDeleted, "/gone"),
                  (EventType.NodeCreated, "/a")]
    assert d.create("/new").events == [("w", EventType.NodeCreated, "/new"),
                                       ("w", EventType.NodeChildrenChanged, "/")]


def _quota(d: Driver, path: str, limits: bytes) -> None:
    d.create("/zookeeper/quota" + path)
    d.create("/zookeeper/quota" + path + "/zookeeper_limits", limits)
    d.create("/zookeeper/quota" + path + "/zookeeper_stats", b"count=0,bytes=0")


def test_quota_stats_track_creates_updates_and_deletes():
    d = Driver()
    d.create("/q", b"abc")
    d.create("/q/x", b"12345")
    _quota(d, "/q", b"count=10,bytes=-1")
    sp = "/zookeeper/quota/q/zookeeper_stats"
    assert d.t.get_node(sp).data == b"count=2,bytes=8"  # recounted on creation
    d.create("/q/y", b"zz")
    assert d.t.get_node(sp).data == b"count=3,bytes=10"
    d.apply(OpCode.setData, SetDataTxn("/q/x", b"1", 1))
    assert d.t.get_node(sp).data == b"count=3,bytes=6"
    d.apply(OpCode.delete, DeleteTxn("/q/y"))
    assert d.t.get_node(sp).data == b"count=2,bytes=4"
    d.create("/qq")  # a sibling with a common string prefix is not in the quota
    assert d.t.get_node(sp).data == b"count=2,bytes=4"
    assert d.t.max_prefix_with_quota("/q/x/deeper") == "/q"
    d.apply(OpCode.delete, DeleteTxn("/zookeeper/quota/q/zookeeper_limits"))
    assert d.t.max_prefix_with_quota("/q/x") is None


def test_check_quota_soft_and_hard(caplog):
    d = Driver()
    d.create("/q")
    _quota(d, "/q", b"count=2,bytes=-1")
    check_quota(d.t, "/q/a", None, b"", OpCode.create)  # count 1 -> 2: fine
    d.create("/q/a")
    check_quota(d.t, "/q/b", None, b"", OpCode.create)  # soft: logs only
    assert "Quota exceeded" in caplog.text
    d.apply(OpCode.setData, SetDataTxn(
        "/zookeeper/quota/q/zookeeper_limits",
        StatsTrack("count=-1,bytes=-1=;byteHardLimit=4;countHardLimit=2").to_bytes(), 1))
    with pytest.raises(QuotaExceeded) as e:
        check_quota(d.t, "/q/b", None, b"", OpCode.create)
    assert e.value.code == Err.QUOTAEXCEEDED and e.value.path == "/q"
    check_quota(d.t, "/q/a", b"", b"1234", OpCode.setData)
    with pytest.raises(QuotaExceeded):
        check_quota(d.t, "/q/a", b"", b"12345", OpCode.setData)
    check_quota(d.t, "/elsewhere", None, b"x" * 100, OpCode.create)


def test_stats_track_format():
    s = StatsTrack("count=1,bytes=5")
    assert (s.count, s.bytes, s.count_hard_limit) == (1, 5, -1)
    assert str(s) == "count=1,bytes=5"
    s.count_hard_limit = 3
    s.byte_hard_limit = 9
    assert str(s) == "count=1,bytes=5=;byteHardLimit=9;countHardLimit=3"
    assert StatsTrack(str(s)) == s
    assert str(StatsTrack("")) == "count=-1,bytes=-1"
    with pytest.raises(ValueError):
        StatsTrack("count=")


def _digest_from_scratch(t: DataTree) -> int:
    total = 0
    for path, node in t.nodes.items():
        if path == "/" or path.startswith("/zookeeper/"):
            continue
        total += t._node_digest(path, node)
    total &= 2**64 - 1
    return total - 2**64 if total >> 63 else total


def _random_ops(seed: int, n: int) -> Driver:
    rnd = random.Random(seed)
    d = Driver()
    paths = ["/a", "/a/b", "/a/c", "/d", "/d/e"]
    for _ in range(n):
        p = rnd.choice(paths)
        k = rnd.randint(0, 4)
        if k == 0:
            d.create(p, rnd.choice([b"", b"xy", None]), eph=rnd.random() < 0.3)
        elif k == 1:
            d.apply(OpCode.delete, DeleteTxn(p))
        elif k == 2:
            d.apply(OpCode.setData, SetDataTxn(p, rnd.randbytes(rnd.randint(0, 9)), 3))
        elif k == 3:
            d.apply(OpCode.setACL, SetACLTxn(p, rnd.choice([OPEN, [ACL(1, Id("ip", "1.2.3.4"))]]),
                                             1))
        else:
            d.apply(OpCode.closeSession, None)
    return d


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 10**6))
def test_incremental_digest_equals_recomputed(seed):
    d = _random_ops(seed, 60)
    assert d.t.digest() == _digest_from_scratch(d.t)
    assert d.t.last_processed_digest == (d.zxid, 2, d.t.digest())


def test_node_digest_is_crc32_of_path_data_stat():
    d = Driver()
    d.create("/a", b"hi")
    n = d.t.get_node("/a")
    raw = b"/a" + b"hi" + (2).to_bytes(8, "big") * 3 + (1010).to_bytes(8, "big") * 2 + bytes(20)
    assert n.digest_term("/a") == d.t._node_digest("/a", n) == zlib.crc32(raw)
    assert DataTree(digest_enabled=False).digest() == 0


def test_snapshot_walk_and_reload_round_trip():
    d = _random_ops(11, 150)
    t = d.t
    _quota(d, "/a", b"count=5,bytes=-1")
    records = [(p, n.data, n.acl, n.copy_stat()) for p, n in t.walk()]
    assert records[0][0] == "" and records[1][0].startswith("/")
    acls = [(i, a) for i, a, _ in t.acl_cache]
    t2 = DataTree.from_snapshot(acls, records)
    assert t2.digest() == t.digest()
    assert [p for p, _ in t2.walk()] == [p for p, _ in t.walk()]
    assert {p: n.stat() for p, n in t2.nodes.items()} == {p: n.stat() for p, n in t.nodes.items()}
    assert {k: sorted(v) for k, v in t2.ephemerals.items() if v} == {
        k: sorted(v) for k, v in t.ephemerals.items() if v}
    assert t2.max_prefix_with_quota("/a/b") == "/a"
    # after a reload refcounts are exact (live refs can include leaked NodeExists ones)
    uses: dict[int, int] = {}
    for _, n in t.walk():
        if n.acl != -1:
            uses[n.acl] = uses.get(n.acl, 0) + 1
    assert {i: r for i, _, r in t2.acl_cache} == uses
    with pytest.raises(ValueError, match="unable to find parent"):
        DataTree.from_snapshot([], [("", b"", -1, t.get_node("/").copy_stat()),
                                    ("/x/y", b"", -1, t.get_node("/").copy_stat())])


def test_all_children_number_and_walk_order():
    d = Driver()
    for p in ["/a", "/a/b", "/a/b/c", "/a/d", "/e"]:
        d.create(p)
    assert d.t.get_all_children_number("/a") == 3
    assert d.t.get_all_children_number("/") == 8
    assert d.t.get_all_children_number("/missing") == 0
    order = [p for p, _ in d.t.walk()]
    assert order.index("/a/b/c") == order.index("/a/b") + 1
