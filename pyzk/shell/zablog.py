"""The transaction log of an ensemble member: Zab's LogTxn, group-committed.

A Zab core asks for txns to be logged (LogTxn) and wants ``on_logged(zxid)``
once they are durable; the leader then counts its own ACK, a follower sends
its ACK. Txns arrive already marshalled (the bytes PROPOSAL carries), so they
are appended as they are and fsynced in batches on one worker thread, as in
pyzk.shell.durable: while one batch syncs the next accumulates. Every
appended txn is counted by the Store for its snapCount roll and snapshots.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from pyzk.jute.records import TxnHeader
from pyzk.shell.fourletter import observe
from pyzk.txnlog.log import TxnLogWriter
from pyzk.zab.actions import Entry

log = logging.getLogger(__name__)


class ZabLog:
    """Appends :class:`Entry` objects to ``writer``; ``on_durable(zxid)`` after each
    batch with the last zxid it covered. ``store`` (a pyzk.shell.store.Store)
    rolls the log and snapshots every snapCount txns; ``stats`` gets the
    fsync counters srvr/mntr show."""

    def __init__(self, loop: asyncio.AbstractEventLoop, writer: TxnLogWriter,
                 on_durable: Callable[[int], None], *, store: Any = None,
                 stats: Any = None) -> None:
        self.loop = loop
        self.writer = writer
        self.on_durable = on_durable
        self.store = store
        self.stats = stats
        self.pending: list[int] = []
        self.syncing = False
        self.scheduled = False
        self.closed = False
        self.failed: BaseException | None = None
        self.on_failure: Callable[[BaseException], None] | None = None
        self.executor = ThreadPoolExecutor(1, thread_name_prefix="SyncThread")

    def append(self, entry: Entry) -> None:
        if self.closed or self.failed is not None:
            return
        hdr, _ = TxnHeader.decode(entry.data, 0, len(entry.data))
        self.writer.append(hdr, entry.data)
        if self.store is not None:
            self.store._count()
        self.pending.append(entry.zxid)
        if not self.syncing and not self.scheduled:
            self.scheduled = True
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

    def _done(self, fut: asyncio.Future, zxids: list[int]) -> None:
        self.syncing = False
        exc = fut.exception()
        if exc is not None:
            self.failed = exc
            log.critical("Severe unrecoverable error writing the transaction log: %r", exc)
            if self.on_failure is not None:
                self.on_failure(exc)
            return
        if self.stats is not None:
            self.stats.fsyncs += 1
            self.stats.fsynced_txns += len(zxids)
            observe(self.stats, "fsynctime", int(fut.result()))
            observe(self.stats, "sync_processor_batch_size", len(zxids))
        if not self.closed:
            self.on_durable(zxids[-1])
            if self.store is not None:
                self.store._after_batch(len(zxids))
        if self.pending:
            self._start()

    async def drain(self) -> None:
        """Wait until nothing is being synced (used when a role ends)."""
        while self.syncing or (self.pending and self.failed is None and not self.closed):
            if not self.syncing:
                self._start()
            await asyncio.sleep(0.002)

    async def close(self) -> None:
        """Sync what was appended, then stop; no more ``on_durable`` calls."""
        await self.drain()
        self.closed = True
        self.executor.shutdown(wait=True)
        self.writer.close()
