"""Quotas: StatsTrack strings, quota node paths, the quota path trie and checkQuota.

A quota on ``/p`` lives in two znodes: ``/zookeeper/quota/p/zookeeper_limits``
(the limits the user set, e.g. ``count=10,bytes=-1``, or since 3.7 with hard
limits ``count=-1,bytes=-1=;byteHardLimit=-1;countHardLimit=10``) and
``.../zookeeper_stats`` (the usage the server maintains). The tree keeps a
trie of quota'd paths to find, for any path, the deepest quota root above it.
"""

from __future__ import annotations

import logging
import re
from typing import Protocol

from pyzk.javacompat import java_parse_long, java_split, java_trim
from pyzk.jute.constants import Err, OpCode

log = logging.getLogger(__name__)

PROC_ZOOKEEPER = "/zookeeper"
QUOTA_ZOOKEEPER = "/zookeeper/quota"
LIMIT_NODE = "zookeeper_limits"
STAT_NODE = "zookeeper_stats"

_COUNT = "count"
_BYTES = "bytes"
_COUNT_HARD = "countHardLimit"
_BYTE_HARD = "byteHardLimit"
_PAIRS_SEPARATOR = re.compile(r"[,;]+")


def quota_path(path: str) -> str:
    return QUOTA_ZOOKEEPER + path


def limit_path(path: str) -> str:
    return QUOTA_ZOOKEEPER + path + "/" + LIMIT_NODE


def stat_path(path: str) -> str:
    return QUOTA_ZOOKEEPER + path + "/" + STAT_NODE


def trim_quota_path(qpath: str) -> str:
    """Quotas.trimQuotaPath: strip the "/zookeeper/quota" prefix (ValueError if too short)."""
    if len(qpath) < len(QUOTA_ZOOKEEPER):
        raise ValueError(f"not a quota path: {qpath}")
    return qpath[len(QUOTA_ZOOKEEPER):]


class StatsTrack:
    """Apache StatsTrack: a key -> long map with a backward-compatible text form.

    Missing keys read as -1. Parsing splits on runs of ``,``/``;`` then on
    ``=`` with Java's rules (``bytes=5=`` reads as bytes=5; an empty value
    reads as -1); malformed text raises ValueError where Java throws.
    """

    __slots__ = ("stats",)

    def __init__(self, text: str | bytes | None = None) -> None:
        self.stats: dict[str, int] = {}
        if isinstance(text, (bytes, bytearray)):
            text = bytes(text).decode("utf-8", "replace")
        if not text:
            return
        pairs = _PAIRS_SEPARATOR.split(text)
        while pairs and pairs[-1] == "":
            pairs.pop()  # Java's split drops trailing empty strings
        for pair in pairs:
            kv = java_split(pair, "=")
            if len(kv) < 2:
                raise ValueError(f"malformed quota pair {pair!r}")
            self.stats[kv[0]] = java_parse_long(kv[1] if kv[1] else "-1")

    def _get(self, key: str) -> int:
        return self.stats.get(key, -1)

    @property
    def count(self) -> int:
        return self._get(_COUNT)

    @count.setter
    def count(self, v: int) -> None:
        self.stats[_COUNT] = v

    @property
    def bytes(self) -> int:
        return self._get(_BYTES)

    @bytes.setter
    def bytes(self, v: int) -> None:
        self.stats[_BYTES] = v

    @property
    def count_hard_limit(self) -> int:
        return self._get(_COUNT_HARD)

    @count_hard_limit.setter
    def count_hard_limit(self, v: int) -> None:
        self.stats[_COUNT_HARD] = v

    @property
    def byte_hard_limit(self) -> int:
        return self._get(_BYTE_HARD)

    @byte_hard_limit.setter
    def byte_hard_limit(self, v: int) -> None:
        self.stats[_BYTE_HARD] = v

    def __str__(self) -> str:
        out = f"count={self.count},bytes={self.bytes}"
        extra = sorted(k for k in self.stats if k not in (_COUNT, _BYTES))
        if extra:
            # Apache appends "=" so pre-3.7 parsers ignore the new keys.
            out += "=" + "".join(f";{k}={self.stats[k]}" for k in extra)
        return out

    def to_bytes(self) -> bytes:
        return str(self).encode("utf-8")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, StatsTrack) and self.stats == other.stats

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"StatsTrack({str(self)!r})"


def _components(path: str) -> tuple[str, ...]:
    """PathTrie.split: components, dropping those that are blank after Java trim()."""
    return tuple(p for p in path.split("/") if java_trim(p))


class QuotaTrie:
    """Apache's PathTrie reduced to what it answers: the deepest quota root of a path.

    A trie node exists for every ancestor of a marked path and is only
    removed when it is an unmarked leaf, so "is there a marked node along
    this path" equals "is this component prefix in the marked set".
    """

    __slots__ = ("marked",)

    def __init__(self) -> None:
        #: the marked prefixes; read by DataTree as "is any quota set" without a call
        self.marked: set[tuple[str, ...]] = set()

    def __bool__(self) -> bool:
        return bool(self.marked)

    def add_path(self, path: str) -> None:
        if not path:
            raise ValueError(f"Invalid path: {path}")
        self.marked.add(_components(path))

    def delete_path(self, path: str) -> None:
        if not path:
            raise ValueError(f"Invalid path: {path}")
        self.marked.discard(_components(path))

    def clear(self) -> None:
        self.marked.clear()

    def find_max_prefix(self, path: str) -> str:
        """Deepest marked prefix as "/a/b", or "/" when none."""
        if not self.marked:
            return "/"
        comps = _components(path)
        for n in range(len(comps), 0, -1):
            if comps[:n] in self.marked:
                return "/" + "/".join(comps[:n])
        return "/"


class QuotaExceeded(Exception):
    """A hard quota would be exceeded; the request fails with QUOTAEXCEEDED."""

    code = Err.QUOTAEXCEEDED

    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


class _Node(Protocol):
    data: bytes | None


class _Tree(Protocol):
    def get_node(self, path: str) -> _Node | None: ...

    def max_prefix_with_quota(self, path: str) -> str | None: ...


def check_quota(
    tree: _Tree, path: str, last_data: bytes | None, data: bytes | None, op: int
) -> None:
    """ZooKeeperServer.checkQuota for a create or setData (call only when enforceQuota).

    Soft limits only log a warning; hard limits raise QuotaExceeded.
    """
    prefix = tree.max_prefix_with_quota(path)
    if not prefix:
        return
    data_bytes = 0 if data is None else len(data)
    if op == OpCode.create:
        _check(tree, prefix, data_bytes, 1)
    elif op == OpCode.setData:
        _check(tree, prefix, data_bytes - (0 if last_data is None else len(last_data)), 0)
    else:
        raise ValueError(f"Unsupported OpCode for checkQuota: {op}")


def _read_stats(tree: _Tree, path: str, what: str) -> StatsTrack | None:
    node = tree.get_node(path)
    if node is None:
        log.error("Missing %s node for quota %s", what, path)
        return None
    return StatsTrack(node.data)


def _check(tree: _Tree, prefix: str, bytes_diff: int, count_diff: int) -> None:
    limits = _read_stats(tree, limit_path(prefix), "limit")
    if limits is None:
        return
    check_count = count_diff != 0 and (limits.count > -1 or limits.count_hard_limit > -1)
    check_bytes = bytes_diff != 0 and (limits.bytes > -1 or limits.byte_hard_limit > -1)
    if not check_count and not check_bytes:
        return
    current = _read_stats(tree, stat_path(prefix), "stat")
    if current is None:
        return
    if check_count:
        new = current.count + count_diff
        hard = limits.count_hard_limit > -1
        limit = limits.count_hard_limit if hard else limits.count
        if new > limit:
            log.warning(
                "Quota exceeded: %s [current count=%d, %sCountLimit=%d]",
                prefix, new, "hard" if hard else "soft", limit,
            )
            if hard:
                raise QuotaExceeded(prefix)
    if check_bytes:
        new = current.bytes + bytes_diff
        hard = limits.byte_hard_limit > -1
        limit = limits.byte_hard_limit if hard else limits.bytes
        if new > limit:
            log.warning(
                "Quota exceeded: %s [current bytes=%d, %sByteLimit=%d]",
                prefix, new, "hard" if hard else "soft", limit,
            )
            if hard:
                raise QuotaExceeded(prefix)
