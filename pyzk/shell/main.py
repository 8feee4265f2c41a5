"""The server's one entry point: run the server a parsed zoo.cfg describes,
standalone or as an ensemble member, until SIGTERM/SIGINT."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyzk.config import ServerConfig
    from pyzk.shell.ensemble import EnsembleShell
    from pyzk.shell.standalone import StandaloneShell

log = logging.getLogger(__name__)


def _event_loop_policy() -> None:
    try:
        import uvloop
    except ImportError:
        log.info("uvloop is not installed; using asyncio's default event loop")
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


async def run(cfg: ServerConfig) -> int:
    """Start the shell ``cfg`` asks for and serve until signalled; the exit code
    (1 when the server failed on its own)."""
    loop = asyncio.get_running_loop()
    if cfg.is_standalone() and cfg.workers > 0:
        from pyzk.shell.workers import OrdererShell

        shell: StandaloneShell | EnsembleShell = OrdererShell(cfg, loop)
    elif cfg.is_standalone():
        from pyzk.shell.standalone import StandaloneShell

        shell = StandaloneShell(cfg, loop)
    else:
        from pyzk.shell.ensemble import EnsembleShell

        if cfg.workers > 0:
            log.warning("pyzk.workers=%d is ignored: only a standalone server runs worker "
                        "processes (yet)", cfg.workers)
        shell = EnsembleShell(cfg, loop)
    await shell.start()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    watch = _watch_parent(stop)
    stopped = asyncio.ensure_future(stop.wait())
    await asyncio.wait([stopped, shell.fatal], return_when=asyncio.FIRST_COMPLETED)
    if watch is not None:
        watch.cancel()
    code = 1 if shell.fatal.done() and shell.fatal.exception() is not None else 0
    stopped.cancel()
    log.info("shutting down")
    await shell.stop()
    return code


#: How often a server started with PYZK_DIE_WITH_PARENT looks for its parent.
PARENT_CHECK_S = 1.0


def _watch_parent(stop: asyncio.Event) -> asyncio.Task[None] | None:
    """PYZK_DIE_WITH_PARENT=<pid> (the pytest plugin sets it): shut down
    cleanly once that process is gone, even if it died by SIGKILL, so a
    crashed test run leaves no server behind. Polling the parent pid works
    whichever thread started us (prctl's PDEATHSIG follows the thread)."""
    want = os.environ.get("PYZK_DIE_WITH_PARENT", "")
    if not want.isdigit():
        return None
    parent = int(want)

    async def watch() -> None:
        while os.getppid() == parent:
            await asyncio.sleep(PARENT_CHECK_S)
        log.warning("The process that started this server (pid %d) is gone: shutting down",
                    parent)
        stop.set()

    return asyncio.get_running_loop().create_task(watch())


def serve(cfg: ServerConfig) -> int:
    """Serve ``cfg`` (a pyzk.config.ServerConfig) until SIGTERM/SIGINT; exit code."""
    _event_loop_policy()
    return asyncio.run(run(cfg))
