"""The data directories on disk: ``version-2``, listing by zxid, directory fsync, epoch files.

Every directory argument here and in the other file modules of the shell
(txnlogfiles, snapfiles, recovery, autopurge) is a *configured* directory
(``dataDir`` / ``dataLogDir``); the files live in its ``version-2``
subdirectory, as FileTxnSnapLog puts them. The names themselves are
pyzk.txnlog.names (pure).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from pyzk.javacompat import java_parse_long
from pyzk.txnlog.names import VERSION_DIR, zxid_from_name
from pyzk.txnlog.replay import RecoveryError

ACCEPTED_EPOCH = "acceptedEpoch"
CURRENT_EPOCH = "currentEpoch"


def version_dir(d: str | os.PathLike[str]) -> Path:
    return Path(d) / VERSION_DIR


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
    try:
        with open(tmp, "w") as f:
            f.write(str(value))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        # a failed write or fsync leaves the old file (AtomicFileOutputStream
        # deletes its temp file the same way)
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(path.parent)


def read_epochs(data_dir: str | os.PathLike[str]) -> tuple[int | None, int | None]:
    """(acceptedEpoch, currentEpoch) from ``<data_dir>/version-2``, None where absent."""
    d = version_dir(data_dir)
    return read_long_file(d / ACCEPTED_EPOCH), read_long_file(d / CURRENT_EPOCH)


def write_accepted_epoch(data_dir: str | os.PathLike[str], epoch: int) -> None:
    write_long_file(version_dir(data_dir) / ACCEPTED_EPOCH, epoch)


def write_current_epoch(data_dir: str | os.PathLike[str], epoch: int) -> None:
    write_long_file(version_dir(data_dir) / CURRENT_EPOCH, epoch)
