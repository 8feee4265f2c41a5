"""What the four-letter words report about the host: the OS probes.

File-descriptor counts (``mntr``), directory sizes (``conf``, ``dirs``), the
local time zone (``dump``), the version string with its build date and the
``envi`` facts.  Each probe fails soft, as Apache's do: a value it cannot
read is -1, 0 or ``<NA>``, never an exception.

Version string: Apache prints ``Version.getFullVersion()``, i.e.
``<version>-<git revision>, built on <date> UTC``.  pyzk keeps that shape with
the Apache release it is compatible with as the version and ``pyzk-<pyzk
version>`` as the revision: ``3.8.0-pyzk-0.1.0, built on 2025-01-01 00:00 UTC``.
Parsers that take the leading dotted digits (kazoo's ``server_version``), split
on ``-`` or ``,`` or match ``^\\d+\\.\\d+\\.\\d+`` still find 3.8.0, and a human
can tell pyzk from Apache.  The "built on" date is the modification time of the
installed pyzk package.

``envi`` keeps Apache's keys in Apache's order so that ``key=value`` parsers
work; where a key names a Java fact, pyzk reports the Python equivalent under
the same key: ``java.version`` is the Python version, ``java.vendor`` the
implementation (CPython), ``java.home`` ``sys.prefix``, ``java.class.path``
``sys.path``, ``java.library.path`` the interpreter's LIBDIR and the
``os.memory.*`` values the process's resident size (total), the machine's
available memory (free) and physical memory (max).
"""

from __future__ import annotations

import contextlib
import getpass
import os
import platform
import socket
import sys
import sysconfig
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from pyzk import APACHE_COMPAT_VERSION, __version__

_LONG_MAX = (1 << 63) - 1


def dir_size(path: str | os.PathLike[str]) -> int:
    """ZooKeeperServer.getDirSize: a file's length, or the sum over a directory
    tree; 0 for what does not exist."""
    p = Path(path)
    try:
        if p.is_dir():
            return sum(dir_size(c) for c in p.iterdir())
        return p.stat().st_size if p.exists() else 0
    except OSError:
        return 0


def open_fd_count() -> int:
    """UnixOperatingSystemMXBean.getOpenFileDescriptorCount (Linux: /proc/self/fd)."""
    try:
        return len(os.listdir("/proc/self/fd")) - 1  # minus the directory's own fd
    except OSError:
        return -1


def max_fd_count() -> int:
    """UnixOperatingSystemMXBean.getMaxFileDescriptorCount: the soft RLIMIT_NOFILE."""
    try:
        import resource

        soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    except (ImportError, OSError, ValueError):
        return -1
    return soft if soft != getattr(resource, "RLIM_INFINITY", -1) else _LONG_MAX


def local_time(wall_ms: int) -> datetime:
    """The wall-clock instant ``wall_ms`` in the local time zone (what Java's
    default zone is), for :func:`pyzk.javacompat.java_date`."""
    # from an aware UTC instant, so DST's repeated hour gets the right zone
    return datetime.fromtimestamp(wall_ms / 1000.0, UTC).astimezone()


def _meminfo(key: str) -> int | None:
    """A /proc/meminfo entry in bytes (None when it cannot be read)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return None


def _rss_bytes() -> int:
    """This process's resident set size (/proc/self/statm; 0 when unreadable)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


def _java_arch() -> str:
    machine = platform.machine().lower()
    return {"x86_64": "amd64", "i386": "x86", "i686": "x86"}.get(machine, machine or "<NA>")


def _host_name() -> str:
    try:
        return socket.getfqdn(socket.gethostname())
    except OSError:
        return "<NA>"


def _user_name() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "<NA>"


def _build_date() -> str:
    try:
        mtime = Path(__file__).resolve().parent.parent.joinpath("__init__.py").stat().st_mtime
    except OSError:
        mtime = 0.0
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(mtime))


def full_version() -> str:
    """Version.getFullVersion() for pyzk; see the module docstring for the choice."""
    return f"{APACHE_COMPAT_VERSION}-pyzk-{__version__}, built on {_build_date()}"


def environment() -> list[tuple[str, str]]:
    """Environment.list() with Python facts under Apache's keys (see the module docstring)."""
    mb = 1024 * 1024
    phys = 0
    with contextlib.suppress(OSError, ValueError):
        phys = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    available = _meminfo("MemAvailable")
    return [
        ("zookeeper.version", full_version()),
        ("host.name", _host_name()),
        ("java.version", platform.python_version()),
        ("java.vendor", platform.python_implementation()),
        ("java.home", sys.prefix),
        ("java.class.path", os.pathsep.join(sys.path)),
        ("java.library.path", sysconfig.get_config_var("LIBDIR") or "<NA>"),
        ("java.io.tmpdir", tempfile.gettempdir()),
        ("java.compiler", "<NA>"),
        ("os.name", platform.system() or "<NA>"),
        ("os.arch", _java_arch()),
        ("os.version", platform.release() or "<NA>"),
        ("user.name", _user_name()),
        ("user.home", os.path.expanduser("~")),
        ("user.dir", os.getcwd()),
        ("os.memory.free", f"{(available if available is not None else 0) // mb}MB"),
        ("os.memory.max", f"{phys // mb}MB"),
        ("os.memory.total", f"{_rss_bytes() // mb}MB"),
    ]


__all__ = ["dir_size", "environment", "full_version", "local_time", "max_fd_count",
           "open_fd_count"]
