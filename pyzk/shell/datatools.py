"""Command-line tools over data files, printing what Apache's tools print.

* `main_txnlog`: TxnLogToolkit: dump a log file (one line per txn, then
  "EOF reached after N txns."), ``-c -z ZXID`` chops it (LogChopper, into
  ``FILE.choppedZXID``), ``--check`` verifies every record and says where
  and why the records stop (exit status 1 if damaged), ``-r [-y]`` writes
  ``FILE.fixed`` with wrong checksums recomputed.
* `main_snapshot`: SnapshotFormatter: ``[-d|-json] FILE``.
* `main_purge`: PurgeTxnLog: ``dataLogDir [snapDir] -n count``.

The pyzk CLI exposes them as ``pyzk txnlog|snapshot|purge``. Times print in
the local time zone in the format of Apache's defaults (en_US, Java 17).
"""

from __future__ import annotations

import argparse
import base64
import json
import struct
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

from pyzk.datatree.tree import DataTree
from pyzk.jute.codec import JuteError
from pyzk.jute.constants import OpCode
from pyzk.jute.records import (
    ACL,
    CreateContainerTxn,
    CreateTTLTxn,
    CreateTxn,
    FileHeader,
    MultiTxn,
    Record,
    SetDataTxn,
)
from pyzk.shell.autopurge import files_to_purge
from pyzk.shell.snapfiles import load_snapshot
from pyzk.shell.txnlogfiles import scan_file
from pyzk.txnlog.log import EOR, HEADER_LEN, TXNLOG_MAGIC, FileEnd, frame_record, padded_size
from pyzk.txnlog.names import SNAPSHOT_PREFIX, zxid_from_name
from pyzk.txnlog.snapshot import CorruptSnapshot
from pyzk.txnlog.txn import LOG_MAX_BUFFER, decode_txn

_OP_NAMES = {
    OpCode.notification: "notification", OpCode.create: "create", OpCode.delete: "delete",
    OpCode.exists: "exists", OpCode.getData: "getData", OpCode.setData: "setData",
    OpCode.getACL: "getACL", OpCode.setACL: "setACL", OpCode.getChildren: "getChildren",
    OpCode.sync: "sync", OpCode.ping: "ping", OpCode.getChildren2: "getChildren2",
    OpCode.check: "check", OpCode.multi: "multi", OpCode.create2: "create2",
    OpCode.reconfig: "reconfig", OpCode.checkWatches: "checkWatches",
    OpCode.removeWatches: "removeWatches", OpCode.createContainer: "createContainer",
    OpCode.deleteContainer: "deleteContainer", OpCode.createTTL: "createTtl",
    OpCode.multiRead: "multiRead", OpCode.auth: "auth", OpCode.setWatches: "setWatches",
    OpCode.setWatches2: "setWatches2", OpCode.sasl: "sasl",
    OpCode.getEphemerals: "getEphemerals", OpCode.getAllChildrenNumber: "getAllChildrenNumber",
    OpCode.createSession: "createSession", OpCode.closeSession: "closeSession",
    OpCode.error: "error", OpCode.whoAmI: "whoAmI",
}


def op_name(op: int) -> str:
    """Request.op2String."""
    return _OP_NAMES.get(op, f"unknown {op}")


# ------------------------------------------------------------------ Java-style text


def _java_hex(v: int) -> str:
    """Long.toHexString: two's complement, no padding."""
    return f"{v & 0xFFFFFFFFFFFFFFFF:x}"


def _escape_string(s: str | None) -> str:
    """ToStringOutputArchive.escapeString."""
    if s is None:
        return ""
    table = {"\0": "%00", "\n": "%0A", "\r": "%0D", ",": "%2C", "}": "%7D", "%": "%25"}
    return "'" + "".join(table.get(c, c) for c in s)


def _escape_buffer(b: bytes | None) -> str:
    """ToStringOutputArchive.escapeBuffer: Integer.toHexString of each signed byte."""
    if not b:
        return ""
    return "#" + "".join(f"{x:x}" if x < 128 else f"{(x - 256) & 0xFFFFFFFF:x}" for x in b)


def _to_string_fields(rec: Record, out: list[str]) -> None:
    for name, typ in zip(rec.FIELDS, rec.TYPES, strict=True):
        v = getattr(rec, name)
        if typ in ("int", "long"):
            out.append(str(v))
        elif typ == "boolean":
            out.append("T" if v else "F")
        elif typ == "ustring":
            out.append(_escape_string(v))
        elif typ == "buffer":
            out.append(_escape_buffer(v))
        elif typ.startswith("vector<"):
            out.append("v{" + ",".join(_nested(e) for e in (v or ())) + "}")
        else:
            out.append(_nested(v))


def _nested(v: object) -> str:
    if isinstance(v, Record):
        parts: list[str] = []
        _to_string_fields(v, parts)
        return "s{" + ",".join(parts) + "}"
    if isinstance(v, str):
        return _escape_string(v)
    return str(v)


def record_to_string(rec: Record) -> str:
    """A jute Record's toString() (ToStringOutputArchive), trailing newline included."""
    parts: list[str] = []
    _to_string_fields(rec, parts)
    return ",".join(parts) + "\n"


def _acl_list(acls: list[ACL] | None) -> str:
    """java.util.List<ACL>.toString()."""
    return "[" + ", ".join(record_to_string(a) for a in acls or ()) + "]"


def _text(b: bytes | None) -> str:
    return "" if not b else b.decode("utf-8", "replace")


def format_txn_body(txn: Record | None) -> str:
    """TxnLogToolkit.getFormattedTxnStr."""
    if txn is None:
        return ""
    if isinstance(txn, CreateTxn):
        return (
            f"{txn.path},{_text(txn.data)},{_acl_list(txn.acl)},"
            f"{'true' if txn.ephemeral else 'false'},{txn.parentCVersion}"
        )
    if isinstance(txn, SetDataTxn):
        return f"{txn.path},{_text(txn.data)},{txn.version}"
    if isinstance(txn, CreateContainerTxn):
        return f"{txn.path},{_text(txn.data)},{_acl_list(txn.acl)},{txn.parentCVersion}"
    if isinstance(txn, CreateTTLTxn):
        return (
            f"{txn.path},{_text(txn.data)},{_acl_list(txn.acl)},{txn.parentCVersion},{txn.ttl}"
        )
    if isinstance(txn, MultiTxn):
        return ";".join(f"{op_name(t.type)}:{_text(t.data)}" for t in txn.txns or ())
    return record_to_string(txn)


def _java_short_long_datetime(ms: int) -> str:
    """DateFormat.getDateTimeInstance(SHORT, LONG) in en_US: ``3/14/24, 1:02:03 PM UTC``."""
    t = time.localtime(ms / 1000.0)
    hour = t.tm_hour % 12 or 12
    ampm = "AM" if t.tm_hour < 12 else "PM"
    return (
        f"{t.tm_mon}/{t.tm_mday}/{t.tm_year % 100:02d}, "
        f"{hour}:{t.tm_min:02d}:{t.tm_sec:02d} {ampm} {time.strftime('%Z', t)}"
    )


def _java_medium_datetime(seconds: float) -> str:
    """DateFormat.getDateTimeInstance() in en_US: ``Mar 14, 2024, 1:02:03 PM``."""
    t = time.localtime(seconds)
    hour = t.tm_hour % 12 or 12
    ampm = "AM" if t.tm_hour < 12 else "PM"
    clock = f"{hour}:{t.tm_min:02d}:{t.tm_sec:02d} {ampm}"
    return f"{time.strftime('%b', t)} {t.tm_mday}, {t.tm_year}, {clock}"


def _java_date(ms: int) -> str:
    """java.util.Date.toString(): ``Thu Jan 01 00:00:00 UTC 1970``."""
    t = time.localtime(ms / 1000.0)
    return time.strftime("%a %b %d %H:%M:%S %Z %Y", t)


def format_txn_line(entry: bytes, prefix: str = "") -> str:
    """One TxnLogToolkit.printTxn line (without the final newline)."""
    hdr, txn, _digest = decode_txn(entry)
    line = (
        f"{_java_short_long_datetime(hdr.time)} session 0x{_java_hex(hdr.clientId)} "
        f"cxid 0x{_java_hex(hdr.cxid)} zxid 0x{_java_hex(hdr.zxid)} {op_name(hdr.type)} "
        f"{format_txn_body(txn)}"
    )
    if prefix.strip():
        line = f"{prefix} - {line}"
    return line[:-1] if line.endswith("\n") else line


# ------------------------------------------------------------------ txnlog


_ENTRY_PREFIX = struct.Struct(">qi")  # checksum, entry length


def _log_header(data: bytes) -> FileHeader | None:
    """The log's file header, or None when its magic is wrong.

    Not txnlog.log.check_header: each of Apache's tools words the refusal its
    own way (an exit message, a line on stderr), and these tools copy that.
    """
    fh = FileHeader.from_bytes(data[:HEADER_LEN])
    return fh if fh.magic == TXNLOG_MAGIC else None


def _raw_records(data: bytes) -> Iterator[tuple[int, bytes, bool]]:
    """(stored crc, entry, eor ok) as TxnLogToolkit reads them; stops at EOF/zeros."""
    pos = HEADER_LEN
    while True:
        if pos + _ENTRY_PREFIX.size > len(data):
            return
        crc, n = _ENTRY_PREFIX.unpack_from(data, pos)
        if n == 0:
            return
        if n < 0 or n > LOG_MAX_BUFFER:
            raise JuteError(f"Unreasonable length = {n}")
        start = pos + _ENTRY_PREFIX.size
        if start + n > len(data):
            return
        entry = bytes(data[start : start + n])
        eor_ok = start + n < len(data) and data[start + n] == EOR
        yield crc, entry, eor_ok
        pos = start + n + 1


def _file_banner(fh: FileHeader) -> str:
    return (
        f"ZooKeeper Transactional Log File with dbid {fh.dbid} txnlog format version {fh.version}"
    )


def dump_log(path: Path, out: TextIO) -> int:
    """TxnLogToolkit dump mode; returns the txn count."""
    data = path.read_bytes()
    fh = _log_header(data)
    if fh is None:
        raise SystemExit(f"Invalid magic number for {path.name}")
    print(_file_banner(fh), file=out)
    count = 0
    for crc, entry, eor_ok in _raw_records(data):
        if crc != zlib.adler32(entry):
            print(format_txn_line(entry, "CRC ERROR"), file=out)
        print(format_txn_line(entry), file=out)
        if not eor_ok:
            raise SystemExit("Last transaction was partial.")
        count += 1
    print(f"EOF reached after {count} txns.", file=out)
    return count


def recover_log(path: Path, out: TextIO, verbose: bool = False) -> int:
    """TxnLogToolkit -r -y: write FILE.fixed with every checksum recomputed; returns fixes."""
    target = path.with_name(path.name + ".fixed")
    if target.exists():
        raise SystemExit(f"Recovery file {target} already exists or not writable")
    data = path.read_bytes()
    fixed = 0
    body = bytearray(data[:HEADER_LEN])
    size = len(body)
    count = 0
    for crc, entry, eor_ok in _raw_records(data):
        if crc != zlib.adler32(entry):
            print(format_txn_line(entry, "CRC FIXED"), file=out)
            fixed += 1
        elif verbose:
            print(format_txn_line(entry), file=out)
        if not eor_ok:
            raise SystemExit("Last transaction was partial.")
        size = padded_size(len(body), size, 64 * 1024 * 1024)
        body += frame_record(entry)
        count += 1
    print(f"EOF reached after {count} txns.", file=out)
    body += bytes(max(0, size - len(body)))
    target.write_bytes(bytes(body))
    print(f"Recovery file {target} has been written with {fixed} fixed CRC error(s)", file=out)
    return fixed


def chop_log(path: Path, zxid: int, out: TextIO) -> bool:
    """LogChopper.chop into ``FILE.chopped<zxid>``: keep txns up to and including ``zxid``."""
    target = path.with_name(f"{path.name}.chopped{zxid}")
    data = path.read_bytes()
    fh = _log_header(data)
    if fh is None:
        print("Invalid magic number in txn log file", file=sys.stderr)
        return False
    print(_file_banner(fh), file=out)
    chopped = bytearray(data[:HEADER_LEN])
    count = 0
    has = False
    prev = -1
    ok = False
    for crc, entry, eor_ok in _raw_records(data):
        if crc != zlib.adler32(entry):
            print(f"Got exception: CRC doesn't match {crc} vs {zlib.adler32(entry)}", file=out)
            break
        hdr, _txn, _d = decode_txn(entry)
        if not eor_ok:
            print("Last transaction was partial.", file=out)
            print("Got exception: Last transaction was partial.", file=out)
            break
        z = hdr.zxid
        has = has or z == zxid
        if prev != -1 and z != prev + 1:
            if z >> 32 == prev >> 32:
                print(f"There is intra-epoch gap between {prev:x} and {z:x}", file=out)
            elif z & 0xFFFFFFFF != 1:
                print(f"There is inter-epoch gap between {prev:x} and {z:x}", file=out)
        prev = z
        if z > zxid:
            if count == 0 or not has:
                print(f"This log does not contain zxid {zxid:x}", file=out)
            else:
                print(f"Chopping at {zxid:x} new log has {count} records", file=out)
                ok = True
            break
        chopped += frame_record(entry)
        count += 1  # noqa: SIM113 - the count is also read after the loop
    else:
        print(f"EOF reached after {count} txns.", file=out)
    target.write_bytes(bytes(chopped))
    return ok


def check_log(path: Path, out: TextIO) -> FileEnd:
    """Verify every record; print the count and where/why the records stop."""
    n = 0
    first = last = None
    end: FileEnd | None = None
    for item in scan_file(path):
        if isinstance(item, FileEnd):
            end = item
            break
        n += 1
        last = item.hdr.zxid
        if first is None:
            first = item.hdr.zxid
    assert end is not None
    span = "" if first is None else f" (zxid 0x{first:x}..0x{last:x})"
    status = "OK" if end.clean else "DAMAGED"
    print(f"{path}: {n} txns{span}; records end at offset {end.offset}: {end.reason}"
          f"{' ' + end.detail if end.detail else ''} [{status}]", file=out)
    return end


def main_txnlog(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    """``pyzk txnlog [-d] [-r [-v] [-y]] [-c -z ZXID] [--check] FILE``."""
    out = out or sys.stdout
    p = argparse.ArgumentParser(prog="pyzk txnlog", description="Dump, check, repair or "
                                "chop a transaction log file (Apache TxnLogToolkit)")
    p.add_argument("file")
    p.add_argument("-d", "--dump", action="store_true", help="dump mode (default)")
    p.add_argument("-r", "--recover", action="store_true", help="write FILE.fixed with "
                   "checksums recomputed")
    p.add_argument("-v", "--verbose", action="store_true", help="with -r: print all entries")
    p.add_argument("-y", "--yes", action="store_true", help="with -r: do not ask (always)")
    p.add_argument("-c", "--chop", action="store_true", help="chop the file to a zxid")
    p.add_argument("-z", "--zxid", help="with -c: the last zxid to keep (0x hex or decimal)")
    p.add_argument("--check", action="store_true", help="verify every record")
    a = p.parse_args(argv)
    path = Path(a.file)
    if not path.is_file():
        print(f"File doesn't exist or not readable: {path}", file=sys.stderr)
        return 1
    try:
        if a.check:
            return 0 if check_log(path, out).clean else 1
        if a.chop and a.zxid is not None:
            return 0 if chop_log(path, int(a.zxid, 0), out) else 2
        if a.recover:
            recover_log(path, out, a.verbose)
            return 0
        dump_log(path, out)
        return 0
    except (JuteError, OSError) as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    except SystemExit as e:
        print(e, file=sys.stderr)
        return 1


# ------------------------------------------------------------------ snapshot


def _hex16(v: int) -> str:
    """String.format("%#016x", long)."""
    return "0x" + f"{v & 0xFFFFFFFFFFFFFFFF:x}".rjust(14, "0")


def _children(tree: DataTree, path: str) -> list[str]:
    node = tree.nodes[path]
    return list(node.children.java_order())


def dump_snapshot(
    tree: DataTree, sessions: dict[int, int], zxid: int, out: TextIO, dump_data: bool = False
) -> None:
    """SnapshotFormatter.printDetails."""
    print(f"ZNode Details (count={tree.node_count()}):", file=out)
    max_zxid = 0
    stack = ["/"]
    while stack:
        name = stack.pop()
        n = tree.nodes[name]
        w = out.write
        w("----\n")
        w(f"{name}\n")
        w(f"  cZxid = {_hex16(n.czxid)}\n")
        w(f"  ctime = {_java_date(n.ctime)}\n")
        w(f"  mZxid = {_hex16(n.mzxid)}\n")
        w(f"  mtime = {_java_date(n.mtime)}\n")
        w(f"  pZxid = {_hex16(n.pzxid)}\n")
        w(f"  cversion = {n.cversion}\n")
        w(f"  dataVersion = {n.version}\n")
        w(f"  aclVersion = {n.aversion}\n")
        w(f"  ephemeralOwner = {_hex16(n.ephemeralOwner)}\n")
        if dump_data:
            data = "" if n.data is None else base64.b64encode(n.data).decode("ascii")
            w(f"  data = {data}\n")
        else:
            w(f"  dataLength = {0 if n.data is None else len(n.data)}\n")
        max_zxid = max(max_zxid, n.mzxid, n.pzxid)
        base = "" if name == "/" else name
        stack.extend(base + "/" + c for c in reversed(_children(tree, name)))
    print("----", file=out)
    print("Session Details (sid, timeout, ephemeralCount):", file=out)
    for sid, timeout in sessions.items():
        print(f"{_hex16(sid)}, {timeout}, {len(tree.get_ephemerals(sid))}", file=out)
    print(f"----\nLast zxid: 0x{_java_hex(max(zxid, max_zxid))}", file=out)


def dump_snapshot_json(tree: DataTree, out: TextIO, now_ms: int | None = None) -> None:
    """SnapshotFormatter -json (the ncdu export format)."""
    ts = int(time.time() * 1000) if now_ms is None else now_ms
    parts = [f'[1,0,{{"progname":"SnapshotFormatter.java","progver":"0.01","timestamp":{ts}}}']
    ino = 1000

    def node(path: str) -> None:
        nonlocal ino
        n = tree.nodes[path]
        name = path if path == "/" else path[path.rfind("/") + 1 :]
        size = 0 if n.data is None else len(n.data)
        ino += 1
        quoted = json.dumps(name, ensure_ascii=False)[1:-1]
        rec = (f'{{"name":"{quoted}","asize":{size},"dsize":{size},"dev":0,"ino":{ino}}}')
        parts.append(",")
        kids = _children(tree, path)
        if kids:
            parts.append("[" + rec)
            base = "" if path == "/" else path
            for c in kids:
                node(base + "/" + c)
            parts.append("]")
        else:
            parts.append(rec)

    node("/")
    parts.append("]")
    out.write("".join(parts))


def main_snapshot(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    """``pyzk snapshot [-d|-json] FILE`` (Apache SnapshotFormatter)."""
    out = out or sys.stdout
    args = list(sys.argv[1:] if argv is None else argv)
    dump_data = dump_json = False
    file = None
    for i, a in enumerate(args):
        if a == "-d":
            dump_data = True
        elif a == "-json":
            dump_json = True
        else:
            file = a
            if i != len(args) - 1:
                file = None
            break
    if file is None:
        print("USAGE: SnapshotFormatter [-d|-json] snapshot_file", file=sys.stderr)
        print("       -d dump the data for each znode", file=sys.stderr)
        print("       -json dump znode info in json format", file=sys.stderr)
        return 2
    if dump_data and dump_json:
        print("Cannot specify both data dump (-d) and json mode (-json) in same call",
              file=sys.stderr)
        return 2
    path = Path(file)
    try:
        snap = load_snapshot(path)
    except (OSError, CorruptSnapshot, JuteError) as e:
        print(f"Error: {e}", file=sys.stderr)
        return 1
    if dump_json:
        dump_snapshot_json(snap.tree, out)
    else:
        zxid = zxid_from_name(path.name, SNAPSHOT_PREFIX)
        dump_snapshot(snap.tree, snap.sessions, zxid, out, dump_data)
    return 0


# ------------------------------------------------------------------ purge


def main_purge(argv: list[str] | None = None, out: TextIO | None = None) -> int:
    """``pyzk purge dataLogDir [snapDir] -n count`` (Apache PurgeTxnLog)."""
    out = out or sys.stdout
    args = list(sys.argv[1:] if argv is None else argv)
    usage = (
        "Usage:\nPurgeTxnLog dataLogDir [snapDir] -n count\n"
        "\tdataLogDir -- path to the txn log directory\n"
        "\tsnapDir -- path to the snapshot directory\n"
        "\tcount -- the number of old snaps/logs you want to keep, value should be greater "
        "than or equal to 3\n"
    )
    if len(args) not in (3, 4) or args[-2] != "-n":
        print(usage, file=sys.stderr, end="")
        return 2
    log_dir = Path(args[0])
    snap_dir = Path(args[1]) if len(args) == 4 else log_dir
    for d in {log_dir, snap_dir}:
        if not d.exists():
            print(f"Path '{d}' does not exist. ", file=sys.stderr)
            print(usage, file=sys.stderr, end="")
            return 2
    try:
        num = int(args[-1])
    except ValueError:
        num = -1
    if num < 3:
        print(f"'{args[-1]}' can not be parsed to integer.\n" if num == -1 else "", end="",
              file=sys.stderr)
        print(usage, file=sys.stderr, end="")
        return 2
    rc = 0
    for f in files_to_purge(log_dir, snap_dir, num):
        print(f"Removing file: {_java_medium_datetime(f.stat().st_mtime)}\t{f}", file=out)
        try:
            f.unlink()
        except OSError:
            print(f"Failed to remove {f}", file=sys.stderr)
            rc = 1
    return rc
