"""KeeperError: an operation failed with one of Apache's error codes."""

from __future__ import annotations

from pyzk.jute.constants import Err


class KeeperError(Exception):
    """Raised inside the request layer; becomes the reply header's err."""

    __slots__ = ("code", "path", "keep_body")

    def __init__(self, code: int, path: str | None = None, *, keep_body: bool = False) -> None:
        super().__init__(f"{Err(code).name} {path or ''}".strip())
        self.code = code
        self.path = path
        # Apache sends the response body along with a few errors (multiRead).
        self.keep_body = keep_body
