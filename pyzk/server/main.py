"""Entry point the CLI calls: run a server for a parsed zoo.cfg until signalled."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)


def _event_loop_policy() -> None:
    try:
        import uvloop
    except ImportError:
        log.info("uvloop is not installed; using asyncio's default event loop")
        return
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())


def serve(cfg: Any) -> int:
    """Serve ``cfg`` (a pyzk.config.ServerConfig) until SIGTERM/SIGINT; exit code."""
    from pyzk.server.shell import run_server

    if not cfg.is_standalone():
        log.error("ensembles (server.N lines with more than one voting member) are not "
                  "supported yet; run a standalone server")
        return 2
    _event_loop_policy()
    return asyncio.run(run_server(cfg))
