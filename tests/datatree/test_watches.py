"""WatchManager rules from Apache's WatchManager.triggerWatch and friends."""

from __future__ import annotations

import pytest

from pyzk.datatree.watches import (
    PERSISTENT,
    PERSISTENT_RECURSIVE,
    STANDARD,
    WatcherMode,
    WatchManager,
)
from pyzk.jute.constants import EventType as E

pytestmark = pytest.mark.pure


def test_standard_watch_fires_once():
    m = WatchManager()
    assert m.add_watch("/a", "w1")
    assert not m.add_watch("/a", "w1")
    assert list(m.trigger("/a", E.NodeDataChanged)) == ["w1"]
    assert list(m.trigger("/a", E.NodeDataChanged)) == []
    assert m.summary() == (1, 0, 0)  # the watcher entry stays, with no paths


def test_persistent_watch_stays_and_ignores_parents():
    m = WatchManager()
    m.add_watch("/a", "w", PERSISTENT)
    for _ in range(2):
        assert list(m.trigger("/a", E.NodeDataChanged)) == ["w"]
    assert list(m.trigger("/a/b", E.NodeCreated)) == []
    assert list(m.trigger("/a", E.NodeChildrenChanged)) == ["w"]


def test_recursive_watch_sees_descendants_but_never_child_events():
    m = WatchManager()
    m.add_watch("/a", "r", PERSISTENT_RECURSIVE)
    m.add_watch("/a/b", "s")
    assert m.recursive_count == 1
    assert list(m.trigger("/a/b/c", E.NodeCreated)) == ["r"]
    assert list(m.trigger("/a", E.NodeDeleted)) == ["r"]
    assert list(m.trigger("/a", E.NodeChildrenChanged)) == []
    assert list(m.trigger("/a/b", E.NodeChildrenChanged)) == ["s"]
    assert list(m.trigger("/x", E.NodeCreated)) == []
    m.add_watch("/", "root", PERSISTENT_RECURSIVE)
    assert set(m.trigger("/a/b", E.NodeDataChanged)) == {"r", "root"}


def test_one_event_per_watcher_per_trigger():
    m = WatchManager()
    m.add_watch("/", "w", PERSISTENT_RECURSIVE)
    m.add_watch("/a", "w", PERSISTENT_RECURSIVE)
    m.add_watch("/a/b", "w")
    assert list(m.trigger("/a/b", E.NodeDataChanged)) == ["w"]


def test_standard_add_downgrades_a_persistent_watch():
    m = WatchManager()
    m.add_watch("/a", "w", PERSISTENT_RECURSIVE)
    m.add_watch("/a", "w", STANDARD)
    assert m.recursive_count == 0
    assert m.mode_of("/a", "w") == STANDARD
    m.trigger("/a", E.NodeDataChanged)
    assert m.mode_of("/a", "w") is None


def test_suppressed_watchers_are_returned_and_consumed():
    m = WatchManager()
    m.add_watch("/a", "w")
    got = m.trigger("/a", E.NodeDeleted, suppress={"w"})
    assert list(got) == ["w"]
    assert not m.contains_watcher("/a", "w")


def test_remove_and_contains():
    m = WatchManager()
    m.add_watch("/a", "w1", PERSISTENT)
    m.add_watch("/a", "w2")
    m.add_watch("/b", "w1", PERSISTENT_RECURSIVE)
    # Apache: true if anyone watches the path itself
    assert m.contains_watcher("/a", "w3")
    assert not m.contains_watcher("/a/x", "w1")
    assert m.contains_watcher("/a", "w1", PERSISTENT)
    assert not m.contains_watcher("/a", "w2", PERSISTENT)
    assert not m.remove_watch("/a", "w2", PERSISTENT)
    assert m.remove_watch("/a", "w2")
    assert not m.remove_watch("/a", "w2")
    assert m.by_path() == {"/a": ["w1"], "/b": ["w1"]}
    assert m.by_watcher() == {"w1": ["/a", "/b"], "w2": []}
    m.remove_watcher("w1")
    assert m.recursive_count == 0 and m.summary() == (1, 0, 0) and len(m) == 0


def test_add_watch_mode_mapping():
    assert WatcherMode.from_add_watch_mode(0) == PERSISTENT
    assert WatcherMode.from_add_watch_mode(1) == PERSISTENT_RECURSIVE
