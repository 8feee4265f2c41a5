"""Disk faults on a standalone server, pyzk and Apache put through the same ones.

A failed fsync (EIO), a failed write (EIO, ENOSPC) and a disk that really
fills up (a small tmpfs) under the transaction log; a full disk or a failed
fsync under the snapshots; a torn, a bit-flipped and a damaged-in-the-middle
log, and damaged snapshots, at restart. Writers record only what the server
acknowledged; each check restarts the server with the fault gone and reads
everything back.

What Apache 3.8 does (observed with the same shim, logs through slf4j-simple):

* log fsync or write fails: "Severe unrecoverable error, from thread :
  SyncThread:0", the server shuts down and the JVM exits (code 0 after an
  fsync EIO, 1 after ENOSPC, where a second failure comes up during the
  shutdown). pyzk stops the same way and exits with 1.
* a snapshot cannot be written: "Severe unrecoverable error, exiting", exit
  code 10, the partial snapshot.<zxid> left behind. pyzk keeps serving (the
  log still has every txn), drops the partial temp file and tries again at
  the next snapCount.
* restart: a torn last txn is skipped (pyzk also cuts it off the file); a
  checksum failure anywhere refuses the start ("CRC check failed"), except
  that pyzk takes a bad checksum in the very last record, followed only by
  the preallocated zeros, for a torn write and cuts it; a record without
  its end marker ends the log there in both, and pyzk leaves the file
  alone when records follow it; a damaged newest snapshot is passed over
  for an older one and the logs.
* a full tmpfs: pyzk used to map whole (sparse, preallocated) log files to
  read them, and a page fault in a hole of a full tmpfs is a SIGBUS: its
  restart on the full disk crashed. Only the written prefix is mapped now.
"""

from __future__ import annotations

import os
import struct
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyzk.jute import records as R
from pyzk.jute.constants import OpCode
from pyzk.shell.datadir import sorted_files
from pyzk.shell.recovery import RecoveryError, recover
from pyzk.shell.snapfiles import is_valid_snapshot
from pyzk.shell.txnlogfiles import data_end
from pyzk.testing import diskfaults as DF
from pyzk.testing.diskfaults import DiskFaults, DiskFaultsUnavailable, SizedTmpfs
from pyzk.testing.servers import (
    APACHE_CLASSPATH,
    ApacheServer,
    PyzkServer,
    ServerProcess,
    require_reference,
    wait_for,
)
from pyzk.testing.wire import connect
from pyzk.txnlog.names import LOG_PREFIX, SNAPSHOT_PREFIX

OPEN = [R.ACL(31, R.Id("world", "anyone"))]
#: How long a server may take to stop on its own after the fault.
EXIT_WAIT = 15.0


class LoggingApache(ApacheServer):
    """Apache with slf4j-simple instead of slf4j-nop, so its log lines can be read."""

    def command(self) -> list[str]:
        return [a.replace("slf4j-nop", "slf4j-simple") for a in super().command()]


def make_server(kind: str, data_dir: Path, **kw: object) -> ServerProcess:
    if kind == "apache":
        require_reference()
        return LoggingApache(data_dir, **kw)  # type: ignore[arg-type]
    return PyzkServer(data_dir, **kw)  # type: ignore[arg-type]


@pytest.fixture
def faults_for(tmp_path: Path) -> Iterator:
    """``faults_for(dir)``: a DiskFaults on ``dir``, closed after the test
    (skips when the shim cannot be built)."""
    made: list[DiskFaults] = []

    def make(*dirs: Path) -> DiskFaults:
        try:
            f = DiskFaults(*dirs, workdir=tmp_path / f"faults{len(made)}")
        except DiskFaultsUnavailable as e:
            pytest.skip(str(e))
        made.append(f)
        return f

    yield make
    for f in made:
        f.close()


class Writer:
    """Creates ``<parent>/n<i>`` pipelined (``window`` in flight) on one
    connection in a thread until the connection fails or ``stop``; ``acked``
    are the i the server answered OK, ``sent`` how many were sent."""

    def __init__(self, srv: ServerProcess, parent: str, size: int = 100, window: int = 64,
                 limit_s: float = 20.0, tag: str = "n") -> None:
        self.srv = srv
        self.parent = parent
        self.tag = tag
        self.data = b"w" * size
        self.window = window
        self.limit_s = limit_s
        self.acked: list[int] = []
        self.failed: list[int] = []
        self.sent = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            c = connect(self.srv.host, self.srv.port)
        except OSError as e:
            self.error = e
            return
        deadline = time.monotonic() + self.limit_s
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                while self.sent - len(self.acked) - len(self.failed) < self.window:
                    c.send(OpCode.create, R.CreateRequest(f"{self.parent}/{self.tag}{self.sent}",
                                                          self.data, OPEN, 0),
                           xid=self.sent + 1000)
                    self.sent += 1
                r = c.recv()
                (self.acked if r.err == 0 else self.failed).append(r.header.xid - 1000)
        except (OSError, ConnectionError, struct.error) as e:
            self.error = e
        finally:
            c.close()

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def wait_acked(self, n: int, timeout: float = 20.0) -> None:
        wait_for(lambda: len(self.acked) >= n or not self._thread.is_alive(), timeout,
                 f"{n} acknowledged writes")
        assert len(self.acked) >= n, f"writer stopped early: {self.error!r}"

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive(), "writer did not stop"


def create(srv: ServerProcess, path: str, data: bytes = b"") -> None:
    c = connect(srv.host, srv.port)
    try:
        assert c.call_reply(OpCode.create, R.CreateRequest(path, data, OPEN, 0)).err == 0
    finally:
        c.close()


def children(srv: ServerProcess, path: str) -> set[str]:
    c = connect(srv.host, srv.port)
    try:
        return set(c.call_reply(OpCode.getChildren, R.GetChildrenRequest(path, False))
                   .decode().children)
    finally:
        c.close()


def acked_names(w: Writer) -> set[str]:
    return {f"{w.tag}{i}" for i in w.acked}


def exit_code(srv: ServerProcess, timeout: float = EXIT_WAIT) -> int:
    """Wait for ``srv`` to end on its own; its exit code."""
    wait_for(lambda: not srv.running(), timeout, f"{srv.kind} to stop after the disk fault")
    proc = srv._proc  # the harness keeps the Popen until stop() reaps it
    assert proc is not None and proc.returncode is not None
    return proc.returncode


def write_refused(srv: ServerProcess) -> bool:
    """True when a fresh create is not acknowledged (refused, cut or failed)."""
    try:
        c = connect(srv.host, srv.port, timeout=5.0)
    except OSError:
        return True
    try:
        return c.call_reply(OpCode.create, R.CreateRequest("/after", b"", OPEN, 0)).err != 0
    except (OSError, ConnectionError):
        return True
    finally:
        c.close()


# ------------------------------------------------------------ the log's disk fails


@pytest.mark.server
@pytest.mark.parametrize("mode", ["fsync-eio", "write-enospc", "write-eio"])
def test_pyzk_stops_on_a_failed_log_and_loses_no_acknowledged_write(
        tmp_path: Path, faults_for, mode: str) -> None:
    srv = PyzkServer(tmp_path)
    faults = faults_for(tmp_path / "version-2")
    faults.attach(srv)
    srv.start()
    try:
        create(srv, "/d")
        with Writer(srv, "/d") as w:
            w.wait_acked(300)
            # fsync fails once only: a server that retried it would go on
            # acknowledging; one that stops acknowledges nothing more
            faults.arm(mode, limit=1 if mode == "fsync-eio" else None)
            code = exit_code(srv)
        assert faults.injected >= 1
        assert code == 1
        log_text = srv.log_path.read_text()
        assert "Transaction log failed" in log_text and "stopping the server" in log_text
        assert "Traceback" not in log_text
        assert w.sent > len(w.acked), "the fault did not stop any write"
        faults.disarm()
        srv.stop()
        srv.start()
        missing = acked_names(w) - children(srv, "/d")
        assert not missing, f"{len(missing)} acknowledged writes lost, e.g. {sorted(missing)[:5]}"
        create(srv, "/d/again")
    finally:
        srv.stop()


@pytest.mark.server
def test_pyzk_never_acknowledges_a_write_whose_fsync_failed_once(tmp_path: Path,
                                                                  faults_for) -> None:
    """One transient fsync failure (the next would succeed): the write it
    carried is not acknowledged, nor is any later one."""
    srv = PyzkServer(tmp_path)
    faults = faults_for(tmp_path / "version-2")
    faults.attach(srv)
    srv.start()
    try:
        create(srv, "/before")
        c = connect(srv.host, srv.port)
        faults.arm("fsync-eio", limit=1)
        with pytest.raises(ConnectionError):
            c.call_reply(OpCode.create, R.CreateRequest("/lost", b"", OPEN, 0))
        c.close()
        assert faults.injected == 1
        assert write_refused(srv)  # the next fsync would work, but nothing is tried
        assert exit_code(srv) == 1
        faults.disarm()
        srv.stop()
        srv.start()
        assert "before" in children(srv, "/")
    finally:
        srv.stop()


@pytest.mark.server
@pytest.mark.reference
@pytest.mark.parametrize("mode", ["fsync-eio", "write-enospc"])
def test_apache_stops_on_a_failed_log_and_pyzk_recovers_what_it_recovers(
        tmp_path: Path, faults_for, mode: str) -> None:
    require_reference()
    d = tmp_path / "apache"
    srv = make_server("apache", d)
    faults = faults_for(d / "version-2")
    faults.attach(srv)
    srv.start()
    try:
        create(srv, "/d")
        with Writer(srv, "/d") as w:
            w.wait_acked(300)
            faults.arm(mode)
            code = exit_code(srv)
        assert faults.injected >= 1
        # the JVM's code depends on whether the shutdown trips over the disk again
        assert code == (0 if mode == "fsync-eio" else 1)
        assert "Severe unrecoverable error, from thread : SyncThread:0" in srv.log_path.read_text()
        faults.disarm()
        srv.stop()
        copy = tmp_path / "copy"
        DF.copy_sparse(d / "version-2", copy / "version-2")
        srv.start()
        apache_kids = children(srv, "/d")
    finally:
        srv.stop()
    assert not acked_names(w) - apache_kids
    with PyzkServer(copy) as p:
        assert children(p, "/d") == apache_kids


# ------------------------------------------------------------ a disk that really fills up


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[SizedTmpfs]:
    """A 2 MB tmpfs on ``tmp_path/"srv"/"version-2"`` (skips when mounting is not allowed)."""
    fs = SizedTmpfs(tmp_path / "srv" / "version-2", 2 << 20)
    try:
        fs.mount()
    except DiskFaultsUnavailable as e:
        pytest.skip(str(e))
    try:
        yield fs
    finally:
        fs.unmount()


@pytest.mark.server
@pytest.mark.parametrize("kind", ["pyzk", pytest.param("apache", marks=pytest.mark.reference)])
def test_full_disk_stops_the_server_and_loses_nothing_once_space_is_back(
        tmp_path: Path, small_disk: SizedTmpfs, kind: str) -> None:
    srv = make_server(kind, tmp_path / "srv")
    srv.start()
    try:
        create(srv, "/big")
        with Writer(srv, "/big", size=40_000, window=4) as w:
            code = exit_code(srv)
        assert small_disk.free() < 64 << 10, "the disk did not fill up"
        assert len(w.acked) >= 10 and w.sent > len(w.acked)
        log_text = srv.log_path.read_text()
        if kind == "pyzk":
            assert code == 1
            assert "No space left on device" in log_text and "stopping the server" in log_text
            # started again on the still full disk: it recovers (cutting the
            # torn tail frees a little), takes writes until the disk is full again
            # and stops again, without losing any
            srv.stop()
            srv.start()
            with Writer(srv, "/big", size=40_000, window=4, tag="m") as w2:
                assert exit_code(srv) == 1
            acked = acked_names(w) | acked_names(w2)
        else:
            # 1 when the shutdown's own flush fails again, 0 when it fits
            assert code in (0, 1)
            assert "Severe unrecoverable error, from thread : SyncThread:0" in log_text
            acked = acked_names(w)
        srv.stop()
        small_disk.resize(64 << 20)
        srv.start()
        missing = acked - children(srv, "/big")
        assert not missing, f"{len(missing)} acknowledged writes lost"
        create(srv, "/big/again", b"x" * 40_000)
    finally:
        srv.stop()


# ------------------------------------------------------------ snapshots cannot be written


@pytest.mark.server
@pytest.mark.parametrize("mode", ["write-enospc", "fsync-eio"])
def test_pyzk_keeps_serving_when_a_snapshot_cannot_be_written(
        tmp_path: Path, faults_for, mode: str) -> None:
    logs = tmp_path / "txlog"
    srv = PyzkServer(tmp_path, extra_cfg={"snapCount": "20", "dataLogDir": str(logs)})
    faults = faults_for(tmp_path / "version-2")  # the snapshots' disk, not the log's
    faults.attach(srv)
    srv.start()
    snapdir = tmp_path / "version-2"
    try:
        create(srv, "/s")
        faults.arm(mode)
        with Writer(srv, "/s", size=500) as w:
            w.wait_acked(150)
        assert not w.failed and w.error is None
        wait_for(lambda: "Writing snapshot" in srv.log_path.read_text(), 10,
                 "a failed snapshot")
        assert srv.running()
        assert faults.injected >= 1
        assert faults.last_pid not in (0, srv.pid)  # it hit the forked snapshot writer
        # no partial file stays (one being written right now goes when it fails)
        wait_for(lambda: sorted(p.name for p in snapdir.iterdir()) == ["snapshot.0"], 10,
                 "no snapshot but snapshot.0, and no partial one")
        faults.disarm()
        with Writer(srv, "/s", size=500) as w2:
            w2.wait_acked(60)
        wait_for(lambda: len(os.listdir(snapdir)) > 1, 10, "a snapshot once the disk is back")
        srv.stop()
        srv.start()
        kids = children(srv, "/s")
        assert {f"n{i}" for i in w.acked} <= kids and len(kids) >= 150
    finally:
        srv.stop()


@pytest.mark.server
@pytest.mark.reference
def test_apache_exits_on_a_failed_snapshot_and_both_recover_from_its_partial_file(
        tmp_path: Path, faults_for) -> None:
    require_reference()
    d = tmp_path / "apache"
    logs = tmp_path / "txlog"
    srv = make_server("apache", d, extra_cfg={"snapCount": "20", "dataLogDir": str(logs)})
    faults = faults_for(d / "version-2")
    faults.attach(srv)
    srv.start()
    try:
        # a tree of some 30 KB in two txns, long before the first snapshot
        create(srv, "/s")
        c = connect(srv.host, srv.port)
        kids = [(OpCode.create, R.CreateRequest(f"/s/p{i}", b"p" * 1000, OPEN, 0))
                for i in range(30)]
        assert c.multi(kids).err == 0
        c.close()
        faults.arm("write-enospc", after=1)  # the snapshot's first 8 KB reach the disk
        with Writer(srv, "/s", size=1000) as w:
            code = exit_code(srv)
        assert code == 10
        assert "Severe unrecoverable error, exiting" in srv.log_path.read_text()
        # the newest snapshot is the partial one (the older is the restart's own)
        newest = sorted_files(d / "version-2", SNAPSHOT_PREFIX)[-1]
        assert newest.stat().st_size > 0 and not is_valid_snapshot(newest)
        faults.disarm()
        srv.stop()
        copy = tmp_path / "copy"
        DF.copy_sparse(d / "version-2", copy / "version-2")
        DF.copy_sparse(logs, tmp_path / "copylog")
        srv.start()
        apache_kids = children(srv, "/s")
    finally:
        srv.stop()
    assert acked_names(w) <= apache_kids
    with PyzkServer(copy, extra_cfg={"dataLogDir": str(tmp_path / "copylog")}) as p:
        assert children(p, "/s") == apache_kids


# ------------------------------------------------------------ damaged files at restart

#: What Apache's own loading code (ZKDatabase.loadDataBase, as a server's
#: start runs it) makes of each data directory given: its last zxid, tree
#: digest and every node's mzxid, or the exception that stops it.
APACHE_RESTORE = r"""
import java.io.File;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import org.apache.zookeeper.server.DataNode;
import org.apache.zookeeper.server.DataTree;
import org.apache.zookeeper.server.ZKDatabase;
import org.apache.zookeeper.server.persistence.FileTxnSnapLog;

public class ApacheRestore {
    public static void main(String[] args) {
        for (String dir : args) {
            try {
                FileTxnSnapLog snapLog = new FileTxnSnapLog(new File(dir), new File(dir));
                ZKDatabase db = new ZKDatabase(snapLog);
                long zxid = db.loadDataBase();
                DataTree tree = db.getDataTree();
                System.out.println("OK\t" + dir + "\t" + zxid + "\t" + tree.getTreeDigest());
                List<String> lines = new ArrayList<>();
                ArrayDeque<String> todo = new ArrayDeque<>();
                todo.add("/");
                while (!todo.isEmpty()) {
                    String p = todo.poll();
                    DataNode n = tree.getNode(p);
                    if (n == null) continue;
                    lines.add("N\t" + p + "\t" + n.stat.getMzxid());
                    for (String c : n.getChildren()) {
                        todo.add(p.equals("/") ? "/" + c : p + "/" + c);
                    }
                }
                Collections.sort(lines);
                for (String l : lines) System.out.println(l);
                snapLog.close();
            } catch (Throwable e) {
                System.out.println("FAIL\t" + dir + "\t" + e);
            }
        }
    }
}
"""

View = tuple[int, int, dict[str, int]] | str  # (zxid, digest, path -> mzxid), or why it failed


def apache_restore(work: Path, dirs: list[Path]) -> dict[Path, View]:
    """Apache's view of each of ``dirs``, from one JVM (see APACHE_RESTORE)."""
    src = work / "ApacheRestore.java"
    src.write_text(APACHE_RESTORE)
    r = subprocess.run(["java", "-cp", APACHE_CLASSPATH, str(src), *map(str, dirs)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out: dict[Path, View] = {}
    nodes: dict[str, int] = {}
    for line in r.stdout.splitlines():
        kind, *rest = line.split("\t")
        if kind == "OK":
            nodes = {}
            out[Path(rest[0])] = (int(rest[1]), int(rest[2]), nodes)
        elif kind == "N":
            nodes[rest[0]] = int(rest[1])
        elif kind == "FAIL":
            out[Path(rest[0])] = rest[1]
    return out


def pyzk_restore(d: Path) -> View:
    """pyzk's view of ``d`` (the recovery its server starts with)."""
    try:
        r = recover(d)
    except RecoveryError as e:
        return f"RecoveryError: {e}"
    nodes = {path or "/": node.mzxid for path, node in r.tree.nodes.items()}
    return r.last_zxid, r.tree.digest(), nodes


#: Each damage: what it does to a copy of the data directory.
DAMAGES = {
    "torn-truncated": lambda d: DF.tear_last_txn(d),
    "torn-zeroed": lambda d: DF.tear_last_txn(d, zero=True),
    "flipped-last-txn": lambda d: DF.flip_bit_in_last_txn(d),
    "flipped-middle-txn": lambda d: _damage_middle(d, "crc"),
    "end-marker-middle-txn": lambda d: _damage_middle(d, "eor"),
    "snapshot-flipped": lambda d: DF.corrupt_newest_snapshot(d, how="flip"),
    "snapshot-truncated": lambda d: DF.corrupt_newest_snapshot(d, how="truncate"),
    "snapshot-zeroed": lambda d: DF.corrupt_newest_snapshot(d, how="zero"),
}


def _damage_middle(d: Path, how: str) -> None:
    """Damage the third-last txn of the newest log in place (two whole ones follow)."""
    from pyzk.shell.txnlogfiles import scan_file
    from pyzk.txnlog.log import LogEntry

    e = DF.last_txn(d)
    entries = [x for x in scan_file(e.path) if isinstance(x, LogEntry)]
    victim = entries[-3]
    data = bytearray(e.path.read_bytes())
    if how == "crc":
        data[(victim.offset + victim.end) // 2] ^= 0x10
    else:  # the record's end-of-record byte 'B'
        data[victim.end - 1] ^= 0x01
    e.path.write_bytes(bytes(data))


@pytest.fixture(scope="module")
def history_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data directory pyzk wrote: snapshots every ~20 txns, several logs."""
    d = tmp_path_factory.mktemp("history")
    with PyzkServer(d, extra_cfg={"snapCount": "20"}) as srv:
        c = connect(srv.host, srv.port)
        i = 0
        # the log rolls at a random point: go on until the newest file has a few txns
        while i < 57 or newest_log_txns(d) < 5:
            req = R.CreateRequest(f"/h{i}", bytes([65 + i % 26]) * (i % 100), OPEN, 0)
            assert c.call_reply(OpCode.create, req).err == 0
            i += 1
            assert i < 200
        c.close()
    snaps = [p for p in (d / "version-2").iterdir() if p.name.startswith("snapshot.")]
    assert len(snaps) >= 3
    return d


def newest_log_txns(d: Path) -> int:
    from pyzk.shell.txnlogfiles import scan_file
    from pyzk.txnlog.log import LogEntry

    newest = sorted_files(d / "version-2", LOG_PREFIX)[-1]
    return sum(isinstance(x, LogEntry) for x in scan_file(newest))


def damaged_copies(base: Path, history: Path) -> dict[str, Path]:
    out = {}
    for name, damage in DAMAGES.items():
        d = base / name
        DF.copy_sparse(history / "version-2", d / "version-2")
        damage(d)
        out[name] = d
    return out


@pytest.mark.server
@pytest.mark.reference
def test_damaged_logs_and_snapshots_recover_as_in_apache(tmp_path: Path,
                                                          history_dir: Path) -> None:
    require_reference()
    copies = damaged_copies(tmp_path, history_dir)
    # Apache refuses a bad checksum in the last txn; pyzk takes it for a torn
    # write and cuts it: compare with Apache on that txn cut off.
    cut = tmp_path / "flipped-last-txn-cut"
    DF.copy_sparse(history_dir / "version-2", cut / "version-2")
    e = DF.last_txn(cut)
    with open(e.path, "r+b") as f:
        f.truncate(e.offset)
    apache = apache_restore(tmp_path, [*copies.values(), cut])
    pyzk = {name: pyzk_restore(d) for name, d in copies.items()}
    for name in ("torn-truncated", "torn-zeroed", "end-marker-middle-txn", "snapshot-flipped",
                 "snapshot-truncated", "snapshot-zeroed"):
        assert not isinstance(apache[copies[name]], str), (name, apache[copies[name]])
        assert pyzk[name] == apache[copies[name]], name
    assert "CRC check failed" in apache[copies["flipped-last-txn"]]
    assert pyzk["flipped-last-txn"] == apache[cut]
    assert "CRC check failed" in apache[copies["flipped-middle-txn"]]
    assert "not a torn tail" in pyzk["flipped-middle-txn"]
    # the damaged snapshots lose nothing: an older one and the logs have it all
    whole = pyzk_restore(history_dir)
    for name in ("snapshot-flipped", "snapshot-truncated", "snapshot-zeroed"):
        assert pyzk[name] == whole, name


def logs_of(d: Path) -> dict[str, bytes]:
    """The log files' names and contents up to their first hole."""
    out = {}
    for p in sorted((d / "version-2").glob("log.*")):
        with open(p, "rb") as f:
            out[p.name] = f.read(data_end(f.fileno(), os.fstat(f.fileno()).st_size))
    return out


@pytest.mark.server
def test_pyzk_starts_on_damaged_files_or_refuses_cleanly(tmp_path: Path,
                                                         history_dir: Path) -> None:
    copies = damaged_copies(tmp_path / "a", history_dir)
    expected = {name: pyzk_restore(d) for name, d in damaged_copies(tmp_path / "b",
                                                                    history_dir).items()}
    # one server start per way recovery can go (the other damages take the
    # same paths: the reference test above compares them all)
    for name in ("torn-zeroed", "snapshot-truncated", "snapshot-zeroed"):
        del copies[name]
    for name, d in copies.items():
        srv = PyzkServer(d)
        want = expected[name]
        if isinstance(want, str):  # damage in the middle of the log: a clean refusal
            with pytest.raises(Exception, match="exited with 1"):
                srv.start(timeout=20)
            text = srv.log_path.read_text()
            assert "not a torn tail" in text and "exiting abnormally" in text, name
            srv.stop()
            continue
        with srv:
            kids = children(srv, "/")
        assert kids == {p[1:] for p in want[2] if p.count("/") == 1 and p != "/"}, name
    # the logs damaged in the middle were left as they were, for an operator to look at
    for name in ("flipped-middle-txn", "end-marker-middle-txn"):
        before = logs_of(tmp_path / "b" / name)
        after = logs_of(copies[name])
        assert {n: after[n] for n in before} == before, name
