"""3.9's AdminServer ``snapshot`` and ``restore`` commands (Commands.SnapshotCommand,
Commands.RestoreCommand), for pyzk's standalone server.

Both are off unless ``admin.snapshot.enabled`` / ``admin.restore.enabled``
(Apache 3.9 defaults them on; pyzk replaces 3.8, whose operators never had a
restore endpoint, so it asks for them), authenticate as 3.9 does
(``Authorization: digest user:pw`` through the digest provider, ALL on
``/``), and are rate-limited by ``admin.rateLimiterIntervalInMS``.

A snapshot is written into dataDir by a forked child (copy-on-write, as the
periodic snapshots: the loop never serialises the tree) and streamed from
the file, as Apache streams the file takeSnapshot wrote. A restore parses
and checks the posted stream in a worker thread, writes it as a snapshot
file (fsynced, named after the newest zxid so recovery picks it and replays
only later txns), and only then swaps the live tree and answers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pyzk.core.admincommands import response_map, zxid_hex
from pyzk.datatree import acl as aclmod
from pyzk.jute.records import Id
from pyzk.shell.datadir import version_dir
from pyzk.shell.snapfiles import write_snapshot
from pyzk.txnlog.names import snapshot_name
from pyzk.txnlog.snapshot import DIGEST_VERSION, ZxidDigest, parse_snapshot

if TYPE_CHECKING:
    from aiohttp import web

    from pyzk.config import ServerConfig

log = logging.getLogger(__name__)

PERM_ALL = 0x1F
SNAPSHOT_NAMES = ("snapshot", "snap")
RESTORE_NAMES = ("restore", "rest")
#: The most a restore body may hold (jute's own limits stop larger trees anyway).
MAX_RESTORE_BYTES = 1 << 31
_WAIT_S = 60.0


class RateLimiter:
    """org.apache.zookeeper.server.util.RateLimiter: ``rate`` calls per interval,
    the first allowed at once, the budget refilled once the interval has passed."""

    def __init__(self, rate: int, interval_ms: int) -> None:
        self.rate = rate
        self.interval_ms = interval_ms
        self.last_reset = time.monotonic() * 1000.0
        self.remained = rate

    def allow(self) -> bool:
        now = time.monotonic() * 1000.0
        if now > self.last_reset + self.interval_ms:
            self.remained = self.rate
            self.last_reset = now
        if self.remained > 0:
            self.remained -= 1
            return True
        return False


def authenticate(auth_info: str, super_digest: str | None) -> list[Id] | None:
    """Commands.handleAuthentication for the schemes pyzk's admin port knows:
    ``digest user:pw`` gives the digest id (and super on the superDigest);
    anything else is "Not authenticated" (None)."""
    parts = auth_info.split(" ")
    if len(parts) not in (1, 2) or parts[0] != "digest" or len(parts) != 2:
        return None
    ident = aclmod.digest_id(parts[1])
    ids = [Id("digest", ident)]
    if super_digest and ident == super_digest:
        ids.append(Id("super", ""))
    return ids


class SnapshotRestore:
    """The two commands over one shell (its ``store`` and ``server``)."""

    def __init__(self, shell: Any, cfg: ServerConfig) -> None:
        self.shell = shell
        self.cfg = cfg
        interval = int(cfg.admin_rate_limiter_interval_ms)
        # Apache builds the snapshot command's limiter with TimeUnit.MICROSECONDS
        # (its restore's with MILLISECONDS): the same number means 1000x less
        self.snapshot_limiter = RateLimiter(1, interval // 1000)
        self.restore_limiter = RateLimiter(1, interval)
        self._lock = asyncio.Lock()

    # -- Commands.runCommand's common part ---------------------------------------------

    def _gate(self, name: str, request: web.Request) -> tuple[int, dict[str, Any]] | None:
        """Serving, then auth (401 missing/failed, 403 no ALL on /); None to go on."""
        server = getattr(self.shell, "server", None)
        fourlw = getattr(self.shell, "fourlw", None)
        if server is None or fourlw is None or not fourlw.running:
            return 200, response_map(name, "This ZooKeeper instance is not currently "
                                     "serving requests", {})
        auth_info = request.headers.get("Authorization")
        if auth_info is None:
            log.warning("Auth info is missing for command")
            return 401, response_map(name, "Auth info is missing for the command", {})
        ids = authenticate(auth_info, server.super_digest)
        if ids is None:
            log.warning("Auth failed for admin command %s", name)
            return 401, response_map(name, "Not authenticated", {})
        root = server.tree.get_acl("/")
        acls = root[0] if root is not None else []
        for bit in range(5):
            if not aclmod.check_acl(acls, 1 << bit, ids, providers=server.providers):
                return 403, response_map(name, "Not authorized", {})
        return None

    def _standalone(self) -> bool:
        return getattr(self.shell, "store", None) is not None and \
            getattr(self.shell, "role", None) is None and hasattr(self.shell, "log")

    # -- snapshot ----------------------------------------------------------------------

    async def snapshot(self, request: web.Request) -> web.StreamResponse:
        """SnapshotCommand.runGet."""
        from aiohttp import web

        name = SNAPSHOT_NAMES[0]
        gate = self._gate(name, request)
        if gate is not None:
            return _json(*gate)
        plain = response_map(name, None, {})
        if not self.cfg.admin_snapshot_enabled:
            log.warning("Snapshot command is disabled")
            return _json(503, plain)
        if not self.cfg.serialize_last_processed_zxid or not self._standalone():
            log.warning("Snapshot command requires serializeLastProcessedZxidEnable flag "
                        "is set to true (and, in pyzk, a standalone server)")
            return _json(500, plain)
        if not self.snapshot_limiter.allow():
            log.warning("Snapshot request was rate limited")
            return _json(429, plain)
        streaming = request.query.get("streaming", "true").lower() == "true" \
            if "streaming" in request.query else True
        try:
            async with self._lock:
                path, zxid = await self._take_snapshot()
            size = path.stat().st_size
        except Exception:
            log.warning("Exception occurred when taking the snapshot via the snapshot "
                        "admin command", exc_info=True)
            return _json(500, plain)
        headers = {"last_zxid": "0x" + zxid_hex(zxid), "snapshot_size": str(size)}
        if size == 0:
            return _json(500, plain, headers)
        if not streaming:
            return _json(200, plain, headers)
        resp = web.StreamResponse(status=200, headers=headers)
        resp.content_type = "application/octet-stream"
        resp.content_length = size
        await resp.prepare(request)
        f = await asyncio.to_thread(open, path, "rb")
        try:
            while chunk := await asyncio.to_thread(f.read, 1 << 20):
                await resp.write(chunk)
        finally:
            f.close()
        await resp.write_eof()
        return resp

    async def _wait_store_idle(self) -> None:
        store = self.shell.store
        deadline = time.monotonic() + _WAIT_S
        while store.snapshot_in_progress:
            if time.monotonic() > deadline:
                raise TimeoutError("a snapshot stayed in progress")
            await asyncio.sleep(0.01)

    async def _take_snapshot(self) -> tuple[Path, int]:
        """ZooKeeperServer.takeSnapshot: snapshot.<zxid> in dataDir, written by a
        forked child of the tree as it is now (inline where fork is missing)."""
        store = self.shell.store
        await self._wait_store_idle()
        path, zxid, digest = store.snapshot_target()
        server = self.shell.server
        sessions = server.session_timeouts()
        log.info("Snapshotting: 0x%x to %s (admin snapshot command)", zxid, path)
        if not hasattr(os, "fork"):
            await asyncio.to_thread(write_snapshot, path, server.tree, sessions, zxid,
                                    digest=digest, last_zxid=zxid)
            return path, zxid
        store.snapshot_in_progress = True
        try:
            pid = os.fork()
            if pid == 0:  # pragma: no cover - runs in the child
                code = 1
                try:
                    write_snapshot(path, server.tree, sessions, zxid, digest=digest,
                                   last_zxid=zxid)
                    code = 0
                finally:
                    os._exit(code)
            _, status = await asyncio.to_thread(os.waitpid, pid, 0)
        finally:
            store.snapshot_in_progress = False
        if os.waitstatus_to_exitcode(status) != 0:
            raise OSError(f"snapshot writer for {path} failed (status {status})")
        return path, zxid

    # -- restore -----------------------------------------------------------------------

    async def restore(self, request: web.Request) -> web.StreamResponse:
        """RestoreCommand.runPost."""
        name = RESTORE_NAMES[0]
        gate = self._gate(name, request)
        if gate is not None:
            return _json(*gate)
        plain = response_map(name, None, {})
        if not self.cfg.admin_restore_enabled:
            log.warning("Restore command is disabled")
            return _json(503, plain)
        if not self.cfg.serialize_last_processed_zxid or not self._standalone():
            log.warning("Restore command requires serializeLastProcessedZxidEnable flag "
                        "is set to true (and, in pyzk, a standalone server)")
            return _json(500, plain)
        if not self.restore_limiter.allow():
            log.warning("Restore request was rate limited")
            return _json(429, plain)
        try:
            body = await _read_body(request)
            async with self._lock:
                last_zxid = await self._restore(body)
        except Exception:
            log.warning("Exception occurred when restore snapshot via the restore command",
                        exc_info=True)
            return _json(500, plain)
        return _json(200, response_map(name, None, {"last_zxid": last_zxid}))

    async def _restore(self, body: bytes) -> int:
        """ZooKeeperServer.restoreFromSnapshot, made durable before it answers."""
        cfg = self.cfg
        snap = await asyncio.to_thread(
            parse_snapshot, body, 0, digest_enabled=bool(cfg.digest_enabled),
            extended_types=bool(cfg.extended_types_enabled), last_zxid_enabled=True)
        tree = snap.tree
        restored_zxid = snap.last_zxid if snap.last_zxid is not None else 0
        log.info("Restored to a new database. lastProcessedZxid=0x%x, nodeCount=%d, "
                 "sessionCount=%d", restored_zxid, tree.node_count(), len(snap.sessions))
        server = self.shell.server
        store = self.shell.store
        for _attempt in range(20):
            await self._wait_store_idle()
            await self.shell.log.drain()
            current = server.zxid
            if server.proposed or server.prep.outstanding:
                await asyncio.sleep(0.01)
                continue
            # named after the newest zxid, so recovery picks this file and
            # replays only the txns that follow the restore
            zxid = max(current, restored_zxid)
            tree.last_processed_zxid = zxid
            digest: Any = False
            if cfg.digest_enabled:
                digest = ZxidDigest(zxid, DIGEST_VERSION, tree.digest())
                tree.last_processed_digest = (zxid, DIGEST_VERSION, tree.digest())
            sessions = dict(server.session_timeouts())
            path = version_dir(store.data_dir) / snapshot_name(zxid, store.compression)
            store.snapshot_in_progress = True
            try:
                await asyncio.to_thread(write_snapshot, path, tree, sessions, zxid,
                                        digest=digest, last_zxid=zxid)
            finally:
                store.snapshot_in_progress = False
            if server.zxid != current or server.proposed or server.prep.outstanding:
                # a write came in while the file was written: it is in the log
                # after a zxid the file claims, so write it again
                continue
            # one loop step: nothing can run between these
            server.zxid = zxid
            server.tree = tree
            server.prep.tree = tree
            server.reads.tree = tree
            log.info("After restore database. lastProcessedZxid=0x%x, nodeCount=%d",
                     zxid, tree.node_count())
            return zxid
        raise RuntimeError("the server kept writing; restore gave up")


async def _read_body(request: web.Request) -> bytes:
    if request.content_length is not None and request.content_length > MAX_RESTORE_BYTES:
        raise ValueError("restore body too large")
    out = bytearray()
    async for chunk in request.content.iter_chunked(1 << 20):
        out += chunk
        if len(out) > MAX_RESTORE_BYTES:
            raise ValueError("restore body too large")
    if not out:
        raise ValueError("empty restore body")
    return bytes(out)


def _json(status: int, m: dict[str, Any], headers: dict[str, str] | None = None) -> web.Response:
    from aiohttp import web

    from pyzk.core.admincommands import to_json

    return web.Response(status=status, body=to_json(m).encode("utf-8"),
                        content_type="application/json", headers=headers)


__all__ = ["RateLimiter", "SnapshotRestore", "authenticate"]
