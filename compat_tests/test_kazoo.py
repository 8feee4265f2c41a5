"""kazoo, a real client, against Apache and pyzk: its API and its recipes.

Every test runs once per server (the `server_module` fixture) in its own
subtree; every wait is bounded.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import (
    BadVersionError,
    NoAuthError,
    NodeExistsError,
    NoNodeError,
    NotEmptyError,
)
from kazoo.protocol.states import EventType
from kazoo.recipe.barrier import Barrier, DoubleBarrier
from kazoo.recipe.cache import TreeCache, TreeEvent
from kazoo.recipe.counter import Counter
from kazoo.recipe.election import Election
from kazoo.recipe.lock import Lock
from kazoo.recipe.partitioner import PartitionState, SetPartitioner
from kazoo.recipe.party import Party, ShallowParty
from kazoo.recipe.queue import LockingQueue, Queue
from kazoo.recipe.watchers import ChildrenWatch, DataWatch
from kazoo.security import make_digest_acl

from pyzk.testing.servers import ServerProcess

pytestmark = [pytest.mark.server, pytest.mark.reference]

WAIT = 10.0


def wait_for(pred, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


@pytest.fixture
def zk(server_module: ServerProcess) -> Iterator[KazooClient]:
    c = KazooClient(hosts=server_module.address, timeout=10.0)
    c.start(timeout=WAIT)
    yield c
    c.stop()
    c.close()


@pytest.fixture
def zk2(server_module: ServerProcess) -> Iterator[KazooClient]:
    c = KazooClient(hosts=server_module.address, timeout=10.0)
    c.start(timeout=WAIT)
    yield c
    c.stop()
    c.close()


@pytest.fixture
def root() -> str:
    return "/k-" + uuid.uuid4().hex[:8]


def test_crud(zk: KazooClient, root: str) -> None:
    assert zk.create(root, b"v") == root
    assert zk.create(root + "/a/b/c", b"deep", makepath=True) == root + "/a/b/c"
    with pytest.raises(NodeExistsError):
        zk.create(root)
    with pytest.raises(NoNodeError):
        zk.create(root + "/x/y")
    data, stat = zk.get(root)
    assert data == b"v" and stat.version == 0 and stat.numChildren == 1
    stat2 = zk.set(root, b"w")
    assert stat2.version == 1 and stat2.mzxid > stat.mzxid
    with pytest.raises(BadVersionError):
        zk.set(root, b"z", version=0)
    assert zk.exists(root + "/nope") is None
    p = zk.create(root + "/s-", sequence=True)
    assert p == root + "/s-0000000001"
    path, st = zk.create(root + "/c2", b"12", include_data=True)
    assert st.dataLength == 2
    assert sorted(zk.get_children(root)) == ["a", "c2", "s-0000000001"]
    children, st = zk.get_children(root, include_data=True)
    assert st.numChildren == 3
    with pytest.raises(NotEmptyError):
        zk.delete(root)
    zk.delete(root, recursive=True)
    assert zk.exists(root) is None


def test_ephemeral_and_session_info(zk: KazooClient, zk2: KazooClient, root: str) -> None:
    zk.ensure_path(root)
    zk.ensure_path(root)
    zk.create(root + "/e", ephemeral=True)
    st = zk2.exists(root + "/e")
    assert st.ephemeralOwner == zk.client_id[0]
    with pytest.raises(Exception):  # noqa: B017 - NoChildrenForEphemeralsError
        zk.create(root + "/e/c")
    zk.stop()
    wait_for(lambda: zk2.exists(root + "/e") is None)
    assert zk2.server_version()[:2] == (3, 8)
    zk2.sync(root)


def test_watches(zk: KazooClient, zk2: KazooClient, root: str) -> None:
    zk.create(root)
    got: list = []
    ev = threading.Event()

    def watcher(event):
        got.append((event.type, event.path))
        ev.set()

    zk.get(root, watch=watcher)
    zk2.set(root, b"1")
    assert ev.wait(WAIT)
    assert got == [(EventType.CHANGED, root)]
    ev.clear()
    zk.get_children(root, watch=watcher)
    zk2.create(root + "/c")
    assert ev.wait(WAIT)
    assert got[-1] == (EventType.CHILD, root)
    ev.clear()
    zk.exists(root + "/later", watch=watcher)
    zk2.create(root + "/later")
    assert ev.wait(WAIT)
    assert got[-1] == (EventType.CREATED, root + "/later")
    ev.clear()
    zk.exists(root + "/later", watch=watcher)
    zk2.delete(root + "/later")
    assert ev.wait(WAIT)
    assert got[-1] == (EventType.DELETED, root + "/later")


def test_transactions(zk: KazooClient, root: str) -> None:
    zk.create(root, b"0")
    t = zk.transaction()
    t.check(root, 0)
    t.create(root + "/a", b"a")
    t.set_data(root, b"1")
    t.create(root + "/b")
    t.delete(root + "/b")
    results = t.commit()
    assert results[0] is True and results[1] == root + "/a"
    assert zk.get(root)[0] == b"1"
    t = zk.transaction()
    t.create(root + "/x")
    t.check(root, 0)
    results = t.commit()
    assert isinstance(results[1], BadVersionError)
    assert zk.exists(root + "/x") is None


def test_acls_and_auth(server_module: ServerProcess, zk: KazooClient, root: str) -> None:
    acl = make_digest_acl("alice", "pw", all=True)
    zk.create(root, b"secret", acl=[acl])
    with pytest.raises(NoAuthError):
        zk.get(root)
    with pytest.raises(NoAuthError):  # getACL needs READ or ADMIN in 3.8
        zk.get_acls(root)
    other = KazooClient(hosts=server_module.address, auth_data=[("digest", "alice:pw")])
    other.start(timeout=WAIT)
    try:
        assert other.get(root)[0] == b"secret"
        got_acl, _ = other.get_acls(root)
        assert got_acl == [acl]
        other.set_acls(root, [make_digest_acl("alice", "pw", read=True)])
    finally:
        other.stop()
        other.close()
    zk.add_auth("digest", "alice:pw")
    assert zk.get(root)[0] == b"secret"


def test_reconnect_keeps_session(zk: KazooClient, root: str) -> None:
    zk.create(root, ephemeral=True)
    sid = zk.client_id[0]
    states: list = []
    zk.add_listener(states.append)
    # Cut the TCP connection under kazoo: it must reconnect to the same session.
    zk._connection._socket.shutdown(socket.SHUT_RDWR)
    wait_for(lambda: KazooState.CONNECTED in states and zk.connected)
    assert zk.client_id[0] == sid
    assert zk.exists(root) is not None


def test_lock_and_election(zk: KazooClient, zk2: KazooClient, root: str) -> None:
    lock1, lock2 = Lock(zk, root + "/lock", "one"), Lock(zk2, root + "/lock", "two")
    assert lock1.acquire(timeout=WAIT)
    assert not lock2.acquire(blocking=False)
    assert lock2.contenders() == ["one"]
    lock1.release()
    assert lock2.acquire(timeout=WAIT)
    lock2.release()
    won = threading.Event()
    e1 = Election(zk, root + "/elect", "me")
    t = threading.Thread(target=e1.run, args=(won.set,), daemon=True)
    t.start()
    assert won.wait(WAIT)
    t.join(WAIT)  # run() releases the election lock after the callback returns
    assert not t.is_alive()
    assert Election(zk2, root + "/elect").contenders() == []  # released after run


def test_barriers(zk: KazooClient, zk2: KazooClient, root: str) -> None:
    b = Barrier(zk, root + "/barrier")
    b.create()
    assert not Barrier(zk2, root + "/barrier").wait(0.2)
    b.remove()
    assert Barrier(zk2, root + "/barrier").wait(WAIT)
    entered = threading.Event()
    d1 = DoubleBarrier(zk, root + "/db", 2)
    d2 = DoubleBarrier(zk2, root + "/db", 2)

    def second():
        d2.enter()
        entered.set()
        d2.leave()

    t = threading.Thread(target=second, daemon=True)
    t.start()
    d1.enter()
    assert entered.wait(WAIT)
    d1.leave()
    t.join(WAIT)
    assert not t.is_alive()


def test_counter_and_queues(zk: KazooClient, zk2: KazooClient, root: str) -> None:
    c = Counter(zk, root + "/counter")
    c += 5
    c -= 2
    assert c.value == 3
    assert Counter(zk2, root + "/counter").value == 3
    q = Queue(zk, root + "/q")
    for item in (b"a", b"b", b"c"):
        q.put(item)
    q.put(b"urgent", priority=1)
    assert len(q) == 4
    assert [q.get() for _ in range(4)] == [b"urgent", b"a", b"b", b"c"]
    assert q.get() is None
    lq = LockingQueue(zk, root + "/lq")
    lq.put_all([b"x", b"y"])
    lq2 = LockingQueue(zk2, root + "/lq")
    assert lq2.get(WAIT) == b"x"
    assert lq2.consume()
    assert lq.get(WAIT) == b"y"
    assert lq.holds_lock()
    assert lq.release()
    assert lq2.get(WAIT) == b"y"
    assert lq2.consume()


def test_parties(zk: KazooClient, zk2: KazooClient, root: str) -> None:
    p1, p2 = Party(zk, root + "/party", "a"), Party(zk2, root + "/party", "b")
    p1.join()
    p2.join()
    assert sorted(p1) == ["a", "b"] and len(p2) == 2
    p1.leave()
    assert list(p2) == ["b"]
    s1 = ShallowParty(zk, root + "/sp", "x")
    s1.join()
    assert list(ShallowParty(zk2, root + "/sp")) == ["x"]


def test_set_partitioner(zk: KazooClient, root: str) -> None:
    sp = SetPartitioner(zk, root + "/part", set=(1, 2, 3), time_boundary=0.2)
    sp.wait_for_acquire(WAIT)
    assert sp.state == PartitionState.ACQUIRED and sp.acquired
    assert sorted(sp) == [1, 2, 3]
    sp.finish()


def test_data_and_children_watch(zk: KazooClient, zk2: KazooClient, root: str) -> None:
    zk.create(root)
    datas: list = []
    kids: list = []
    DataWatch(zk, root, func=lambda d, s: datas.append(d))
    ChildrenWatch(zk, root, func=lambda c: kids.append(sorted(c)))
    wait_for(lambda: datas and kids)
    zk2.set(root, b"v1")
    zk2.create(root + "/c1")
    wait_for(lambda: datas[-1] == b"v1" and kids[-1] == ["c1"])


def test_tree_cache(zk: KazooClient, zk2: KazooClient, root: str) -> None:
    zk.create(root + "/a", b"1", makepath=True)
    events: list = []
    cache = TreeCache(zk, root)
    cache.listen(lambda e: events.append(e))
    cache.start()
    try:
        wait_for(lambda: any(e.event_type == TreeEvent.INITIALIZED for e in events))
        assert cache.get_data(root + "/a").data == b"1"
        zk2.create(root + "/b", b"2")
        zk2.set(root + "/a", b"11")
        wait_for(lambda: cache.get_data(root + "/b") is not None)
        wait_for(lambda: cache.get_data(root + "/a").data == b"11")
        assert sorted(cache.get_children(root)) == ["a", "b"]
    finally:
        cache.close()
