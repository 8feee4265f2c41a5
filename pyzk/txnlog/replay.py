"""Replaying logged txns onto a loaded snapshot (FileTxnSnapLog.fastForwardFromEdits).

Pure: the shell (pyzk.shell.recovery) finds and reads the files and hands
the entries here. `replay` applies them through DataTree.process_txn,
keeps the session table up to date from createSession/closeSession, and
checks the tree digest against the digests Apache (and pyzk) log with
every txn. `torn_tail` decides what to do with each file's end: where pyzk
is kinder than Apache, on purpose, a damaged tail of the *last* log file (a
torn write: partial record, bad checksum, garbage length) is to be cut back
to the last whole record instead of failing startup, so the next log file
written after restart is read by Apache too. Damage that is not a tail (a
bad checksum in an older file) still refuses to start, as in Apache,
because txns after it would be lost silently.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from pyzk.datatree.tree import DIGEST_VERSION, DataTree
from pyzk.jute.constants import OpCode
from pyzk.txnlog.log import FileEnd, LogEntry
from pyzk.txnlog.snapshot import ZxidDigest

if TYPE_CHECKING:
    from pathlib import Path  # only named in annotations: where things were found

log = logging.getLogger(__name__)


class RecoveryError(OSError):
    """The data directory cannot be loaded (Apache refuses to start on it too)."""


@dataclass(slots=True)
class LoadResult:
    """What recovery found and did, for logs, metrics and tests."""

    tree: DataTree
    sessions: dict[int, int]
    last_zxid: int
    snapshot: Path | None = None
    snapshot_zxid: int = -1
    txns_loaded: int = 0
    digest_mismatches: list[int] = field(default_factory=list)
    digests_checked: int = 0
    cut: FileEnd | None = None  # the torn tail that was cut, if any
    skipped_snapshots: list[Path] = field(default_factory=list)
    created_initial_snapshot: Path | None = None


def compare_digest(result: LoadResult, zxid: int, version: int, digest: int) -> None:
    """DataTree.compareDigest: count the check, remember a mismatch."""
    if not result.tree.digest_enabled or version != DIGEST_VERSION:
        return
    result.digests_checked += 1
    actual = result.tree.digest()
    if actual != digest:
        result.digest_mismatches.append(zxid)
        log.error(
            "Digests are not matching at zxid %#x: logged %d, tree %d", zxid, digest, actual
        )


def snapshot_target(result: LoadResult, digest: ZxidDigest | None) -> ZxidDigest | None:
    """The snapshot's digest trailer still to be checked during replay.

    None when there is nothing to compare (no trailer, an empty one, one
    older than the snapshot) or when it was checked right away because it
    is for the snapshot's own zxid.
    """
    zxid = result.snapshot_zxid
    if digest is None or digest.zxid <= 0 or digest.zxid < zxid:
        return None
    if digest.zxid == zxid:
        compare_digest(result, digest.zxid, digest.version, digest.digest)
        return None
    return digest


def replay(result: LoadResult, entries: Iterable[LogEntry], target: ZxidDigest | None) -> None:
    """Apply ``entries`` (log order, from the snapshot's zxid + 1) to ``result``."""
    tree = result.tree
    sessions = result.sessions
    highest = tree.last_processed_zxid
    for e in entries:
        hdr = e.hdr
        if hdr.zxid < highest and highest != 0:
            log.error("%d(highestZxid) > %d(next log) for type %d", highest, hdr.zxid, hdr.type)
        else:
            highest = hdr.zxid
        t = hdr.type
        if t == OpCode.createSession:
            sessions[hdr.clientId] = e.txn.timeOut
        elif t == OpCode.closeSession:
            sessions.pop(hdr.clientId, None)
        tree.process_txn(hdr, e.txn)
        result.txns_loaded += 1
        # DataTree.compareSnapshotDigests / compareDigest: while the snapshot
        # is fuzzy (before its digest zxid) no per-txn digest can match.
        if target is not None:
            if hdr.zxid == target.zxid:
                compare_digest(result, target.zxid, target.version, target.digest)
                target = None
        elif e.digest is not None:
            compare_digest(result, hdr.zxid, e.digest.version, e.digest.treeDigest)
    if target is not None:
        log.warning(
            "Highest txn zxid %#x is not covering the snapshot digest zxid %#x, "
            "which might lead to inconsistent state", highest, target.zxid,
        )
    result.last_zxid = highest
    log.info("%d txns loaded", result.txns_loaded)


def torn_tail(ends: Iterable[FileEnd], last_file: Path, cut_torn_tail: bool) -> FileEnd | None:
    """The end of the last file to cut back to its last whole record, if any.

    RecoveryError for damage anywhere else, or anywhere at all when
    ``cut_torn_tail`` is off and the damage is fatal in Apache's eyes.
    """
    cut: FileEnd | None = None
    for end in ends:
        if end.clean:
            continue
        if end.path != last_file:
            if end.fatal:
                raise RecoveryError(
                    f"Corrupt transaction log {end.path} at offset {end.offset}: "
                    f"{end.reason} {end.detail}"
                )
            log.warning(
                "Log %s ends early at offset %d (%s); continuing with the next file",
                end.path, end.offset, end.reason,
            )
            continue
        if not cut_torn_tail:
            if end.fatal:
                raise RecoveryError(
                    f"Corrupt transaction log {end.path} at offset {end.offset}: {end.reason}"
                )
            continue
        log.warning(
            "Torn tail in %s at offset %d (%s %s): cutting it back to the last whole record",
            end.path, end.offset, end.reason, end.detail,
        )
        cut = end
    return cut
