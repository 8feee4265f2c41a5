"""One transaction log entry as bytes: TxnHeader, txn record, optional TxnDigest.

This is Apache's Util.marshallTxnEntry (encode) and
SerializeUtils.deserializeTxn (decode), quirks included:

* the header's type alone selects the record; a create whose record ends
  before ``parentCVersion`` is an old (pre-3.3) CreateTxnV0 and comes back as
  a CreateTxn with parentCVersion -1, which makes DataTree fix the parent up;
* a closeSession may have no record at all (written before 3.6, or with
  ``zookeeper.closeSessionTxn.enabled=false``): the record is then None;
* 3.6+ appends a TxnDigest when ``zookeeper.digest.enabled`` (the default);
  a missing or partial digest trailer is simply no digest.

One deliberate difference: Apache's reader refuses a bare ``check`` txn
("Unsupported Txn") although its PrepRequestProcessor logs one for a bare
check request, so Apache cannot replay logs it wrote itself. pyzk reads it
as a CheckVersionTxn (DataTree ignores it) so such logs replay.
"""

from __future__ import annotations

from pyzk.datatree.tree import MULTI_RECORDS
from pyzk.jute.codec import DEFAULT_MAX_BUFFER, JuteError, Truncated
from pyzk.jute.constants import OpCode
from pyzk.jute.records import (
    CheckVersionTxn,
    CloseSessionTxn,
    CreateContainerTxn,
    CreateSessionTxn,
    CreateTTLTxn,
    CreateTxn,
    CreateTxnV0,
    DeleteTxn,
    ErrorTxn,
    MultiTxn,
    Record,
    SetACLTxn,
    SetDataTxn,
    Txn,
    TxnDigest,
    TxnHeader,
)

# BinaryInputArchive refuses lengths above jute.maxbuffer + extra (1024).
LOG_MAX_BUFFER = DEFAULT_MAX_BUFFER + 1024

# TxnHeader.type -> record class, as SerializeUtils.deserializeTxn.
TXN_RECORDS: dict[int, type[Record]] = {
    OpCode.createSession: CreateSessionTxn,
    OpCode.closeSession: CloseSessionTxn,
    OpCode.create: CreateTxn,
    OpCode.create2: CreateTxn,
    OpCode.createTTL: CreateTTLTxn,
    OpCode.createContainer: CreateContainerTxn,
    OpCode.delete: DeleteTxn,
    OpCode.deleteContainer: DeleteTxn,
    OpCode.reconfig: SetDataTxn,
    OpCode.setData: SetDataTxn,
    OpCode.setACL: SetACLTxn,
    OpCode.error: ErrorTxn,
    OpCode.multi: MultiTxn,
    OpCode.check: CheckVersionTxn,
}

# Sub-txn type -> record class inside a MultiTxn: the tree's table, and a
# create2 sub-txn (which pyzk and Apache never log, but a reader need not refuse).
MULTI_SUB_RECORDS: dict[int, type[Record]] = {**MULTI_RECORDS, OpCode.create2: CreateTxn}


class UnsupportedTxn(JuteError):
    """A TxnHeader type that no txn record belongs to."""


def encode_txn(hdr: TxnHeader, txn: Record | None, digest: TxnDigest | None = None) -> bytes:
    """Serialize a log entry (Util.marshallTxnEntry): header, record if any, digest if any."""
    out = bytearray()
    hdr.encode(out)
    if txn is not None:
        txn.encode(out)
    if digest is not None:
        digest.encode(out)
    return bytes(out)


def decode_txn(
    buf: bytes,
    *,
    digest_enabled: bool = True,
    close_session_txn_enabled: bool = True,
    maxbuf: int = LOG_MAX_BUFFER,
) -> tuple[TxnHeader, Record | None, TxnDigest | None]:
    """Parse a log entry (SerializeUtils.deserializeTxn).

    Raises Truncated if the header itself is cut, UnsupportedTxn for an
    unknown type, and any JuteError from a malformed record. The two flags
    are Apache's ``zookeeper.digest.enabled`` and
    ``zookeeper.closeSessionTxn.enabled`` (both default true).
    """
    hdr, pos = TxnHeader.decode(buf, 0, maxbuf)
    t = hdr.type
    cls = TXN_RECORDS.get(t)
    if cls is None:
        raise UnsupportedTxn(f"Unsupported Txn with type={t}")
    txn: Record | None = None
    if t != OpCode.closeSession or close_session_txn_enabled:
        try:
            txn, pos = cls.decode(buf, pos, maxbuf)
        except Truncated:
            if t == OpCode.create:
                v0, pos = CreateTxnV0.decode(buf, pos, maxbuf)
                txn = CreateTxn(v0.path, v0.data, v0.acl, v0.ephemeral, -1)
            elif t == OpCode.closeSession:
                txn = None
            else:
                raise
    digest: TxnDigest | None = None
    if digest_enabled:
        try:
            digest, pos = TxnDigest.decode(buf, pos, maxbuf)
        except Truncated:
            digest = None
    return hdr, txn, digest


def encode_multi(ops: list[tuple[int, Record]]) -> MultiTxn:
    """A MultiTxn from (sub-txn type, record) pairs, each record serialized into a Txn."""
    return MultiTxn([Txn(int(t), rec.to_bytes()) for t, rec in ops])


def decode_multi(multi: MultiTxn, maxbuf: int = LOG_MAX_BUFFER) -> list[tuple[int, Record]]:
    """The (type, record) pairs inside a MultiTxn; UnsupportedTxn for an unknown sub-type."""
    out: list[tuple[int, Record]] = []
    for sub in multi.txns or ():
        cls = MULTI_SUB_RECORDS.get(sub.type)
        if cls is None:
            raise UnsupportedTxn(f"Invalid type of op: {sub.type}")
        out.append((sub.type, cls.decode(sub.data or b"", 0, maxbuf)[0]))
    return out
