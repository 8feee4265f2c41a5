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
    _event_loop_policy()
    if cfg.is_standalone():
        from pyzk.shell.standalone import run_server

        return asyncio.run(run_server(cfg))
    from pyzk.shell.ensemble import run_quorum_server

    return asyncio.run(run_quorum_server(cfg))
