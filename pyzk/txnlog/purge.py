"""Autopurge: delete old snapshots and the logs no retained snapshot needs (PurgeTxnLog).

Keeps the ``snap_retain_count`` newest valid snapshots, every log file at or
after the oldest of them, and the one log file that starts before it (it
holds the txns right after that snapshot). Everything else named
``log.*``/``snapshot.*`` with a lower zxid goes. The server runs this every
``autopurge.purgeInterval`` hours (0 disables it); the count is at least 3.

Pure: the choice over file names; pyzk.shell.autopurge lists the
directories, finds the valid snapshots and deletes.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from pyzk.txnlog.names import LOG_PREFIX, SNAPSHOT_PREFIX, zxid_from_name

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


def logs_for_snapshot(log_names: Iterable[str], zxid: int) -> set[str]:
    """FileTxnLog.getLogFiles: the logs from the last one starting at or before ``zxid``."""
    named = [(z, n) for n in log_names if (z := zxid_from_name(n, LOG_PREFIX)) != -1]
    start = max((z for z, _ in named if z <= zxid), default=0)
    return {n for z, n in named if z >= start}


def select_purge(
    log_names: Iterable[str], snap_names: Iterable[str], least: int
) -> tuple[list[str], list[str]]:
    """(log names, snapshot names) PurgeTxnLog.purge deletes, in name order.

    ``least`` is the zxid of the oldest snapshot kept; the logs it needs
    stay, and so does every file named at or after it.
    """
    log_names = sorted(log_names)
    retained = logs_for_snapshot(log_names, least)
    logs = [n for n in log_names if n.startswith(LOG_PREFIX + ".") and n not in retained
            and zxid_from_name(n, LOG_PREFIX) < least]
    snaps = [n for n in sorted(snap_names) if n.startswith(SNAPSHOT_PREFIX + ".")
             and zxid_from_name(n, SNAPSHOT_PREFIX) < least]
    return logs, snaps
