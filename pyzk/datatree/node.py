"""A znode: data, ACL key, children and the persisted stat (Apache DataNode).

The stat fields are stored exactly as Apache persists them (StatPersisted),
which differs from what clients see in two places that `stat()` translates:
``cversion`` counts child creations only (clients get ``2*cversion -
numChildren``, i.e. creations plus deletions) and ``ephemeralOwner`` is
hidden (0) for container and TTL nodes.
"""

from __future__ import annotations

from pyzk.datatree.ephemeral import CONTAINER_EPHEMERAL_OWNER, client_ephemeral_owner
from pyzk.datatree.javacompat import EMPTY_CHILDREN, JavaStringSet
from pyzk.jute.records import Stat, StatPersisted


class ZNode:
    """One node of the tree; ``children`` iterates in Apache's (Java HashSet) order."""

    __slots__ = (
        "data", "acl", "children",
        "czxid", "mzxid", "ctime", "mtime", "version", "cversion", "aversion",
        "ephemeralOwner", "pzxid", "digest",
    )

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
        self.data = data
        self.acl = acl
        self.children: JavaStringSet = EMPTY_CHILDREN
        self.czxid = czxid
        self.mzxid = mzxid
        self.ctime = ctime
        self.mtime = mtime
        self.version = version
        self.cversion = cversion
        self.aversion = aversion
        self.ephemeralOwner = ephemeralOwner
        self.pzxid = pzxid
        self.digest = 0  # this node's term in the tree digest (0 when not counted)

    @classmethod
    def from_persisted(cls, data: bytes | None, acl: int, sp: StatPersisted) -> ZNode:
        """Build a node from a snapshot record (data, acl, StatPersisted)."""
        return cls(
            data, acl, sp.czxid, sp.mzxid, sp.ctime, sp.mtime, sp.version, sp.cversion,
            sp.aversion, sp.ephemeralOwner, sp.pzxid,
        )

    def stat(self, extended_types: bool = False) -> Stat:
        """The Stat a client sees (DataNode.copyStat)."""
        n = len(self.children)
        owner = self.ephemeralOwner
        if owner and (owner == CONTAINER_EPHEMERAL_OWNER or owner < 0):
            owner = client_ephemeral_owner(owner, extended_types)
        data = self.data
        return Stat(
            self.czxid, self.mzxid, self.ctime, self.mtime, self.version,
            self.cversion * 2 - n, self.aversion, owner,
            0 if data is None else len(data), n, self.pzxid,
        )

    def copy_stat(self) -> StatPersisted:
        """The persisted stat, as written to snapshots."""
        return StatPersisted(
            self.czxid, self.mzxid, self.ctime, self.mtime, self.version, self.cversion,
            self.aversion, self.ephemeralOwner, self.pzxid,
        )

    def add_child(self, name: str) -> bool:
        children = self.children
        if children is EMPTY_CHILDREN:
            # Apache allocates a HashSet(8) on the first child and never frees it.
            children = self.children = JavaStringSet(8)
        return children.add(name)

    def remove_child(self, name: str) -> bool:
        return self.children.discard(name)

    def __repr__(self) -> str:
        return f"ZNode(data={self.data!r}, acl={self.acl}, {self.copy_stat()!r})"
