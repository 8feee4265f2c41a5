"""Autopurge on disk: PurgeTxnLog.purge over the data directories.

Which files go is pyzk.txnlog.purge (pure, by name); this module lists the
``version-2`` directories, finds the newest valid snapshots and deletes.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pyzk.shell.datadir import version_dir
from pyzk.shell.snapfiles import find_snapshots
from pyzk.txnlog.names import SNAPSHOT_PREFIX, zxid_from_name
from pyzk.txnlog.purge import MIN_SNAP_RETAIN_COUNT, select_purge

log = logging.getLogger(__name__)


def _names(d: Path) -> list[str]:
    try:
        return os.listdir(d)
    except FileNotFoundError:
        return []


def files_to_purge(
    data_log_dir: str | os.PathLike[str], snap_dir: str | os.PathLike[str], num: int
) -> list[Path]:
    """What PurgeTxnLog.purge would delete: old logs first, then old snapshots."""
    if num < MIN_SNAP_RETAIN_COUNT:
        raise ValueError("snapRetainCount should be greater than or equal to 3")
    snaps = find_snapshots(snap_dir, num)
    if not snaps:
        return []
    least = zxid_from_name(snaps[-1].name, SNAPSHOT_PREFIX)
    log_d, snap_d = version_dir(data_log_dir), version_dir(snap_dir)
    logs, old_snaps = select_purge(_names(log_d), _names(snap_d), least)
    return [log_d / n for n in logs] + [snap_d / n for n in old_snaps]


def purge(
    data_log_dir: str | os.PathLike[str], snap_dir: str | os.PathLike[str], num: int
) -> list[Path]:
    """PurgeTxnLog.purge: delete and return the files no retained snapshot needs."""
    removed = []
    for f in files_to_purge(data_log_dir, snap_dir, num):
        log.info("Removing file: %s", f)
        try:
            f.unlink()
            removed.append(f)
        except OSError as e:
            log.error("Failed to remove %s: %s", f, e)
    return removed
