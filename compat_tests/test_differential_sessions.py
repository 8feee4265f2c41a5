"""Watches, their delivery order, sessions, expiry and reconnects: Apache vs pyzk."""

from __future__ import annotations

import pytest

from pyzk.jute import records as R
from pyzk.jute.constants import AddWatchMode, CreateMode, EventType, OpCode
from pyzk.testing.scenario import (
    Outcome,
    close,
    connect,
    create,
    drop,
    op,
    ping,
    reconnect,
    wait_event,
)
from pyzk.testing.wire import XID_SET_WATCHES

pytestmark = [pytest.mark.server, pytest.mark.reference]


def events(o: Outcome, session: str) -> list[tuple[int, str]]:
    return [(t[1][1]["type"], t[1][1]["path"]) for t in o.traces[session] if t[0] == "event"]


def test_watch_events_across_two_sessions(diff):
    steps = [
        connect("a"),
        connect("b"),
        op("a", OpCode.create, create("/w", b"0")),
        op("a", OpCode.getData, R.GetDataRequest("/w", True)),
        op("a", OpCode.exists, R.ExistsRequest("/w/new", True)),
        op("a", OpCode.getChildren, R.GetChildrenRequest("/w", True)),
        op("b", OpCode.getData, R.GetDataRequest("/w", True)),
        op("b", OpCode.setData, R.SetDataRequest("/w", b"1", -1)),
        op("b", OpCode.create, create("/w/new")),
        op("a", OpCode.getChildren2, R.GetChildren2Request("/w", True)),
        op("a", OpCode.getData, R.GetDataRequest("/w/new", True)),
        op("b", OpCode.delete, R.DeleteRequest("/w/new", -1)),
        op("a", OpCode.exists, R.ExistsRequest("/w", True)),
        op("b", OpCode.delete, R.DeleteRequest("/w", -1)),
        # A watch is one-shot: nothing fires for this second change.
        op("b", OpCode.create, create("/w")),
        op("a", OpCode.ping),
    ]

    def check(o: Outcome) -> None:
        ev = events(o, "a")
        assert (EventType.NodeDataChanged, "/w") in ev
        assert (EventType.NodeCreated, "/w/new") in ev
        assert (EventType.NodeDeleted, "/w/new") in ev
        assert ev[-1] == (EventType.NodeDeleted, "/w")

    diff(steps, check=check)


def test_event_before_reply_on_own_change(diff):
    steps = [
        connect("a"),
        op("a", OpCode.create, create("/x")),
        op("a", OpCode.getData, R.GetDataRequest("/x", True)),
        op("a", OpCode.getChildren, R.GetChildrenRequest("/x", True)),
        op("a", OpCode.setData, R.SetDataRequest("/x", b"d", -1)),
        op("a", OpCode.create, create("/x/c")),
        op("a", OpCode.getData, R.GetDataRequest("/x", True)),
        op("a", OpCode.exists, R.ExistsRequest("/x", True)),
        op("a", OpCode.delete, R.DeleteRequest("/x/c", -1)),
        op("a", OpCode.delete, R.DeleteRequest("/x", -1)),
    ]

    def check(o: Outcome) -> None:
        tr = o.traces["a"]
        i = tr.index(("reply", 4, "OK"))  # setData's reply
        assert tr[i - 1][0] == "event" and tr[i - 1][1][1]["type"] == EventType.NodeDataChanged

    diff(steps, check=check)


def test_persistent_and_recursive_watches(diff):
    steps = [
        connect("a"),
        connect("b"),
        op("a", OpCode.addWatch, R.AddWatchRequest("/p", AddWatchMode.PERSISTENT)),
        op("a", OpCode.addWatch, R.AddWatchRequest("/r", AddWatchMode.PERSISTENT_RECURSIVE)),
        op("b", OpCode.create, create("/p")),
        op("b", OpCode.create, create("/p/c")),
        op("b", OpCode.setData, R.SetDataRequest("/p", b"1", -1)),
        op("b", OpCode.setData, R.SetDataRequest("/p", b"2", -1)),
        op("b", OpCode.delete, R.DeleteRequest("/p/c", -1)),
        op("b", OpCode.create, create("/r")),
        op("b", OpCode.create, create("/r/a")),
        op("b", OpCode.create, create("/r/a/b", b"", CreateMode.EPHEMERAL)),
        op("b", OpCode.setData, R.SetDataRequest("/r/a/b", b"x", -1)),
        op("b", OpCode.delete, R.DeleteRequest("/r/a/b", -1)),
        # A one-shot watch on the same path as a persistent one.
        op("a", OpCode.getData, R.GetDataRequest("/p", True)),
        op("b", OpCode.setData, R.SetDataRequest("/p", b"3", -1)),
        op("a", OpCode.removeWatches, R.RemoveWatchesRequest("/p", 3)),
        op("b", OpCode.setData, R.SetDataRequest("/p", b"4", -1)),
        op("a", OpCode.ping),
    ]

    def check(o: Outcome) -> None:
        ev = events(o, "a")
        assert ev.count((EventType.NodeDataChanged, "/p")) >= 2
        assert (EventType.NodeCreated, "/r/a/b") in ev
        # PersistentWatchRemoved is made up by the Java client; the server
        # never sends it. After removeWatches nothing fires for "4".
        assert all(t != EventType.PersistentWatchRemoved for t, _ in ev)
        assert ev.count((EventType.NodeDataChanged, "/p")) == 3

    diff(steps, check=check)


def test_set_watches_after_reconnect(diff):
    steps = [
        connect("a"),
        connect("b"),
        op("a", OpCode.create, create("/s", b"0")),
        op("a", OpCode.create, create("/s/gone")),
        op("a", OpCode.create, create("/s/same")),
        op("a", OpCode.getData, R.GetDataRequest("/s", True)),
        drop("a"),
        op("b", OpCode.setData, R.SetDataRequest("/s", b"1", -1)),
        op("b", OpCode.delete, R.DeleteRequest("/s/gone", -1)),
        op("b", OpCode.create, create("/s/born")),
        reconnect("a"),
        op("a", OpCode.setWatches, R.SetWatches(
            5, ["/s", "/s/gone", "/s/same"], ["/s/born", "/s/never"], ["/s"])),
        op("a", OpCode.ping),
        drop("a"),
        op("b", OpCode.setData, R.SetDataRequest("/s/same", b"1", -1)),
        reconnect("a"),
        op("a", OpCode.setWatches2, R.SetWatches2(
            6, ["/s/same"], [], [], ["/s"], ["/s"])),
        op("b", OpCode.create, create("/s/born/x")),
        op("a", OpCode.ping),
    ]

    def check(o: Outcome) -> None:
        ev = events(o, "a")
        assert (EventType.NodeDataChanged, "/s") in ev
        assert (EventType.NodeDeleted, "/s/gone") in ev
        assert (EventType.NodeCreated, "/s/born") in ev
        assert (EventType.NodeDataChanged, "/s/same") in ev
        assert o.steps[11][2][0] == "OK"

    diff(steps, check=check)
    assert XID_SET_WATCHES == -8


def test_close_session_deletes_ephemerals_and_fires_watches(diff):
    steps = [
        connect("a"),
        connect("b"),
        op("a", OpCode.create, create("/e1", b"", CreateMode.EPHEMERAL)),
        op("a", OpCode.create, create("/p")),
        op("a", OpCode.create, create("/p/e-", b"", CreateMode.EPHEMERAL_SEQUENTIAL)),
        op("b", OpCode.exists, R.ExistsRequest("/e1", True)),
        op("b", OpCode.getChildren, R.GetChildrenRequest("/p", True)),
        op("b", OpCode.getEphemerals, R.GetEphemeralsRequest("/")),
        close("a"),
        op("b", OpCode.exists, R.ExistsRequest("/e1", False)),
        op("b", OpCode.getChildren2, R.GetChildren2Request("/p", False)),
        reconnect("a"),
    ]

    def check(o: Outcome) -> None:
        ev = events(o, "b")
        assert (EventType.NodeDeleted, "/e1") in ev
        assert (EventType.NodeChildrenChanged, "/p") in ev
        assert o.steps[8][2][0] == "OK"

    diff(steps, check=check)


def test_session_expiry(diff):
    steps = [
        connect("e", session_timeout=1000),
        connect("w"),
        op("e", OpCode.create, create("/eph", b"", CreateMode.EPHEMERAL)),
        op("w", OpCode.exists, R.ExistsRequest("/eph", True)),
        drop("e"),
        wait_event("w", timeout=15),
        op("w", OpCode.exists, R.ExistsRequest("/eph", False)),
        reconnect("e"),
    ]

    def check(o: Outcome) -> None:
        assert o.steps[0][2][1]["timeOut"] == 1000
        assert o.steps[5][2][1][1]["type"] == EventType.NodeDeleted
        assert o.steps[7][2][1]["sessionId"] == 0  # expired

    diff(steps, extra_cfg={"tickTime": "500"}, check=check)


def test_session_timeout_negotiation(diff):
    steps = [
        connect("lo", session_timeout=1),
        connect("hi", session_timeout=10_000_000),
        connect("mid", session_timeout=7000),
        connect("neg", session_timeout=-5),
    ]

    def check(o: Outcome) -> None:
        assert o.steps[0][2][1]["timeOut"] == 4000
        assert o.steps[1][2][1]["timeOut"] == 40000

    diff(steps, check=check)


def test_reconnect_variants(diff):
    steps = [
        connect("a"),
        op("a", OpCode.create, create("/k", b"", CreateMode.EPHEMERAL)),
        reconnect("a", wrong_password=True),
        connect("a2"),
        op("a2", OpCode.exists, R.ExistsRequest("/k", False)),
        reconnect("a"),
        op("a", OpCode.exists, R.ExistsRequest("/k", False)),
        connect("ahead", last_zxid=1000),
        connect("old", read_only=None),
        op("old", OpCode.exists, R.ExistsRequest("/k", False)),
        connect("ro", read_only=True),
        ping("ro"),
        connect("unknown", session_id=0x1234_5678_9ABC, passwd=b"\1" * 16),
    ]

    def check(o: Outcome) -> None:
        assert o.steps[2][2][1]["sessionId"] == 0
        assert o.steps[5][2][1]["sessionId"] == "<session a>"
        assert o.steps[7][2] == "closed"
        assert o.steps[8][3] is None  # no readOnly byte for an old client

    diff(steps, check=check)
