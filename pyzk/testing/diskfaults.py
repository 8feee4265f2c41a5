"""Disk faults for server tests: failing writes and fsyncs, a disk that fills
up, and damaged log and snapshot files.

Three tools, each usable on an Apache and a pyzk server alike, so that a test
can put both through the same fault and compare what they do:

* :class:`DiskFaults`: an ``LD_PRELOAD`` shim (C, below, built with gcc on
  first use) that sits in front of libc's ``write``/``pwrite``/``writev``
  family and ``fsync``/``fdatasync``. For descriptors of files under the
  given directories, and only while armed, it fails them with EIO or ENOSPC.
  It is the same mechanism for the JVM and for CPython (seen with strace:
  Apache 3.8's FileTxnLog writes with ``write``, pads with ``pwrite64`` and
  syncs with ``fdatasync``; its snapshots are written with ``write`` and,
  taken in the background, not synced; the epoch files are fsynced; pyzk
  writes its log with ``pwrite`` and ``fdatasync``, its snapshots and epoch
  files with ``write`` and ``fsync``). The control block is a small file
  both sides map shared: the test arms and disarms by writing to it, the
  shim reads it with one memory load per call and counts what it saw and
  failed there (a snapshot writer forked by pyzk shares it too).
* :class:`SizedTmpfs`: a tmpfs mount with a size limit, for a real ENOSPC,
  and a remount to give the space back.
* :func:`tear_last_txn`, :func:`flip_bit_in_last_txn`,
  :func:`corrupt_newest_snapshot`: the damage a crash or a bad disk leaves.

The shim is test machinery and Linux-only (``/proc/self/fd`` names each
descriptor's file); :func:`build_shim` raises :class:`DiskFaultsUnavailable`
when gcc is missing, which tests turn into a skip.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import mmap
import os
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Self

from pyzk.shell.datadir import sorted_files, version_dir
from pyzk.shell.snapfiles import find_snapshots
from pyzk.shell.txnlogfiles import scan_file
from pyzk.txnlog.log import FileEnd, LogEntry
from pyzk.txnlog.names import LOG_PREFIX

if TYPE_CHECKING:
    from pyzk.testing.servers import ServerProcess

log = logging.getLogger(__name__)

#: Env vars the shim reads at load time.
ENV_CTL = "PYZK_DISKFAULTS_CTL"
ENV_DIRS = "PYZK_DISKFAULTS_DIRS"

#: Fault modes and their code in the control block.
MODES = {"off": 0, "fsync-eio": 1, "write-enospc": 2, "write-eio": 3}

_MAGIC = 0x5A4B4446  # "ZKDF"
# magic, mode, skip, limit, injected, seen, last pid (int32 each, native order)
_CTL = struct.Struct("=7i")
_MODE_OFF, _SKIP_OFF, _LIMIT_OFF = 4, 8, 12

SHIM_SOURCE = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

/* The control block, mapped shared from the file $PYZK_DISKFAULTS_CTL. */
struct ctl {
    int32_t magic;
    int32_t mode;      /* 0 off, 1 fsync-eio, 2 write-enospc, 3 write-eio */
    int32_t skip;      /* matching calls still let through before failing */
    int32_t limit;     /* failures still to inject; -1: no limit */
    int32_t injected;  /* failures injected so far */
    int32_t seen;      /* matching calls seen while armed */
    int32_t last_pid;  /* the process that failed the last call */
};

#define MAGIC 0x5a4b4446
#define MAX_DIRS 8
#define MAX_PATH 4096

static struct ctl *ctl;
static char dirs[MAX_DIRS][MAX_PATH];
static size_t dir_len[MAX_DIRS];
static int ndirs;

#define REAL(name) \
    static __typeof__(&name) real_##name; \
    if (!real_##name) real_##name = (__typeof__(&name))dlsym(RTLD_NEXT, #name)

__attribute__((constructor)) static void diskfaults_init(void) {
    const char *path = getenv("PYZK_DISKFAULTS_CTL");
    const char *ds = getenv("PYZK_DISKFAULTS_DIRS");
    if (!path || !ds) return;
    while (*ds && ndirs < MAX_DIRS) {
        const char *end = strchr(ds, ':');
        size_t n = end ? (size_t)(end - ds) : strlen(ds);
        if (n > 0 && n < MAX_PATH) {
            memcpy(dirs[ndirs], ds, n);
            dirs[ndirs][n] = 0;
            dir_len[ndirs] = n;
            ndirs++;
        }
        if (!end) break;
        ds = end + 1;
    }
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0) return;
    void *p = mmap(NULL, sizeof(struct ctl), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    close(fd);
    if (p == MAP_FAILED) return;
    if (((struct ctl *)p)->magic != MAGIC) {
        munmap(p, sizeof(struct ctl));
        return;
    }
    ctl = (struct ctl *)p;
}

static int fd_matches(int fd) {
    char link[64], target[MAX_PATH];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof target - 1);
    if (n <= 0) return 0;
    target[n] = 0;
    for (int i = 0; i < ndirs; i++) {
        size_t l = dir_len[i];
        if ((size_t)n >= l && memcmp(target, dirs[i], l) == 0
                && (target[l] == '/' || target[l] == 0))
            return 1;
    }
    return 0;
}

/* The errno to fail this call with, or 0 to let it through. */
static int fault(int fd, int is_sync) {
    struct ctl *c = ctl;
    if (!c) return 0;
    int mode = __atomic_load_n(&c->mode, __ATOMIC_ACQUIRE);
    int err;
    if (mode == 0) return 0;
    if (mode == 1) {
        if (!is_sync) return 0;
        err = EIO;
    } else if (mode == 2 || mode == 3) {
        if (is_sync) return 0;
        err = mode == 2 ? ENOSPC : EIO;
    } else {
        return 0;
    }
    int saved = errno;
    int match = fd_matches(fd);
    errno = saved;
    if (!match) return 0;
    __atomic_add_fetch(&c->seen, 1, __ATOMIC_SEQ_CST);
    int32_t v = __atomic_load_n(&c->skip, __ATOMIC_SEQ_CST);
    while (v > 0) {
        if (__atomic_compare_exchange_n(&c->skip, &v, v - 1, 0,
                                        __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            return 0;
    }
    v = __atomic_load_n(&c->limit, __ATOMIC_SEQ_CST);
    while (v >= 0) {
        if (v == 0) return 0;
        if (__atomic_compare_exchange_n(&c->limit, &v, v - 1, 0,
                                        __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST))
            break;
    }
    __atomic_add_fetch(&c->injected, 1, __ATOMIC_SEQ_CST);
    __atomic_store_n(&c->last_pid, (int32_t)getpid(), __ATOMIC_SEQ_CST);
    return err;
}

#define FAIL_IF(fd, sync) do { int e_ = fault((fd), (sync)); \
    if (e_) { errno = e_; return -1; } } while (0)

ssize_t write(int fd, const void *buf, size_t n) {
    REAL(write);
    FAIL_IF(fd, 0);
    return real_write(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
    REAL(pwrite);
    FAIL_IF(fd, 0);
    return real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off) {
    REAL(pwrite64);
    FAIL_IF(fd, 0);
    return real_pwrite64(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
    REAL(writev);
    FAIL_IF(fd, 0);
    return real_writev(fd, iov, cnt);
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off) {
    REAL(pwritev);
    FAIL_IF(fd, 0);
    return real_pwritev(fd, iov, cnt, off);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off64_t off) {
    REAL(pwritev64);
    FAIL_IF(fd, 0);
    return real_pwritev64(fd, iov, cnt, off);
}

ssize_t pwritev2(int fd, const struct iovec *iov, int cnt, off_t off, int flags) {
    REAL(pwritev2);
    FAIL_IF(fd, 0);
    return real_pwritev2(fd, iov, cnt, off, flags);
}

int fsync(int fd) {
    REAL(fsync);
    FAIL_IF(fd, 1);
    return real_fsync(fd);
}

int fdatasync(int fd) {
    REAL(fdatasync);
    FAIL_IF(fd, 1);
    return real_fdatasync(fd);
}

int sync_file_range(int fd, off64_t off, off64_t n, unsigned int flags) {
    REAL(sync_file_range);
    FAIL_IF(fd, 1);
    return real_sync_file_range(fd, off, n, flags);
}
"""


class DiskFaultsUnavailable(RuntimeError):
    """The shim cannot be built or a tmpfs cannot be mounted here (tests skip)."""


def build_shim(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The shim's shared object, compiled once per source text.

    It is cached under a name made of the source's hash in ``cache_dir``
    (default: the system temp dir), so every test of a session, and every
    server of a test, loads the same file, built once; a parallel build
    writes its own temp file and renames it into place.
    """
    gcc = shutil.which("gcc") or shutil.which("cc")
    if gcc is None:
        raise DiskFaultsUnavailable("gcc is not installed (needed to build the disk-fault shim)")
    tag = hashlib.sha256(SHIM_SOURCE.encode()).hexdigest()[:16]
    base = Path(cache_dir) if cache_dir is not None else Path(tempfile.gettempdir())
    out_dir = base / f"pyzk-diskfaults-shim-{os.getuid()}"
    so = out_dir / f"diskfaults-{tag}.so"
    if so.exists():
        return so
    out_dir.mkdir(parents=True, exist_ok=True)
    src = out_dir / f"diskfaults-{tag}.{os.getpid()}.c"
    tmp = out_dir / f"diskfaults-{tag}.{os.getpid()}.so"
    src.write_text(SHIM_SOURCE)
    r = subprocess.run([gcc, "-shared", "-fPIC", "-O2", "-Wall", "-o", str(tmp), str(src),
                        "-ldl"], capture_output=True, text=True, timeout=120)
    src.unlink(missing_ok=True)
    if r.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise DiskFaultsUnavailable(f"building the disk-fault shim failed:\n{r.stderr}")
    os.replace(tmp, so)
    log.info("built the disk-fault shim %s", so)
    return so


class DiskFaults:
    """Fail writes or syncs of the files under ``dirs`` in the processes
    started with :meth:`env` (or :meth:`attach`), while armed.

    ``dirs`` are matched by prefix against each descriptor's path, so give
    the directory the files live in (``<dataDir>/version-2``), not one that
    also holds the server's own log (a full "disk" there would only break
    the logging). Modes (see :data:`MODES`):

    ``fsync-eio``
        fsync/fdatasync (and sync_file_range) fail with EIO: the kernel
        could not write the pages back.
    ``write-enospc``
        write/pwrite/writev fail with ENOSPC, nothing written: a full disk.
    ``write-eio``
        the same with EIO.
    """

    def __init__(self, *dirs: str | os.PathLike[str], workdir: str | os.PathLike[str] | None = None,
                 shim: str | os.PathLike[str] | None = None) -> None:
        if not dirs:
            raise ValueError("DiskFaults needs at least one directory")
        self.dirs = [Path(os.path.abspath(d)) for d in dirs]
        self.shim = Path(shim) if shim is not None else build_shim()
        self._own_workdir = workdir is None
        self.workdir = Path(workdir if workdir is not None
                            else tempfile.mkdtemp(prefix="pyzk-diskfaults-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.ctl_path = self.workdir / "diskfaults.ctl"
        self.ctl_path.write_bytes(_CTL.pack(_MAGIC, 0, 0, -1, 0, 0, 0).ljust(mmap.PAGESIZE, b"\0"))
        fd = os.open(self.ctl_path, os.O_RDWR)
        try:
            self._map: mmap.mmap | None = mmap.mmap(fd, mmap.PAGESIZE)
        finally:
            os.close(fd)
        self.mode = "off"

    def env(self) -> dict[str, str]:
        """The variables a server process needs (LD_PRELOAD first in line)."""
        preload = os.environ.get("LD_PRELOAD", "")
        return {
            "LD_PRELOAD": str(self.shim) + (" " + preload if preload else ""),
            ENV_CTL: str(self.ctl_path),
            ENV_DIRS: ":".join(str(d) for d in self.dirs),
        }

    def attach(self, server: ServerProcess) -> ServerProcess:
        """Start ``server`` (and each restart of it) with :meth:`env` added."""
        base = server.environment

        def environment() -> dict[str, str]:
            return {**base(), **self.env()}

        server.environment = environment  # type: ignore[method-assign]
        return server

    def _put(self, offset: int, value: int) -> None:
        assert self._map is not None, "DiskFaults is closed"
        struct.pack_into("=i", self._map, offset, value)

    def arm(self, mode: str, *, after: int = 0, limit: int | None = None) -> None:
        """Fail matching calls from now on: the first ``after`` matching calls
        still go through, then at most ``limit`` fail (None: all of them)."""
        if mode not in MODES or mode == "off":
            raise ValueError(f"unknown disk fault mode {mode!r}; one of {sorted(MODES)[1:]}")
        self._put(_MODE_OFF, 0)
        self._put(_SKIP_OFF, after)
        self._put(_LIMIT_OFF, -1 if limit is None else limit)
        self._put(_MODE_OFF, MODES[mode])
        self.mode = mode
        log.info("disk faults armed: %s on %s (after %d, limit %s)", mode,
                 ":".join(map(str, self.dirs)), after, limit)

    def disarm(self) -> None:
        """Let every call through again (the counters are kept)."""
        self._put(_MODE_OFF, 0)
        self.mode = "off"
        log.info("disk faults disarmed after %d injected", self.injected)

    def _counters(self) -> tuple[int, ...]:
        assert self._map is not None, "DiskFaults is closed"
        return _CTL.unpack_from(self._map, 0)

    @property
    def injected(self) -> int:
        """How many calls the shim failed so far (in every process using it)."""
        return self._counters()[4]

    @property
    def seen(self) -> int:
        """How many matching calls the shim saw while armed (failed or let through)."""
        return self._counters()[5]

    @property
    def last_pid(self) -> int:
        """The process that got the last failure (a forked snapshot writer has its own)."""
        return self._counters()[6]

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


class SizedTmpfs:
    """A tmpfs of ``size`` bytes mounted on ``mountpoint`` (root only): a
    disk that really fills up. :meth:`resize` remounts it bigger or smaller
    with its files kept; leaving the context unmounts it."""

    def __init__(self, mountpoint: str | os.PathLike[str], size: int) -> None:
        self.mountpoint = Path(mountpoint)
        self.size = size
        self.mounted = False

    def _mount(self, *opts: str) -> None:
        mount = shutil.which("mount")
        if mount is None:
            raise DiskFaultsUnavailable("no mount command")
        r = subprocess.run([mount, "-t", "tmpfs", "-o", ",".join(opts), "tmpfs",
                            str(self.mountpoint)], capture_output=True, text=True, timeout=30)
        if r.returncode != 0:
            raise DiskFaultsUnavailable(f"mount -t tmpfs failed: {r.stderr.strip()}")

    def mount(self) -> None:
        """Mount it; DiskFaultsUnavailable when not permitted (not root, no mount)."""
        if os.geteuid() != 0:
            raise DiskFaultsUnavailable("mounting a tmpfs needs root")
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        self._mount(f"size={self.size}", "mode=0755")
        self.mounted = True

    def resize(self, size: int) -> None:
        """Remount with a new size limit, files kept (space given back)."""
        self._mount("remount", f"size={size}")
        self.size = size

    def free(self) -> int:
        """Bytes still free on it."""
        st = os.statvfs(self.mountpoint)
        return st.f_bavail * st.f_frsize

    def unmount(self) -> None:
        if not self.mounted:
            return
        umount = shutil.which("umount") or "umount"
        r = subprocess.run([umount, str(self.mountpoint)], capture_output=True, text=True,
                           timeout=30)
        if r.returncode != 0:  # busy: a process still holds a file; detach it
            subprocess.run([umount, "-l", str(self.mountpoint)], capture_output=True,
                           timeout=30, check=False)
        self.mounted = False

    def __enter__(self) -> Self:
        self.mount()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.unmount()


def copy_sparse(src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> Path:
    """Copy the directory tree ``src`` to ``dst`` keeping the files' holes.

    Log files are preallocated to 64 MB of which a few KB are written; a
    plain copy writes every zero, this one copies only the data regions
    (SEEK_DATA/SEEK_HOLE) and sets each file's size, so copying a data
    directory for a comparison takes milliseconds.
    """
    src, dst = Path(src), Path(dst)
    for root, _dirs, files in os.walk(src):
        out = dst / Path(root).relative_to(src)
        out.mkdir(parents=True, exist_ok=True)
        for name in files:
            _copy_file_sparse(Path(root) / name, out / name)
    return dst


def _copy_file_sparse(src: Path, dst: Path) -> None:
    with open(src, "rb") as fi, open(dst, "wb") as fo:
        size = os.fstat(fi.fileno()).st_size
        pos = 0
        while pos < size:
            try:
                start = os.lseek(fi.fileno(), pos, os.SEEK_DATA)
                end = os.lseek(fi.fileno(), start, os.SEEK_HOLE)
            except OSError:  # ENXIO: only a hole is left
                break
            fi.seek(start)
            fo.seek(start)
            left = end - start
            while left > 0:
                chunk = fi.read(min(left, 1 << 20))
                if not chunk:
                    break
                fo.write(chunk)
                left -= len(chunk)
            pos = end
        fo.truncate(size)
    shutil.copystat(src, dst)


# ------------------------------------------------------------------ damaged files


def _records(log_dir: str | os.PathLike[str]) -> tuple[Path, list[LogEntry], FileEnd | None]:
    """The newest log file with whole records in it, its records and how they ended."""
    for path in sorted_files(version_dir(log_dir), LOG_PREFIX, ascending=False):
        entries: list[LogEntry] = []
        end: FileEnd | None = None
        with contextlib.suppress(OSError, ValueError):
            for item in scan_file(path):
                if isinstance(item, FileEnd):
                    end = item
                else:
                    entries.append(item)
        if entries:
            return path, entries, end
    raise FileNotFoundError(f"no log file with a whole txn in {version_dir(log_dir)}")


def last_txn(log_dir: str | os.PathLike[str]) -> LogEntry:
    """The last whole txn of the newest log file that has one."""
    return _records(log_dir)[1][-1]


def tear_last_txn(log_dir: str | os.PathLike[str], *, zero: bool = False) -> LogEntry:
    """A torn tail: the last txn half written. With ``zero`` the file keeps its
    size and the record's second half is zeros (a preallocated file after a
    crash); otherwise the file ends mid-record. Returns the damaged txn."""
    path, entries, _ = _records(log_dir)
    e = entries[-1]
    mid = e.offset + (e.end - e.offset) // 2
    with open(path, "r+b") as f:
        if zero:
            f.seek(mid)
            f.write(b"\0" * (e.end - mid))
        else:
            f.truncate(mid)
    log.info("tore txn 0x%x of %s at offset %d", e.hdr.zxid, path.name, mid)
    return e


def flip_bit_in_last_txn(log_dir: str | os.PathLike[str], bit: int = 3) -> LogEntry:
    """Flip one bit in the middle of the last txn's bytes (its checksum no
    longer matches); returns the damaged txn."""
    path, entries, _ = _records(log_dir)
    e = entries[-1]
    pos = e.offset + (e.end - e.offset) // 2
    with open(path, "r+b") as f:
        f.seek(pos)
        b = f.read(1)
        f.seek(pos)
        f.write(bytes([b[0] ^ (1 << bit)]))
    log.info("flipped bit %d at offset %d (txn 0x%x) of %s", bit, pos, e.hdr.zxid, path.name)
    return e


def corrupt_newest_snapshot(data_dir: str | os.PathLike[str], *, how: str = "flip") -> Path:
    """Damage the newest valid snapshot: ``flip`` a byte in its middle (it
    still looks valid by name and size, but its checksum fails), ``truncate``
    it to half (a snapshot cut short), or ``zero`` its first half."""
    snaps = find_snapshots(data_dir, 1)
    if not snaps:
        raise FileNotFoundError(f"no snapshot in {version_dir(data_dir)}")
    path = snaps[0]
    data = bytearray(path.read_bytes())
    half = len(data) // 2
    if how == "flip":
        data[half] ^= 0xFF
    elif how == "truncate":
        del data[half:]
    elif how == "zero":
        data[:half] = bytes(half)
    else:
        raise ValueError(f"unknown snapshot damage {how!r}")
    path.write_bytes(bytes(data))
    log.info("corrupted snapshot %s (%s)", path.name, how)
    return path
