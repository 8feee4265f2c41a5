"""The log stage: group commit of the transaction log, fsync off the event loop.

One stage for every mode. A standalone server appends each txn it proposes
(its quorum of one is this log), a leader and a follower the txns Zab's
LogTxn asks for; each wants a callback once its txns are durable, with the
tokens it appended them with (zxids), in order.

Txns arrive already encoded (the bytes a PROPOSAL carries, also what a
standalone server encoded once in ``ZooKeeperServer.submit``) and are
buffered on the loop; one worker thread writes and fsyncs them in batches.
While one batch syncs the next accumulates, so under load many writes share
one fsync, as Apache's SyncRequestProcessor flushes when its queue drains.
Every txn is also counted by the :class:`~pyzk.shell.store.Store`, which rolls
the log and snapshots every snapCount txns.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from pyzk.core.metrics import observe
from pyzk.jute.records import TxnHeader

if TYPE_CHECKING:
    from pyzk.core.zkserver import ServerStats
    from pyzk.shell.store import Store
    from pyzk.shell.txnlogfiles import TxnLogWriter

log = logging.getLogger(__name__)


class LogStage:
    """``append(hdr, data, zxid)`` buffers one encoded txn (on the loop);
    ``on_durable(zxids)`` is called on the loop once a batch is fsynced, in
    append order. If a write or fsync fails the stage stops for good:
    ``on_failure(exc)`` is called once and nothing appended afterwards is ever
    reported durable (a write is never acknowledged unless it is on disk)."""

    __slots__ = ("loop", "writer", "on_durable", "on_failure", "stats", "store", "pending",
                 "syncing", "scheduled", "closed", "failed", "executor", "fsync_ms_max")

    def __init__(self, loop: asyncio.AbstractEventLoop, writer: TxnLogWriter,
                 on_durable: Callable[[list[int]], None], *, stats: ServerStats,
                 store: Store | None = None,
                 on_failure: Callable[[BaseException], None] | None = None) -> None:
        self.loop = loop
        self.writer = writer
        self.on_durable = on_durable
        self.on_failure = on_failure
        self.stats = stats
        self.store = store
        self.pending: list[int] = []
        self.syncing = False
        self.scheduled = False
        self.closed = False
        self.failed: BaseException | None = None
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="SyncThread")
        self.fsync_ms_max = 0.0

    def append(self, hdr: TxnHeader, data: bytes, zxid: int) -> None:
        self.append_encoded(zxid, data)

    def append_encoded(self, zxid: int, data: bytes) -> None:
        """Zab's LogTxn, and every append: ``data`` is the whole txn (header
        first) and ``zxid`` its header's, so the header is not decoded again."""
        if self.closed or self.failed is not None:
            return
        self.writer.append_raw(zxid, data)
        if self.store is not None:
            self.store.txn_logged()
        self.pending.append(zxid)
        if not self.syncing and not self.scheduled:
            self.scheduled = True
            # Let the rest of this loop iteration's requests join the batch.
            self.loop.call_soon(self._start)


    def _start(self) -> None:
        self.scheduled = False
        if self.syncing or not self.pending or self.closed:
            return
        zxids, self.pending = self.pending, []
        self.syncing = True
        fut = self.loop.run_in_executor(self.executor, self._sync)
        fut.add_done_callback(lambda f: self._done(f, zxids))

    def _sync(self) -> float:
        t = time.monotonic()
        self.writer.flush_and_sync()
        return (time.monotonic() - t) * 1000.0

    def _done(self, fut: asyncio.Future[float], zxids: list[int]) -> None:
        self.syncing = False
        exc = fut.exception()
        if exc is not None:
            self.failed = exc
            self.pending.clear()
            log.critical("Severe unrecoverable error writing the transaction log: %r; "
                         "no further writes will be acknowledged", exc)
            if self.on_failure is not None:
                self.on_failure(exc)
            return
        ms = fut.result()
        self.fsync_ms_max = max(self.fsync_ms_max, ms)
        stats = self.stats
        stats.fsyncs += 1
        stats.fsynced_txns += len(zxids)
        observe(stats, "fsynctime", int(ms))
        observe(stats, "sync_processor_batch_size", len(zxids))
        if not self.closed:
            self.on_durable(zxids)
            if self.store is not None:
                self.store.batch_durable()
        if self.pending:
            self._start()

    async def drain(self) -> None:
        """Wait until everything appended is durable (and reported) or the log failed."""
        while self.syncing or (self.pending and self.failed is None and not self.closed):
            if not self.syncing:
                self._start()
            await asyncio.sleep(0.002)

    async def close(self) -> None:
        """Sync what was appended, then stop: no more ``on_durable`` calls.

        After a failure the writer is only let go of: what it still buffers
        was never acknowledged, and writing it to the disk that just failed
        would raise again in the middle of a shutdown."""
        await self.drain()
        self.closed = True
        self.executor.shutdown(wait=True)
        if self.failed is not None:
            self.writer.abandon()
        else:
            self.writer.close()
