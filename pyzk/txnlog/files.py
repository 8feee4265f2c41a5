"""Names and places of Apache's data files (Util, FileTxnSnapLog).

Every directory argument in pyzk.txnlog is a *configured* directory
(``dataDir`` / ``dataLogDir``); the files live in its ``version-2``
subdirectory, as FileTxnSnapLog puts them.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

VERSION_DIR = "version-2"
LOG_PREFIX = "log"
SNAPSHOT_PREFIX = "snapshot"
# What Long.parseLong(s, 16) accepts (Python's int() also takes "0x" and "_").
_HEX_LONG = re.compile(r"[+-]?[0-9a-fA-F]+")


def version_dir(d: str | os.PathLike[str]) -> Path:
    return Path(d) / VERSION_DIR


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


def sorted_files(d: Path, prefix: str, ascending: bool = True) -> list[Path]:
    """Util.sortDataDir over the files of ``d`` that carry a zxid for ``prefix``."""
    try:
        names = os.listdir(d)
    except FileNotFoundError:
        return []
    files = [(zxid_from_name(n, prefix), n) for n in names]
    files = [(z, n) for z, n in files if z != -1]
    files.sort(key=lambda zn: zn[0], reverse=not ascending)
    return [d / n for _, n in files]


def fsync_dir(d: Path) -> None:
    """Make a rename or unlink in ``d`` durable (no-op where directories cannot be opened)."""
    with contextlib.suppress(OSError):
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
