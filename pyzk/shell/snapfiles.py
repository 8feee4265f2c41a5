"""Snapshot files on disk: atomic writing, reading and finding the valid ones.

The format is pyzk.txnlog.snapshot (pure); this module owns the files:
temp file, fsync, rename (Apache's AtomicFileOutputStream), reading a file
whole, and FileSnap.findNValidSnapshots.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from pyzk.datatree.tree import DataTree
from pyzk.shell.datadir import fsync_dir, sorted_files, version_dir
from pyzk.txnlog.names import SNAPSHOT_PREFIX, zxid_from_name
from pyzk.txnlog.snapshot import (
    HEAD_NEEDED,
    Snapshot,
    ZxidDigest,
    decode_stream,
    looks_valid,
    parse_snapshot,
    write_method,
    write_stream,
)

log = logging.getLogger(__name__)


def write_snapshot(
    path: str | os.PathLike[str],
    tree: DataTree,
    sessions: Mapping[int, int],
    zxid: int | None = None,
    *,
    digest: ZxidDigest | None | bool = True,
    fsync: bool = True,
    last_zxid: int | None = None,
) -> Path:
    """Write a snapshot file atomically (temp file, fsync, rename, as AtomicFileOutputStream).

    The compression follows the file name (``.gz``, ``.snappy``); ``zxid`` is
    only checked against the name, which is what Apache trusts on reading.
    ``last_zxid`` appends 3.9's last processed zxid (see txnlog.snapshot).
    """
    path = Path(path)
    if zxid is not None and zxid_from_name(path.name, SNAPSHOT_PREFIX) not in (-1, zxid):
        raise ValueError(f"snapshot name {path.name} does not carry zxid {zxid:#x}")
    method = write_method(path.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as raw:
            write_stream(raw, method, tree, sessions, digest=digest, last_zxid=last_zxid)
            raw.flush()
            if fsync:
                os.fsync(raw.fileno())
        os.replace(tmp, path)
    except BaseException:
        # A full disk or a failed fsync: drop the partial file (as Apache's
        # AtomicFileOutputStream.abort), so that it neither takes the space
        # the log needs nor lingers; the older snapshots and the log are intact.
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if fsync:
        fsync_dir(path.parent)
    return path


def load_snapshot(
    path: str | os.PathLike[str],
    *,
    digest_enabled: bool = True,
    extended_types: bool = False,
    last_zxid_enabled: bool = False,
) -> Snapshot:
    """Read and verify one snapshot file; its zxid comes from the name, as in Apache.

    ``last_zxid_enabled`` (3.9's serializeLastProcessedZxid) also checks the
    third seal a 3.9 snapshot carries."""
    path = Path(path)
    zxid = zxid_from_name(path.name, SNAPSHOT_PREFIX)
    return parse_snapshot(
        decode_stream(str(path), path.read_bytes()), zxid,
        digest_enabled=digest_enabled, extended_types=extended_types,
        last_zxid_enabled=last_zxid_enabled,
    )


def read_snapshot(path: str | os.PathLike[str]) -> tuple[DataTree, dict[int, int], int]:
    """(tree, session timeouts, zxid) of one snapshot file; see load_snapshot."""
    s = load_snapshot(path)
    return s.tree, s.sessions, s.zxid


def is_valid_snapshot(path: str | os.PathLike[str]) -> bool:
    """SnapStream.isValidSnapshot: a cheap look at the name and the file's end or magic."""
    path = Path(path)
    if zxid_from_name(path.name, SNAPSHOT_PREFIX) == -1:
        return False
    try:
        with open(path, "rb") as f:
            head = f.read(HEAD_NEEDED)
            size = f.seek(0, io.SEEK_END)
            tail = b""
            if size >= 5:
                f.seek(-5, io.SEEK_END)
                tail = f.read(5)
    except OSError:
        return False
    return looks_valid(path.name, size, head, tail)


def find_snapshots(data_dir: str | os.PathLike[str], n: int | None = None) -> list[Path]:
    """Valid snapshots of ``<data_dir>/version-2``, newest first (findNValidSnapshots)."""
    out: list[Path] = []
    for f in sorted_files(version_dir(data_dir), SNAPSHOT_PREFIX, ascending=False):
        if f.name.endswith(".tmp"):
            continue
        if is_valid_snapshot(f):
            out.append(f)
            if n is not None and len(out) >= n:
                break
    return out
