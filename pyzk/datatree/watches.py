"""Watch bookkeeping (Apache WatchManager + WatcherModeManager + PathParentIterator).

A DataTree has two of these: data watches (getData/exists) and child
watches (getChildren); addWatch puts persistent watches in both. Watchers
are opaque hashable objects (the server passes its connections). Each
(watcher, path) pair has one mode: adding a standard watch where a
persistent one exists downgrades it to standard, as in Apache.

Trigger rules (WatchManager.triggerWatch): the path's own watchers fire; a
standard one is removed. When any recursive watch exists, every ancestor's
recursive watchers fire too, except for NodeChildrenChanged, which never
reaches a recursive watcher (not even one on the path itself). Each watcher
fires at most once per trigger.

Containers are dicts used as ordered sets so that the result is
deterministic (Apache's HashSet order is that of identity hash codes).
"""

from __future__ import annotations

from collections.abc import Hashable
from enum import IntEnum

from pyzk.jute.constants import EventType

Watcher = Hashable

_CHILDREN_CHANGED = int(EventType.NodeChildrenChanged)


class WatcherMode(IntEnum):
    STANDARD = 0
    PERSISTENT = 1
    PERSISTENT_RECURSIVE = 2

    @classmethod
    def from_add_watch_mode(cls, mode: int) -> WatcherMode:
        """WatcherMode.fromZooDef: AddWatchMode 0 / 1; ValueError otherwise."""
        if mode == 0:
            return cls.PERSISTENT
        if mode == 1:
            return cls.PERSISTENT_RECURSIVE
        raise ValueError(f"Unsupported mode: {mode}")


STANDARD = WatcherMode.STANDARD
PERSISTENT = WatcherMode.PERSISTENT
PERSISTENT_RECURSIVE = WatcherMode.PERSISTENT_RECURSIVE
_EMPTY: frozenset = frozenset()


def _ancestors(path: str):
    """Yield the parents of ``path`` from nearest to "/" (PathParentIterator minus the path)."""
    while path != "/":
        i = path.rfind("/")
        path = path[:i] if i > 0 else "/"
        yield path


class WatchManager:
    """All the watches of one kind; see the module docstring for the rules."""

    __slots__ = ("_table", "_by_watcher", "recursive_count")

    def __init__(self) -> None:
        # path -> {watcher: mode}; a watcher's mode lives beside it.
        self._table: dict[str, dict[Watcher, WatcherMode]] = {}
        # watcher -> {path: None}
        self._by_watcher: dict[Watcher, dict[str, None]] = {}
        self.recursive_count = 0

    def __len__(self) -> int:
        """Number of (path, watcher) pairs (WatchManager.size)."""
        return sum(len(w) for w in self._table.values())

    def add_watch(self, path: str, watcher: Watcher, mode: WatcherMode = STANDARD) -> bool:
        """Register; returns False if this watcher already watched ``path`` (mode is updated)."""
        ws = self._table.get(path)
        if ws is None:
            ws = self._table[path] = {}
        old = ws.get(watcher, STANDARD)
        ws[watcher] = mode
        if (old == PERSISTENT_RECURSIVE) != (mode == PERSISTENT_RECURSIVE):
            self.recursive_count += 1 if mode == PERSISTENT_RECURSIVE else -1
        paths = self._by_watcher.get(watcher)
        if paths is None:
            paths = self._by_watcher[watcher] = {}
        if path in paths:
            return False
        paths[path] = None
        return True

    def trigger(
        self, path: str, event_type: int, suppress: frozenset | set | dict | None = None
    ) -> dict[Watcher, None]:
        """Fire ``event_type`` on ``path``; returns every matching watcher (ordered).

        One-shot watches that matched are removed. ``suppress`` is accepted for
        Apache's signature: matching watchers in it are still returned (the
        caller skips notifying them) and still consumed, as in Apache.
        """
        table = self._table
        if not table:
            return {}
        out: dict[Watcher, None] = {}
        ws = table.get(path)
        if ws:
            consumed = None
            for w, mode in ws.items():
                if mode == PERSISTENT_RECURSIVE:
                    if event_type != _CHILDREN_CHANGED:
                        out[w] = None
                else:
                    out[w] = None
                    if mode == STANDARD:
                        if consumed is None:
                            consumed = [w]
                        else:
                            consumed.append(w)
            if consumed:
                by_watcher = self._by_watcher
                for w in consumed:
                    del ws[w]
                    paths = by_watcher.get(w)
                    if paths is not None:
                        paths.pop(path, None)
                if not ws:
                    del table[path]
        if self.recursive_count and event_type != _CHILDREN_CHANGED:
            for parent in _ancestors(path):
                pws = table.get(parent)
                if pws:
                    for w, mode in pws.items():
                        if mode == PERSISTENT_RECURSIVE:
                            out[w] = None
        return out

    def remove_watcher(self, watcher: Watcher) -> None:
        """Drop every watch of ``watcher`` (its connection closed)."""
        paths = self._by_watcher.pop(watcher, None)
        if paths is None:
            return
        table = self._table
        for p in paths:
            ws = table.get(p)
            if ws is not None:
                mode = ws.pop(watcher, None)
                if mode == PERSISTENT_RECURSIVE:
                    self.recursive_count -= 1
                if not ws:
                    del table[p]

    def remove_watch(self, path: str, watcher: Watcher, mode: WatcherMode | None = None) -> bool:
        """Remove ``watcher``'s watch on ``path`` (any mode, or only ``mode`` if given)."""
        paths = self._by_watcher.get(watcher)
        if paths is None or path not in paths:
            return False
        ws = self._table.get(path)
        if ws is None or watcher not in ws:
            return False
        if mode is not None and ws[watcher] != mode:
            return False
        del paths[path]
        old = ws.pop(watcher)
        if old == PERSISTENT_RECURSIVE:
            self.recursive_count -= 1
        if not ws:
            del self._table[path]
        return True

    def contains_watcher(
        self, path: str, watcher: Watcher, mode: WatcherMode | None = None
    ) -> bool:
        """Apache's containsWatcher, quirks included, or an exact test when ``mode`` is given.

        Apache answers True when *any* watcher watches ``path`` itself, or when
        ``watcher`` has a recursive watch registered on ``path``.
        """
        ws = self._table.get(path)
        if mode is not None:
            return ws is not None and ws.get(watcher, -1) == mode
        # Apache's recursive-mode branch can only hold when ``ws`` exists too.
        return ws is not None

    def mode_of(self, path: str, watcher: Watcher) -> WatcherMode | None:
        ws = self._table.get(path)
        return None if ws is None else ws.get(watcher)

    # ---------------------------------------------------------- dumps (4lw)

    def summary(self) -> tuple[int, int, int]:
        """wchs: (connections watching, paths watched, total watches)."""
        total = sum(len(p) for p in self._by_watcher.values())
        return len(self._by_watcher), len(self._table), total

    def by_watcher(self) -> dict[Watcher, list[str]]:
        """wchc: watcher -> watched paths."""
        return {w: list(p) for w, p in self._by_watcher.items()}

    def by_path(self) -> dict[str, list[Watcher]]:
        """wchp: path -> watchers."""
        return {p: list(ws) for p, ws in self._table.items()}

    def watchers_of(self, path: str) -> dict[Watcher, WatcherMode]:
        return dict(self._table.get(path, {}))
