"""Startup recovery (FileTxnSnapLog.restore) and the epoch files.

`load_database` loads the newest snapshot that reads back whole (falling
back to older ones, at most 100, as FileSnap.deserialize), then replays the
transaction logs after it through DataTree.process_txn, keeping the session
table up to date from createSession/closeSession, and checks the tree digest
against the digests Apache (and pyzk) log with every txn.

Where pyzk is kinder than Apache, on purpose: a damaged tail of the *last*
log file (a torn write: partial record, bad checksum, garbage length) is
logged and cut back to the last whole record instead of failing startup, so
the next log file written after restart is read by Apache too. Damage that
is not a tail (a bad checksum in an older file) still refuses to start, as
in Apache, because txns after it would be lost silently.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from pyzk.datatree.tree import DIGEST_VERSION, DataTree
from pyzk.javacompat import java_parse_long
from pyzk.jute.codec import JuteError
from pyzk.jute.constants import OpCode
from pyzk.txnlog.files import VERSION_DIR, fsync_dir, snapshot_name, version_dir
from pyzk.txnlog.log import FileEnd, TxnIterator, cut_file, last_logged_zxid
from pyzk.txnlog.snapshot import ZxidDigest, find_snapshots, load_snapshot, write_snapshot

log = logging.getLogger(__name__)

MAX_SNAPSHOTS_TRIED = 100
ACCEPTED_EPOCH = "acceptedEpoch"
CURRENT_EPOCH = "currentEpoch"


class RecoveryError(OSError):
    """The data directory cannot be loaded (Apache refuses to start on it too)."""


@dataclass(slots=True)
class LoadResult:
    """What load_database found and did, for logs, metrics and tests."""

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


def load_database(
    data_dir: str | os.PathLike[str],
    data_log_dir: str | os.PathLike[str] | None = None,
) -> tuple[DataTree, dict[int, int], int]:
    """(tree, session timeouts, last zxid) from Apache-format files; see `recover`."""
    r = recover(data_dir, data_log_dir)
    return r.tree, r.sessions, r.last_zxid


def recover(
    data_dir: str | os.PathLike[str],
    data_log_dir: str | os.PathLike[str] | None = None,
    *,
    digest_enabled: bool = True,
    extended_types: bool = False,
    trust_empty_snapshot: bool = False,
    init_empty: bool = True,
    cut_torn_tail: bool = True,
) -> LoadResult:
    """FileTxnSnapLog.restore with the details returned.

    ``trust_empty_snapshot`` is ``zookeeper.snapshot.trust.empty``: without
    it, logs without any snapshot are refused. ``init_empty`` is
    ``zookeeper.db.autocreate``: with nothing on disk, an empty tree is
    saved as snapshot.0, as Apache does on first start (Apache then starts
    from pyzk's directory and vice versa).
    """
    data_dir = Path(data_dir)
    log_dir = Path(data_log_dir) if data_log_dir is not None else data_dir
    snap = None
    skipped: list[Path] = []
    for path in find_snapshots(data_dir, MAX_SNAPSHOTS_TRIED):
        log.info("Reading snapshot %s", path)
        try:
            snap = load_snapshot(path, digest_enabled=digest_enabled, extended_types=extended_types)
            break
        except (OSError, JuteError) as e:
            log.warning("problem reading snap file %s: %s", path, e)
            skipped.append(path)
    if snap is None and skipped:
        raise RecoveryError(f"Not able to find valid snapshots in {version_dir(data_dir)}")

    if snap is None:
        tree = DataTree(digest_enabled=digest_enabled, extended_types=extended_types)
        sessions: dict[int, int] = {}
        result = LoadResult(tree, sessions, 0, skipped_snapshots=skipped)
        if last_logged_zxid(log_dir) != -1:
            msg = "No snapshot found, but there are log entries. "
            if not trust_empty_snapshot:
                raise RecoveryError(msg + "Something is broken!")
            log.warning("%sThis should only be allowed during upgrading.", msg)
            _replay(result, log_dir, None, cut_torn_tail)
            return result
        if init_empty:
            path = version_dir(data_dir) / snapshot_name(0)
            log.info("Snapshotting: 0x0 to %s", path)
            write_snapshot(path, tree, sessions, 0)
            result.created_initial_snapshot = path
        return result

    result = LoadResult(
        snap.tree, snap.sessions, snap.zxid, snapshot=snap.path, snapshot_zxid=snap.zxid,
        skipped_snapshots=skipped,
    )
    target = snap.digest
    if target is not None and (target.zxid <= 0 or target.zxid < snap.zxid):
        target = None  # empty, or older than the snapshot: nothing to compare
    if target is not None and target.zxid == snap.zxid:
        _compare(result, target.zxid, target.version, target.digest)
        target = None
    _replay(result, log_dir, target, cut_torn_tail)
    return result


def _compare(result: LoadResult, zxid: int, version: int, digest: int) -> None:
    if not result.tree.digest_enabled or version != DIGEST_VERSION:
        return
    result.digests_checked += 1
    actual = result.tree.digest()
    if actual != digest:
        result.digest_mismatches.append(zxid)
        log.error(
            "Digests are not matching at zxid %#x: logged %d, tree %d", zxid, digest, actual
        )


def _replay(
    result: LoadResult, log_dir: Path, target: ZxidDigest | None, cut_torn_tail: bool
) -> None:
    """FileTxnSnapLog.fastForwardFromEdits plus the torn-tail cut."""
    tree = result.tree
    sessions = result.sessions
    highest = tree.last_processed_zxid
    it = TxnIterator(log_dir, highest + 1, digest_enabled=tree.digest_enabled)
    for e in it:
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
                _compare(result, target.zxid, target.version, target.digest)
                target = None
        elif e.digest is not None:
            _compare(result, hdr.zxid, e.digest.version, e.digest.treeDigest)
    if target is not None:
        log.warning(
            "Highest txn zxid %#x is not covering the snapshot digest zxid %#x, "
            "which might lead to inconsistent state", highest, target.zxid,
        )
    result.last_zxid = highest
    log.info("%d txns loaded", result.txns_loaded)
    _handle_damage(result, it, cut_torn_tail)


def _handle_damage(result: LoadResult, it: TxnIterator, cut_torn_tail: bool) -> None:
    """Cut a torn tail of the last file; refuse damage anywhere else."""
    if not it.files:
        return
    last_file = it.files[-1]
    for end in it.ends:
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
        cut_file(end.path, end.offset)
        result.cut = end


# ------------------------------------------------------------------ epoch files


def read_long_file(path: str | os.PathLike[str]) -> int | None:
    """QuorumPeer.readLongFromFile: one decimal long; None if the file is missing."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return None
    line = text.splitlines()[0] if text else ""
    try:
        return java_parse_long(line)
    except ValueError as e:
        raise RecoveryError(f"Found {line!r} in {path}") from e


def write_long_file(path: str | os.PathLike[str], value: int) -> None:
    """QuorumPeer.writeLongToFile: decimal text, no newline, atomically replaced."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        f.write(str(value))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    fsync_dir(path.parent)


def read_epochs(data_dir: str | os.PathLike[str]) -> tuple[int | None, int | None]:
    """(acceptedEpoch, currentEpoch) from ``<data_dir>/version-2``, None where absent."""
    d = Path(data_dir) / VERSION_DIR
    return read_long_file(d / ACCEPTED_EPOCH), read_long_file(d / CURRENT_EPOCH)


def write_accepted_epoch(data_dir: str | os.PathLike[str], epoch: int) -> None:
    write_long_file(Path(data_dir) / VERSION_DIR / ACCEPTED_EPOCH, epoch)


def write_current_epoch(data_dir: str | os.PathLike[str], epoch: int) -> None:
    write_long_file(Path(data_dir) / VERSION_DIR / CURRENT_EPOCH, epoch)
