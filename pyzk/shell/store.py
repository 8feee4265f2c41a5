"""The server's data directory: recovery at start, the transaction log's
writer, snapshots every snapCount txns, and autopurge.

Every mode uses it the same way: :meth:`Store.recover` loads the database,
:meth:`Store.open_log` opens a log writer for the server (or role) now
serving, whose :class:`~pyzk.shell.logstage.LogStage` reports each txn
(:meth:`Store.txn_logged`) and each durable batch (:meth:`Store.batch_durable`)
so the log rolls and a snapshot is taken every snapCount txns.

Files are Apache's (see pyzk.txnlog), so Apache ZooKeeper starts from a
pyzk data directory and the other way round.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import os
import random
from pathlib import Path
from typing import Any

from pyzk.config import ServerConfig
from pyzk.shell.autopurge import purge
from pyzk.shell.datadir import version_dir
from pyzk.shell.recovery import fast_forward, recover
from pyzk.shell.snapfiles import write_snapshot
from pyzk.shell.txnlogfiles import TxnLogWriter
from pyzk.txnlog.names import snapshot_name
from pyzk.txnlog.purge import effective_retain_count
from pyzk.txnlog.snapshot import ZxidDigest

log = logging.getLogger(__name__)


class Store:
    def __init__(self, cfg: ServerConfig) -> None:
        self.cfg = cfg
        self.data_dir = Path(cfg.data_dir)
        self.log_dir = Path(cfg.data_log_dir or cfg.data_dir)
        self.snap_count = max(2, int(cfg.snap_count))
        self.compression = (cfg.snapshot_compression or "").strip()
        self.writer: TxnLogWriter | None = None
        self.server: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.txns_since_snapshot = 0
        self.snapshot_in_progress = False
        self.rng = random.Random()
        self._roll_at = self._next_roll()

    def _next_roll(self) -> int:
        """Apache's SyncRequestProcessor.shouldSnapshot: snapCount/2 plus a
        random part, so that the servers of an ensemble do not all snapshot
        at once."""
        half = self.snap_count // 2
        return half + self.rng.randrange(max(1, half))

    def recover(self) -> tuple[Any, dict[int, int], int]:
        version_dir(self.data_dir).mkdir(parents=True, exist_ok=True)
        version_dir(self.log_dir).mkdir(parents=True, exist_ok=True)
        r = recover(self.data_dir, self.log_dir,
                    digest_enabled=bool(self.cfg.digest_enabled),
                    extended_types=bool(self.cfg.extended_types_enabled),
                    compression=self.compression,
                    last_zxid_enabled=bool(self.cfg.serialize_last_processed_zxid))
        log.info("Loaded data directory %s: %d txns replayed, last zxid 0x%x, %d sessions",
                 self.data_dir, r.txns_loaded, r.last_zxid, len(r.sessions))
        if r.cut is not None:
            log.warning("Transaction log tail was damaged and cut back: %s", r.cut)
        self.needs_initial_snapshot = r.txns_loaded > 0
        # The loaded tree lives as long as the server: keep the cyclic GC from
        # rescanning millions of its objects on every full collection.
        gc.freeze()
        return r.tree, r.sessions, r.last_zxid

    def fast_forward(self, tree: Any, sessions: dict[int, int],
                     last_zxid: int) -> tuple[Any, dict[int, int], int]:
        """The database an ended role leaves in memory, brought up to the end of
        the log (pyzk.shell.recovery.fast_forward): what :meth:`recover`
        would load, in the time the log tail takes."""
        tree.clear_watches()
        r = fast_forward(tree, sessions, last_zxid, self.log_dir)
        log.info("Kept the database in memory: %d logged txns replayed, last zxid 0x%x, "
                 "%d sessions", r.txns_loaded, r.last_zxid, len(r.sessions))
        if r.cut is not None:
            log.warning("Transaction log tail was damaged and cut back: %s", r.cut)
        return r.tree, r.sessions, r.last_zxid

    def attach(self, server: Any) -> None:
        """``server``'s tree is the one snapshots are taken of from now on."""
        self.server = server

    def open_log(self, server: Any, loop: asyncio.AbstractEventLoop) -> TxnLogWriter:
        """A new log writer for ``server`` (its first txn starts a new file, as
        after every Apache restart or election)."""
        self.server = server
        self.loop = loop
        self.writer = TxnLogWriter(self.log_dir, pre_alloc_size=self.cfg.pre_alloc_size_kb * 1024,
                                   force_sync=bool(self.cfg.force_sync))
        return self.writer

    def log_closed(self) -> None:
        """The log stage closed the writer :meth:`open_log` returned."""
        self.writer = None

    def snapshot_after_recovery(self) -> None:
        """Apache snapshots right after loading, so the next start does not
        replay the same logs again; in the background, so serving starts at
        once (the log still holds every txn until it is written)."""
        if self.needs_initial_snapshot:
            self.needs_initial_snapshot = False
            self.take_snapshot_in_background()

    def txn_logged(self) -> None:
        """One more txn appended: roll the log past snapCount/2 + random."""
        self.txns_since_snapshot += 1
        if self.txns_since_snapshot > self._roll_at and not self.snapshot_in_progress:
            # Roll the log now: the next txn starts a new file, as Apache does
            # right before it snapshots.
            assert self.writer is not None
            self.writer.roll()
            self.txns_since_snapshot = 0
            self._roll_at = self._next_roll()
            self.snapshot_pending = True

    snapshot_pending = False
    needs_initial_snapshot = False

    def batch_durable(self) -> None:
        """A batch is on disk: the snapshot a roll asked for starts now."""
        if self.snapshot_pending and not self.snapshot_in_progress:
            self.snapshot_pending = False
            self.take_snapshot_in_background()

    def snapshot_target(self) -> tuple[Path, int, Any]:
        """Where a snapshot of the tree as it is now goes: its path, zxid and digest."""
        tree = self.server.tree
        zxid = tree.last_processed_zxid
        path = version_dir(self.data_dir) / snapshot_name(zxid, self.compression)
        zd = tree.last_processed_digest
        digest: Any = ZxidDigest(*zd) if zd is not None else True
        if not self.cfg.digest_enabled:
            digest = False
        return path, zxid, digest

    def _last_zxid(self, zxid: int) -> int | None:
        """3.9's serialized lastProcessedZxid, when configured: the forked
        child writes a frozen tree, so it is the snapshot's own zxid."""
        return zxid if self.cfg.serialize_last_processed_zxid else None

    def take_snapshot(self) -> Path:
        """Write snapshot.<last applied zxid> of the tree as it is now (blocking)."""
        path, zxid, digest = self.snapshot_target()
        log.info("Snapshotting: 0x%x to %s", zxid, path)
        write_snapshot(path, self.server.tree, self.server.session_timeouts(), zxid,
                       digest=digest, last_zxid=self._last_zxid(zxid))
        return path

    def take_snapshot_in_background(self) -> None:
        """Snapshot without stalling requests: a forked child writes the tree
        exactly as it is at the fork (copy-on-write, as Redis' BGSAVE), while
        this process keeps serving. Where fork is unavailable the snapshot is
        written inline."""
        if not hasattr(os, "fork"):
            self.take_snapshot()
            return
        path, zxid, digest = self.snapshot_target()
        last_zxid = self._last_zxid(zxid)
        sessions = self.server.session_timeouts()
        log.info("Snapshotting: 0x%x to %s", zxid, path)
        self.snapshot_in_progress = True
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            # The child does not log (a lock another thread held at the fork
            # may never be released here): its exit code is the errno of the
            # failure, which the parent logs.
            code = 1
            try:
                write_snapshot(path, self.server.tree, sessions, zxid, digest=digest,
                               last_zxid=last_zxid)
                code = 0
            except OSError as e:
                code = e.errno if e.errno and 0 < e.errno < 256 else 1
            finally:
                os._exit(code)
        assert self.loop is not None
        fut = self.loop.run_in_executor(None, os.waitpid, pid, 0)
        fut.add_done_callback(lambda f: self._snapshot_done(f, path))

    def _snapshot_done(self, fut: Any, path: Path) -> None:
        self.snapshot_in_progress = False
        try:
            _, status = fut.result()
        except OSError as e:
            log.error("Lost track of the snapshot writer for %s: %s", path, e)
            return
        code = os.waitstatus_to_exitcode(status)
        if code != 0:
            # Apache 3.8 exits (code 10) when a snapshot cannot be written;
            # pyzk keeps serving: the log still has every txn, the partial
            # file is gone, and the next snapCount tries again.
            why = (os.strerror(code) if code > 1 else
                   f"killed by signal {-code}" if code < 0 else "an unexpected error")
            log.error("Writing snapshot %s failed (exit code %d: %s); still serving: the log "
                      "still has every txn since the last snapshot", path, code, why)

    def purge(self) -> list[Path]:
        """Delete snapshots and logs beyond autopurge.snapRetainCount."""
        keep = effective_retain_count(self.cfg.autopurge_snap_retain_count)
        removed = purge(self.log_dir, self.data_dir, keep)
        log.info("Purge task completed: %d files removed", len(removed))
        return removed
