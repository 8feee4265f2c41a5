"""The data tree: znodes, ACL cache, ephemerals and watches, driven by txns (Apache DataTree).

`DataTree.process_txn` applies one committed transaction exactly as
Apache's DataTree.processTxn does, stat arithmetic and quirks included, and
returns a `TxnResult` listing the watch notifications to deliver, in the
order Apache fires them. Nothing here does I/O or reads a clock: times
arrive in the TxnHeader.

Apache conventions kept on purpose (they are visible to clients, snapshots
or the four-letter words):

* the root is stored under both "" and "/" (``node_count`` counts it twice,
  like ``zk_znode_count``), and children of the root name "" as parent key;
* stats are kept as persisted (see `ZNode`), translated in `ZNode.stat`;
* errors met while applying (NoNode/NodeExists on replay) become
  ``TxnResult.err`` and are logged, never raised;
* the tree digest is Apache 3.8's (version 2): the 64-bit wrapping sum of a
  CRC32 over path, data and stat of every node outside "/zookeeper/".

Memory per znode is kept near Apache's JVM heap per znode: see `ZNode` for
the packed layout; a node's children are kept by their full paths (the very
str objects keying ``nodes``), so no name string is stored per znode; and no
digest term is cached per node (it is recomputed around each change).
"""

from __future__ import annotations

import gc
import logging
import struct
import zlib
from collections.abc import Iterable, Iterator

from pyzk.datatree.acl import ACLCache, read_acl_unsafe
from pyzk.datatree.ephemeral import (
    CONTAINER_EPHEMERAL_OWNER,
    EphemeralType,
    InvalidEphemeralOwner,
    ephemeral_type,
    ttl_to_ephemeral_owner,
)
from pyzk.datatree.node import STAT_SIZE, ZK_SUBTREE, ZNode, pack_stat
from pyzk.datatree.quota import (
    LIMIT_NODE,
    PROC_ZOOKEEPER,
    QUOTA_ZOOKEEPER,
    STAT_NODE,
    QuotaTrie,
    StatsTrack,
    stat_path,
    trim_quota_path,
)
from pyzk.datatree.watches import STANDARD, Watcher, WatcherMode, WatchManager
from pyzk.javacompat import ChildSet, JavaStringSet
from pyzk.jute.codec import JuteError
from pyzk.jute.constants import Err, EventType, OpCode, WatcherType
from pyzk.jute.records import (
    ACL,
    CheckVersionTxn,
    CreateContainerTxn,
    CreateTTLTxn,
    CreateTxn,
    DeleteTxn,
    ErrorTxn,
    MultiTxn,
    Record,
    SetDataTxn,
    Stat,
    StatPersisted,
    TxnHeader,
)

log = logging.getLogger(__name__)

DIGEST_VERSION = 2
DIGEST_LOG_INTERVAL = 128
DIGEST_LOG_LIMIT = 1024
STAT_OVERHEAD_BYTES = 6 * 8 + 5 * 4
_ZERO_LONG = bytes(8)
_LONG = struct.Struct(">q")


def digest_term(path: str, data: bytes | None, stat: StatPersisted | ZNode) -> int:
    """One node's term of the tree digest (Apache's DigestCalculator, version 2):
    CRC32 over path, data and the persisted stat fields; 0 under /zookeeper/.
    ``stat`` is anything with StatPersisted's field names (a record or a
    ZNode), so prep can precalculate digests from its change records; for a
    node in the tree `ZNode.digest_term` gives the same value faster."""
    if path.startswith(ZK_SUBTREE):
        return 0
    packed = pack_stat(
        stat.czxid, stat.mzxid, stat.ctime, stat.mtime, stat.version, stat.cversion,
        stat.aversion, stat.ephemeralOwner, stat.pzxid,
    )
    head = path.encode("utf-8") if path != "/" else b""
    if data:
        return zlib.crc32(packed, zlib.crc32(data, zlib.crc32(head)))
    return zlib.crc32(head + packed)
_MASK64 = (1 << 64) - 1
_CONFIG_ZOOKEEPER = "/zookeeper/config"

_OP_SET_DATA = int(OpCode.setData)
_OP_RECONFIG = int(OpCode.reconfig)
_OP_CREATE = int(OpCode.create)
_OP_CREATE2 = int(OpCode.create2)
_OP_DELETE = int(OpCode.delete)
_OP_DELETE_CONTAINER = int(OpCode.deleteContainer)
_OP_MULTI = int(OpCode.multi)
_CREATED = int(EventType.NodeCreated)
_DELETED = int(EventType.NodeDeleted)
_DATA_CHANGED = int(EventType.NodeDataChanged)
_CHILDREN_CHANGED = int(EventType.NodeChildrenChanged)

#: Sub-transaction record types of a multi, as DataTree.processTxn decodes
#: them (any other type is "Invalid type of op"; create2 arrives as create).
MULTI_RECORDS: dict[int, type[Record]] = {
    OpCode.create: CreateTxn,
    OpCode.createTTL: CreateTTLTxn,
    OpCode.createContainer: CreateContainerTxn,
    OpCode.delete: DeleteTxn,
    OpCode.deleteContainer: DeleteTxn,
    OpCode.setData: SetDataTxn,
    OpCode.error: ErrorTxn,
    OpCode.check: CheckVersionTxn,
}

Event = tuple[Watcher, int, str]


class _KeeperError(Exception):
    """A NoNode/NodeExists met while applying; becomes TxnResult.err."""

    __slots__ = ("code",)

    def __init__(self, code: int) -> None:
        self.code = code


class _BadMulti(Exception):
    """Apache's IOException inside a multi: logged, the rest is skipped."""


class TxnResult:
    """Apache ProcessTxnResult plus the watch notifications the txn fired."""

    __slots__ = ("client_id", "cxid", "zxid", "type", "err", "path", "stat", "multi", "events")

    def __init__(self, client_id: int, cxid: int, zxid: int, type_: int) -> None:
        self.client_id = client_id
        self.cxid = cxid
        self.zxid = zxid
        self.type = type_
        self.err = 0
        self.path: str | None = None
        self.stat: Stat | None = None
        self.multi: list[TxnResult] | None = None
        # (watcher, event type, path) in delivery order
        self.events: list[Event] = []

    def __repr__(self) -> str:
        return (
            f"TxnResult(type={self.type}, err={self.err}, path={self.path!r}, "
            f"zxid={self.zxid:#x}, multi={self.multi!r}, events={len(self.events)})"
        )


class DataTree:
    """Apache's DataTree as a pure state machine; see the module docstring."""

    def __init__(self, *, digest_enabled: bool = True, extended_types: bool = False) -> None:
        self.digest_enabled = digest_enabled
        self.extended_types = extended_types
        self.nodes: dict[str, ZNode] = {}
        self.acl_cache = ACLCache()
        self.ephemerals: dict[int, JavaStringSet] = {}
        self.containers: set[str] = set()
        self.ttls: set[str] = set()
        self.last_processed_zxid = 0
        self.data_watches = WatchManager()
        self.child_watches = WatchManager()
        self.quota_trie = QuotaTrie()
        self._digest = 0
        self._data_size = 0
        # (zxid, digest version, digest) of the last applied txn, and every 128th.
        self.last_processed_digest: tuple[int, int, int] | None = None
        self.digest_log: list[tuple[int, int, int]] = []

        root = ZNode(b"", -1)
        self._put("", root)
        self.nodes["/"] = root
        root.add_child("", PROC_ZOOKEEPER)
        proc = ZNode(b"", -1)
        self._put(PROC_ZOOKEEPER, proc)
        proc.add_child(PROC_ZOOKEEPER, QUOTA_ZOOKEEPER)
        self._put(QUOTA_ZOOKEEPER, ZNode(b"", -1))
        self._add_config_node()
        self._data_size = self.approximate_data_size()

    def _add_config_node(self) -> None:
        self.nodes[PROC_ZOOKEEPER].add_child(PROC_ZOOKEEPER, _CONFIG_ZOOKEEPER)
        self._put(_CONFIG_ZOOKEEPER, ZNode(b"", -1))
        # Access-controlled by default (ZOOKEEPER-2014); aversion becomes -1.
        self.set_acl(_CONFIG_ZOOKEEPER, read_acl_unsafe(), -1)

    # ------------------------------------------------------------ digest

    # Apache caches each node's term (DataNode.digest) and refreshes it in
    # postChange; here nothing is cached (it would cost an int per znode):
    # every change is bracketed by _pre_change (drop the old term) and
    # _post_change (add the new). Apache mutates a node without that bracket
    # only in updateCountBytes, on quota stat nodes under /zookeeper/, whose
    # term is always 0, so recomputing gives Apache's digests exactly.

    def _node_digest(self, path: str, node: ZNode) -> int:
        """``node``'s current term in the tree digest (what Apache has cached)."""
        return node.digest_term(path)

    def _put(self, path: str, node: ZNode) -> None:
        self.nodes[path] = node
        if self.digest_enabled:
            self._digest += node.digest_term(path)

    def _pre_change(self, path: str, node: ZNode) -> None:
        """Drop ``node``'s digest term before its stat or data change (preChange)."""
        if self.digest_enabled:
            self._digest -= node.digest_term(path)

    def _post_change(self, path: str, node: ZNode) -> None:
        """Add ``node``'s new digest term after a change (postChange)."""
        if self.digest_enabled:
            self._digest += node.digest_term(path)

    def digest(self) -> int:
        """The tree digest as Apache's signed 64-bit long (0 when digests are disabled)."""
        d = self._digest & _MASK64
        return d - (1 << 64) if d >> 63 else d

    # ------------------------------------------------------------ lookups

    def get_node(self, path: str) -> ZNode | None:
        return self.nodes.get(path)

    def node_count(self) -> int:
        """DataTree.getNodeCount: includes the root's "" alias, as zk_znode_count does."""
        return len(self.nodes)

    def approximate_data_size(self) -> int:
        """Recomputed sum of path length + data length (the root counted under both keys)."""
        total = 0
        for path, node in self.nodes.items():
            total += len(path) + node.data_length()
        return total

    def cached_approximate_data_size(self) -> int:
        """The running total Apache reports as zk_approximate_data_size."""
        return self._data_size

    def stat_of(self, node: ZNode) -> Stat:
        return node.stat(self.extended_types)

    def acl_of(self, node: ZNode) -> list[ACL]:
        return self.acl_cache.get(node.acl)

    def get_data(self, path: str,
                 watcher: Watcher | None = None) -> tuple[bytes | None, Stat] | None:
        """getData: None if absent (no watch is left then), else (data, stat)."""
        n = self.nodes.get(path)
        if n is None:
            return None
        if watcher is not None:
            self.data_watches.add_watch(path, watcher)
        return n.data, n.stat(self.extended_types)

    def stat_node(self, path: str, watcher: Watcher | None = None) -> Stat | None:
        """exists: the watch is registered even when the node is absent."""
        if watcher is not None:
            self.data_watches.add_watch(path, watcher)
        n = self.nodes.get(path)
        return None if n is None else n.stat(self.extended_types)

    def get_children(self, path: str,
                     watcher: Watcher | None = None) -> tuple[list[str], Stat] | None:
        """getChildren(2): children in Apache's order, and the stat; None if absent."""
        n = self.nodes.get(path)
        if n is None:
            return None
        if watcher is not None:
            self.child_watches.add_watch(path, watcher)
        return list(n.children.java_order()), n.stat(self.extended_types)

    def get_acl(self, path: str) -> tuple[list[ACL], Stat] | None:
        n = self.nodes.get(path)
        if n is None:
            return None
        return [a.copy() for a in self.acl_cache.get(n.acl)], n.stat(self.extended_types)

    def get_all_children_number(self, path: str) -> int:
        """All descendants of ``path`` (getAllChildrenNumber); "/" excludes root and its alias."""
        if path == "/":
            return len(self.nodes) - 2
        return sum(1 for _ in self._descendants(path))

    def _descendants(self, path: str) -> Iterator[str]:
        node = self.nodes.get(path)
        if node is None:
            return
        stack = [(path, node)]
        nodes = self.nodes
        while stack:
            p, n = stack.pop()
            for cp in n.children.paths():  # order does not matter here
                child = nodes.get(cp)
                yield cp
                if child is not None and child.children:
                    stack.append((cp, child))

    def get_ephemerals(self, session_id: int) -> list[str]:
        """A session's ephemeral paths in the order Apache's cloned HashSet yields them."""
        eph = self.ephemerals.get(session_id)
        return [] if eph is None else eph.clone().java_order()

    def get_ephemerals_with_prefix(self, session_id: int, prefix: str | None) -> list[str]:
        """The getEphemerals request (FinalRequestProcessor's prefix filter)."""
        paths = self.get_ephemerals(session_id)
        if prefix is None or prefix.strip() in ("", "/"):
            return paths
        return [p for p in paths if p.startswith(prefix)]

    def ephemerals_count(self) -> int:
        return sum(len(s) for s in self.ephemerals.values())

    def sessions_with_ephemerals(self) -> list[int]:
        """Sessions with an ephemerals entry (Apache keeps emptied entries until close)."""
        return list(self.ephemerals)

    def watch_count(self) -> int:
        return len(self.data_watches) + len(self.child_watches)

    def max_prefix_with_quota(self, path: str) -> str | None:
        """The deepest quota root above ``path``, or None (getMaxPrefixWithQuota)."""
        trie = self.quota_trie
        if not trie:
            return None
        p = trie.find_max_prefix(path)
        return None if p == "/" or not p else p

    # ------------------------------------------------------------ watches

    def add_watch(self, path: str, watcher: Watcher, mode: int) -> None:
        """addWatch request: AddWatchMode 0 (persistent) / 1 (recursive) in both managers."""
        wm = WatcherMode.from_add_watch_mode(mode)
        self.data_watches.add_watch(path, watcher, wm)
        self.child_watches.add_watch(path, watcher, wm)

    def clear_watches(self) -> None:
        """Drop every watch: a role ended and every connection that set one is
        closed, and the tree goes on to the next role (as a reloaded tree
        would, it starts with none)."""
        self.data_watches = WatchManager()
        self.child_watches = WatchManager()

    def remove_cnxn(self, watcher: Watcher) -> None:
        self.data_watches.remove_watcher(watcher)
        self.child_watches.remove_watcher(watcher)

    def contains_watcher(self, path: str, type_: int, watcher: Watcher) -> bool:
        """checkWatches (DataTree.containsWatcher with Apache's WatchManager semantics)."""
        if type_ == WatcherType.Children:
            return self.child_watches.contains_watcher(path, watcher)
        if type_ == WatcherType.Data:
            return self.data_watches.contains_watcher(path, watcher)
        return self.child_watches.contains_watcher(
            path, watcher
        ) or self.data_watches.contains_watcher(path, watcher)

    def remove_watch(self, path: str, type_: int, watcher: Watcher) -> bool:
        """removeWatches: True if a watch of that type was removed."""
        if type_ == WatcherType.Children:
            return self.child_watches.remove_watch(path, watcher)
        if type_ == WatcherType.Data:
            return self.data_watches.remove_watch(path, watcher)
        c = self.child_watches.remove_watch(path, watcher)
        d = self.data_watches.remove_watch(path, watcher)
        return c or d

    def set_watches(
        self,
        relative_zxid: int,
        data_watches: Iterable[str],
        exist_watches: Iterable[str],
        child_watches: Iterable[str],
        persistent_watches: Iterable[str],
        recursive_watches: Iterable[str],
        watcher: Watcher,
    ) -> list[tuple[int, str]]:
        """setWatches(2) after a reconnect; returns the (event type, path) to send now."""
        out: list[tuple[int, str]] = []
        nodes = self.nodes
        for path in data_watches or ():
            n = nodes.get(path)
            if n is None:
                out.append((_DELETED, path))
            elif n.mzxid > relative_zxid:
                out.append((_DATA_CHANGED, path))
            else:
                self.data_watches.add_watch(path, watcher)
        for path in exist_watches or ():
            if path in nodes:
                out.append((_CREATED, path))
            else:
                self.data_watches.add_watch(path, watcher)
        for path in child_watches or ():
            n = nodes.get(path)
            if n is None:
                out.append((_DELETED, path))
            elif n.pzxid > relative_zxid:
                out.append((_CHILDREN_CHANGED, path))
            else:
                self.child_watches.add_watch(path, watcher)
        for path in persistent_watches or ():
            self.child_watches.add_watch(path, watcher, WatcherMode.PERSISTENT)
            self.data_watches.add_watch(path, watcher, WatcherMode.PERSISTENT)
        for path in recursive_watches or ():
            self.child_watches.add_watch(path, watcher, WatcherMode.PERSISTENT_RECURSIVE)
            self.data_watches.add_watch(path, watcher, WatcherMode.PERSISTENT_RECURSIVE)
        return out

    # ------------------------------------------------------------ mutations

    def create_node(
        self,
        path: str,
        data: bytes | None,
        acl: list[ACL] | None,
        ephemeral_owner: int,
        parent_cversion: int,
        zxid: int,
        time: int,
        events: list[Event] | None = None,
    ) -> ZNode:
        """DataTree.createNode; raises _KeeperError(NONODE/NODEEXISTS)."""
        i = path.rfind("/")
        parent_name = path[:i]
        child_name = path[i + 1 :]
        nodes = self.nodes
        parent = nodes.get(parent_name)
        if parent is None:
            raise _KeeperError(Err.NONODE)
        # Apache counts the ACL use before the existence check (and so leaks
        # one reference on NodeExists); kept for identical snapshots.
        acl_id = self.acl_cache.convert_acls(acl)
        if parent.children.has_path(path):
            raise _KeeperError(Err.NODEEXISTS)
        cversion = parent.cversion
        if parent_cversion == -1:
            parent_cversion = cversion + 1
        if parent_cversion > cversion:
            self._pre_change(parent_name, parent)
            parent.set_cversion_pzxid(parent_cversion, zxid)
            self._post_change(parent_name, parent)
        node = ZNode(data, acl_id, zxid, zxid, time, time, 0, 0, 0, ephemeral_owner, zxid)
        parent.add_child(parent_name, path)
        self._data_size += len(path) + (0 if data is None else len(data))
        old = nodes.get(path)
        if old is not None:
            self._pre_change(path, old)
        self._put(path, node)
        if ephemeral_owner:
            self._track_owner(path, ephemeral_owner)
        if parent_name.startswith(QUOTA_ZOOKEEPER):
            if child_name == LIMIT_NODE:
                try:
                    self.quota_trie.add_path(trim_quota_path(parent_name))
                except ValueError:
                    log.error("Cannot track a quota for limit node %s", path)
            if child_name == STAT_NODE:
                self._update_quota_for_path(trim_quota_path(parent_name))
        if self.quota_trie.marked:
            prefix = self.max_prefix_with_quota(path)
            if prefix is not None:
                self._update_quota_stat(prefix, 0 if data is None else len(data), 1)
        if events is not None and (self.data_watches._table or self.child_watches._table):  # noqa: SLF001
            for w in self.data_watches.trigger(path, _CREATED):
                events.append((w, _CREATED, path))
            ppath = parent_name or "/"
            for w in self.child_watches.trigger(ppath, _CHILDREN_CHANGED):
                events.append((w, _CHILDREN_CHANGED, ppath))
        return node

    def _track_owner(self, path: str, owner: int) -> None:
        """File a node with a non-zero ephemeralOwner under containers, TTL
        nodes or its session's ephemerals."""
        kind = self._kind(owner)
        if kind is EphemeralType.CONTAINER:
            self.containers.add(path)
        elif kind is EphemeralType.TTL:
            self.ttls.add(path)
        else:
            eph = self.ephemerals.get(owner)
            if eph is None:
                eph = self.ephemerals[owner] = JavaStringSet(16)
            eph.add(path)

    def _kind(self, owner: int) -> EphemeralType:
        try:
            return ephemeral_type(owner, self.extended_types)
        except InvalidEphemeralOwner:
            log.error("Invalid ephemeralOwner %#x treated as a session", owner)
            return EphemeralType.NORMAL

    def delete_node(self, path: str, zxid: int, events: list[Event] | None = None) -> None:
        """DataTree.deleteNode; raises _KeeperError(NONODE) (after touching the parent's pzxid)."""
        i = path.rfind("/")
        parent_name = path[:i]
        child_name = path[i + 1 :]
        nodes = self.nodes
        parent = nodes.get(parent_name)
        if parent is None:
            raise _KeeperError(Err.NONODE)
        parent.remove_child(path)
        if zxid > parent.pzxid:
            self._pre_change(parent_name, parent)
            parent.set_pzxid(zxid)
            self._post_change(parent_name, parent)
        node = nodes.pop(path, None)
        if node is None:
            raise _KeeperError(Err.NONODE)
        self._pre_change(path, node)
        self.acl_cache.remove_usage(node.acl)
        data_len = node.data_length()
        self._data_size -= len(path) + data_len
        owner = node.ephemeralOwner
        if owner:
            kind = self._kind(owner)
            if kind is EphemeralType.CONTAINER:
                self.containers.discard(path)
            elif kind is EphemeralType.TTL:
                self.ttls.discard(path)
            else:
                eph = self.ephemerals.get(owner)
                if eph is not None:
                    eph.discard(path)
        if child_name == LIMIT_NODE and parent_name.startswith(PROC_ZOOKEEPER):
            try:
                self.quota_trie.delete_path(trim_quota_path(parent_name))
            except ValueError:
                log.error("Cannot untrack the quota of limit node %s", path)
        if self.quota_trie.marked:
            prefix = self.max_prefix_with_quota(path)
            if prefix is not None:
                self._update_quota_stat(prefix, -data_len, -1)
        if events is not None and (self.data_watches._table or self.child_watches._table):  # noqa: SLF001
            processed = self.data_watches.trigger(path, _DELETED)
            for w in processed:
                events.append((w, _DELETED, path))
            for w in self.child_watches.trigger(path, _DELETED, processed):
                if w not in processed:
                    events.append((w, _DELETED, path))
            ppath = parent_name or "/"
            for w in self.child_watches.trigger(ppath, _CHILDREN_CHANGED):
                events.append((w, _CHILDREN_CHANGED, ppath))

    def set_data(
        self,
        path: str,
        data: bytes | None,
        version: int,
        zxid: int,
        time: int,
        events: list[Event] | None = None,
    ) -> Stat:
        """DataTree.setData: the version comes from the txn, not incremented here."""
        node = self.nodes.get(path)
        if node is None:
            raise _KeeperError(Err.NONODE)
        old_len = node.data_length()
        self._pre_change(path, node)
        node.set_data(data, zxid, time, version)
        self._post_change(path, node)
        stat = node.stat(self.extended_types)
        new_len = 0 if data is None else len(data)
        if self.quota_trie.marked:
            prefix = self.max_prefix_with_quota(path)
            if prefix is not None:
                self._update_quota_stat(prefix, new_len - old_len, 0)
        self._data_size += new_len - old_len
        if events is not None and self.data_watches._table:  # noqa: SLF001
            for w in self.data_watches.trigger(path, _DATA_CHANGED):
                events.append((w, _DATA_CHANGED, path))
        return stat

    def set_acl(self, path: str, acl: list[ACL] | None, version: int) -> Stat:
        """DataTree.setACL: the old ACL's use is dropped before the new one is interned."""
        node = self.nodes.get(path)
        if node is None:
            raise _KeeperError(Err.NONODE)
        self.acl_cache.remove_usage(node.acl)
        self._pre_change(path, node)
        node.set_aversion(version)
        node.acl = self.acl_cache.convert_acls(acl)
        self._post_change(path, node)
        stat = node.stat(self.extended_types)
        return stat

    def set_cversion_pzxid(self, path: str, new_cversion: int, zxid: int) -> None:
        """DataTree.setCversionPzxid: only ever moves cversion forward."""
        if path.endswith("/"):
            path = path[:-1]
        node = self.nodes.get(path)
        if node is None:
            raise _KeeperError(Err.NONODE)
        if new_cversion == -1:
            new_cversion = node.cversion + 1
        if new_cversion > node.cversion:
            self._pre_change(path, node)
            node.set_cversion_pzxid(new_cversion, zxid)
            self._post_change(path, node)

    def kill_session(
        self,
        session_id: int,
        zxid: int,
        paths_in_txn: list[str] | None = None,
        events: list[Event] | None = None,
    ) -> None:
        """Delete a closed session's ephemerals: the txn's list first, then any left over."""
        local = self.ephemerals.pop(session_id, None)
        if paths_in_txn is not None:
            self._delete_nodes(session_id, zxid, paths_in_txn, events)
        if local is None:
            return
        remaining = list(local.java_order())
        if paths_in_txn is not None:
            listed = set(paths_in_txn)
            remaining = [p for p in remaining if p not in listed]
            if remaining:
                log.warning(
                    "Unexpected extra paths under session %s which are not in txn %#x",
                    remaining, zxid,
                )
        self._delete_nodes(session_id, zxid, remaining, events)

    def _delete_nodes(
        self, session_id: int, zxid: int, paths: Iterable[str], events: list[Event] | None
    ) -> None:
        for path in paths:
            try:
                self.delete_node(path, zxid, events)
                log.debug("Deleting ephemeral node %s for session %#x", path, session_id)
            except _KeeperError:
                log.warning(
                    "Ignoring NoNodeException for path %s while removing ephemeral for dead "
                    "session %#x", path, session_id,
                )

    # ------------------------------------------------------------ quota stats

    def _update_quota_stat(self, prefix: str, bytes_diff: int, count_diff: int) -> None:
        spath = stat_path(prefix)
        node = self.nodes.get(spath)
        if node is None:
            log.error("Missing node for stat %s", spath)
            return
        try:
            st = StatsTrack(node.data)
        except ValueError:
            log.error("Malformed quota stats in %s: %r", spath, node.data)
            return
        st.count = st.count + count_diff
        st.bytes = st.bytes + bytes_diff
        node.data = st.to_bytes()  # Apache neither re-digests nor re-sizes here

    def _counts(self, path: str) -> tuple[int, int]:
        count = 0
        size = 0
        stack = [path]
        nodes = self.nodes
        while stack:
            p = stack.pop()
            n = nodes.get(p)
            if n is None:
                continue
            count += 1
            size += n.data_length()
            stack.extend(n.children.paths())
        return count, size

    def _update_quota_for_path(self, path: str) -> None:
        count, size = self._counts(path)
        st = StatsTrack()
        st.bytes = size
        st.count = count
        spath = stat_path(path)
        node = self.nodes.get(spath)
        if node is None:
            log.warning("Missing quota stat node %s", spath)
            return
        self._pre_change(spath, node)
        node.data = st.to_bytes()
        self._post_change(spath, node)

    def _setup_quota(self) -> None:
        """After loading a snapshot: find every limit node, recount, fill the trie."""
        if QUOTA_ZOOKEEPER not in self.nodes:
            return
        end = "/" + LIMIT_NODE
        stack = [QUOTA_ZOOKEEPER]
        while stack:
            path = stack.pop()
            node = self.nodes.get(path)
            if node is None:
                continue
            if not node.children:
                if path.endswith(end):
                    real = path[len(QUOTA_ZOOKEEPER) : path.index(end)]
                    self._update_quota_for_path(real)
                    try:
                        self.quota_trie.add_path(real)
                    except ValueError:
                        log.error("Cannot track a quota for limit node %s", path)
                continue
            stack.extend(reversed(node.children.path_order()))

    # ------------------------------------------------------------ transactions

    def process_txn(self, hdr: TxnHeader, txn: Record | None, _sub: bool = False) -> TxnResult:
        """Apply one committed txn (DataTree.processTxn); never raises for tree errors."""
        rc = TxnResult(hdr.clientId, hdr.cxid, hdr.zxid, hdr.type)
        events = rc.events
        t = hdr.type
        try:
            if t in (_OP_SET_DATA, _OP_RECONFIG):
                rc.path = txn.path
                rc.stat = self.set_data(txn.path, txn.data, txn.version, hdr.zxid, hdr.time, events)
            elif t in (_OP_CREATE, _OP_CREATE2):
                rc.path = txn.path
                node = self.create_node(
                    txn.path, txn.data, txn.acl, hdr.clientId if txn.ephemeral else 0,
                    txn.parentCVersion, hdr.zxid, hdr.time, events,
                )
                if t == _OP_CREATE2:
                    rc.stat = node.stat(self.extended_types)
            elif t in (_OP_DELETE, _OP_DELETE_CONTAINER):
                rc.path = txn.path
                self.delete_node(txn.path, hdr.zxid, events)
            elif t == _OP_MULTI:
                self._process_multi(hdr, txn, rc)
            elif t == OpCode.createContainer:
                rc.path = txn.path
                node = self.create_node(
                    txn.path, txn.data, txn.acl, CONTAINER_EPHEMERAL_OWNER,
                    txn.parentCVersion, hdr.zxid, hdr.time, events,
                )
                rc.stat = node.stat(self.extended_types)
            elif t == OpCode.createTTL:
                rc.path = txn.path
                try:
                    owner = ttl_to_ephemeral_owner(txn.ttl)
                except ValueError as e:  # Apache would throw out of processTxn
                    log.error("Bad TTL in txn %r: %s", txn, e)
                    raise _KeeperError(Err.BADARGUMENTS) from e
                node = self.create_node(
                    txn.path, txn.data, txn.acl, owner,
                    txn.parentCVersion, hdr.zxid, hdr.time, events,
                )
                rc.stat = node.stat(self.extended_types)
            elif t == OpCode.setACL:
                rc.path = txn.path
                rc.stat = self.set_acl(txn.path, txn.acl, txn.version)
            elif t == OpCode.closeSession:
                paths = None if txn is None else txn.paths2Delete
                self.kill_session(hdr.clientId, hdr.zxid, paths, events)
            elif t == OpCode.error:
                rc.err = txn.err
            elif t == OpCode.check:
                rc.path = txn.path
        except _KeeperError as e:
            log.debug("Failed: %r:%r (%d)", hdr, txn, e.code)
            rc.err = int(e.code)
        except _BadMulti as e:
            log.debug("Failed: %r:%r: %s", hdr, txn, e)

        if t == _OP_CREATE and rc.err == Err.NODEEXISTS:
            # Replaying over a fuzzy snapshot: still move the parent's cversion/pzxid.
            log.debug("Adjusting parent cversion for Txn: %d path: %s err: %d", t, rc.path, rc.err)
            parent_name = rc.path[: rc.path.rfind("/")]
            try:
                self.set_cversion_pzxid(parent_name, txn.parentCVersion, hdr.zxid)
            except _KeeperError as e:
                log.error("Failed to set parent cversion for: %s", parent_name)
                rc.err = int(e.code)
        elif rc.err:
            log.debug("Ignoring processTxn failure hdr: %d : error: %d", t, rc.err)

        if not _sub:
            if rc.zxid > self.last_processed_zxid:
                self.last_processed_zxid = rc.zxid
            if self.digest_enabled:
                zd = (rc.zxid, DIGEST_VERSION, self.digest())
                self.last_processed_digest = zd
                if rc.zxid % DIGEST_LOG_INTERVAL == 0:
                    self.digest_log.append(zd)
                    if len(self.digest_log) > DIGEST_LOG_LIMIT:
                        del self.digest_log[0]
        return rc

    def _process_multi(self, hdr: TxnHeader, txn: MultiTxn, rc: TxnResult) -> None:
        subtxns = txn.txns or []
        rc.multi = results = []
        failed = any(s.type == OpCode.error for s in subtxns)
        post_failed = False
        for sub in subtxns:
            st = sub.type
            cls = MULTI_RECORDS.get(st)
            if cls is None:
                raise _BadMulti(f"Invalid type of op: {st}")
            try:
                record = cls.from_bytes(sub.data or b"")
            except JuteError as e:
                raise _BadMulti(str(e)) from e
            if st == OpCode.error:
                post_failed = True
            elif failed:
                record = ErrorTxn(Err.RUNTIMEINCONSISTENCY if post_failed else 0)
                st = OpCode.error
            sub_hdr = TxnHeader(hdr.clientId, hdr.cxid, hdr.zxid, hdr.time, st)
            sub_rc = self.process_txn(sub_hdr, record, True)
            results.append(sub_rc)
            if sub_rc.events:
                rc.events.extend(sub_rc.events)
            if sub_rc.err and not rc.err:
                rc.err = sub_rc.err

    # ------------------------------------------------------------ snapshots

    def walk(self) -> Iterator[tuple[str, ZNode]]:
        """(path, node) in Apache's snapshot order: root as "", then depth-first."""
        root = self.nodes.get("")
        if root is None:
            return
        stack: list[tuple[str, ZNode]] = [("", root)]
        get = self.nodes.get
        pop = stack.pop
        push = stack.append
        while stack:
            path, node = pop()
            yield path, node
            kids = node.children
            if kids:  # most nodes are leaves
                for cp in reversed(kids.ordered_paths()):
                    child = get(cp)
                    if child is not None:
                        push((cp, child))

    @classmethod
    def from_snapshot(
        cls,
        acl_entries: Iterable[tuple[int, list[ACL]]],
        records: Iterable[tuple[str, bytes | None, int, StatPersisted | tuple[int, ...]]],
        *,
        digest_enabled: bool = True,
        extended_types: bool = False,
    ) -> DataTree:
        """DataTree.deserialize: ``records`` are (path, data, acl id, stat) in file
        order, the root first under path "", ``stat`` a StatPersisted or the
        9-tuple of its fields. ValueError on an orphan."""

        def nodes() -> Iterator[tuple[str, ZNode]]:
            for path, data, acl_id, sp in records:
                if type(sp) is not tuple:
                    sp = (sp.czxid, sp.mzxid, sp.ctime, sp.mtime, sp.version,  # type: ignore
                          sp.cversion, sp.aversion, sp.ephemeralOwner, sp.pzxid)
                yield path, ZNode(data, acl_id, *sp)

        return cls.from_nodes(acl_entries, nodes(), digest_enabled=digest_enabled,
                              extended_types=extended_types)

    @classmethod
    def from_nodes(
        cls,
        acl_entries: Iterable[tuple[int, list[ACL]]],
        records: Iterable[tuple[str, ZNode]],
        *,
        digest_enabled: bool = True,
        extended_types: bool = False,
    ) -> DataTree:
        """`from_snapshot` for records already made into (path, childless ZNode):
        what the snapshot reader hands over, with no stat int ever made."""
        tree = cls(digest_enabled=digest_enabled, extended_types=extended_types)
        tree.acl_cache.load(acl_entries)
        nodes = tree.nodes
        nodes.clear()
        tree.quota_trie.clear()
        # Every object made while loading stays alive and none is in a cycle,
        # so the cyclic GC, which a million new znodes would trigger again and
        # again over an ever larger heap, has nothing to find: it is paused
        # for the load (a fifth of the time) and put back as it was.
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            loaded = _link_nodes(nodes, records, tree.digest_enabled)
        finally:
            if gc_was_enabled:
                gc.enable()
        root, total, size, uses, owned = loaded
        for path, owner in owned:
            tree._track_owner(path, owner)
        tree._digest = total
        for acl_id, n in uses.items():
            if acl_id != -1 and acl_id not in tree.acl_cache._by_id:  # noqa: SLF001
                log.info("Ignoring acl %d as it does not exist in the cache", acl_id)
                continue
            for _ in range(n):
                tree.acl_cache.add_usage(acl_id)
        if root is not None:
            nodes["/"] = root
            size += 1 + root.data_length()
        tree._data_size = size
        tree._setup_quota()
        tree.acl_cache.purge_unused()
        return tree

    def dump_watch_summary(self) -> tuple[int, int, int]:
        """wchs counts: Apache reports the *data* watch manager only."""
        return self.data_watches.summary()


def _link_nodes(
    nodes: dict[str, ZNode], records: Iterable[tuple[str, ZNode]], digesting: bool
) -> tuple[ZNode | None, int, int, dict[int, int], list[tuple[str, int]]]:
    """The hot loop of a restart: put each record in ``nodes`` and under its
    parent. Returns (root, digest sum, approximate data size without the "/"
    alias, uses per ACL id, (path, ephemeralOwner) of owned nodes in order).

    Records come depth-first, so the parent of a record is nearly always the
    previous parent or the previous node: both are remembered, to skip slicing
    and hashing the parent's path. Children are stored straight into their
    sets' key dicts and the sets settled once at the end (`ChildSet.adopt_bulk`).
    """
    crc32 = zlib.crc32
    zero_owner = _ZERO_LONG
    total = 0
    size = 0
    uses: dict[int, int] = {}
    root: ZNode | None = None
    owned: list[tuple[str, int]] = []
    p_prefix = "\0"  # no path starts with this
    p_keys: dict[str, int] = {}
    sets: list[ChildSet] = []
    last_path = "\0"
    last_node: ZNode | None = None
    run_acl: int | None = None  # the ACL id of the current run of records
    run = 0
    for path, node in records:
        nodes[path] = node
        blob = node.blob
        if digesting and not path.startswith(ZK_SUBTREE):
            total += crc32(blob, crc32(path.encode("utf-8"))) if path else crc32(blob)
        acl_id = node.acl
        if acl_id == run_acl:  # ACL ids come in long runs: count them so
            run += 1
        else:
            if run_acl is not None:
                uses[run_acl] = uses.get(run_acl, 0) + run
            run_acl = acl_id
            run = 1
        size += len(path) + len(blob)
        if not (path.startswith(p_prefix) and path.find("/", len(p_prefix)) < 0):
            i = path.rfind("/")
            if i == -1:
                root = node
                continue
            pp = path[:i]
            if pp == last_path and last_node is not None:
                parent = last_node
            else:
                parent = nodes.get(pp)
                if parent is None:
                    raise ValueError(
                        f"Invalid Datatree, unable to find parent {pp} of path {path}"
                    )
            kids = parent.children
            if kids.__class__ is not ChildSet:
                kids = parent.children = ChildSet(pp + "/", 8)
                sets.append(kids)
            p_prefix = kids.prefix
            p_keys = kids._h  # noqa: SLF001 - filled raw, settled by adopt_bulk
        p_keys[path] = -1
        last_path = path
        last_node = node
        if not blob.endswith(zero_owner):
            owned.append((path, _LONG.unpack_from(blob, len(blob) - 8)[0]))
    if run_acl is not None:
        uses[run_acl] = uses.get(run_acl, 0) + run
    for kids in sets:
        kids.adopt_bulk()
    return root, total, size - STAT_SIZE * len(nodes), uses, owned


__all__ = ["DataTree", "TxnResult", "STANDARD"]
