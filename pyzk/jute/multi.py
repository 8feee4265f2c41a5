"""Multi requests and responses (MultiOperationRecord, MultiResponse).

They are not plain Jute records: a sequence of (MultiHeader, body) pairs
ended by a MultiHeader with done=true, where the header's type selects the
body record.
"""

from __future__ import annotations

from pyzk.jute.codec import DEFAULT_MAX_BUFFER, JuteError
from pyzk.jute.constants import OpCode
from pyzk.jute.records import (
    CheckVersionRequest,
    Create2Response,
    CreateRequest,
    CreateResponse,
    CreateTTLRequest,
    DeleteRequest,
    ErrorResponse,
    GetChildrenRequest,
    GetChildrenResponse,
    GetDataRequest,
    GetDataResponse,
    MultiHeader,
    Record,
    SetDataRequest,
    SetDataResponse,
)

# MultiOperationRecord: wire type -> request record.
_REQUESTS: dict[int, type[Record]] = {
    OpCode.create: CreateRequest,
    OpCode.create2: CreateRequest,
    OpCode.createContainer: CreateRequest,
    OpCode.createTTL: CreateTTLRequest,
    OpCode.delete: DeleteRequest,
    OpCode.setData: SetDataRequest,
    OpCode.check: CheckVersionRequest,
    OpCode.getChildren: GetChildrenRequest,
    OpCode.getData: GetDataRequest,
}

_WRITE_OPS = frozenset({OpCode.create, OpCode.create2, OpCode.createContainer,
                        OpCode.createTTL, OpCode.delete, OpCode.setData, OpCode.check})
_READ_OPS = frozenset({OpCode.getChildren, OpCode.getData})

_END = MultiHeader(-1, True, -1).to_bytes()


class BadMultiOp(JuteError):
    """An op type Apache's MultiOperationRecord does not accept."""


def decode_multi_request(
    buf: bytes, pos: int = 0, maxbuf: int = DEFAULT_MAX_BUFFER
) -> list[tuple[int, Record]]:
    """Return [(wire type, request record)] of a multi or multiRead body."""
    ops: list[tuple[int, Record]] = []
    h, pos = MultiHeader.decode(buf, pos, maxbuf)
    kinds = set()
    while not h.done:
        cls = _REQUESTS.get(h.type)
        if cls is None:
            raise BadMultiOp(f"Invalid type of op {h.type}")
        rec, pos = cls.decode(buf, pos, maxbuf)
        kinds.add(h.type in _WRITE_OPS)
        if len(kinds) > 1:
            raise BadMultiOp("Mixing different kind of ops")
        ops.append((h.type, rec))
        h, pos = MultiHeader.decode(buf, pos, maxbuf)
    return ops


def encode_multi_request(ops: list[tuple[int, Record]]) -> bytes:
    out = bytearray()
    for t, rec in ops:
        MultiHeader(t, False, -1).encode(out)
        rec.encode(out)
    out += _END
    return bytes(out)


def encode_multi_response(results: list[tuple[int, int, Record | None]], out: bytearray) -> None:
    """results: [(type, err, body record or None)] in op order."""
    for t, err, body in results:
        MultiHeader(t, False, err if t == OpCode.error else 0).encode(out)
        if body is not None:
            body.encode(out)
    out += _END


def decode_multi_response(
    buf: bytes, pos: int = 0, maxbuf: int = DEFAULT_MAX_BUFFER
) -> list[tuple[int, int, Record | None]]:
    """Inverse of encode_multi_response (for tests and clients)."""
    bodies: dict[int, type[Record] | None] = {
        OpCode.create: CreateResponse,
        OpCode.create2: Create2Response,
        OpCode.delete: None,
        OpCode.check: None,
        OpCode.setData: SetDataResponse,
        OpCode.getChildren: GetChildrenResponse,
        OpCode.getData: GetDataResponse,
        OpCode.error: ErrorResponse,
    }
    out: list[tuple[int, int, Record | None]] = []
    h, pos = MultiHeader.decode(buf, pos, maxbuf)
    while not h.done:
        if h.type not in bodies:
            raise BadMultiOp(f"Invalid type {h.type} in MultiResponse")
        cls = bodies[h.type]
        body = None
        if cls is not None:
            body, pos = cls.decode(buf, pos, maxbuf)
        out.append((h.type, h.err, body))
        h, pos = MultiHeader.decode(buf, pos, maxbuf)
    return out


def is_read_multi(ops: list[tuple[int, Record]]) -> bool:
    return bool(ops) and ops[0][0] in _READ_OPS
