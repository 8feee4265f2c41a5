"""Znode path rules: Apache's PathUtils.validatePath and path arithmetic.

Apache checks paths as Java strings, i.e. UTF-16 code units, so any
character outside the Basic Multilingual Plane (stored as a surrogate pair)
is rejected like the surrogate range itself. Valid paths take a fast
regex/substring check; only invalid ones are re-scanned code unit by code
unit to build Apache's exact reason (with its ``@index``).
"""

from __future__ import annotations

import re

_BAD_CHAR = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\uf8ff\ufff0-\uffff\U00010000-\U0010ffff]")


class BadPath(ValueError):
    """The path breaks PathUtils rules; the request fails with BADARGUMENTS."""


def validate_path(path: str | None, sequential: bool = False) -> None:
    """Raise BadPath unless ``path`` is a valid znode path (PathUtils.validatePath)."""
    if sequential:
        # Java evaluates path + "1" first, so a null path becomes "null1".
        path = ("null" if path is None else path) + "1"
    if path is None:
        raise BadPath("Path cannot be null")
    if not path:
        raise BadPath("Path length must be > 0")
    if path[0] != "/":
        raise BadPath("Path must start with / character")
    if len(path) == 1:
        return
    if path[-1] == "/":
        raise BadPath("Path must not end with / character")
    if (
        _BAD_CHAR.search(path) is None
        and "//" not in path
        and "/./" not in path
        and "/../" not in path
        and not path.endswith("/.")
        and not path.endswith("/..")
    ):
        return
    reason = _slow_reason(path)
    if reason is not None:
        raise BadPath(f'Invalid path string "{path}" caused by {reason}')


def _slow_reason(path: str) -> str | None:
    """Apache's scan over UTF-16 code units, giving its exact reason text."""
    raw = path.encode("utf-16-be", "surrogatepass")
    chars = [(raw[i] << 8) | raw[i + 1] for i in range(0, len(raw), 2)]
    n = len(chars)
    slash, dot = 0x2F, 0x2E
    lastc = slash
    for i in range(1, n):
        c = chars[i]
        if c == 0:
            return f"null character not allowed @{i}"
        if c == slash and lastc == slash:
            return f"empty node name specified @{i}"
        if c == dot and lastc == dot:
            if chars[i - 2] == slash and (i + 1 == n or chars[i + 1] == slash):
                return f"relative paths not allowed @{i}"
        elif c == dot:
            if chars[i - 1] == slash and (i + 1 == n or chars[i + 1] == slash):
                return f"relative paths not allowed @{i}"
        elif (
            0 < c <= 0x1F
            or 0x7F <= c <= 0x9F
            or 0xD800 <= c <= 0xF8FF
            or 0xFFF0 <= c <= 0xFFFF
        ):
            return f"invalid character @{i}"
        lastc = c
    return None


def parent_of(path: str) -> str:
    """The parent znode path: "/a/b" -> "/a", "/a" -> "/" (and "/" -> "/")."""
    i = path.rfind("/")
    return "/" if i <= 0 else path[:i]


def parent_key(path: str) -> str:
    """Apache's raw ``path.substring(0, lastSlash)``: "" for children of the root.

    The data tree keeps the root under both "" and "/", as Apache does, and
    Apache's prep keys the root's pending change records by "".
    """
    return path[: path.rfind("/")]


def basename(path: str) -> str:
    """The last component: "/a/b" -> "b"; "/" -> ""."""
    return path[path.rfind("/") + 1 :]


def top_namespace(path: str | None) -> str | None:
    """PathUtils.getTopNamespace: first component, or None ("/" and "" have none)."""
    if path is None:
        return None
    parts = [p for p in path.split("/")]
    while parts and parts[-1] == "":
        parts.pop()
    return parts[1] if len(parts) > 1 else None
