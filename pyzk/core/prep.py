"""Prepare: turn a write request into a transaction, or an error, like Apache's
PrepRequestProcessor.

Writes are validated against the tree *plus* the changes of transactions that
are prepared but not yet committed (Apache's outstandingChanges), so a client
can pipeline writes that depend on each other while the log is fsyncing.
A write that fails still consumes a zxid and becomes an error transaction, as
in Apache; that keeps zxids identical between the two servers.

Pure: the caller supplies zxid, time and the session's auth ids.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from pyzk.core.errors import KeeperError
from pyzk.datatree import acl as aclmod
from pyzk.datatree import quota
from pyzk.datatree.ephemeral import (
    CONTAINER_EPHEMERAL_OWNER,
    EphemeralType,
    ephemeral_type,
    ttl_to_ephemeral_owner,
    validate_ttl,
)
from pyzk.datatree.paths import BadPath, validate_path
from pyzk.datatree.tree import DIGEST_VERSION, digest_term
from pyzk.javacompat import JavaStringSet
from pyzk.jute.codec import JuteError
from pyzk.jute.constants import CreateMode, Err, OpCode, Perms
from pyzk.jute.multi import decode_multi_request
from pyzk.jute.records import (
    ACL,
    CheckVersionRequest,
    CheckVersionTxn,
    CloseSessionTxn,
    CreateContainerTxn,
    CreateRequest,
    CreateSessionTxn,
    CreateTTLRequest,
    CreateTTLTxn,
    CreateTxn,
    DeleteRequest,
    DeleteTxn,
    ErrorTxn,
    Id,
    MultiTxn,
    Record,
    SetACLRequest,
    SetACLTxn,
    SetDataRequest,
    SetDataTxn,
    StatPersisted,
    Txn,
    TxnDigest,
    TxnHeader,
)

if TYPE_CHECKING:
    from pyzk.datatree.tree import DataTree

log = logging.getLogger(__name__)

WRITE_OPS = frozenset({
    OpCode.create, OpCode.create2, OpCode.createContainer, OpCode.createTTL,
    OpCode.delete, OpCode.deleteContainer, OpCode.setData, OpCode.setACL,
    OpCode.check, OpCode.multi, OpCode.reconfig, OpCode.createSession,
    OpCode.closeSession,
})

_MULTI_WRITE_OPS = frozenset({
    OpCode.create, OpCode.createContainer, OpCode.createTTL, OpCode.delete,
    OpCode.setData, OpCode.check,
})

_MASK64 = (1 << 64) - 1

_VALID_FLAGS = frozenset(int(m) for m in CreateMode)
# Plain ints for the hot paths (naming an IntEnum member is an attribute
# lookup through the enum's metaclass at every comparison).
_TTL_MODES = frozenset({int(CreateMode.PERSISTENT_WITH_TTL),
                        int(CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL)})
_SEQUENTIAL_MODES = frozenset({int(CreateMode.PERSISTENT_SEQUENTIAL),
                               int(CreateMode.EPHEMERAL_SEQUENTIAL),
                               int(CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL)})
_EPHEMERAL_MODES = frozenset({int(CreateMode.EPHEMERAL), int(CreateMode.EPHEMERAL_SEQUENTIAL)})
_CONTAINER_MODE = int(CreateMode.CONTAINER)
_MULTI = int(OpCode.multi)
_ERROR = int(OpCode.error)
_CREATE_TTL = int(OpCode.createTTL)
_CREATE_CONTAINER = int(OpCode.createContainer)
_PERM_CREATE = int(Perms.CREATE)
_PERM_DELETE = int(Perms.DELETE)
_PERM_WRITE = int(Perms.WRITE)
_PERM_ADMIN = int(Perms.ADMIN)
_PERM_READ = int(Perms.READ)
_SPECIAL_PATHS = frozenset({"/", "/zookeeper", "/zookeeper/quota", "/zookeeper/config"})

#: The request record each write op's body holds.
_DECODERS: dict[int, Callable[..., tuple[Record, int]]] = {
    int(OpCode.create): CreateRequest.decode,
    int(OpCode.create2): CreateRequest.decode,
    int(OpCode.createContainer): CreateRequest.decode,
    int(OpCode.createTTL): CreateTTLRequest.decode,
    int(OpCode.delete): DeleteRequest.decode,
    int(OpCode.setData): SetDataRequest.decode,
    int(OpCode.setACL): SetACLRequest.decode,
    int(OpCode.check): CheckVersionRequest.decode,
}


class ChangeRecord:
    """What a node will look like once the prepared-but-uncommitted txns apply.

    ``stat`` None means the node will not exist.
    """

    __slots__ = ("zxid", "path", "stat", "child_count", "acl", "data", "node_digest",
                 "tree_digest")

    def __init__(self, zxid: int, path: str, stat: StatPersisted | None, child_count: int,
                 acl: list[ACL] | None, data: bytes | None = None) -> None:
        self.zxid = zxid
        self.path = path
        self.stat = stat
        self.child_count = child_count
        self.acl = acl
        self.data = data
        # Apache's PrecalculatedDigest: this node's digest term and the tree
        # digest once this change (and all before it) is applied.
        self.node_digest = 0
        self.tree_digest = 0

    def duplicate(self, zxid: int) -> ChangeRecord:
        """The next change of this node: ``node_digest`` starts as this one's
        term, which :meth:`Preparer._add` takes as the term it replaces."""
        rec = ChangeRecord(zxid, self.path, self.stat.copy() if self.stat else None,
                           self.child_count, self.acl, self.data)
        rec.node_digest = self.node_digest
        return rec


class Prepared:
    """The outcome of preparing one request: its header and txn, and the
    error the client gets (0 if none)."""

    __slots__ = ("hdr", "txn", "err", "digest")

    def __init__(self, hdr: TxnHeader | None, txn: Record | None, err: int,
                 digest: TxnDigest | None = None) -> None:
        self.hdr = hdr
        self.txn = txn
        self.err = err
        # The tree digest after this txn (TxnDigest in the log); None for
        # error txns, as Apache writes them without one.
        self.digest = digest


class Preparer:
    """Holds the outstanding changes; one per server."""

    def __init__(self, tree: DataTree, *, skip_acl: bool = False,
                 extended_types: bool = False, enforce_quota: bool = False,
                 reconfig_enabled: bool = False,
                 maxbuf: int = 0xFFFFF,
                 providers: Mapping[str, aclmod.AuthProvider] = aclmod.DEFAULT_PROVIDERS) -> None:
        self.tree = tree
        self.providers = providers
        self.digest_enabled = tree.digest_enabled
        self.skip_acl = skip_acl
        self.extended_types = extended_types
        self.enforce_quota = enforce_quota
        self.reconfig_enabled = reconfig_enabled
        #: A leader's reconfig step, ``(preparer, hdr, body, auth) -> SetDataTxn``
        #: (pyzk.core.reconfig.ReconfigPreparer); None elsewhere.
        self.reconfig: Callable[..., Record] | None = None
        self.maxbuf = maxbuf
        self.outstanding: deque[ChangeRecord] = deque()
        self.by_path: dict[str, ChangeRecord] = {}
        #: each write op's txn step (see :meth:`_txn`)
        self._txn_by_op: dict[int, Callable[..., Record | None]] = {
            int(OpCode.create): self._create,
            int(OpCode.create2): self._create,
            int(OpCode.createContainer): self._create,
            int(OpCode.createTTL): self._create,
            int(OpCode.delete): self._delete,
            int(OpCode.deleteContainer): self._delete_container,
            int(OpCode.setData): self._set_data,
            int(OpCode.setACL): self._set_acl,
            int(OpCode.check): self._check,
            int(OpCode.reconfig): self._reconfig,
        }

    # -- outstanding changes -------------------------------------------------

    def record_for(self, path: str) -> ChangeRecord:
        rec = self.by_path.get(path)
        if rec is None:
            # Apache keys the root as "" too (the parent of "/a").
            node = self.tree.get_node(path or "/")
            if node is not None:
                rec = ChangeRecord(-1, path, node.copy_stat(), len(node.children),
                                   self.tree.acl_cache.get(node.acl), node.data)
                if self.digest_enabled:
                    rec.node_digest = node.digest_term(path)
        if rec is None or rec.stat is None:
            raise KeeperError(Err.NONODE, path)
        return rec

    @staticmethod
    def _next_change(rec: ChangeRecord, zxid: int) -> ChangeRecord:
        """The record txn ``zxid`` changes ``rec``'s node in: a record
        :meth:`record_for` just made from the tree (zxid -1, held by no table)
        is taken over as it is; an outstanding one is duplicated, since it
        stays what the txn before made of the node."""
        if rec.zxid == -1:
            rec.zxid = zxid
            return rec
        return rec.duplicate(zxid)

    def _add(self, rec: ChangeRecord, replaces: ChangeRecord | None = None) -> None:
        """Add a change record; ``replaces`` is the record (from
        :meth:`record_for`) ``rec`` duplicates, whose digest term it carries."""
        if self.digest_enabled:
            if replaces is not None:
                before = replaces.node_digest
            else:
                prev = self.by_path.get(rec.path)
                if prev is not None:
                    before = prev.node_digest
                else:
                    node = self.tree.nodes.get(rec.path or "/")
                    before = node.digest_term(rec.path) if node is not None else 0
            after = 0 if rec.stat is None else digest_term(rec.path, rec.data, rec.stat)
            rec.node_digest = after
            d = (self.current_digest() - before + after) & _MASK64
            rec.tree_digest = d - (1 << 64) if d >> 63 else d
        self.outstanding.append(rec)
        self.by_path[rec.path] = rec

    def current_digest(self) -> int:
        """The tree digest once every prepared txn is applied (getCurrentTreeDigest)."""
        if self.outstanding:
            return self.outstanding[-1].tree_digest
        return self.tree.digest()

    def _txn_digest(self) -> TxnDigest | None:
        return TxnDigest(DIGEST_VERSION, self.current_digest()) if self.digest_enabled else None

    def committed(self, zxid: int) -> None:
        """Drop change records made redundant by the tree reaching ``zxid``."""
        out = self.outstanding
        while out and out[0].zxid <= zxid:
            rec = out.popleft()
            if self.by_path.get(rec.path) is rec:
                del self.by_path[rec.path]

    def _snapshot(self, paths: set[str]) -> dict[str, ChangeRecord | None]:
        return {p: self.by_path.get(p) for p in paths}

    def _rollback(self, zxid: int, saved: dict[str, ChangeRecord | None]) -> None:
        """Undo the change records a failed multi added (Apache rollbackPendingChanges)."""
        while self.outstanding and self.outstanding[-1].zxid == zxid:
            self.outstanding.pop()
        for p, rec in saved.items():
            if rec is None:
                self.by_path.pop(p, None)
            else:
                self.by_path[p] = rec

    # -- checks ---------------------------------------------------------------

    def _is_plain_ephemeral(self, owner: int) -> bool:
        """EphemeralType.get(owner) == NORMAL (a session's ephemeral node). An
        invalid extended owner raises, which fails the request with
        MarshallingError as Apache's IllegalArgumentException does."""
        return ephemeral_type(owner, self.extended_types) is EphemeralType.NORMAL

    def check_acl(self, acls: list[ACL] | None, perm: int, auth: list[Id]) -> None:
        if self.skip_acl:
            return
        if not aclmod.check_acl(acls, perm, auth, providers=self.providers):
            raise KeeperError(Err.NOAUTH)

    @staticmethod
    def _parent(path: str, special_check: bool = False) -> str:
        i = path.rfind("/")
        if i == -1 or "\0" in path:
            raise KeeperError(Err.BADARGUMENTS, path)
        return path[:i]

    def _special(self, path: str) -> bool:
        return path in _SPECIAL_PATHS

    @staticmethod
    def _validate(path: str) -> None:
        try:
            validate_path(path)
        except BadPath:
            raise KeeperError(Err.BADARGUMENTS, path) from None

    @staticmethod
    def _check_version(current: int, expected: int, path: str) -> int:
        if expected != -1 and expected != current:
            raise KeeperError(Err.BADVERSION, path)
        return current + 1

    def _fixup_acl(self, path: str, acls: list[ACL] | None, auth: list[Id]) -> list[ACL]:
        try:
            return aclmod.fixup_acl(acls, auth, providers=self.providers)
        except aclmod.InvalidACL:
            raise KeeperError(Err.INVALIDACL, path) from None

    def _check_quota(self, path: str, last: bytes | None, data: bytes | None, op: int) -> None:
        if not self.enforce_quota:
            return
        try:
            quota.check_quota(self.tree, path, last, data, op)
        except quota.QuotaExceeded:
            raise KeeperError(Err.QUOTAEXCEEDED, path) from None

    # -- entry points ---------------------------------------------------------

    def prepare(self, session_id: int, cxid: int, op: int, body: bytes | memoryview,
                auth: list[Id], zxid: int, now: int,
                is_live: bool = True) -> Prepared:
        """Prepare the write ``op`` with raw request ``body``.

        Returns the txn to log; on a user error the txn is an ErrorTxn and
        ``err`` carries the code, as Apache does.
        """
        hdr = TxnHeader(session_id, cxid, zxid, now, op)
        try:
            if op == _MULTI:
                return self._prepare_multi(hdr, body, auth)
            decode = _DECODERS.get(op)
            rec = decode(body, 0, self.maxbuf)[0] if decode is not None else None
            txn = self._txn(op, hdr, rec, auth, body)
            return Prepared(hdr, txn, 0, self._txn_digest())
        except KeeperError as e:
            hdr.type = _ERROR
            return Prepared(hdr, ErrorTxn(e.code), e.code)
        except (JuteError, UnicodeDecodeError, ValueError) as e:
            log.warning("Failed to process request type %s: %s", op, e)
            hdr.type = _ERROR
            return Prepared(hdr, ErrorTxn(Err.MARSHALLINGERROR), Err.MARSHALLINGERROR)

    def _txn(self, op: int, hdr: TxnHeader, rec: Record | None, auth: list[Id],
             raw: bytes | memoryview = b"") -> Record | None:
        """The txn of write ``op`` (request record ``rec``, raw body ``raw``)
        against the tree and the outstanding changes; KeeperError if it fails."""
        step = self._txn_by_op.get(op)
        if step is None:
            raise KeeperError(Err.UNIMPLEMENTED)
        return step(op, hdr, rec, auth, raw)

    def _delete(self, op: int, hdr: TxnHeader, rec: Record, auth: list[Id],
                raw: bytes | memoryview) -> Record:
        path = rec.path
        parent_path = self._parent(path)
        if path in _SPECIAL_PATHS:
            raise KeeperError(Err.BADARGUMENTS, path)
        parent = self.record_for(parent_path)
        self.check_acl(parent.acl, _PERM_DELETE, auth)
        node = self.record_for(path)
        self._check_version(node.stat.version, rec.version, path)
        if node.child_count > 0:
            raise KeeperError(Err.NOTEMPTY, path)
        self._remove(hdr.zxid, parent, path)
        return DeleteTxn(path)

    def _delete_container(self, op: int, hdr: TxnHeader, rec: Record | None, auth: list[Id],
                          raw: bytes | memoryview) -> Record:
        path = str(bytes(raw), "utf-8", "replace")
        parent_path = self._parent(path)
        if path in _SPECIAL_PATHS:
            raise KeeperError(Err.BADARGUMENTS, path)
        node = self.record_for(path)
        if node.child_count > 0:
            raise KeeperError(Err.NOTEMPTY, path)
        if self._is_plain_ephemeral(node.stat.ephemeralOwner):
            raise KeeperError(Err.BADVERSION, path)
        self._remove(hdr.zxid, self.record_for(parent_path), path)
        return DeleteTxn(path)

    def _set_data(self, op: int, hdr: TxnHeader, rec: Record, auth: list[Id],
                  raw: bytes | memoryview) -> Record:
        zxid = hdr.zxid
        path = rec.path
        self._validate(path)
        node = self.record_for(path)
        self.check_acl(node.acl, _PERM_WRITE, auth)
        if self.enforce_quota:
            self._check_quota(path, node.data, rec.data, OpCode.setData)
        version = self._check_version(node.stat.version, rec.version, path)
        new = self._next_change(node, zxid)
        stat = new.stat
        stat.version = version
        stat.mtime = hdr.time
        stat.mzxid = zxid
        new.data = rec.data
        self._add(new, node)
        return SetDataTxn(path, rec.data, version)

    def _set_acl(self, op: int, hdr: TxnHeader, rec: Record, auth: list[Id],
                 raw: bytes | memoryview) -> Record:
        path = rec.path
        self._validate(path)
        acls = self._fixup_acl(path, rec.acl, auth)
        node = self.record_for(path)
        self.check_acl(node.acl, _PERM_ADMIN, auth)
        version = self._check_version(node.stat.aversion, rec.version, path)
        new = node.duplicate(hdr.zxid)
        new.stat.aversion = version
        new.acl = acls
        self._add(new, node)
        return SetACLTxn(path, acls, version)

    def _check(self, op: int, hdr: TxnHeader, rec: Record, auth: list[Id],
               raw: bytes | memoryview) -> Record:
        path = rec.path
        self._validate(path)
        node = self.record_for(path)
        self.check_acl(node.acl, _PERM_READ, auth)
        return CheckVersionTxn(path, self._check_version(node.stat.version, rec.version, path))

    def _reconfig(self, op: int, hdr: TxnHeader, rec: Record | None, auth: list[Id],
                  raw: bytes | memoryview) -> Record:
        if not self.reconfig_enabled:
            raise KeeperError(Err.RECONFIGDISABLED)
        if self.reconfig is not None:  # a leader (pyzk.core.reconfig)
            return self.reconfig(self, hdr, raw, auth)
        # A standalone server is not a quorum peer: Apache's cast to
        # LeaderZooKeeperServer fails and the client gets Unimplemented.
        raise KeeperError(Err.UNIMPLEMENTED)

    def _remove(self, zxid: int, parent: ChangeRecord, path: str) -> None:
        p = parent.duplicate(zxid)
        p.child_count -= 1
        p.stat.pzxid = zxid
        self._add(p, parent)
        self._add(ChangeRecord(zxid, path, None, -1, None))

    def _create(self, op: int, hdr: TxnHeader, rec: Record, auth: list[Id],
                raw: bytes | memoryview = b"") -> Record:
        zxid = hdr.zxid
        flags = rec.flags
        path = rec.path
        ttl = rec.ttl if op == _CREATE_TTL else -1
        if flags not in _VALID_FLAGS:
            raise KeeperError(Err.BADARGUMENTS, path)
        is_ttl = flags in _TTL_MODES
        sequential = flags in _SEQUENTIAL_MODES
        ephemeral = flags in _EPHEMERAL_MODES
        container = flags == _CONTAINER_MODE
        if is_ttl and not self.extended_types:
            raise KeeperError(Err.UNIMPLEMENTED)
        try:
            validate_ttl(is_ttl, ttl)
        except ValueError:
            raise KeeperError(Err.BADARGUMENTS, path) from None
        if path is None:
            raise KeeperError(Err.BADARGUMENTS, path)
        parent_path = self._parent(path)
        acls = self._fixup_acl(path, rec.acl, auth)
        parent = self.record_for(parent_path)
        self.check_acl(parent.acl, _PERM_CREATE, auth)
        cversion = parent.stat.cversion
        if sequential:
            path = f"{path}{cversion:010d}"
        self._validate(path)
        existing = self.by_path.get(path)
        if existing is not None:
            if existing.stat is not None:
                raise KeeperError(Err.NODEEXISTS, path)
        elif self.tree.nodes.get(path or "/") is not None:
            raise KeeperError(Err.NODEEXISTS, path)
        owner = parent.stat.ephemeralOwner
        if owner and self._is_plain_ephemeral(owner):
            raise KeeperError(Err.NOCHILDRENFOREPHEMERALS, path)
        new_cversion = cversion + 1
        if self.enforce_quota:
            self._check_quota(path, None, rec.data, OpCode.create)
        if op == _CREATE_CONTAINER:
            txn: Record = CreateContainerTxn(path, rec.data, acls, new_cversion)
        elif op == _CREATE_TTL:
            txn = CreateTTLTxn(path, rec.data, acls, new_cversion, ttl)
        else:
            txn = CreateTxn(path, rec.data, acls, ephemeral, new_cversion)
        if container:
            owner = CONTAINER_EPHEMERAL_OWNER
        elif is_ttl:
            owner = ttl_to_ephemeral_owner(ttl)
        elif ephemeral:
            owner = hdr.clientId
        else:
            owner = 0
        p = self._next_change(parent, zxid)
        p.child_count += 1
        pstat = p.stat
        pstat.cversion = new_cversion
        pstat.pzxid = zxid
        self._add(p, parent)
        stat = StatPersisted(zxid, zxid, hdr.time, hdr.time, 0, 0, 0, owner, zxid)
        self._add(ChangeRecord(zxid, path, stat, 0, acls, rec.data))
        return txn

    def _prepare_multi(self, hdr: TxnHeader, body: bytes | memoryview,
                       auth: list[Id]) -> Prepared:
        try:
            ops = decode_multi_request(body, 0, self.maxbuf)
        except (JuteError, UnicodeDecodeError) as e:
            log.warning("Failed to decode multi: %s", e)
            hdr.type = OpCode.error
            return Prepared(hdr, ErrorTxn(Err.MARSHALLINGERROR), Err.MARSHALLINGERROR)
        paths: set[str] = set()
        for _t, rec in ops:
            p = getattr(rec, "path", None)
            if p:
                paths.add(p)
                i = p.rfind("/")
                if i > 0:
                    paths.add(p[:i])
                elif i == 0:
                    paths.add("/")
        saved = self._snapshot(paths)
        txns: list[Record] = []
        failed: KeeperError | None = None
        for wire_type, rec in ops:
            op = _multi_op_type(wire_type, rec)
            if failed is not None:
                t, txn = OpCode.error, ErrorTxn(Err.RUNTIMEINCONSISTENCY)
            elif op not in _MULTI_WRITE_OPS:
                # Apache finds no txn for a read op and fails the whole
                # request with MarshallingError (still consuming the zxid).
                self._rollback(hdr.zxid, saved)
                hdr.type = OpCode.error
                return Prepared(hdr, ErrorTxn(Err.MARSHALLINGERROR), Err.MARSHALLINGERROR)
            else:
                try:
                    txn = self._txn(op, hdr, rec, auth)
                    t = op
                except KeeperError as e:
                    failed = e
                    t, txn = OpCode.error, ErrorTxn(e.code)
                    self._rollback(hdr.zxid, saved)
            txns.append(Txn(t, txn.to_bytes()))
        return Prepared(hdr, MultiTxn(txns), failed.code if failed else 0, self._txn_digest())

    # -- sessions -------------------------------------------------------------

    def create_session(self, session_id: int, timeout: int, zxid: int, now: int) -> Prepared:
        hdr = TxnHeader(session_id, 0, zxid, now, OpCode.createSession)
        return Prepared(hdr, CreateSessionTxn(timeout), 0, self._txn_digest())

    def close_session(self, session_id: int, cxid: int, zxid: int, now: int) -> Prepared:
        """closeSession: delete the session's ephemerals, counting pending ones."""
        hdr = TxnHeader(session_id, cxid, zxid, now, OpCode.closeSession)
        # Apache clones the session's ephemeral HashSet, adjusts it for pending
        # changes and lists it in HashSet order; watch events follow that order.
        current = self.tree.ephemerals.get(session_id)
        es = current.clone() if current is not None else JavaStringSet(16)
        for c in self.outstanding:
            if c.stat is None:
                es.discard(c.path)
            elif c.stat.ephemeralOwner == session_id:
                es.add(c.path)
        paths = es.java_order()
        for path in paths:
            parent_path = path[: path.rfind("/")]
            try:
                parent = self.record_for(parent_path)
            except KeeperError:
                parent = None
            if parent is not None:
                p = parent.duplicate(zxid)
                p.stat.pzxid = zxid
                self._add(p)
            self._add(ChangeRecord(zxid, path, None, 0, None))
        return Prepared(hdr, CloseSessionTxn(list(paths)), 0, self._txn_digest())

    def delete_container(self, path: str, zxid: int, now: int) -> Prepared:
        """A server-generated deleteContainer request (ContainerManager)."""
        hdr = TxnHeader(0, 0, zxid, now, OpCode.deleteContainer)
        try:
            txn = self._txn(OpCode.deleteContainer, hdr, None, [], path.encode())
            return Prepared(hdr, txn, 0, self._txn_digest())
        except KeeperError as e:
            hdr.type = OpCode.error
            return Prepared(hdr, ErrorTxn(e.code), e.code)


def _multi_op_type(wire_type: int, rec: Record) -> int:
    """The op a multi entry becomes server-side: Apache rebuilds create ops
    from their flags (Op.create), so create2 arrives as create and a
    container/TTL flag selects createContainer/createTTL."""
    if wire_type in (OpCode.create, OpCode.create2, OpCode.createContainer, OpCode.createTTL):
        flags = rec.flags
        if flags in (CreateMode.PERSISTENT_WITH_TTL, CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL):
            return OpCode.createTTL if wire_type == OpCode.createTTL else OpCode.create
        if flags == CreateMode.CONTAINER:
            return OpCode.createContainer
        return OpCode.create
    return wire_type
