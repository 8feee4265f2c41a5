"""Snapshots: round trip of every kind of node, checksums, compression and validity."""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import pytest

from pyzk.datatree import DataTree
from pyzk.jute.codec import JuteError
from pyzk.shell.datadir import version_dir
from pyzk.shell.snapfiles import (
    find_snapshots,
    is_valid_snapshot,
    load_snapshot,
    read_snapshot,
    write_snapshot,
)
from pyzk.txnlog import snappyjava
from pyzk.txnlog.names import snapshot_name
from pyzk.txnlog.snapshot import (
    CorruptSnapshot,
    UnsupportedSnapshot,
    ZxidDigest,
    java_long_map_order,
    parse_snapshot,
    serialize_snapshot,
)
from tests.txnlog.helpers import S2, TxnSource, tree_view

pytestmark = pytest.mark.pure


def _source() -> TxnSource:
    src = TxnSource(DataTree(extended_types=True))
    src.populate(n=20)
    src.add_ttl()
    return src


def _internal(tree: DataTree) -> dict:
    """Everything a snapshot must restore, beyond what clients see."""
    return {
        "view": tree_view(tree),
        "persisted": {p: (n.acl, n.copy_stat()) for p, n in tree.nodes.items()},
        "acls": [(i, a) for i, a, _ in tree.acl_cache],
        "ephemerals": {s: sorted(tree.get_ephemerals(s)) for s in tree.ephemerals},
        "containers": sorted(tree.containers),
        "ttls": sorted(tree.ttls),
        "quota": tree.max_prefix_with_quota("/app/n0001"),
        "digest": tree.digest(),
    }


@pytest.mark.parametrize("method", ["", "gz", "snappy"])
def test_round_trip_every_kind_of_node(tmp_path: Path, method: str) -> None:
    src = _source()
    path = version_dir(tmp_path) / snapshot_name(src.zxid, method)
    write_snapshot(path, src.tree, src.sessions, src.zxid)
    assert path.name == f"snapshot.{src.zxid:x}" + (f".{method}" if method else "")
    snap = load_snapshot(path, extended_types=True)
    assert snap.zxid == src.zxid and snap.sessions == {S2: 40000}
    assert _internal(snap.tree) == _internal(src.tree)
    assert snap.tree.containers == {"/cont"} and snap.tree.ttls == {"/ttl"}
    assert snap.tree.get_ephemerals(S2) == ["/app/eph"]
    assert snap.tree.max_prefix_with_quota("/app/x") == "/app"
    assert snap.digest == ZxidDigest(*src.tree.last_processed_digest)
    assert snap.tree.last_processed_zxid == src.zxid
    tree, sessions, zxid = read_snapshot(path)
    assert (len(tree.nodes), sessions, zxid) == (len(src.tree.nodes), src.sessions, src.zxid)
    assert is_valid_snapshot(path)


def test_layout_and_seals() -> None:
    src = _source()
    buf = io.BytesIO()
    serialize_snapshot(buf, src.tree, {7: 3000}, digest=ZxidDigest(9, 2, -5))
    b = buf.getvalue()
    assert b[:16] == b"ZKSN" + struct.pack(">iq", 2, -1)
    assert b[16:32] == struct.pack(">iqi", 1, 7, 3000)
    # ... nodes ..., "/", seal, ZxidDigest, seal
    tail = struct.pack(">qiq", 9, 2, -5)
    d_at = len(b) - 13 - len(tail)
    assert b[d_at : d_at + len(tail)] == tail
    first_seal = d_at - 13
    assert b[first_seal - 5 : first_seal] == b"\0\0\0\x01/"
    assert struct.unpack_from(">q", b, first_seal)[0] == zlib.adler32(b[:first_seal])
    assert struct.unpack_from(">q", b, len(b) - 13)[0] == zlib.adler32(b[: len(b) - 13])
    assert b.endswith(b"\0\0\0\x01/")
    # the root comes first, as path ""
    buf2 = io.BytesIO()
    serialize_snapshot(buf2, DataTree(), {}, digest=False)
    empty = buf2.getvalue()
    assert empty[24:28] == b"\0\0\0\x00" or empty[28:32] == b"\0\0\0\x00"
    assert len(empty) == len(buf2.getvalue()) and empty.count(b"/zookeeper") == 3


def test_without_digest_part_still_loads() -> None:
    src = _source()
    buf = io.BytesIO()
    serialize_snapshot(buf, src.tree, src.sessions, digest=False)
    from pyzk.txnlog.snapshot import parse_snapshot

    snap = parse_snapshot(buf.getvalue(), 5, extended_types=True)
    assert snap.digest is None and tree_view(snap.tree) == tree_view(src.tree)


def test_checksum_mismatch_and_truncation_are_detected(tmp_path: Path) -> None:
    src = _source()
    path = write_snapshot(version_dir(tmp_path) / snapshot_name(src.zxid), src.tree, {}, src.zxid)
    good = path.read_bytes()
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0x01  # inside some node's data or stat
    path.write_bytes(bytes(bad))
    assert is_valid_snapshot(path)  # the cheap check only looks at the end
    with pytest.raises(JuteError):
        load_snapshot(path)
    path.write_bytes(good[:-40])
    assert not is_valid_snapshot(path)
    with pytest.raises(JuteError):
        load_snapshot(path)
    path.write_bytes(good[:9])
    assert not is_valid_snapshot(path)


def test_find_snapshots_newest_valid_first(tmp_path: Path) -> None:
    src = _source()
    d = version_dir(tmp_path)
    for z in (0x10, 0x200, 0x3):
        write_snapshot(d / snapshot_name(z), src.tree, {}, z)
    write_snapshot(d / snapshot_name(0x50, "gz"), src.tree, {}, 0x50)
    (d / "snapshot.999").write_bytes(b"garbage that is not sealed")
    (d / "snapshot.xyz").write_bytes(b"")
    (d / "log.1").write_bytes(b"")
    assert [p.name for p in find_snapshots(tmp_path)] == [
        "snapshot.200", "snapshot.50.gz", "snapshot.10", "snapshot.3"
    ]
    assert [p.name for p in find_snapshots(tmp_path, 2)] == ["snapshot.200", "snapshot.50.gz"]


def test_snappy_file_is_snappy_java_framing_of_the_plain_stream(tmp_path: Path) -> None:
    src = _source()
    plain = write_snapshot(tmp_path / "snapshot.5", src.tree, src.sessions, 5)
    packed = write_snapshot(tmp_path / "snapshot.5.snappy", src.tree, src.sessions, 5)
    assert packed.read_bytes()[:16] == snappyjava.HEADER
    assert snappyjava.decode(packed.read_bytes()) == plain.read_bytes()
    assert not (tmp_path / "snapshot.5.snappy.tmp").exists()  # written atomically


def test_bad_snappy_snapshots_are_refused(tmp_path: Path) -> None:
    src = _source()
    good = write_snapshot(tmp_path / "snapshot.1.snappy", src.tree, {}, 1).read_bytes()
    path = tmp_path / "snapshot.2.snappy"
    path.write_bytes(b"\x82SNAPPY\x00" + bytes(8))  # the magic, then nothing: valid-looking
    assert is_valid_snapshot(path)
    with pytest.raises(JuteError):
        load_snapshot(path)  # an empty stream does not parse
    path.write_bytes(good[:-3])
    assert is_valid_snapshot(path)
    with pytest.raises(CorruptSnapshot, match="bad snappy stream: truncated block"):
        load_snapshot(path)
    path.write_bytes(b"\x00" + good[1:])
    assert not is_valid_snapshot(path)  # SnapStream.isValidSnappyStream: the magic
    with pytest.raises(CorruptSnapshot, match="magic"):
        load_snapshot(path)
    # a block that decompresses but whose content was altered: the Adler32 seal
    raw = bytearray(snappyjava.decode(good))
    raw[40] ^= 0xFF
    path.write_bytes(snappyjava.encode(raw))
    with pytest.raises(JuteError):
        load_snapshot(path)
    assert UnsupportedSnapshot.__mro__[1] is CorruptSnapshot


def test_39_layout_last_processed_zxid_and_third_seal() -> None:
    """3.9's FileSnap.serialize: ... seal, ZxidDigest, seal, long lastZxid, seal
    (DataTree.serializeLastProcessedZxid), each seal Adler32 of all before it."""
    src = _source()
    old, new = io.BytesIO(), io.BytesIO()
    serialize_snapshot(old, src.tree, src.sessions)
    serialize_snapshot(new, src.tree, src.sessions, last_zxid=0x1234)
    a, b = old.getvalue(), new.getvalue()
    assert b[: len(a)] == a and len(b) == len(a) + 8 + 13
    assert b[len(a) : len(a) + 8] == struct.pack(">q", 0x1234)
    assert b[-13:] == struct.pack(">q", zlib.adler32(b[:-13])) + struct.pack(">i", 1) + b"/"
    # read as 3.9 does (the key on) and as 3.8 does (trailing bytes ignored)
    s39 = parse_snapshot(b, src.zxid, extended_types=True, last_zxid_enabled=True)
    assert s39.last_zxid == 0x1234 and s39.tree.last_processed_zxid == src.zxid
    assert s39.digest == ZxidDigest(*src.tree.last_processed_digest)
    s38 = parse_snapshot(b, src.zxid, extended_types=True)
    assert s38.last_zxid is None and _internal(s38.tree) == _internal(s39.tree)
    # a 3.8 snapshot read with the key on: EOF is "an older snapshot", as Apache
    s = parse_snapshot(a, src.zxid, extended_types=True, last_zxid_enabled=True)
    assert s.last_zxid is None
    bad = bytearray(b)
    bad[len(a)] ^= 1  # the last zxid changed, the third seal no longer matches
    with pytest.raises(CorruptSnapshot, match="CRC"):
        parse_snapshot(bytes(bad), src.zxid, extended_types=True, last_zxid_enabled=True)
    with pytest.raises(JuteError):  # the third seal cut off
        parse_snapshot(b[:-3], src.zxid, extended_types=True, last_zxid_enabled=True)


def test_39_layout_without_digest() -> None:
    """digest.enabled=false with 3.9's key on: the last zxid follows the first seal."""
    src = _source()
    buf = io.BytesIO()
    serialize_snapshot(buf, src.tree, {}, digest=False, last_zxid=77)
    b = buf.getvalue()
    assert b[-21:-13] == struct.pack(">q", 77) and b[-26:-21] == struct.pack(">i", 1) + b"/"
    s = parse_snapshot(b, 9, digest_enabled=False, extended_types=True, last_zxid_enabled=True)
    assert s.last_zxid == 77 and s.digest is None


@pytest.mark.parametrize("method", ["", "gz", "snappy"])
def test_39_snapshot_files_start_recovery(tmp_path: Path, method: str) -> None:
    """A 3.9 data directory (lastZxid written, the default there) recovers with
    the key on or off, and pyzk writes the same layout when configured."""
    from pyzk.shell.recovery import recover

    src = _source()
    path = version_dir(tmp_path) / snapshot_name(src.zxid, method)
    write_snapshot(path, src.tree, src.sessions, src.zxid, last_zxid=src.zxid)
    assert is_valid_snapshot(path)
    for enabled in (True, False):
        r = recover(tmp_path, extended_types=True, last_zxid_enabled=enabled)
        assert r.last_zxid == src.zxid and _internal(r.tree) == _internal(src.tree)
    assert load_snapshot(path, extended_types=True, last_zxid_enabled=True).last_zxid == src.zxid


def test_orphan_node_is_corrupt() -> None:
    src = TxnSource()
    src.populate(n=5)
    buf = io.BytesIO()
    serialize_snapshot(buf, src.tree, {}, digest=False)
    b = buf.getvalue().replace(b"/app/n0001", b"/zzz/n0001")
    from pyzk.txnlog.snapshot import parse_snapshot

    with pytest.raises(CorruptSnapshot):
        parse_snapshot(b, 1, check_seal=False)


def test_session_order_is_java_hashmap_order() -> None:
    # HashMap(4 entries) has 8 buckets; bucket = spread(hash(long)) & 7
    keys = [0x100000000000001, 8, 1, 0x10]
    order = java_long_map_order(keys)
    assert sorted(order) == sorted(keys)
    assert order == [8, 0x10, 0x100000000000001, 1]


def test_100k_node_snapshot_round_trips(tmp_path: Path) -> None:
    """A snapshot of realistic size reads back node for node (its speed is
    measured by benchmarks/scale.py, not here)."""
    tree = DataTree()
    src = TxnSource(tree)
    for i in range(100):
        src.create(0, f"/d{i}", b"")
        for j in range(999):
            src.create(0, f"/d{i}/n{j}", b"x" * 20)
    path = version_dir(tmp_path) / snapshot_name(src.zxid)
    write_snapshot(path, tree, {}, src.zxid, fsync=False)
    snap = load_snapshot(path)
    assert snap.tree.nodes.keys() == tree.nodes.keys()
    for name in ("/d0/n0", "/d99/n998", "/d50"):
        assert snap.tree.nodes[name].data == tree.nodes[name].data
