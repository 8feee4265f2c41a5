"""Autopurge: delete old snapshots and the logs no retained snapshot needs (PurgeTxnLog).

Keeps the ``snap_retain_count`` newest valid snapshots, every log file at or
after the oldest of them, and the one log file that starts before it (it
holds the txns right after that snapshot). Everything else named
``log.*``/``snapshot.*`` with a lower zxid goes. The server runs this every
``autopurge.purgeInterval`` hours (0 disables it); the count is at least 3.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from pyzk.txnlog.files import LOG_PREFIX, SNAPSHOT_PREFIX, version_dir, zxid_from_name
from pyzk.txnlog.log import log_files
from pyzk.txnlog.snapshot import find_snapshots

log = logging.getLogger(__name__)

MIN_SNAP_RETAIN_COUNT = 3


def effective_retain_count(configured: int) -> int:
    """QuorumPeerConfig: a snapRetainCount below 3 is reset to 3 (with a warning)."""
    if configured < MIN_SNAP_RETAIN_COUNT:
        log.warning(
            "Invalid autopurge.snapRetainCount: %d. Defaulting to %d",
            configured, MIN_SNAP_RETAIN_COUNT,
        )
        return MIN_SNAP_RETAIN_COUNT
    return configured


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
    # FileTxnLog.getLogFiles(least): the newest log starting at or before it, and later ones
    retained = set(_logs_for_snapshot(data_log_dir, least))
    out: list[Path] = []
    dirs = ((version_dir(data_log_dir), LOG_PREFIX), (version_dir(snap_dir), SNAPSHOT_PREFIX))
    for d, prefix in dirs:
        try:
            names = sorted(os.listdir(d))
        except FileNotFoundError:
            continue
        for name in names:
            f = d / name
            if not name.startswith(prefix + ".") or f in retained:
                continue
            if zxid_from_name(name, prefix) < least:
                out.append(f)
    return out


def _logs_for_snapshot(data_log_dir: str | os.PathLike[str], zxid: int) -> list[Path]:
    """FileTxnLog.getLogFiles: logs from the last one starting at or before ``zxid``."""
    files = log_files(data_log_dir, 0)
    start = 0
    for f in files:
        z = zxid_from_name(f.name, LOG_PREFIX)
        if z > zxid:
            break
        start = max(start, z)
    return [f for f in files if zxid_from_name(f.name, LOG_PREFIX) >= start]


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
