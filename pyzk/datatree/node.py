"""A znode: data, ACL key, children and the persisted stat (Apache DataNode).

The stat fields are stored exactly as Apache persists them (StatPersisted),
which differs from what clients see in two places that `stat()` translates:
``cversion`` counts child creations only (clients get ``2*cversion -
numChildren``, i.e. creations plus deletions) and ``ephemeralOwner`` is
hidden (0) for container and TTL nodes.

Memory is the reason for the layout. A tree holds millions of these, so a
znode is three slots: ``blob``, the ACL id and the children (one shared
empty set for every leaf). ``blob`` is the data followed by the nine stat
fields packed big-endian (60 bytes) in the order Apache's digest
(DigestCalculator, version 2) hashes them: czxid, mzxid, pzxid, ctime, mtime
(longs), version, cversion, aversion (ints), ephemeralOwner (long). Separate
slots for data and nine stat ints would cost 72 bytes of slots, a bytes
header and a 28-32 byte int object per distinct value; one blob costs 93
bytes over the data whatever the values. A node's digest term is a CRC32 of
its path followed by exactly this blob, so it is recomputed when needed
rather than kept per node. Null data (not the same as empty data to clients
of snapshots) is marked by the class, `_NullDataZNode`, not by a field.
"""

from __future__ import annotations

import struct
import zlib

from pyzk.datatree.ephemeral import CONTAINER_EPHEMERAL_OWNER, client_ephemeral_owner
from pyzk.javacompat import EMPTY_CHILDREN, ChildSet
from pyzk.jute.records import Stat, StatPersisted

# czxid mzxid pzxid ctime mtime version cversion aversion ephemeralOwner
STAT_LAYOUT = struct.Struct(">qqqqqiiiq")
STAT_SIZE = STAT_LAYOUT.size  # 60
_pack = STAT_LAYOUT.pack
_unpack_from = STAT_LAYOUT.unpack_from
_LONG = struct.Struct(">q")
_INT = struct.Struct(">i")
_crc32 = zlib.crc32
_join = b"".join
ZK_SUBTREE = "/zookeeper/"


def pack_stat(
    czxid: int, mzxid: int, ctime: int, mtime: int, version: int, cversion: int,
    aversion: int, ephemeral_owner: int, pzxid: int,
) -> bytes:
    """The packed stat of a node (the tail of its blob), from StatPersisted's fields."""
    return _pack(czxid, mzxid, pzxid, ctime, mtime, version, cversion, aversion, ephemeral_owner)


def _field(index: int, offset: int, codec: struct.Struct, doc: str) -> property:
    """A read/write property over one field of the packed stat."""
    unpack_from = codec.unpack_from
    where = offset - STAT_SIZE

    def get(self: ZNode) -> int:
        blob = self.blob
        return unpack_from(blob, len(blob) + where)[0]

    def put(self: ZNode, value: int) -> None:
        blob = self.blob
        cut = len(blob) - STAT_SIZE
        fields = list(_unpack_from(blob, cut))
        fields[index] = value
        self.blob = _join((blob[:cut], _pack(*fields)))

    return property(get, put, doc=doc)


class ZNode:
    """One node of the tree; ``children`` iterates names in Apache's (Java HashSet) order."""

    __slots__ = ("blob", "acl", "children")

    def __init__(
        self,
        data: bytes | None,
        acl: int,
        czxid: int = 0,
        mzxid: int = 0,
        ctime: int = 0,
        mtime: int = 0,
        version: int = 0,
        cversion: int = 0,
        aversion: int = 0,
        ephemeralOwner: int = 0,  # noqa: N803 - Apache's field name
        pzxid: int = 0,
    ) -> None:
        st = _pack(czxid, mzxid, pzxid, ctime, mtime, version, cversion, aversion,
                   ephemeralOwner)
        if data is None:
            self.__class__ = _NullDataZNode
            self.blob = st
        else:
            self.blob = _join((data, st))
        self.acl = acl
        self.children: ChildSet = EMPTY_CHILDREN

    czxid = _field(0, 0, _LONG, "zxid of the create")
    mzxid = _field(1, 8, _LONG, "zxid of the last setData")
    pzxid = _field(2, 16, _LONG, "zxid of the last child create/delete")
    ctime = _field(3, 24, _LONG, "create time (ms)")
    mtime = _field(4, 32, _LONG, "last setData time (ms)")
    version = _field(5, 40, _INT, "data version")
    cversion = _field(6, 44, _INT, "child creations (as persisted)")
    aversion = _field(7, 48, _INT, "ACL version")
    ephemeralOwner = _field(8, 52, _LONG, "session, or container/TTL marker (as persisted)")

    @property
    def data(self) -> bytes | None:
        return self.blob[:-STAT_SIZE]

    @data.setter
    def data(self, data: bytes | None) -> None:
        """New data, stat untouched (Apache's quota updateCountBytes writes it so)."""
        st = self.blob[-STAT_SIZE:]
        if data is None:
            self.__class__ = _NullDataZNode
            self.blob = st
        else:
            self.__class__ = ZNode
            self.blob = _join((data, st))

    @property
    def st(self) -> bytes:
        """The packed stat (digest order), 60 bytes."""
        return self.blob[-STAT_SIZE:]

    @classmethod
    def from_blob(cls, blob: bytes, acl: int, null_data: bool = False) -> ZNode:
        """A node from its blob (data then packed stat); the snapshot loader's fast path."""
        node = cls.__new__(_NullDataZNode if null_data else cls)
        node.blob = blob
        node.acl = acl
        node.children = EMPTY_CHILDREN
        return node

    @classmethod
    def from_persisted(cls, data: bytes | None, acl: int, sp: StatPersisted) -> ZNode:
        """Build a node from a snapshot record (data, acl, StatPersisted)."""
        return cls(data, acl, sp.czxid, sp.mzxid, sp.ctime, sp.mtime, sp.version,
                   sp.cversion, sp.aversion, sp.ephemeralOwner, sp.pzxid)

    def data_length(self) -> int:
        return len(self.blob) - STAT_SIZE

    def stat(self, extended_types: bool = False) -> Stat:
        """The Stat a client sees (DataNode.copyStat)."""
        blob = self.blob
        size = len(blob) - STAT_SIZE
        cz, mz, pz, ct, mt, v, cv, av, owner = _unpack_from(blob, size)
        n = len(self.children)
        if owner and (owner == CONTAINER_EPHEMERAL_OWNER or owner < 0):
            owner = client_ephemeral_owner(owner, extended_types)
        return Stat(cz, mz, ct, mt, v, cv * 2 - n, av, owner, size, n, pz)

    def copy_stat(self) -> StatPersisted:
        """The persisted stat, as written to snapshots."""
        blob = self.blob
        cz, mz, pz, ct, mt, v, cv, av, owner = _unpack_from(blob, len(blob) - STAT_SIZE)
        return StatPersisted(cz, mz, ct, mt, v, cv, av, owner, pz)

    def persisted_stat_bytes(self) -> bytes:
        """The 60 bytes of StatPersisted as Jute writes them (snapshot order)."""
        blob = self.blob
        cut = len(blob) - STAT_SIZE
        return _join((blob[cut : cut + 16], blob[cut + 24 :], blob[cut + 16 : cut + 24]))

    def digest_term(self, path: str) -> int:
        """This node's term in the tree digest (Apache's DigestCalculator, version 2):
        CRC32 over path, data and the stat, which is the path then the blob; 0
        under /zookeeper/. The root is hashed with an empty path under either
        of its keys ("" and "/")."""
        if path.startswith(ZK_SUBTREE):
            return 0
        if len(path) > 1:
            return _crc32(self.blob, _crc32(path.encode("utf-8")))
        return _crc32(self.blob)

    # -- mutations, each a whole Apache DataTree step on the stat ----------

    def set_data(self, data: bytes | None, zxid: int, time: int, version: int) -> None:
        """setData: new data, mzxid, mtime and version."""
        blob = self.blob
        cz, _mz, pz, ct, _mt, _v, cv, av, owner = _unpack_from(blob, len(blob) - STAT_SIZE)
        st = _pack(cz, zxid, pz, ct, time, version, cv, av, owner)
        if data is None:
            self.__class__ = _NullDataZNode
            self.blob = st
        else:
            self.__class__ = ZNode
            self.blob = _join((data, st))

    def set_aversion(self, version: int) -> None:
        blob = self.blob
        at = len(blob) - STAT_SIZE + 48
        self.blob = _join((blob[:at], _INT.pack(version), blob[at + 4 :]))

    def set_pzxid(self, zxid: int) -> None:
        blob = self.blob
        at = len(blob) - STAT_SIZE + 16
        self.blob = _join((blob[:at], _LONG.pack(zxid), blob[at + 8 :]))

    def set_cversion_pzxid(self, cversion: int, zxid: int) -> None:
        blob = self.blob
        at = len(blob) - STAT_SIZE + 16
        self.blob = _join((blob[:at], _LONG.pack(zxid), blob[at + 8 : at + 28],
                           _INT.pack(cversion), blob[at + 32 :]))

    def add_child(self, parent_path: str, child_path: str) -> bool:
        """Add a child by its full path; ``parent_path`` is this node's key ("" for the root)."""
        children = self.children
        if children is EMPTY_CHILDREN:
            # Apache allocates a HashSet(8) on the first child and never frees it.
            children = self.children = ChildSet(parent_path + "/", 8)
        return children.add(child_path)

    def remove_child(self, child_path: str) -> bool:
        return self.children.discard(child_path)

    def __repr__(self) -> str:
        return f"ZNode(data={self.data!r}, acl={self.acl}, {self.copy_stat()!r})"


class _NullDataZNode(ZNode):
    """A znode whose data is null (Java ``byte[] null``), not empty: the blob is the stat only."""

    __slots__ = ()

    @property
    def data(self) -> bytes | None:
        return None

    @data.setter
    def data(self, data: bytes | None) -> None:
        ZNode.data.fset(self, data)  # type: ignore[attr-defined]
