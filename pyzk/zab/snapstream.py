"""The snapshot a leader streams to a learner after a SNAP packet.

LearnerHandler writes, straight onto the quorum socket and without any
length prefix (ZKDatabase.serializeSnapshot, then a signature)::

    int count, count x (long session id, int timeout)
    int count, count x (long acl id, vector<ACL>)             ACL cache
    (ustring path, buffer data, long acl, StatPersisted)*     root first as ""
    ustring "/"                                               end of nodes
    ustring "BenWasHere"                                      signature

This is a snapshot file's body without its FileHeader, checksums and digest
trailer, so decoding and encoding reuse :mod:`pyzk.txnlog.snapshot`. Because
nothing says how long the body is, :class:`SnapshotScanner` walks its
structure to find where it ends, resuming where it stopped when more bytes
arrive (snapshots can be large and come in many reads).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyzk.jute.codec import Truncated, read_ustring, write_ustring
from pyzk.jute.records import ACL, FileHeader

if TYPE_CHECKING:
    from pyzk.datatree.tree import DataTree
    from pyzk.txnlog.snapshot import Snapshot

_INT = struct.Struct(">i")
_SESSION = struct.Struct(">qi")
_ACL_HEAD = struct.Struct(">qi")
_NODE_TAIL_SIZE = 68  # long acl + StatPersisted
_BIG = 0x7FFFFFFF  # nodes are bounded by what the leader accepted, not by jute.maxbuffer

# scanner stages
_SESSIONS, _ACLS, _NODES, _SIGNATURE = range(4)


@dataclass(slots=True)
class WireSnapshot:
    """A snapshot received on the quorum port: ``body`` is everything before the signature."""

    zxid: int
    body: bytes
    signature: str | None
    sessions: dict[int, int] = field(default_factory=dict)
    node_count: int = 0

    def to_snapshot(self, **kw: bool) -> Snapshot:
        """Decode into a pyzk.txnlog.snapshot.Snapshot (tree, sessions) at ``zxid``."""
        from pyzk.txnlog.snapshot import SNAP_DBID, SNAP_MAGIC, SNAP_VERSION, parse_snapshot

        head = FileHeader(SNAP_MAGIC, SNAP_VERSION, SNAP_DBID).to_bytes()
        return parse_snapshot(head + self.body, self.zxid, check_seal=False, **kw)


def encode_wire_snapshot(tree: DataTree, sessions: dict[int, int]) -> bytes:
    """What a leader writes after SNAP: the body of ``tree``/``sessions`` and the signature.

    Reuses the snapshot file writer without a digest and cuts away the file
    header in front and the checksum seal behind, which leaves exactly
    SerializeUtils.serializeSnapshot's bytes.
    """
    from pyzk.txnlog.snapshot import serialize_snapshot

    sink = io.BytesIO()
    serialize_snapshot(sink, tree, sessions, digest=False)
    raw = sink.getvalue()
    seal = 8 + 4 + 1  # long Adler32, ustring "/"
    out = bytearray(raw[16 : len(raw) - seal])
    write_ustring(out, "BenWasHere")
    return bytes(out)


class SnapshotScanner:
    """Finds the end of a streamed snapshot in a growing buffer.

    Positions are absolute in the caller's buffer; :meth:`rebase` shifts them
    when the caller drops consumed bytes from its front.
    """

    __slots__ = ("zxid", "start", "pos", "stage", "left", "acl_left", "sessions", "nodes")

    def __init__(self, zxid: int) -> None:
        self.zxid = zxid
        self.start = -1
        self.pos = -1
        self.stage = _SESSIONS
        self.left = -1  # elements of the current table still to read (-1: count unread)
        self.acl_left = -1  # ACLs of the current cache entry still to read
        self.sessions: dict[int, int] = {}
        self.nodes = 0

    def rebase(self, dropped: int) -> None:
        self.start -= dropped
        self.pos -= dropped

    def scan(self, buf: bytes | bytearray, pos: int) -> tuple[WireSnapshot, int] | None:
        """Advance as far as ``buf`` allows; the snapshot and the position after it
        when complete, None when more bytes are needed."""
        if self.start < 0:
            self.start = self.pos = pos
        p = self.pos
        n = len(buf)
        try:
            if self.stage == _SESSIONS:
                if self.left < 0:
                    if p + 4 > n:
                        return None
                    self.left = max(_INT.unpack_from(buf, p)[0], 0)
                    p += 4
                    self.pos = p
                while self.left:
                    if p + 12 > n:
                        return None
                    sid, to = _SESSION.unpack_from(buf, p)
                    self.sessions[sid] = to
                    p += 12
                    self.left -= 1
                    self.pos = p
                self.stage, self.left = _ACLS, -1
                self.pos = p
            if self.stage == _ACLS:
                if self.left < 0:
                    if p + 4 > n:
                        return None
                    self.left = max(_INT.unpack_from(buf, p)[0], 0)
                    p += 4
                    self.pos = p
                while self.left:
                    if self.acl_left < 0:
                        if p + 12 > n:
                            return None
                        self.acl_left = _ACL_HEAD.unpack_from(buf, p)[1]
                        if self.acl_left < 0:
                            raise ValueError("ACL cache entry with a null vector")
                        p += 12
                        self.pos = p
                    while self.acl_left:
                        _acl, p = ACL.decode(buf, p, _BIG)
                        self.acl_left -= 1
                        self.pos = p
                    self.acl_left = -1
                    self.left -= 1
                self.stage = _NODES
            if self.stage == _NODES:
                while True:
                    path, p = read_ustring(buf, p, _BIG)
                    if path == "/":
                        self.pos = p
                        break
                    if p + 4 > n:
                        return None
                    dlen = _INT.unpack_from(buf, p)[0]
                    p += 4 + max(dlen, 0) + _NODE_TAIL_SIZE
                    if p > n:
                        return None
                    self.nodes += 1
                    self.pos = p
                self.stage = _SIGNATURE
            end_body = self.pos
            sig, p = read_ustring(buf, self.pos, _BIG)
        except Truncated:
            return None
        body = bytes(buf[self.start : end_body])
        return WireSnapshot(self.zxid, body, sig, self.sessions, self.nodes), p
