"""A client that connects while an ensemble member has no server yet (its
database still loading at start) is hung up on at once, as Apache closes
connections while it is not running; before, connection_made raised and the
client waited for its timeout."""

from __future__ import annotations

from typing import Any

import pytest

from pyzk.config import ServerConfig
from pyzk.shell.connection import ClientConnection

pytestmark = pytest.mark.server


class _Transport:
    def __init__(self) -> None:
        self.closed = False

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 5555) if name == "peername" else default

    def close(self) -> None:
        self.closed = True

    def is_closing(self) -> bool:
        return self.closed


class _Shell:
    """A shell between start and its first server."""

    def __init__(self) -> None:
        self.cfg = ServerConfig(data_dir="/nonexistent")
        self.server = None


def test_a_connection_with_no_server_is_closed_cleanly() -> None:
    conn = ClientConnection(_Shell())  # type: ignore[arg-type]
    transport = _Transport()
    conn.connection_made(transport)  # type: ignore[arg-type]
    assert transport.closed and conn.closed
    conn.data_received(b"\x00\x00\x00\x2c" + b"\x00" * 44)  # ignored, no crash
    conn.connection_lost(None)
