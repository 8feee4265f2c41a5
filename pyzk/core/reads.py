"""Read operations, answered from the committed tree (Apache's
FinalRequestProcessor read cases). They never touch the log, but the caller
only runs them once the session's earlier writes have committed.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Mapping
from typing import TYPE_CHECKING, Protocol

from pyzk.core.errors import KeeperError
from pyzk.core.metrics import observe
from pyzk.datatree import acl as aclmod
from pyzk.datatree.paths import top_namespace
from pyzk.datatree.watches import WatcherMode, WatchManager
from pyzk.javacompat import java_string_hash
from pyzk.jute.codec import JuteError
from pyzk.jute.constants import Err, OpCode, Perms, WatcherType
from pyzk.jute.multi import decode_multi_request, encode_multi_response
from pyzk.jute.records import (
    ACL,
    AddWatchRequest,
    CheckWatchesRequest,
    ClientInfo,
    ErrorResponse,
    ExistsRequest,
    GetACLRequest,
    GetACLResponse,
    GetAllChildrenNumberRequest,
    GetAllChildrenNumberResponse,
    GetChildren2Request,
    GetChildrenRequest,
    GetChildrenResponse,
    GetDataRequest,
    GetDataResponse,
    GetEphemeralsRequest,
    GetEphemeralsResponse,
    Id,
    Record,
    RemoveWatchesRequest,
    SetWatches,
    SetWatches2,
    SyncRequest,
    SyncResponse,
    WhoAmIResponse,
)

if TYPE_CHECKING:
    from pyzk.core.zkserver import ServerStats
    from pyzk.datatree.node import ZNode
    from pyzk.datatree.tree import DataTree


class Client(Hashable, Protocol):
    """The asking connection as reads see it: it owns watches and is told of
    the events a reconnect missed."""

    def send_event(self, etype: int, path: str) -> None: ...


#: A read handler: ``(body, watcher, session_id, auth, out)``; appends the reply body.
Handler = Callable[[bytes, Client, int, list[Id], bytearray], None]


def _id_hash(ident: Id) -> int:
    """The jute-generated Id.hashCode: 37 * (37 * 17 + scheme) + id, as a Java int."""
    h = 17
    for part in (ident.scheme, ident.id):
        h = (37 * h + (java_string_hash(part) if part is not None else 0)) & 0xFFFFFFFF
    return h


def java_auth_order(auth: list[Id]) -> list[Id]:
    """Apache keeps a connection's auth ids in a ConcurrentHashMap-backed set;
    whoAmI lists them in that map's iteration order: by bucket, then insertion."""
    cap = 16
    while len(auth) >= cap - (cap >> 2):
        cap <<= 1
    def key(item: tuple[int, Id]) -> tuple[int, int]:
        h = _id_hash(item[1])
        return ((h ^ (h >> 16)) & 0x7FFFFFFF & (cap - 1), item[0])
    return [i for _, i in sorted(enumerate(auth), key=key)]


class Reads:
    """Answers reads for one tree; ``watcher`` is the asking connection."""

    def __init__(self, tree: DataTree, *, skip_acl: bool = False, maxbuf: int = 0xFFFFF,
                 stats: ServerStats | None = None,
                 providers: Mapping[str, aclmod.AuthProvider] = aclmod.DEFAULT_PROVIDERS) -> None:
        self.stats = stats
        self.providers = providers
        self.tree = tree
        self.ext = tree.extended_types
        self.skip_acl = skip_acl
        self.maxbuf = maxbuf
        #: "<ns>_read_per_namespace" by namespace, made once each
        self._ns_read_names: dict[str, str] = {}
        self.handlers: dict[int, Handler] = {
            OpCode.getData: self.get_data,
            OpCode.exists: self.exists,
            OpCode.getChildren: self.get_children,
            OpCode.getChildren2: self.get_children2,
            OpCode.getACL: self.get_acl,
            OpCode.getAllChildrenNumber: self.get_all_children_number,
            OpCode.getEphemerals: self.get_ephemerals,
            OpCode.checkWatches: self.check_watches,
            OpCode.removeWatches: self.remove_watches,
            OpCode.addWatch: self.add_watch,
            OpCode.setWatches: self.set_watches,
            OpCode.setWatches2: self.set_watches2,
            OpCode.whoAmI: self.who_am_i,
            OpCode.sync: self.sync,
            OpCode.multiRead: self.multi_read,
        }

    def _check(self, acl_id: int, perm: int, auth: list[Id]) -> None:
        if self.skip_acl:
            return
        if not aclmod.check_acl(self.tree.acl_cache.get(acl_id), perm, auth,
                                providers=self.providers):
            raise KeeperError(Err.NOAUTH)

    def _read_stat(self, path: str, nbytes: int) -> None:
        """Apache's DataTree.updateReadStat, as <ns>_read_per_namespace."""
        if self.stats is None:
            return
        ns = top_namespace(path)
        if ns is not None:
            name = self._ns_read_names.get(ns)
            if name is None:
                name = self._ns_read_names[ns] = f"{ns}_read_per_namespace"
            observe(self.stats, name, len(path) + nbytes + 68)

    # Each handler appends the encoded response body to ``out``.

    def get_data(self, body: bytes, watcher: Client, session_id: int, auth: list[Id],
                 out: bytearray) -> None:
        req = GetDataRequest.decode(body, 0, self.maxbuf)[0]
        self._get_data(req, watcher, auth).encode(out)

    def _get_data(self, req: GetDataRequest, watcher: Client | None,
                  auth: list[Id]) -> GetDataResponse:
        path = req.path
        node = self.tree.get_node(path)
        if node is None:
            raise KeeperError(Err.NONODE)
        self._check(node.acl, Perms.READ, auth)
        if req.watch and watcher is not None:
            self.tree.data_watches.add_watch(path, watcher)
        data = node.data
        self._read_stat(path, 0 if data is None else len(data))
        return GetDataResponse(data, node.stat(self.ext))

    def exists(self, body: bytes, watcher: Client, session_id: int, auth: list[Id],
               out: bytearray) -> None:
        req = ExistsRequest.decode(body, 0, self.maxbuf)[0]
        path = req.path
        if path is None or "\0" in path:
            raise KeeperError(Err.BADARGUMENTS)
        if req.watch and watcher is not None:
            self.tree.data_watches.add_watch(path, watcher)
        node = self.tree.get_node(path)
        if node is None:
            raise KeeperError(Err.NONODE)
        self._read_stat(path, 0)
        node.stat(self.ext).encode(out)

    def _children(self, path: str, watch: bool, watcher: Client | None,
                  auth: list[Id]) -> ZNode:
        node = self.tree.get_node(path)
        if node is None:
            raise KeeperError(Err.NONODE)
        self._check(node.acl, Perms.READ, auth)
        if watch and watcher is not None:
            self.tree.child_watches.add_watch(path, watcher)
        return node

    def get_children(self, body: bytes, watcher: Client, session_id: int, auth: list[Id],
                     out: bytearray) -> None:
        req = GetChildrenRequest.decode(body, 0, self.maxbuf)[0]
        node = self._children(req.path, req.watch, watcher, auth)
        blob, chars = node.children.encoded()
        self._read_stat(req.path, chars)
        out += blob

    def get_children2(self, body: bytes, watcher: Client, session_id: int, auth: list[Id],
                      out: bytearray) -> None:
        req = GetChildren2Request.decode(body, 0, self.maxbuf)[0]
        node = self._children(req.path, req.watch, watcher, auth)
        blob, chars = node.children.encoded()
        self._read_stat(req.path, chars)
        out += blob
        node.stat(self.ext).encode(out)

    def get_acl(self, body: bytes, watcher: Client, session_id: int, auth: list[Id],
                out: bytearray) -> None:
        path = GetACLRequest.decode(body, 0, self.maxbuf)[0].path
        node = self.tree.get_node(path)
        if node is None:
            raise KeeperError(Err.NONODE)
        self._check(node.acl, Perms.READ | Perms.ADMIN, auth)
        acls = self.tree.acl_cache.get(node.acl)
        try:
            self._check(node.acl, Perms.ADMIN, auth)
        except KeeperError:
            # Without ADMIN the digest hashes are hidden, as Apache does.
            acls = [
                ACL(a.perms, Id(a.id.scheme, a.id.id.split(":", 1)[0] + ":x"))
                if a.id.scheme == "digest" else a
                for a in acls
            ]
        GetACLResponse(acls, node.stat(self.ext)).encode(out)

    def get_all_children_number(self, body: bytes, watcher: Client, session_id: int,
                                auth: list[Id], out: bytearray) -> None:
        path = GetAllChildrenNumberRequest.decode(body, 0, self.maxbuf)[0].path
        node = self.tree.get_node(path)
        if node is None:
            raise KeeperError(Err.NONODE)
        self._check(node.acl, Perms.READ, auth)
        GetAllChildrenNumberResponse(self.tree.get_all_children_number(path)).encode(out)

    def get_ephemerals(self, body: bytes, watcher: Client, session_id: int, auth: list[Id],
                       out: bytearray) -> None:
        prefix = GetEphemeralsRequest.decode(body, 0, self.maxbuf)[0].prefixPath
        GetEphemeralsResponse(self.tree.get_ephemerals_with_prefix(session_id, prefix)).encode(out)

    def _watch_managers(self, wtype: int) -> list[WatchManager]:
        if wtype == WatcherType.Children:
            return [self.tree.child_watches]
        if wtype == WatcherType.Data:
            return [self.tree.data_watches]
        if wtype == WatcherType.Any:
            return [self.tree.child_watches, self.tree.data_watches]
        raise ValueError(f"Invalid watcher type {wtype}")

    def check_watches(self, body: bytes, watcher: Client, session_id: int, auth: list[Id],
                      out: bytearray) -> None:
        req = CheckWatchesRequest.decode(body, 0, self.maxbuf)[0]
        found = False
        for wm in self._watch_managers(req.type):
            found = wm.contains_watcher(req.path, watcher) or found
        if not found:
            raise KeeperError(Err.NOWATCHER)

    def remove_watches(self, body: bytes, watcher: Client, session_id: int, auth: list[Id],
                       out: bytearray) -> None:
        req = RemoveWatchesRequest.decode(body, 0, self.maxbuf)[0]
        removed = False
        for wm in self._watch_managers(req.type):
            removed = wm.remove_watch(req.path, watcher) or removed
        if not removed:
            raise KeeperError(Err.NOWATCHER)

    def add_watch(self, body: bytes, watcher: Client, session_id: int, auth: list[Id],
                  out: bytearray) -> None:
        req = AddWatchRequest.decode(body, 0, self.maxbuf)[0]
        mode = WatcherMode.from_add_watch_mode(req.mode)
        self.tree.data_watches.add_watch(req.path, watcher, mode)
        self.tree.child_watches.add_watch(req.path, watcher, mode)
        ErrorResponse(0).encode(out)

    def _set_watches(self, rel: int, data: list[str], exist: list[str], child: list[str],
                     persistent: list[str], recursive: list[str], watcher: Client) -> None:
        """Re-arm a reconnecting client's watches; changes it missed fire now."""
        for etype, path in self.tree.set_watches(rel, data, exist, child, persistent,
                                                 recursive, watcher):
            watcher.send_event(etype, path)

    def set_watches(self, body: bytes, watcher: Client, session_id: int, auth: list[Id],
                    out: bytearray) -> None:
        r = SetWatches.decode(body, 0, self.maxbuf)[0]
        self._set_watches(r.relativeZxid, r.dataWatches, r.existWatches, r.childWatches,
                          [], [], watcher)

    def set_watches2(self, body: bytes, watcher: Client, session_id: int, auth: list[Id],
                     out: bytearray) -> None:
        r = SetWatches2.decode(body, 0, self.maxbuf)[0]
        self._set_watches(r.relativeZxid, r.dataWatches, r.existWatches, r.childWatches,
                          r.persistentWatches, r.persistentRecursiveWatches, watcher)

    def who_am_i(self, body: bytes, watcher: Client, session_id: int, auth: list[Id],
                 out: bytearray) -> None:
        infos = []
        for i in java_auth_order(auth):
            if i.scheme == "digest":
                user = i.id.split(":")[0]
            elif i.scheme in ("ip", "sasl", "x509", "kerberos"):
                user = i.id
            else:
                user = ""
            infos.append(ClientInfo(i.scheme, user))
        WhoAmIResponse(infos).encode(out)

    def sync(self, body: bytes, watcher: Client, session_id: int, auth: list[Id],
             out: bytearray) -> None:
        SyncResponse(SyncRequest.decode(body, 0, self.maxbuf)[0].path).encode(out)

    def multi_read(self, body: bytes, watcher: Client, session_id: int, auth: list[Id],
                   out: bytearray) -> None:
        # Apache creates the (empty) MultiResponse before decoding, so a
        # request it cannot decode or serve still gets the results so far,
        # with MarshallingError in the header.
        results: list[tuple[int, int, Record | None]] = []
        try:
            ops = decode_multi_request(body, 0, self.maxbuf)
            for t, req in ops:
                try:
                    if t == OpCode.getChildren:
                        node = self._children(req.path, False, None, auth)
                        self._read_stat(req.path, node.children.encoded()[1])
                        results.append((t, 0, GetChildrenResponse(
                            list(node.children.java_order()))))
                    elif t == OpCode.getData:
                        req.watch = False
                        results.append((t, 0, self._get_data(req, None, auth)))
                    else:
                        raise ValueError("Invalid type of readOp")
                except KeeperError as e:
                    results.append((OpCode.error, e.code, ErrorResponse(e.code)))
        except (JuteError, ValueError, UnicodeDecodeError):
            encode_multi_response(results, out)
            raise KeeperError(Err.MARSHALLINGERROR, keep_body=True) from None
        encode_multi_response(results, out)
