"""The compact znode layout: packed stat blob, children keyed by path, bulk loading.

These guard both the equivalences the layout relies on (same digests, same
Java order, same snapshot bytes as the straightforward representation) and
the memory it exists for.
"""

from __future__ import annotations

import gc
import io
import random
import sys
import tracemalloc

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyzk.datatree import DataTree
from pyzk.datatree.node import STAT_SIZE, ZNode
from pyzk.datatree.tree import digest_term
from pyzk.javacompat import (
    EMPTY_CHILDREN,
    ChildSet,
    JavaStringSet,
    java_string_hash,
)
from pyzk.jute.constants import OpCode
from pyzk.jute.records import ACL, CreateTxn, DeleteTxn, Id, SetDataTxn, StatPersisted, TxnHeader
from pyzk.txnlog.snapshot import parse_snapshot, serialize_snapshot

pytestmark = pytest.mark.pure

OPEN = [ACL(31, Id("world", "anyone"))]
_FIELDS = ("czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion",
           "ephemeralOwner", "pzxid")
_longs = st.integers(-(2**63), 2**63 - 1)
_ints = st.integers(-(2**31), 2**31 - 1)
_stats = st.tuples(_longs, _longs, _longs, _longs, _ints, _ints, _ints, _longs, _longs)


@settings(max_examples=60, deadline=None)
@given(st.one_of(st.none(), st.binary(max_size=40)), _stats, st.text(min_size=1, max_size=12))
def test_blob_round_trips_fields_and_digest(data, fields, name):
    sp = StatPersisted(*fields)
    n = ZNode.from_persisted(data, 3, sp)
    assert n.data == data and n.acl == 3 and n.copy_stat() == sp
    assert [getattr(n, f) for f in _FIELDS] == list(fields)
    assert n.data_length() == (0 if data is None else len(data))
    assert len(n.blob) == n.data_length() + STAT_SIZE
    assert n.persisted_stat_bytes() == sp.to_bytes()
    stat = n.stat()
    assert (stat.dataLength, stat.numChildren, stat.czxid, stat.pzxid) == (
        n.data_length(), 0, sp.czxid, sp.pzxid)
    path = "/" + name.replace("/", "_")
    # the node's fast term is the record-based one prep uses
    assert n.digest_term(path) == digest_term(path, data, sp)
    assert n.digest_term("") == n.digest_term("/") == digest_term("/", data, sp)
    assert n.digest_term("/zookeeper/x") == 0


@settings(max_examples=40, deadline=None)
@given(_stats, st.sampled_from(_FIELDS), _ints, st.one_of(st.none(), st.binary(max_size=9)))
def test_field_setters_touch_one_field(fields, field, value, data):
    n = ZNode.from_persisted(data, -1, StatPersisted(*fields))
    setattr(n, field, value)
    expect = dict(zip(_FIELDS, fields, strict=True), **{field: value})
    assert n.copy_stat() == StatPersisted(**expect)
    assert n.data == data


def test_mutators_equal_field_by_field_updates():
    sp = StatPersisted(2, 3, 1000, 1010, 4, 5, 6, 7, 8)
    a = ZNode.from_persisted(b"old", 1, sp)
    b = ZNode.from_persisted(b"old", 1, sp)
    a.set_data(b"new!", 99, 2000, 5)
    b.data, b.mzxid, b.mtime, b.version = b"new!", 99, 2000, 5
    assert a.blob == b.blob and a.data == b"new!"
    a.set_aversion(-1)
    b.aversion = -1
    a.set_cversion_pzxid(12, 100)
    b.cversion, b.pzxid = 12, 100
    a.set_pzxid(101)
    b.pzxid = 101
    assert a.blob == b.blob and a.copy_stat() == b.copy_stat()
    # null data is not empty data, and survives stat changes
    a.set_data(None, 102, 2001, 6)
    assert a.data is None and a.data_length() == 0 and isinstance(a, ZNode)
    a.set_pzxid(103)
    assert a.data is None and a.pzxid == 103
    a.data = b""
    assert a.data == b"" and a.pzxid == 103


def _names(rnd: random.Random, n: int) -> list[str]:
    # "Aa"/"BB" share String.hashCode: colliding names crowd small tables
    pool = ["Aa", "BB", "AaAa", "AaBB", "BBAa", "BBBB"]
    return [rnd.choice(pool) + str(i) if rnd.random() < 0.5 else f"n{rnd.randrange(10**6)}"
            for i in range(n)]


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10**6), st.integers(0, 200), st.sampled_from(["", "/a", "/a/é"]))
def test_child_set_is_a_java_set_of_names(seed, n, parent):
    rnd = random.Random(seed)
    names = _names(rnd, n)
    plain = JavaStringSet(8)
    kids = ChildSet(parent + "/", 8)
    bulk = ChildSet(parent + "/", 8)
    for name in names:
        assert kids.add(parent + "/" + name) == plain.add(name)
        bulk._h[parent + "/" + name] = -1
    for name in rnd.sample(names, len(names) // 3):
        assert kids.discard(parent + "/" + name) == plain.discard(name)
        bulk._h.pop(parent + "/" + name, None)
    bulk.adopt_bulk()
    assert kids.java_order() == plain.java_order() == list(kids)
    assert kids.path_order() == [parent + "/" + c for c in plain.java_order()]
    assert kids.encoded() == plain.encoded() and kids.capacity == plain.capacity
    assert kids.clone().java_order() == plain.clone().java_order()
    assert kids == plain and kids == set(plain.java_order())
    assert all(c in kids and kids.has_path(parent + "/" + c) for c in plain.java_order())
    # bulk filling then settling equals adding one by one (before any delete)
    one_by_one = ChildSet(parent + "/", 8)
    for p in bulk.paths():
        one_by_one.add(p)
    assert bulk.capacity == one_by_one.capacity
    assert bulk.java_order() == one_by_one.java_order()


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10**6))
def test_child_set_small_table_crowding_with_interleaved_deletes(seed):
    """Bucket counts replace cached hashes for the crowded-bucket resize."""
    rnd = random.Random(seed)
    pool = ["Aa", "BB", "AaAa", "AaBB", "BBAa", "BBBB", "C#", "Bb"]
    plain = JavaStringSet(8)
    kids = ChildSet("/p/", 8)
    for _ in range(rnd.randrange(10, 120)):
        name = rnd.choice(pool) + rnd.choice(["", "x", "Aa", "BB"]) * rnd.randrange(3)
        if rnd.random() < 0.3:
            assert kids.discard("/p/" + name) == plain.discard(name)
        else:
            assert kids.add("/p/" + name) == plain.add(name)
        assert kids.capacity == plain.capacity
    assert kids.java_order() == plain.java_order()


def test_walking_a_tree_keeps_no_hashes_or_orders():
    t = _tree_with(500)
    serialize_snapshot(io.BytesIO(), t, {})
    for node in t.nodes.values():
        kids = node.children
        assert kids._order is None and all(v == -1 for v in kids._h.values())


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_string_hash_fast_paths_equal_utf16_definition(s):
    h = 0
    b = s.encode("utf-16-be", "surrogatepass")
    for i in range(0, len(b), 2):
        h = (31 * h + ((b[i] << 8) | b[i + 1])) & 0xFFFFFFFF
    assert java_string_hash(s) == h


def test_leaves_share_the_empty_children_set():
    t = DataTree()
    t.process_txn(TxnHeader(1, 1, 2, 1000, OpCode.create),
                  CreateTxn("/a", b"x", OPEN, False, -1))
    assert t.get_node("/a").children is EMPTY_CHILDREN
    assert "/a" in t.get_node("/").children.paths()


def _tree_with(n: int, seed: int = 1) -> DataTree:
    rnd = random.Random(seed)
    t = DataTree()
    zxid = 1
    paths = [""]
    for i in range(n):
        zxid += 1
        parent = rnd.choice(paths[-40:])
        path = f"{parent}/{rnd.choice(['Aa', 'BB', 'c'])}{i}"
        data = None if i % 17 == 0 else rnd.randbytes(rnd.randrange(20))
        t.process_txn(TxnHeader(1, 1, zxid, 1000 + i, OpCode.create),
                      CreateTxn(path, data, OPEN, i % 5 == 0, -1))
        paths.append(path)
    for path in rnd.sample(paths[1:], n // 10):
        zxid += 1
        t.process_txn(TxnHeader(1, 1, zxid, 5000, OpCode.setData),
                      SetDataTxn(path, b"changed", 1))
    for path in rnd.sample(paths[1:], n // 5):
        if not t.get_node(path).children:  # as prep allows: leaves only
            zxid += 1
            t.process_txn(TxnHeader(1, 1, zxid, 6000, OpCode.delete), DeleteTxn(path))
    return t


def test_snapshot_reload_restores_orders_capacities_digest_and_sizes():
    t = _tree_with(3000)
    buf = io.BytesIO()
    serialize_snapshot(buf, t, {}, digest=False)
    gc.enable()
    t2 = parse_snapshot(buf.getvalue(), t.last_processed_zxid).tree
    assert gc.isenabled()
    assert t2.digest() == t.digest() != 0
    assert t2.cached_approximate_data_size() == t.approximate_data_size()
    assert t2.node_count() == t.node_count()
    for path, node in t.nodes.items():
        other = t2.nodes[path]
        assert other.blob == node.blob and other.data == node.data and other.acl == node.acl
        assert other.children.java_order() == node.children.java_order(), path
        assert other.children.capacity == node.children.capacity, path
    # (re-added in snapshot order, as Apache's deserialize does)
    assert {k: sorted(v) for k, v in t2.ephemerals.items()} == {
        k: sorted(v) for k, v in t.ephemerals.items() if v}
    again = io.BytesIO()
    serialize_snapshot(again, t2, {}, digest=False)
    assert again.getvalue() == buf.getvalue()
    gc.disable()
    try:
        parse_snapshot(buf.getvalue(), 1)
        assert not gc.isenabled()  # a disabled collector stays disabled
    finally:
        gc.enable()


def test_memory_per_znode_stays_compact():
    """Python objects a 100-byte znode costs in the tree (path key, node,
    blob, dict slots): about 360 bytes today, 550 before the compact layout."""
    n = 20_000
    t = DataTree()
    t.process_txn(TxnHeader(1, 1, 2, 1000, OpCode.create),
                  CreateTxn("/s", b"", OPEN, False, -1))
    data = bytes(100)
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(n):
            parent = f"/s/b{i // 1000:03d}"
            if i % 1000 == 0:
                t.process_txn(TxnHeader(1, 1, 3 + 2 * i, 2000 + i, OpCode.create),
                              CreateTxn(parent, b"", OPEN, False, -1))
            t.process_txn(TxnHeader(1, 1, 4 + 2 * i, 2000 + i, OpCode.create),
                          CreateTxn(f"{parent}/n{i % 1000:03d}", bytes(data), OPEN, False, -1))
        gc.collect()
        per_node = (tracemalloc.get_traced_memory()[0] - before) / n
    finally:
        tracemalloc.stop()
    assert per_node < 385, per_node
    node = t.get_node("/s/b000/n000")
    assert sys.getsizeof(node) <= 56 and sys.getsizeof(node.blob) <= 33 + 100 + STAT_SIZE


def test_the_shared_empty_children_set_caches_nothing():
    """Every leaf of every tree shares EMPTY_CHILDREN: asking it for its order
    or encoding must leave no state behind (one test's tree once left a cached
    order there that the next test saw)."""
    from pyzk.javacompat import EMPTY_CHILDREN, JavaStringSet

    assert EMPTY_CHILDREN.java_order() == [] and EMPTY_CHILDREN.path_order() == []
    assert EMPTY_CHILDREN.encoded() == JavaStringSet(8).encoded()
    EMPTY_CHILDREN.java_order().append("x")
    assert EMPTY_CHILDREN.java_order() == [] and EMPTY_CHILDREN._order is None
    assert EMPTY_CHILDREN._encoded is None
