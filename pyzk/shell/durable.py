"""The log stage with durability: group commit on a worker thread.

Transactions are encoded on the event loop as they are prepared; a single
worker thread writes and fsyncs them in batches. While one batch is being
synced the next one accumulates, so under load many writes share one fsync
(as Apache's SyncRequestProcessor flushes when its queue drains). A write is
applied to the tree and answered only after its batch is durable.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pyzk.shell.fourletter import observe

log = logging.getLogger(__name__)



class DurableLog:
    """``append(prepared)`` buffers a txn (called on the loop); ``sync()``
    writes and fsyncs everything appended so far (called on the worker
    thread). Entries are applied in order once the sync that covered them
    returns."""

    def __init__(self, loop: asyncio.AbstractEventLoop, server: Any,
                 append: Callable[[Any], None], sync: Callable[[], Any],
                 after_batch: Callable[[int], None] | None = None) -> None:
        self.loop = loop
        self.server = server
        self.append = append
        self.sync = sync
        self.after_batch = after_batch
        self.pending: list[Any] = []
        self.syncing = False
        self.scheduled = False
        self.failed: BaseException | None = None
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="SyncThread")
        self.fsync_ms_max = 0.0

    def submit(self, entry: Any) -> None:
        if self.failed is not None:
            # The log is broken: never acknowledge a write that is not durable.
            if entry.conn is not None:
                entry.conn.close()
            return
        self.append(entry.prepared)
        self.pending.append(entry)
        if not self.syncing and not self.scheduled:
            self.scheduled = True
            # Let the rest of this loop iteration's requests join the batch.
            self.loop.call_soon(self._start)

    def _start(self) -> None:
        self.scheduled = False
        if self.syncing or not self.pending:
            return
        entries, self.pending = self.pending, []
        self.syncing = True
        fut = self.loop.run_in_executor(self.executor, self._sync)
        fut.add_done_callback(lambda f: self._done(f, entries))

    def _sync(self) -> float:
        t = time.monotonic()
        self.sync()
        return (time.monotonic() - t) * 1000.0

    def _done(self, fut: asyncio.Future, entries: list[Any]) -> None:
        self.syncing = False
        exc = fut.exception()
        if exc is not None:
            self.failed = exc
            log.critical("Severe unrecoverable error writing the transaction log: %r; "
                         "no further writes will be acknowledged", exc)
            for e in entries + self.pending:
                if e.conn is not None:
                    e.conn.close()
            self.pending.clear()
            self.server.on_log_failure(exc)
            return
        ms = fut.result()
        self.fsync_ms_max = max(self.fsync_ms_max, ms)
        stats = self.server.stats
        stats.fsyncs += 1
        stats.fsynced_txns += len(entries)
        observe(stats, "fsynctime", int(ms))
        observe(stats, "sync_processor_batch_size", len(entries))
        apply = self.server.apply
        for e in entries:
            apply(e)
        if self.after_batch is not None:
            self.after_batch(len(entries))
        if self.pending:
            self._start()

    async def drain(self) -> None:
        """Wait until everything submitted is durable and applied."""
        while (self.pending or self.syncing) and self.failed is None:
            if not self.syncing:
                self._start()
            await asyncio.sleep(0.005)

    def close(self) -> None:
        self.executor.shutdown(wait=True)
