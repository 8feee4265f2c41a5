"""Every record of Apache ZooKeeper 3.8's zookeeper.jute, declared once.

`SCHEMA` is the single table: record name -> ordered (field, type) pairs,
with types ``int``, ``long``, ``boolean``, ``buffer``, ``ustring``, another
record's name, or ``vector<T>``. From it `_build` generates, per record, a
class with ``__slots__`` and compiled ``encode``/``decode`` functions.
Consecutive fixed-width fields are merged into one precompiled
``struct.Struct`` so hot records (Stat, ReplyHeader, TxnHeader) encode and
decode in a single call; `tests/test_jute.py` checks the generated fast code
against a slow field-by-field reference interpreter of the same table.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING, Any, Self

from pyzk.jute import codec
from pyzk.jute.codec import DEFAULT_MAX_BUFFER

_V_ACL = "vector<ACL>"
_V_STR = "vector<ustring>"

SCHEMA: dict[str, list[tuple[str, str]]] = {
    # org.apache.zookeeper.data
    "Id": [("scheme", "ustring"), ("id", "ustring")],
    "ACL": [("perms", "int"), ("id", "Id")],
    "Stat": [
        ("czxid", "long"), ("mzxid", "long"), ("ctime", "long"), ("mtime", "long"),
        ("version", "int"), ("cversion", "int"), ("aversion", "int"),
        ("ephemeralOwner", "long"), ("dataLength", "int"), ("numChildren", "int"),
        ("pzxid", "long"),
    ],
    "StatPersisted": [
        ("czxid", "long"), ("mzxid", "long"), ("ctime", "long"), ("mtime", "long"),
        ("version", "int"), ("cversion", "int"), ("aversion", "int"),
        ("ephemeralOwner", "long"), ("pzxid", "long"),
    ],
    "ClientInfo": [("authScheme", "ustring"), ("user", "ustring")],
    # org.apache.zookeeper.proto
    "ConnectRequest": [
        ("protocolVersion", "int"), ("lastZxidSeen", "long"), ("timeOut", "int"),
        ("sessionId", "long"), ("passwd", "buffer"),
    ],
    "ConnectResponse": [
        ("protocolVersion", "int"), ("timeOut", "int"), ("sessionId", "long"),
        ("passwd", "buffer"),
    ],
    "SetWatches": [
        ("relativeZxid", "long"), ("dataWatches", _V_STR), ("existWatches", _V_STR),
        ("childWatches", _V_STR),
    ],
    "SetWatches2": [
        ("relativeZxid", "long"), ("dataWatches", _V_STR), ("existWatches", _V_STR),
        ("childWatches", _V_STR), ("persistentWatches", _V_STR),
        ("persistentRecursiveWatches", _V_STR),
    ],
    "RequestHeader": [("xid", "int"), ("type", "int")],
    "MultiHeader": [("type", "int"), ("done", "boolean"), ("err", "int")],
    "AuthPacket": [("type", "int"), ("scheme", "ustring"), ("auth", "buffer")],
    "ReplyHeader": [("xid", "int"), ("zxid", "long"), ("err", "int")],
    "GetDataRequest": [("path", "ustring"), ("watch", "boolean")],
    "SetDataRequest": [("path", "ustring"), ("data", "buffer"), ("version", "int")],
    "ReconfigRequest": [
        ("joiningServers", "ustring"), ("leavingServers", "ustring"),
        ("newMembers", "ustring"), ("curConfigId", "long"),
    ],
    "SetDataResponse": [("stat", "Stat")],
    "GetSASLRequest": [("token", "buffer")],
    "SetSASLRequest": [("token", "buffer")],
    "SetSASLResponse": [("token", "buffer")],
    "CreateRequest": [
        ("path", "ustring"), ("data", "buffer"), ("acl", _V_ACL), ("flags", "int"),
    ],
    "CreateTTLRequest": [
        ("path", "ustring"), ("data", "buffer"), ("acl", _V_ACL), ("flags", "int"),
        ("ttl", "long"),
    ],
    "DeleteRequest": [("path", "ustring"), ("version", "int")],
    "GetChildrenRequest": [("path", "ustring"), ("watch", "boolean")],
    "GetAllChildrenNumberRequest": [("path", "ustring")],
    "GetChildren2Request": [("path", "ustring"), ("watch", "boolean")],
    "CheckVersionRequest": [("path", "ustring"), ("version", "int")],
    "GetMaxChildrenRequest": [("path", "ustring")],
    "GetMaxChildrenResponse": [("max", "int")],
    "SetMaxChildrenRequest": [("path", "ustring"), ("max", "int")],
    "SyncRequest": [("path", "ustring")],
    "SyncResponse": [("path", "ustring")],
    "GetACLRequest": [("path", "ustring")],
    "SetACLRequest": [("path", "ustring"), ("acl", _V_ACL), ("version", "int")],
    "SetACLResponse": [("stat", "Stat")],
    "AddWatchRequest": [("path", "ustring"), ("mode", "int")],
    "WatcherEvent": [("type", "int"), ("state", "int"), ("path", "ustring")],
    "ErrorResponse": [("err", "int")],
    "CreateResponse": [("path", "ustring")],
    "Create2Response": [("path", "ustring"), ("stat", "Stat")],
    "ExistsRequest": [("path", "ustring"), ("watch", "boolean")],
    "ExistsResponse": [("stat", "Stat")],
    "GetDataResponse": [("data", "buffer"), ("stat", "Stat")],
    "GetChildrenResponse": [("children", _V_STR)],
    "GetAllChildrenNumberResponse": [("totalNumber", "int")],
    "GetChildren2Response": [("children", _V_STR), ("stat", "Stat")],
    "GetACLResponse": [("acl", _V_ACL), ("stat", "Stat")],
    "CheckWatchesRequest": [("path", "ustring"), ("type", "int")],
    "RemoveWatchesRequest": [("path", "ustring"), ("type", "int")],
    "GetEphemeralsRequest": [("prefixPath", "ustring")],
    "GetEphemeralsResponse": [("ephemerals", _V_STR)],
    "WhoAmIResponse": [("clientInfo", "vector<ClientInfo>")],
    # org.apache.zookeeper.server.quorum
    "LearnerInfo": [("serverid", "long"), ("protocolVersion", "int"), ("configVersion", "long")],
    "QuorumPacket": [
        ("type", "int"), ("zxid", "long"), ("data", "buffer"), ("authinfo", "vector<Id>"),
    ],
    "QuorumAuthPacket": [("magic", "long"), ("status", "int"), ("token", "buffer")],
    # org.apache.zookeeper.server.persistence
    "FileHeader": [("magic", "int"), ("version", "int"), ("dbid", "long")],
    # org.apache.zookeeper.txn
    "TxnDigest": [("version", "int"), ("treeDigest", "long")],
    "TxnHeader": [
        ("clientId", "long"), ("cxid", "int"), ("zxid", "long"), ("time", "long"),
        ("type", "int"),
    ],
    "CreateTxnV0": [
        ("path", "ustring"), ("data", "buffer"), ("acl", _V_ACL), ("ephemeral", "boolean"),
    ],
    "CreateTxn": [
        ("path", "ustring"), ("data", "buffer"), ("acl", _V_ACL), ("ephemeral", "boolean"),
        ("parentCVersion", "int"),
    ],
    "CreateTTLTxn": [
        ("path", "ustring"), ("data", "buffer"), ("acl", _V_ACL),
        ("parentCVersion", "int"), ("ttl", "long"),
    ],
    "CreateContainerTxn": [
        ("path", "ustring"), ("data", "buffer"), ("acl", _V_ACL), ("parentCVersion", "int"),
    ],
    "DeleteTxn": [("path", "ustring")],
    "SetDataTxn": [("path", "ustring"), ("data", "buffer"), ("version", "int")],
    "CheckVersionTxn": [("path", "ustring"), ("version", "int")],
    "SetACLTxn": [("path", "ustring"), ("acl", _V_ACL), ("version", "int")],
    "SetMaxChildrenTxn": [("path", "ustring"), ("max", "int")],
    "CreateSessionTxn": [("timeOut", "int")],
    "CloseSessionTxn": [("paths2Delete", _V_STR)],
    "ErrorTxn": [("err", "int")],
    "Txn": [("type", "int"), ("data", "buffer")],
    "MultiTxn": [("txns", "vector<Txn>")],
}

_FIXED = {"int": "i", "long": "q", "boolean": "?"}
_DEFAULTS = {"int": "0", "long": "0", "boolean": "False"}


class Record:
    """Base of generated records: equality, repr and byte helpers."""

    __slots__ = ()
    FIELDS: tuple[str, ...] = ()

    if TYPE_CHECKING:
        # The fields are generated from SCHEMA: a type checker cannot see them.
        def __getattr__(self, name: str) -> Any: ...
        def __setattr__(self, name: str, value: Any) -> None: ...

    def encode(self, out: bytearray) -> None:  # replaced per record
        raise NotImplementedError

    @classmethod
    def decode(cls, buf: bytes, pos: int = 0, maxbuf: int = DEFAULT_MAX_BUFFER) -> tuple[Self, int]:
        raise NotImplementedError  # replaced per record

    def to_bytes(self) -> bytes:
        out = bytearray()
        self.encode(out)
        return bytes(out)

    @classmethod
    def from_bytes(cls, buf: bytes, maxbuf: int = DEFAULT_MAX_BUFFER) -> Self:
        """Decode a whole buffer; trailing bytes are ignored as Apache does."""
        return cls.decode(buf, 0, maxbuf)[0]

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, f) == getattr(other, f) for f in self.FIELDS)

    __hash__ = None  # type: ignore[assignment]  # records are mutable

    def __repr__(self) -> str:
        body = ", ".join(f"{f}={getattr(self, f)!r}" for f in self.FIELDS)
        return f"{type(self).__name__}({body})"

    def copy(self) -> Self:
        return type(self)(*(getattr(self, f) for f in self.FIELDS))


def _elem_code(t: str, var: str, lines: list[str], indent: str, ns: dict[str, object]) -> None:
    """Emit decode code that reads one value of type ``t`` into ``var``."""
    if t == "int":
        lines.append(f"{indent}{var}, pos = read_int(buf, pos)")
    elif t == "long":
        lines.append(f"{indent}{var}, pos = read_long(buf, pos)")
    elif t == "boolean":
        lines.append(f"{indent}{var}, pos = read_bool(buf, pos)")
    elif t == "buffer":
        lines.append(f"{indent}{var}, pos = read_buffer(buf, pos, maxbuf)")
    elif t == "ustring":
        lines.append(f"{indent}{var}, pos = read_ustring(buf, pos, maxbuf)")
    elif t.startswith("vector<"):
        inner = t[7:-1]
        lines.append(f"{indent}_n, pos = read_count(buf, pos, maxbuf)")
        lines.append(f"{indent}if _n < 0:")
        lines.append(f"{indent}    {var} = None")
        lines.append(f"{indent}else:")
        lines.append(f"{indent}    {var} = []")
        lines.append(f"{indent}    _ap = {var}.append")
        lines.append(f"{indent}    for _ in range(_n):")
        _elem_code(inner, "_e", lines, indent + "        ", ns)
        lines.append(f"{indent}        _ap(_e)")
    else:
        lines.append(f"{indent}{var}, pos = _dec_{t}(buf, pos, maxbuf)")


def _elem_enc(t: str, expr: str, lines: list[str], indent: str, ns: dict[str, object]) -> None:
    if t == "int":
        lines.append(f"{indent}out += _pi({expr})")
    elif t == "long":
        lines.append(f"{indent}out += _pq({expr})")
    elif t == "boolean":
        lines.append(f"{indent}out += _pb({expr})")
    elif t == "buffer":
        lines.append(f"{indent}write_buffer(out, {expr})")
    elif t == "ustring":
        lines.append(f"{indent}write_ustring(out, {expr})")
    elif t.startswith("vector<"):
        inner = t[7:-1]
        lines.append(f"{indent}_v = {expr}")
        lines.append(f"{indent}write_count(out, _v)")
        lines.append(f"{indent}if _v:")
        lines.append(f"{indent}    for _e in _v:")
        _elem_enc(inner, "_e", lines, indent + "        ", ns)
    else:
        lines.append(f"{indent}{expr}.encode(out)")


def _groups(fields: list[tuple[str, str]]) -> list[tuple[str, list[tuple[str, str]]]]:
    """Split fields into runs of fixed-width fields and single variable ones."""
    out: list[tuple[str, list[tuple[str, str]]]] = []
    for f in fields:
        fixed = f[1] in _FIXED
        if fixed and out and out[-1][0] == "fixed":
            out[-1][1].append(f)
        else:
            out.append(("fixed" if fixed else "var", [f]))
    return out


def _build(name: str, fields: list[tuple[str, str]], ns: dict[str, object]) -> type[Record]:
    names = [f for f, _ in fields]
    init_args = ", ".join(f"{f}={_DEFAULTS.get(t, 'None')}" for f, t in fields)
    src = [f"def __init__(self, {init_args}):"]
    src += [f"    self.{f} = {f}" for f in names] or ["    pass"]

    enc = ["def encode(self, out):"]
    dec = ["def decode(buf, pos=0, maxbuf=DEFAULT_MAX_BUFFER):"]
    for i, (kind, group) in enumerate(_groups(fields)):
        if kind == "fixed" and len(group) > 1:
            fmt = ">" + "".join(_FIXED[t] for _, t in group)
            s = struct.Struct(fmt)
            ns[f"_S_{name}_{i}"] = s
            args = ", ".join(f"self.{f}" for f, _ in group)
            enc.append(f"    out += _S_{name}_{i}.pack({args})")
            targets = ", ".join(f"_{f}" for f, _ in group)
            dec.append(f"    if pos + {s.size} > len(buf):")
            dec.append(f"        raise Truncated('{name} at offset %d runs past the end' % pos)")
            dec.append(f"    {targets}, = _S_{name}_{i}.unpack_from(buf, pos)")
            dec.append(f"    pos += {s.size}")
        else:
            for f, t in group:
                _elem_enc(t, f"self.{f}", enc, "    ", ns)
                _elem_code(t, f"_{f}", dec, "    ", ns)
    if len(enc) == 1:
        enc.append("    pass")
    # copy() field by field, not through getattr over FIELDS: stats are
    # copied once per write on the hot path
    cpy = ["def copy(self):",
           f"    return _cls_{name}({', '.join(f'self.{f}' for f in names)})"]
    ctor = ", ".join(f"_{f}" for f in names)
    dec.append(f"    return _cls_{name}({ctor}), pos")
    code = "\n".join(src + enc + dec + cpy) + "\n"
    local: dict[str, Any] = {}
    exec(compile(code, f"<jute {name}>", "exec"), ns, local)  # noqa: S102 - generated from SCHEMA
    cls = type(
        name,
        (Record,),
        {
            "__slots__": tuple(names),
            "FIELDS": tuple(names),
            "TYPES": tuple(t for _, t in fields),
            "__init__": local["__init__"],
            "encode": local["encode"],
            "decode": staticmethod(local["decode"]),
            "copy": local["copy"],
            "__module__": __name__,
        },
    )
    ns[f"_cls_{name}"] = cls
    ns[f"_dec_{name}"] = local["decode"]
    return cls


def _build_all() -> dict[str, type[Record]]:
    ns: dict[str, object] = {
        "read_int": codec.read_int,
        "read_long": codec.read_long,
        "read_bool": codec.read_bool,
        "read_buffer": codec.read_buffer,
        "read_ustring": codec.read_ustring,
        "read_count": codec.read_count,
        "write_buffer": codec.write_buffer,
        "write_ustring": codec.write_ustring,
        "write_count": codec.write_count,
        "Truncated": codec.Truncated,
        "DEFAULT_MAX_BUFFER": DEFAULT_MAX_BUFFER,
        "_pi": codec.INT.pack,
        "_pq": codec.LONG.pack,
        "_pb": codec.BOOL.pack,
    }
    return {name: _build(name, fields, ns) for name, fields in SCHEMA.items()}


RECORDS = _build_all()

Id = RECORDS["Id"]
ACL = RECORDS["ACL"]
Stat = RECORDS["Stat"]
StatPersisted = RECORDS["StatPersisted"]
ClientInfo = RECORDS["ClientInfo"]
ConnectRequest = RECORDS["ConnectRequest"]
ConnectResponse = RECORDS["ConnectResponse"]
SetWatches = RECORDS["SetWatches"]
SetWatches2 = RECORDS["SetWatches2"]
RequestHeader = RECORDS["RequestHeader"]
MultiHeader = RECORDS["MultiHeader"]
AuthPacket = RECORDS["AuthPacket"]
ReplyHeader = RECORDS["ReplyHeader"]
GetDataRequest = RECORDS["GetDataRequest"]
SetDataRequest = RECORDS["SetDataRequest"]
ReconfigRequest = RECORDS["ReconfigRequest"]
SetDataResponse = RECORDS["SetDataResponse"]
GetSASLRequest = RECORDS["GetSASLRequest"]
SetSASLRequest = RECORDS["SetSASLRequest"]
SetSASLResponse = RECORDS["SetSASLResponse"]
CreateRequest = RECORDS["CreateRequest"]
CreateTTLRequest = RECORDS["CreateTTLRequest"]
DeleteRequest = RECORDS["DeleteRequest"]
GetChildrenRequest = RECORDS["GetChildrenRequest"]
GetAllChildrenNumberRequest = RECORDS["GetAllChildrenNumberRequest"]
GetChildren2Request = RECORDS["GetChildren2Request"]
CheckVersionRequest = RECORDS["CheckVersionRequest"]
GetMaxChildrenRequest = RECORDS["GetMaxChildrenRequest"]
GetMaxChildrenResponse = RECORDS["GetMaxChildrenResponse"]
SetMaxChildrenRequest = RECORDS["SetMaxChildrenRequest"]
SyncRequest = RECORDS["SyncRequest"]
SyncResponse = RECORDS["SyncResponse"]
GetACLRequest = RECORDS["GetACLRequest"]
SetACLRequest = RECORDS["SetACLRequest"]
SetACLResponse = RECORDS["SetACLResponse"]
AddWatchRequest = RECORDS["AddWatchRequest"]
WatcherEvent = RECORDS["WatcherEvent"]
ErrorResponse = RECORDS["ErrorResponse"]
CreateResponse = RECORDS["CreateResponse"]
Create2Response = RECORDS["Create2Response"]
ExistsRequest = RECORDS["ExistsRequest"]
ExistsResponse = RECORDS["ExistsResponse"]
GetDataResponse = RECORDS["GetDataResponse"]
GetChildrenResponse = RECORDS["GetChildrenResponse"]
GetAllChildrenNumberResponse = RECORDS["GetAllChildrenNumberResponse"]
GetChildren2Response = RECORDS["GetChildren2Response"]
GetACLResponse = RECORDS["GetACLResponse"]
CheckWatchesRequest = RECORDS["CheckWatchesRequest"]
RemoveWatchesRequest = RECORDS["RemoveWatchesRequest"]
GetEphemeralsRequest = RECORDS["GetEphemeralsRequest"]
GetEphemeralsResponse = RECORDS["GetEphemeralsResponse"]
WhoAmIResponse = RECORDS["WhoAmIResponse"]
LearnerInfo = RECORDS["LearnerInfo"]
QuorumPacket = RECORDS["QuorumPacket"]
QuorumAuthPacket = RECORDS["QuorumAuthPacket"]
FileHeader = RECORDS["FileHeader"]
TxnDigest = RECORDS["TxnDigest"]
TxnHeader = RECORDS["TxnHeader"]
CreateTxnV0 = RECORDS["CreateTxnV0"]
CreateTxn = RECORDS["CreateTxn"]
CreateTTLTxn = RECORDS["CreateTTLTxn"]
CreateContainerTxn = RECORDS["CreateContainerTxn"]
DeleteTxn = RECORDS["DeleteTxn"]
SetDataTxn = RECORDS["SetDataTxn"]
CheckVersionTxn = RECORDS["CheckVersionTxn"]
SetACLTxn = RECORDS["SetACLTxn"]
SetMaxChildrenTxn = RECORDS["SetMaxChildrenTxn"]
CreateSessionTxn = RECORDS["CreateSessionTxn"]
CloseSessionTxn = RECORDS["CloseSessionTxn"]
ErrorTxn = RECORDS["ErrorTxn"]
Txn = RECORDS["Txn"]
MultiTxn = RECORDS["MultiTxn"]
