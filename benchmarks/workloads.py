"""The benchmark workloads: what data each needs and what each connection sends.

A workload is data, not code paths in the load generator: `setup` creates
the znodes through a blocking pipelined client, and `ops` lists the requests
one connection cycles through (pre-encoded once into a `FrameRing`). Only
`watch` is driven differently (rounds of arm, trigger, collect), because its
measure is a fan-out time, not a steady rate.

There is no `ensemble` workload yet: pyzk has no ensemble mode to compare.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from benchmarks.frames import Op, create, exists, get_children, get_data, set_data
from benchmarks.rawclient import RawClient
from pyzk.jute.constants import CreateMode, Err
from pyzk.jute.records import GetChildrenResponse, GetDataResponse

ROOT = "/bench"
RING_MIN = 4096  # frames per ring: more than any window, so xids stay unique in flight


@dataclass(frozen=True)
class Params:
    """Sizes shared by all workloads (defaults are the issue's numbers)."""

    nodes: int = 1000  # znodes read/written by get, mix, set, idle
    data_size: int = 100  # bytes per znode
    wide_children: int = 10_000
    watchers: int = 1000
    idle_sessions: int = 1000

    def payload(self) -> bytes:
        # Printable, non-constant bytes, the same for both servers.
        return bytes(0x61 + i % 26 for i in range(self.data_size))


@dataclass(frozen=True)
class Workload:
    name: str
    description: str
    setup: Callable[[RawClient, Params], None]
    ops: Callable[[int, Params], list[Op]]
    idle_sessions: Callable[[Params], int] = lambda p: 0
    kind: str = "rate"  # "rate": steady load; "watch": fan-out rounds


def _ensure(client: RawClient, ops: list[Op]) -> None:
    """Create nodes, tolerating ones left by an earlier run on the same server."""
    for err, _ in client.pipeline(ops, check=False):
        if err not in (Err.OK, Err.NODEEXISTS):
            raise RuntimeError(f"setup failed: {Err(err).name}")


def _expect_data(client: RawClient, path: str, data: bytes) -> None:
    """Read a node back: a server that answers fast but wrong must not score."""
    _, body = client.call(get_data(path))
    got = GetDataResponse.from_bytes(body)
    if got.data != data or got.stat.dataLength != len(data):
        raise RuntimeError(f"setup check: {path} holds {got.data!r}, not what was written")


def _node(i: int) -> str:
    return f"{ROOT}/data/n{i:06d}"


def _setup_nodes(client: RawClient, p: Params) -> None:
    data = p.payload()
    _ensure(client, [create(ROOT, b""), create(f"{ROOT}/data", b"")])
    _ensure(client, [create(_node(i), data) for i in range(p.nodes)])
    _expect_data(client, _node(0), data)
    _expect_data(client, _node(p.nodes - 1), data)


def _cycle(conn: int, p: Params, make: Callable[[int, str], Op]) -> list[Op]:
    """RING_MIN ops over the nodes, each connection starting at its own node."""
    start = conn * 7919  # a prime stride spreads connections over the nodes
    return [make(i, _node((start + i) % p.nodes)) for i in range(RING_MIN)]


def _get_ops(conn: int, p: Params) -> list[Op]:
    return _cycle(conn, p, lambda i, path: get_data(path))


def _mix_ops(conn: int, p: Params) -> list[Op]:
    data = p.payload()
    return _cycle(conn, p, lambda i, path: set_data(path, data) if i % 10 == 9 else get_data(path))


def _set_ops(conn: int, p: Params) -> list[Op]:
    data = p.payload()
    return _cycle(conn, p, lambda i, path: set_data(path, data))


def _create_parent(conn: int) -> str:
    return f"{ROOT}/create/c{conn:04d}"


def _setup_create(client: RawClient, p: Params) -> None:
    _ensure(client, [create(ROOT, b""), create(f"{ROOT}/create", b"")])
    # Parents for up to 1024 connections; cheap, and ops() needs no feedback.
    _ensure(client, [create(_create_parent(c), b"") for c in range(1024)])


def _create_ops(conn: int, p: Params) -> list[Op]:
    # Sequential creates make every pre-encoded frame create a new znode;
    # the server does the same work as for a plain create plus a counter.
    op = create(_create_parent(conn) + "/n", p.payload(), CreateMode.PERSISTENT_SEQUENTIAL)
    return [op] * RING_MIN


def _setup_wide(client: RawClient, p: Params) -> None:
    _ensure(client, [create(ROOT, b""), create(f"{ROOT}/wide", b"")])
    _ensure(client, [create(f"{ROOT}/wide/c{i:05d}", b"") for i in range(p.wide_children)])
    _, body = client.call(get_children(f"{ROOT}/wide"))
    n = len(GetChildrenResponse.from_bytes(body).children)
    if n != p.wide_children:
        raise RuntimeError(f"setup check: {ROOT}/wide has {n} children, not {p.wide_children}")


def _wide_ops(conn: int, p: Params) -> list[Op]:
    path = f"{ROOT}/wide"
    return [exists(path) if i % 2 == 0 else get_children(path) for i in range(RING_MIN)]


WATCH_PATH = f"{ROOT}/watch"


def _setup_watch(client: RawClient, p: Params) -> None:
    _ensure(client, [create(ROOT, b""), create(WATCH_PATH, p.payload())])
    _expect_data(client, WATCH_PATH, p.payload())


def _no_ops(conn: int, p: Params) -> list[Op]:
    return []


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in [
        Workload("get", "100% getData of 100-byte nodes", _setup_nodes, _get_ops),
        Workload("mix", "90% getData / 10% setData", _setup_nodes, _mix_ops),
        Workload("set", "100% setData (fsync on)", _setup_nodes, _set_ops),
        Workload("create", "100% create (sequential, 100 bytes)", _setup_create, _create_ops),
        Workload("wide", "exists/getChildren of a 10,000-child node", _setup_wide, _wide_ops),
        Workload("watch", "1 setData fans out to 1,000 watching sessions", _setup_watch,
                 _no_ops, kind="watch"),
        Workload("idle", "getData load beside 1,000 idle sessions", _setup_nodes, _get_ops,
                 idle_sessions=lambda p: p.idle_sessions),
    ]
}
