"""Startup recovery from the data directories (FileTxnSnapLog.restore).

`recover` loads the newest snapshot that reads back whole (falling back to
older ones, at most 100, as FileSnap.deserialize), then replays the
transaction logs after it (pyzk.txnlog.replay, pure, decides what to
apply, check and cut; this module reads the files and does the cut).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pyzk.datatree.tree import DataTree
from pyzk.jute.codec import JuteError
from pyzk.shell.datadir import version_dir
from pyzk.shell.snapfiles import find_snapshots, load_snapshot, write_snapshot
from pyzk.shell.txnlogfiles import TxnIterator, cut_file, data_after_damage, last_logged_zxid
from pyzk.txnlog.names import snapshot_name
from pyzk.txnlog.replay import LoadResult, RecoveryError, replay, snapshot_target, torn_tail
from pyzk.txnlog.snapshot import Snapshot, ZxidDigest

log = logging.getLogger(__name__)

MAX_SNAPSHOTS_TRIED = 100

__all__ = ["LoadResult", "RecoveryError", "fast_forward", "load_database", "recover"]


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
    compression: str = "",
    last_zxid_enabled: bool = False,
) -> LoadResult:
    """FileTxnSnapLog.restore with the details returned.

    ``trust_empty_snapshot`` is ``zookeeper.snapshot.trust.empty``: without
    it, logs without any snapshot are refused. ``init_empty`` is
    ``zookeeper.db.autocreate``: with nothing on disk, an empty tree is
    saved as snapshot.0, as Apache does on first start (Apache then starts
    from pyzk's directory and vice versa), compressed with ``compression``
    and with 3.9's last zxid when ``last_zxid_enabled``, as Apache's
    SnapStream writes every snapshot.
    """
    data_dir = Path(data_dir)
    log_dir = Path(data_log_dir) if data_log_dir is not None else data_dir
    snap: Snapshot | None = None
    snap_path: Path | None = None
    skipped: list[Path] = []
    for path in find_snapshots(data_dir, MAX_SNAPSHOTS_TRIED):
        log.info("Reading snapshot %s", path)
        try:
            snap = load_snapshot(path, digest_enabled=digest_enabled, extended_types=extended_types,
                                 last_zxid_enabled=last_zxid_enabled)
            snap_path = path
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
            path = version_dir(data_dir) / snapshot_name(0, compression)
            log.info("Snapshotting: 0x0 to %s", path)
            write_snapshot(path, tree, sessions, 0, last_zxid=0 if last_zxid_enabled else None)
            result.created_initial_snapshot = path
        return result

    result = LoadResult(
        snap.tree, snap.sessions, snap.zxid, snapshot=snap_path, snapshot_zxid=snap.zxid,
        skipped_snapshots=skipped,
    )
    _replay(result, log_dir, snapshot_target(result, snap.digest), cut_torn_tail)
    return result


def fast_forward(
    tree: DataTree,
    sessions: dict[int, int],
    last_zxid: int,
    data_log_dir: str | os.PathLike[str],
) -> LoadResult:
    """ZKDatabase.fastForwardDataBase: bring a database already in memory up
    to the end of the log, instead of loading it again.

    ``tree`` holds every txn up to ``last_zxid`` (the last one really
    applied); the txns logged after it (proposals of an ended role that were
    never committed) are replayed, so the result is what :func:`recover`
    would load from disk, without reading the snapshot and the whole log
    again: a role change costs the log tail, not the size of the tree.
    """
    tree.last_processed_zxid = last_zxid
    result = LoadResult(tree, sessions, last_zxid)
    _replay(result, Path(data_log_dir), None, True)
    return result


def _replay(
    result: LoadResult, log_dir: Path, target: ZxidDigest | None, cut_torn_tail: bool
) -> None:
    """Replay the logs after the tree's zxid, then cut a torn tail of the last file.

    Only a tail is cut: when records follow the damaged one (a bit flipped
    in place, not a write cut short), cutting would throw away txns that
    were durable and acknowledged. Such damage is left on disk as it is:
    a checksum or decoding failure refuses the start, as in Apache ("CRC
    check failed"); a record whose end marker is gone ends the log there,
    as Apache's iterator ends it, without truncating the file.
    """
    tree = result.tree
    it = TxnIterator(log_dir, tree.last_processed_zxid + 1, digest_enabled=tree.digest_enabled)
    replay(result, it, target)
    if not it.files:
        return
    last = it.files[-1]
    damaged = [e for e in it.ends if e.path == last and not e.clean]
    follows = data_after_damage(damaged[-1]) if damaged and cut_torn_tail else None
    if follows is not None:
        torn_tail([e for e in it.ends if e.path != last], last, cut_torn_tail)  # older files
        end = damaged[-1]
        what = (f"Transaction log {end.path} is damaged at offset {end.offset} ({end.reason} "
                f"{end.detail}) and more data follows at offset {follows}: not a torn tail")
        if end.fatal:
            raise RecoveryError(what + "; refusing to start rather than drop the txns after it")
        log.error("%s; the log ends there (as Apache reads it) and the file is left uncut",
                  what)
        return
    cut = torn_tail(it.ends, last, cut_torn_tail)
    if cut is not None:
        cut_file(cut.path, cut.offset)
        result.cut = cut
