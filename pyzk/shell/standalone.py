"""A standalone server: the client port, the data directory, the log stage and
the timers around one ZooKeeperServer.

Standalone is a quorum of one. The server proposes each txn to this shell's
:class:`~pyzk.shell.logstage.LogStage`; the only vote is the log's own fsync,
after which the txn is committed through the same ``committed`` path an
ensemble's leader uses when a quorum has acked. (The leader's Zab core is not
put in between: with no followers it would only add a proposal record, an
ack count and a commit packet per txn to what this stage already decides.)
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from pyzk.core.zkserver import ZooKeeperServer
from pyzk.jute.records import TxnHeader
from pyzk.shell.admin import AdminServer
from pyzk.shell.clientport import ClientPortHost
from pyzk.shell.fourletter import FourLetterWords
from pyzk.shell.logstage import LogStage
from pyzk.shell.prometheus import PrometheusEndpoint
from pyzk.shell.store import Store
from pyzk.shell.timers import ServerTimers, now_ms, wall_ms

if TYPE_CHECKING:
    from pyzk.config import ServerConfig


class StandaloneShell(ClientPortHost):
    def __init__(self, cfg: ServerConfig, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.cfg = cfg
        self.loop = loop
        self.store = Store(cfg)
        tree, sessions, zxid = self.store.recover()
        self.server = ZooKeeperServer(cfg, now_ms=now_ms, wall_ms=wall_ms, server_id=1,
                                      tree=tree, sessions=sessions, zxid=zxid)
        self.log = LogStage(loop, self.store.open_log(self.server, loop), self._durable,
                            stats=self.server.stats, store=self.store,
                            on_failure=self.server.on_log_failure)
        self.server.propose = self._propose
        self.fourlw = FourLetterWords(self)
        self.timers = ServerTimers(loop, cfg)
        self.admin = AdminServer(self, cfg)
        self.metrics = PrometheusEndpoint(self, cfg)
        #: Completes if the server ends on its own (never, standalone: a failed
        #: log only stops writes, as the log stage says).
        self.fatal: asyncio.Future[None] = loop.create_future()

    def _propose(self, hdr: TxnHeader, data: bytes) -> None:
        self.log.append(hdr, data, hdr.zxid)

    def _durable(self, zxids: list[int]) -> None:
        committed = self.server.committed
        for zxid in zxids:
            committed(zxid)

    async def start(self) -> None:
        # ZooKeeperServerMain starts the metrics provider first (a failure stops
        # the start), then the AdminServer, then the client port
        await self.metrics.start()
        await self.admin.start()
        await self.listen()
        self.store.snapshot_after_recovery()
        self.timers.expire_sessions(self.server)
        self.timers.reap_containers(self.server)
        self.timers.purge(self.store)

    async def stop(self) -> None:
        await self.admin.stop()
        self.timers.cancel()
        self.close_listeners()
        await self.log.drain()
        for c in list(self.server.connections):
            c.close()
        for srv in self.listeners:
            await srv.wait_closed()
        await self.log.close()
        self.store.log_closed()
        await self.metrics.stop()
