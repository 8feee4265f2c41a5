"""Names of Apache's data files (Util.makeLogName, makeSnapshotName, getZxidFromName).

The files live in the ``version-2`` subdirectory of a configured
``dataDir`` / ``dataLogDir``, as FileTxnSnapLog puts them; listing and
syncing those directories is the shell's (pyzk.shell.datadir).
"""

from __future__ import annotations

import re

VERSION_DIR = "version-2"
LOG_PREFIX = "log"
SNAPSHOT_PREFIX = "snapshot"
# What Long.parseLong(s, 16) accepts (Python's int() also takes "0x" and "_").
_HEX_LONG = re.compile(r"[+-]?[0-9a-fA-F]+")


def zxid_from_name(name: str, prefix: str) -> int:
    """Util.getZxidFromName: the hex after ``prefix.``, -1 if the name does not parse.

    Like Apache only the second dot-separated part counts, so
    ``snapshot.1a.gz`` is 0x1a.
    """
    parts = name.split(".")
    if len(parts) >= 2 and parts[0] == prefix and _HEX_LONG.fullmatch(parts[1]):
        v = int(parts[1], 16)
        if -(1 << 63) <= v < (1 << 63):
            return v
    return -1


def log_name(zxid: int) -> str:
    """Util.makeLogName: ``log.<hex>`` (Long.toHexString, no padding)."""
    return f"{LOG_PREFIX}.{zxid & 0xFFFFFFFFFFFFFFFF:x}"


def snapshot_name(zxid: int, compression: str = "") -> str:
    """Util.makeSnapshotName: ``snapshot.<hex>`` plus ``.gz``/``.snappy`` when compressed."""
    ext = f".{compression}" if compression else ""
    return f"{SNAPSHOT_PREFIX}.{zxid & 0xFFFFFFFFFFFFFFFF:x}{ext}"
