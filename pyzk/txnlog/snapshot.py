"""Snapshot files, byte for byte Apache 3.8's FileSnap.

``version-2/snapshot.<hex zxid>`` (``.gz`` when gzip-compressed) holds,
all in Jute encoding::

    FileHeader(magic "ZKSN", version 2, dbid -1)
    int count, then count x (long session id, int timeout)
    int count, then count x (long acl id, vector<ACL>)      ACL cache
    (ustring path, buffer data, long acl, StatPersisted)*   root first as ""
    ustring "/"                                              end of nodes
    long Adler32 of every byte so far, ustring "/"           seal
    long zxid, int digest version, long digest               ZxidDigest (3.6+)
    long Adler32 of every byte so far, ustring "/"           second seal
    long last processed zxid                                 3.9+, see below
    long Adler32 of every byte so far, ustring "/"           third seal

The checksum is over the uncompressed stream. This module is the format
only (bytes in, bytes out); writing, reading and finding the files is
pyzk.shell.snapfiles. The ZxidDigest part is
written and read only with ``zookeeper.digest.enabled`` (the default); an
older snapshot simply ends after the first seal. Maps are written in the
order Java's HashMap iterates them and nodes in DataTree.serializeNode's
depth-first order, so Apache and pyzk write the same bytes for the same tree.

3.9 (FileSnap/DataTree.serializeLastProcessedZxid) appends the tree's last
processed zxid and a third seal when ``zookeeper.serializeLastProcessedZxid.enabled``
(true by default in 3.9, unknown to 3.8, which ignores the trailing bytes).
Each part is read only when its key is on, in Apache's order, and a stream
that ends before a part is an older snapshot (Apache's EOFException), so a
3.8 reader of a 3.9 file and a 3.9 reader of a 3.8 file both work. As in
FileSnap.deserialize, the tree's zxid is still the one in the file name.

Compression: ``gz`` as Apache's GZIP stream mode, ``snappy`` as its SNAPPY
mode (snappy-java's own block framing, pyzk.txnlog.snappyjava).
"""

from __future__ import annotations

import gzip
import logging
import struct
import zlib
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import BinaryIO

from pyzk.datatree.node import STAT_SIZE, ZNode
from pyzk.datatree.tree import DIGEST_VERSION, DataTree
from pyzk.javacompat import EMPTY_CHILDREN, java_spread, table_size_for
from pyzk.jute.codec import JuteError, Truncated, read_buffer, read_ustring
from pyzk.jute.records import ACL, FileHeader
from pyzk.txnlog import snappyjava
from pyzk.txnlog.names import SNAPSHOT_PREFIX, zxid_from_name

log = logging.getLogger(__name__)

SNAP_MAGIC = 0x5A4B534E  # "ZKSN"
SNAP_VERSION = 2
SNAP_DBID = -1
COMPRESSION_METHODS = ("", "gz", "snappy")  # "" is Apache's CHECKED (uncompressed) mode
# Snapshots hold whole znodes; Apache reads them with the same jute.maxbuffer
# checks, but a node can never be larger than what the server accepted.
SNAP_MAX_BUFFER = 0x7FFFFFFF

_INT = struct.Struct(">i")
_LONG = struct.Struct(">q")
_SESSION = struct.Struct(">qi")
_ACL_HEAD = struct.Struct(">qi")  # acl id, vector count
# long acl + StatPersisted (czxid mzxid ctime mtime version cversion aversion owner pzxid)
_NODE_TAIL = struct.Struct(">qqqqqiiiqq")
_ZXID_DIGEST = struct.Struct(">qiq")
_SEAL_PATH = _INT.pack(1) + b"/"
_NULL = _INT.pack(-1)
_GZIP_MAGIC = b"\x1f\x8b"
_SNAPPY_MAGIC = snappyjava.MAGIC
_CHUNK = 1 << 20


class CorruptSnapshot(JuteError):
    """A snapshot that does not parse or whose checksum does not match."""


class UnsupportedSnapshot(CorruptSnapshot):
    """A snapshot in a compression mode pyzk cannot read (none left; kept for callers)."""


@dataclass(slots=True)
class ZxidDigest:
    """DataTree.ZxidDigest: the tree digest as of ``zxid`` (zeros when unknown)."""

    zxid: int
    version: int
    digest: int


@dataclass(slots=True)
class Snapshot:
    """A loaded snapshot: the tree, session timeouts, its zxid and its digest trailer.

    ``last_zxid`` is 3.9's serialized last processed zxid (None when the
    file has none or the key is off); informational, as in Apache's
    FileSnap, which keeps the file name's zxid.
    """

    tree: DataTree
    sessions: dict[int, int]
    zxid: int
    digest: ZxidDigest | None
    last_zxid: int | None = None


def compression_of(name: str) -> str:
    """SnapStream.getStreamMode(fileName): the last dotted part picks the mode."""
    parts = name.split(".")
    if len(parts) > 1:
        ext = parts[-1].lower()
        if ext in ("gz", "snappy"):
            return ext
    return ""


def java_long_map_order(keys: Iterable[int]) -> list[int]:
    """The order ``new HashMap<Long, V>(m)`` iterates keys given in ``m``'s order."""
    keys = list(keys)
    n = len(keys)
    mask = table_size_for(int(n / 0.75 + 1.0)) - 1

    def bucket(k: int) -> int:
        k &= 0xFFFFFFFFFFFFFFFF
        return java_spread((k ^ (k >> 32)) & 0xFFFFFFFF) & mask

    return sorted(keys, key=bucket)  # stable: source order within a bucket


# ------------------------------------------------------------------ writing


class _CheckedWriter:
    """CheckedOutputStream(Adler32) over a buffered sink, flushed in 1 MiB chunks."""

    __slots__ = ("out", "buf", "crc", "sink")

    def __init__(self, sink: BinaryIO) -> None:
        self.sink = sink
        self.buf = bytearray()
        self.crc = 1  # Adler32 of nothing

    def spill(self) -> None:
        if self.buf:
            self.crc = zlib.adler32(self.buf, self.crc)
            self.sink.write(self.buf)
            self.buf = bytearray()

    def seal(self) -> None:
        """SnapStream.sealStream: the checksum so far, then "/" as a string."""
        self.spill()
        self.buf += _LONG.pack(self.crc if self.crc < 1 << 63 else self.crc - (1 << 64))
        self.buf += _SEAL_PATH


def _write_str(out: bytearray, s: str) -> None:
    b = s.encode("utf-8")
    out += _INT.pack(len(b))
    out += b


def serialize_snapshot(
    sink: BinaryIO,
    tree: DataTree,
    sessions: Mapping[int, int],
    *,
    digest: ZxidDigest | None | bool = True,
    dbid: int = SNAP_DBID,
    last_zxid: int | None = None,
) -> int:
    """Write a whole snapshot stream to ``sink`` (uncompressed); returns the node count.

    ``digest``: True writes the tree's last processed ZxidDigest (zeros if
    none, as Apache), a ZxidDigest writes that one, False/None writes no
    digest part (``zookeeper.digest.enabled=false``). ``last_zxid``: None
    writes 3.8's layout; a zxid appends 3.9's last processed zxid and its
    seal (``zookeeper.serializeLastProcessedZxid.enabled``).
    """
    w = _CheckedWriter(sink)
    out = w.buf
    FileHeader(SNAP_MAGIC, SNAP_VERSION, dbid).encode(out)
    out += _INT.pack(len(sessions))
    for sid in java_long_map_order(sessions):
        out += _SESSION.pack(sid, sessions[sid])
    acls = list(tree.acl_cache)
    out += _INT.pack(len(acls))
    for acl_id, acl_list, _refs in acls:
        out += _ACL_HEAD.pack(acl_id, len(acl_list))
        for a in acl_list:
            a.encode(out)
    pack_long = _LONG.pack
    pack_int = _INT.pack
    # Per node: eight pieces gathered in a list and joined once per ~1 MiB,
    # cheaper than appending each to the bytearray.
    parts: list[bytes] = []
    add = parts.extend
    pending = 0
    n = 0
    for path, node in tree.walk():
        p = path.encode("utf-8")
        # the blob is the data, then the stat in digest order: czxid mzxid,
        # pzxid, ctime..ephemeralOwner; StatPersisted puts pzxid last
        blob = node.blob
        cut = len(blob) - STAT_SIZE
        add((pack_int(len(p)), p,
             pack_int(cut) if cut or node.data is not None else _NULL, blob[:cut],
             pack_long(node.acl),
             blob[cut : cut + 16], blob[cut + 24 :], blob[cut + 16 : cut + 24]))
        n += 1
        pending += cut + len(p)
        if pending >= _CHUNK:
            out += b"".join(parts)
            parts.clear()
            pending = 0
            w.spill()
            out = w.buf
    out += b"".join(parts)
    _write_str(out, "/")
    w.seal()
    if digest is True:
        zd = tree.last_processed_digest
        digest = ZxidDigest(*zd) if zd is not None else ZxidDigest(0, DIGEST_VERSION, 0)
    if digest:
        w.buf += _ZXID_DIGEST.pack(digest.zxid, digest.version, digest.digest)
        w.seal()
    if last_zxid is not None:
        w.buf += _LONG.pack(last_zxid)
        w.seal()
    w.spill()
    return n


def _node_records(
    buf: bytes, pos: int, end_out: list[int]
) -> Iterator[tuple[str, ZNode]]:
    """Parse nodes until the "/" marker; leaves the position after it in end_out[0].

    Each record is (path, ZNode). A node's blob (data, then the stat in
    digest order) is cut straight out of the file: the data, czxid and
    mzxid, pzxid moved up from the end, then the rest, so no int is made for
    the stat."""
    size = len(buf)
    unpack_int = _INT.unpack_from
    unpack_long = _LONG.unpack_from
    tail_size = _NODE_TAIL.size
    maxbuf = SNAP_MAX_BUFFER
    from_blob = ZNode.from_blob
    join = b"".join
    new = object.__new__
    znode = ZNode
    leaf = EMPTY_CHILDREN
    while True:
        n = unpack_int(buf, pos)[0] if pos + 4 <= size else -2
        if n >= 0 and pos + 4 + n <= size:
            # Java decodes malformed UTF-8 with replacement characters
            path = buf[pos + 4 : pos + 4 + n].decode("utf-8", "replace")
            pos += 4 + n
        else:
            path, pos = read_ustring(buf, pos, maxbuf)
        if path == "/":
            end_out[0] = pos
            return
        if path is None:
            raise CorruptSnapshot(f"null path at offset {pos - 4}")
        if pos + 4 > size:
            raise Truncated(f"node data at offset {pos} runs past the end")
        n = unpack_int(buf, pos)[0]
        if n >= 0 and pos + 4 + n + tail_size <= size:
            d = pos + 4
            pos = d + n
            node = new(znode)  # ZNode.from_blob, inlined: this runs per znode
            node.blob = join((buf[d:pos], buf[pos + 8 : pos + 24], buf[pos + 60 : pos + 68],
                              buf[pos + 24 : pos + 60]))
            node.acl = unpack_long(buf, pos)[0]
            node.children = leaf
            yield path, node
            pos += tail_size
            continue
        data, pos = read_buffer(buf, pos, maxbuf)
        if pos + tail_size > size:
            raise Truncated(f"node {path} at offset {pos} runs past the end")
        st = join((buf[pos + 8 : pos + 24], buf[pos + 60 : pos + 68], buf[pos + 24 : pos + 60]))
        acl = unpack_long(buf, pos)[0]
        pos += tail_size
        yield path, (from_blob(st, acl, True) if data is None
                     else from_blob(join((data, st)), acl))


def _check_seal(buf: bytes, pos: int) -> int:
    expect = zlib.adler32(memoryview(buf)[:pos])
    val, pos = _LONG.unpack_from(buf, pos)[0], pos + 8
    _marker, pos = read_ustring(buf, pos, SNAP_MAX_BUFFER)
    if val & 0xFFFFFFFFFFFFFFFF != expect:
        raise CorruptSnapshot("CRC corruption")
    return pos


def parse_snapshot(
    buf: bytes,
    zxid: int,
    *,
    digest_enabled: bool = True,
    extended_types: bool = False,
    check_seal: bool = True,
    last_zxid_enabled: bool = False,
) -> Snapshot:
    """Decode an uncompressed snapshot stream (FileSnap.deserialize for one file).

    ``last_zxid_enabled`` is 3.9's ``zookeeper.serializeLastProcessedZxid.enabled``:
    read the last processed zxid after the digest and check its seal.

    CorruptSnapshot on a bad magic, a checksum mismatch or an orphan node;
    Truncated (a JuteError) if the stream ends early.
    """
    try:
        fh, pos = FileHeader.decode(buf, 0)
        if fh.magic != SNAP_MAGIC:
            raise CorruptSnapshot(f"mismatching magic headers {fh.magic} !=  {SNAP_MAGIC}")
        count, pos = _INT.unpack_from(buf, pos)[0], pos + 4
        sessions: dict[int, int] = {}
        if pos + count * _SESSION.size > len(buf):
            raise Truncated("session table runs past the end")
        for _ in range(max(count, 0)):
            sid, timeout = _SESSION.unpack_from(buf, pos)
            sessions[sid] = timeout
            pos += _SESSION.size
        if pos + 4 > len(buf):
            raise Truncated("ACL map runs past the end")
        nacl, pos = _INT.unpack_from(buf, pos)[0], pos + 4
        acl_entries: list[tuple[int, list[ACL]]] = []
        for _ in range(max(nacl, 0)):
            if pos + _ACL_HEAD.size > len(buf):
                raise Truncated("ACL entry runs past the end")
            acl_id, n = _ACL_HEAD.unpack_from(buf, pos)
            pos += _ACL_HEAD.size
            if n == -1:
                raise CorruptSnapshot("Incorrent format of InputArchive when deserialize DataTree")
            acls = []
            for _ in range(n):
                a, pos = ACL.decode(buf, pos, SNAP_MAX_BUFFER)
                acls.append(a)
            acl_entries.append((acl_id, acls))
        end = [0]
        try:
            tree = DataTree.from_nodes(
                acl_entries, _node_records(buf, pos, end),
                digest_enabled=digest_enabled, extended_types=extended_types,
            )
        except ValueError as e:
            if isinstance(e, JuteError):
                raise
            raise CorruptSnapshot(str(e)) from e
        pos = end[0]
        tree.last_processed_zxid = zxid
        digest: ZxidDigest | None = None
        last_zxid: int | None = None
        if check_seal:
            pos = _check_seal(buf, pos)
            if digest_enabled and pos < len(buf):
                digest, pos = _read_zxid_digest(buf, pos)
                if digest is not None:
                    pos = _check_seal(buf, pos)
            # DataTree.deserializeLastProcessedZxid: an EOF means an older snapshot
            if last_zxid_enabled and pos + 8 <= len(buf):
                last_zxid = _LONG.unpack_from(buf, pos)[0]
                _check_seal(buf, pos + 8)
    except struct.error as e:
        raise Truncated(str(e)) from e
    return Snapshot(tree, sessions, zxid, digest, last_zxid)


def _read_zxid_digest(buf: bytes, pos: int) -> tuple[ZxidDigest | None, int]:
    """ZxidDigest.deserialize; (None, pos) where Apache meets EOF (an older snapshot)."""
    try:
        if pos + 12 > len(buf):
            return None, pos
        zxid, version = struct.unpack_from(">qi", buf, pos)
        pos += 12
        if version < 2:  # digest version 1 wrote the digest as a hex string
            s, pos = read_ustring(buf, pos, SNAP_MAX_BUFFER)
            d = int(s, 16) if s is not None else 0
        else:
            if pos + 8 > len(buf):
                return None, pos
            d = _LONG.unpack_from(buf, pos)[0]
            pos += 8
    except Truncated:
        return None, pos
    return ZxidDigest(zxid, version, d), pos


def decode_stream(name: str, raw: bytes) -> bytes:
    """The uncompressed stream of a snapshot file called ``name`` holding ``raw``."""
    method = compression_of(name)
    if method == "snappy":
        try:
            return snappyjava.decode(raw)
        except snappyjava.SnappyJavaError as e:
            raise CorruptSnapshot(f"{name}: bad snappy stream: {e}") from e
    if method == "gz":
        try:
            return gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as e:
            raise CorruptSnapshot(f"{name}: bad gzip stream: {e}") from e
    return raw


def looks_valid(name: str, size: int, head: bytes, tail: bytes) -> bool:
    """SnapStream.isValidSnapshot on what the shell read: the name, the file's
    size, its first bytes and its last five.

    Uncompressed: at least 10 bytes ending with the sealed "/" (int 1, '/').
    gz: the gzip magic. snappy: snappy-java's magic (readable or not).
    """
    if zxid_from_name(name, SNAPSHOT_PREFIX) == -1:
        return False
    method = compression_of(name)
    if method == "gz":
        return head[:2] == _GZIP_MAGIC
    if method == "snappy":
        return head[: len(_SNAPPY_MAGIC)] == _SNAPPY_MAGIC
    return size >= 10 and tail[-5:] == _SEAL_PATH


#: How many bytes of a snapshot file's head `looks_valid` needs.
HEAD_NEEDED = len(_SNAPPY_MAGIC)


def write_method(name: str) -> str:
    """The compression a snapshot file called ``name`` is written with ("", "gz" or "snappy")."""
    return compression_of(name)


def write_stream(
    raw: BinaryIO,
    method: str,
    tree: DataTree,
    sessions: Mapping[int, int],
    *,
    digest: ZxidDigest | None | bool = True,
    last_zxid: int | None = None,
) -> int:
    """Serialize into the open file ``raw`` with ``method`` (see write_method); the node count."""
    if method == "gz":
        with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz:
            return serialize_snapshot(gz, tree, sessions, digest=digest, last_zxid=last_zxid)
    if method == "snappy":
        with snappyjava.SnappyJavaWriter(raw) as sj:
            return serialize_snapshot(sj, tree, sessions, digest=digest,  # type: ignore[arg-type]
                                      last_zxid=last_zxid)
    return serialize_snapshot(raw, tree, sessions, digest=digest, last_zxid=last_zxid)
