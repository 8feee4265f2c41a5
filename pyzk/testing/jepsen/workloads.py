"""The client side of each Jepsen workload: which ops a client invokes, and how
one op is carried out with kazoo.

A workload is the half of a test the checker does not see: it turns a random
choice into ZooKeeper requests and their replies into an :class:`Outcome`
(``ok`` with a result, ``fail`` when the op certainly did not take effect,
``info`` when nobody can tell). The op names, arguments and results are the
ones ``checkers.py`` expects (docs/JEPSEN.md and the harness contract list
them); changing one here without the checker makes every run fail.

Rules every workload keeps, because the checkers rely on them:

* A request is sent once. Kazoo's command retry is never used (a retried
  create may apply twice); a connection error or a timeout after a write was
  sent makes the op ``info``, and the runner gives the client a new process
  number. An error before any write was sent (a read, or the read phase of a
  read-modify-write) is a ``fail``: it cannot have changed anything.
* Values written are unique within a run (a per-run counter), so a value in
  the final state names the one op that wrote it.
* Every wait is bounded by the op timeout the runner passes in.
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

from kazoo.client import KazooClient
from kazoo.exceptions import (
    BadVersionError,
    ConnectionClosedError,
    ConnectionLoss,
    NodeExistsError,
    NoNodeError,
    OperationTimeoutError,
    SessionExpiredError,
    SessionMovedError,
)
from kazoo.handlers.threading import KazooTimeoutError
from kazoo.interfaces import IAsyncResult

from pyzk.testing.jepsen.history import FAIL, INFO, OK

log = logging.getLogger(__name__)

ROOT = "/jepsen"

#: Errors that leave an op's outcome unknown: the request may or may not have
#: been applied (the reply was lost, or never awaited long enough).
INDEFINITE_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionLoss, SessionExpiredError, ConnectionClosedError, OperationTimeoutError,
    SessionMovedError, KazooTimeoutError,
)


@dataclass(slots=True)
class Invocation:
    """What a client is about to do: an op name, its key and its argument."""

    f: str
    key: str | None = None
    value: Any = None


@dataclass(slots=True)
class Outcome:
    """How an op ended, as the history records it."""

    type: str
    result: Any = None
    error: str | None = None
    zxid: int | None = None
    #: the session the op ran on, when the workload knows it better than the
    #: session id at invocation (kazoo may have replaced an expired one meanwhile)
    session: int | None = None


@dataclass
class ClientState:
    """What one kazoo client remembers between its ops (versions seen, the
    lock it holds); reset by nothing but the workload itself."""

    versions: dict[str, int] = field(default_factory=dict)
    #: lock workload: (session id, znode version) of the lock this client holds
    held: tuple[int, int] | None = None
    #: lock workload: the last op's outcome was unknown, look before acting
    unsure: bool = False


def error_name(exc: BaseException) -> str:
    """A short, stable name for an exception in the history."""
    name = type(exc).__name__
    text = str(exc)
    return f"{name}: {text}" if text and len(text) < 120 else name


def wait(result: IAsyncResult, timeout: float) -> Any:
    """The value of a kazoo async result, or its exception, within ``timeout``."""
    return result.get(timeout=timeout)


def session_of(zk: KazooClient) -> int | None:
    """The client's current session id (None before the first handshake)."""
    cid = zk.client_id
    return cid[0] if cid else None


class Workload:
    """Base of the workloads: op generation, execution, setup, final reads.

    Subclasses set :attr:`name` and :attr:`read_only` and implement
    :meth:`generate` and :meth:`execute`; :meth:`setup` and :meth:`final`
    default to nothing.
    """

    name: ClassVar[str] = ""
    #: Ops that change nothing: a lost reply makes them ``fail``, not ``info``.
    read_only: ClassVar[frozenset[str]] = frozenset()
    #: Whether the runner reads the final state through every member.
    final_per_node: ClassVar[bool] = False
    #: Whether the runner records ``session-lost`` ops (kazoo saw a session
    #: expire) for this workload's checker.
    records_session_loss: ClassVar[bool] = False

    def __init__(self) -> None:
        self._values = itertools.count(1)
        self._values_lock = threading.Lock()

    def unique_value(self) -> int:
        """A value no other op of this run writes (thread-safe)."""
        with self._values_lock:
            return next(self._values)

    def meta(self) -> dict[str, Any]:
        """What this workload adds to the history's metadata."""
        return {}

    def setup(self, zk: KazooClient) -> None:
        """Create the znodes the run starts from (through any member)."""
        zk.ensure_path(ROOT)

    def generate(self, rng: random.Random, state: ClientState) -> Invocation:
        raise NotImplementedError

    def execute(self, zk: KazooClient, inv: Invocation, state: ClientState,
                timeout: float) -> Outcome:
        """Carry out one op. Definite failures come back as ``fail``; errors of
        :data:`INDEFINITE_ERRORS` may propagate, the runner turns them into
        ``info`` (or ``fail`` for a read-only op)."""
        raise NotImplementedError

    def on_indefinite(self, inv: Invocation, state: ClientState) -> None:
        """Called after an op ended ``info``: forget what it may have changed."""

    def final(self, zk: KazooClient, sid: int,
              record: Callable[[Invocation, Callable[[], Outcome]], Outcome],
              timeout: float) -> None:
        """The final reads through member ``sid`` after healing (``record``
        invokes, runs and records one op)."""


# --------------------------------------------------------------------- register

class Register(Workload):
    """Read, write and compare-and-set registers ``r0``..``r4``.

    A read is ``sync`` then ``get`` (a plain get on a follower may be stale by
    design; sync makes the read see every write committed before it). A cas
    is a versioned ``set``: it takes effect only if the znode's version is
    the expected one, and BadVersion says it did not.
    """

    name = "register"
    read_only = frozenset({"read"})
    KEYS = tuple(f"r{i}" for i in range(5))

    def path(self, key: str) -> str:
        return f"{ROOT}/register/{key}"

    def meta(self) -> dict[str, Any]:
        return {"keys": list(self.KEYS), "initial": [0, 0]}

    def setup(self, zk: KazooClient) -> None:
        zk.ensure_path(f"{ROOT}/register")
        for key in self.KEYS:
            zk.create(self.path(key), b"0")

    def generate(self, rng: random.Random, state: ClientState) -> Invocation:
        key = rng.choice(self.KEYS)
        roll = rng.random()
        if roll < 0.45:
            return Invocation("read", key)
        if roll < 0.7:
            return Invocation("write", key, self.unique_value())
        # mostly the version this client saw last (likely to succeed), sometimes
        # one off, so both outcomes of a cas are exercised
        seen = state.versions.get(key, 0)
        expected = seen if rng.random() < 0.8 else max(0, seen + rng.choice((-1, 1)))
        return Invocation("cas", key, [expected, self.unique_value()])

    def execute(self, zk: KazooClient, inv: Invocation, state: ClientState,
                timeout: float) -> Outcome:
        assert inv.key is not None
        path = self.path(inv.key)
        if inv.f == "read":
            wait(zk.sync_async(path), timeout)
            data, stat = wait(zk.get_async(path), timeout)
            state.versions[inv.key] = stat.version
            return Outcome(OK, [int(data), stat.version], zxid=stat.mzxid)
        if inv.f == "write":
            stat = wait(zk.set_async(path, str(inv.value).encode()), timeout)
            state.versions[inv.key] = stat.version
            return Outcome(OK, stat.version, zxid=stat.mzxid)
        if inv.f == "cas":
            expected, new = inv.value
            try:
                stat = wait(zk.set_async(path, str(new).encode(), version=expected), timeout)
            except BadVersionError as e:
                return Outcome(FAIL, error=error_name(e))
            state.versions[inv.key] = stat.version
            return Outcome(OK, stat.version, zxid=stat.mzxid)
        raise ValueError(f"register: unknown op {inv.f!r}")


# -------------------------------------------------------------------------- set

class SetWorkload(Workload):
    """Add unique elements (one znode each); read the whole set at the end
    through every member, and now and then during the run."""

    name = "set"
    read_only = frozenset({"read_all"})
    final_per_node = True
    DIR = f"{ROOT}/set"

    def setup(self, zk: KazooClient) -> None:
        zk.ensure_path(self.DIR)

    def generate(self, rng: random.Random, state: ClientState) -> Invocation:
        if rng.random() < 0.03:
            return Invocation("read_all")
        return Invocation("add", None, self.unique_value())

    def read_all(self, zk: KazooClient, timeout: float) -> Outcome:
        wait(zk.sync_async(self.DIR), timeout)
        names = wait(zk.get_children_async(self.DIR), timeout)
        return Outcome(OK, sorted(int(n[1:]) for n in names))

    def execute(self, zk: KazooClient, inv: Invocation, state: ClientState,
                timeout: float) -> Outcome:
        if inv.f == "read_all":
            return self.read_all(zk, timeout)
        if inv.f == "add":
            try:
                path, stat = wait(zk.create_async(f"{self.DIR}/e{inv.value}", b"",
                                                  include_data=True), timeout)
            except NodeExistsError as e:  # values are unique: it cannot have been us
                return Outcome(FAIL, error=error_name(e))
            return Outcome(OK, zxid=stat.czxid)
        raise ValueError(f"set: unknown op {inv.f!r}")

    def final(self, zk: KazooClient, sid: int,
              record: Callable[[Invocation, Callable[[], Outcome]], Outcome],
              timeout: float) -> None:
        record(Invocation("read_all"), lambda: self.read_all(zk, timeout))


# ------------------------------------------------------------------- unique-ids

class UniqueIds(Workload):
    """Sequential creates: every ok reply must name a different znode."""

    name = "unique-ids"
    DIR = f"{ROOT}/ids"

    def setup(self, zk: KazooClient) -> None:
        zk.ensure_path(self.DIR)

    def generate(self, rng: random.Random, state: ClientState) -> Invocation:
        return Invocation("generate")

    def execute(self, zk: KazooClient, inv: Invocation, state: ClientState,
                timeout: float) -> Outcome:
        path, stat = wait(zk.create_async(f"{self.DIR}/id-", b"", sequence=True,
                                          include_data=True), timeout)
        return Outcome(OK, path.rsplit("/", 1)[1], zxid=stat.czxid)


# ---------------------------------------------------------------------- counter

class Counter(Workload):
    """One counter znode: ``add`` reads it and writes value+delta with the
    version it read, retrying a few times on BadVersion; ``read`` is sync+get.

    Only the versioned set can change the counter, so an error in a read
    phase (before any set of this op was sent) is a definite ``fail``, and
    only an error on a set makes the add ``info``.
    """

    name = "counter"
    read_only = frozenset({"read"})
    final_per_node = True
    PATH = f"{ROOT}/counter"
    #: How many read-modify-write rounds one add tries before it gives up.
    TRIES = 5

    def setup(self, zk: KazooClient) -> None:
        zk.ensure_path(ROOT)
        zk.create(self.PATH, b"0")

    def generate(self, rng: random.Random, state: ClientState) -> Invocation:
        if rng.random() < 0.3:
            return Invocation("read")
        return Invocation("add", None, rng.randint(1, 5))

    def read(self, zk: KazooClient, timeout: float) -> Outcome:
        wait(zk.sync_async(self.PATH), timeout)
        data, stat = wait(zk.get_async(self.PATH), timeout)
        return Outcome(OK, int(data), zxid=stat.mzxid)

    def execute(self, zk: KazooClient, inv: Invocation, state: ClientState,
                timeout: float) -> Outcome:
        if inv.f == "read":
            return self.read(zk, timeout)
        if inv.f != "add":
            raise ValueError(f"counter: unknown op {inv.f!r}")
        for attempt in range(self.TRIES):
            try:
                data, stat = wait(zk.get_async(self.PATH), timeout)
            except INDEFINITE_ERRORS as e:
                # every earlier set of this op was refused: nothing happened
                return Outcome(FAIL, error=f"read phase {attempt}: {error_name(e)}")
            new = int(data) + inv.value
            try:
                got = wait(zk.set_async(self.PATH, str(new).encode(), version=stat.version),
                           timeout)
            except BadVersionError:
                continue
            return Outcome(OK, new, zxid=got.mzxid)
        return Outcome(FAIL, error=f"BadVersionError x{self.TRIES}")

    def final(self, zk: KazooClient, sid: int,
              record: Callable[[Invocation, Callable[[], Outcome]], Outcome],
              timeout: float) -> None:
        record(Invocation("read"), lambda: self.read(zk, timeout))


# ------------------------------------------------------------------------ queue

class Queue(Workload):
    """A queue of sequential znodes: enqueue creates ``q-<seq>`` holding the
    value; dequeue deletes the smallest child it can (NoNode: another client
    took it, try the next). The final drain empties it through one member."""

    name = "queue"
    DIR = f"{ROOT}/queue"
    #: Children one dequeue tries (others win races for the smallest).
    TRIES = 8
    #: Bound on the final drain (more ops than any run enqueues).
    DRAIN_LIMIT = 100_000

    def setup(self, zk: KazooClient) -> None:
        zk.ensure_path(self.DIR)

    def generate(self, rng: random.Random, state: ClientState) -> Invocation:
        if rng.random() < 0.5:
            return Invocation("enqueue", None, self.unique_value())
        return Invocation("dequeue")

    def dequeue(self, zk: KazooClient, timeout: float) -> Outcome:
        try:
            children = sorted(wait(zk.get_children_async(self.DIR), timeout))
        except INDEFINITE_ERRORS as e:
            return Outcome(FAIL, error=f"list: {error_name(e)}")
        if not children:
            return Outcome(OK, None)
        for name in children[:self.TRIES]:
            path = f"{self.DIR}/{name}"
            try:
                data, stat = wait(zk.get_async(path), timeout)
            except NoNodeError:
                continue
            except INDEFINITE_ERRORS as e:
                return Outcome(FAIL, error=f"get {name}: {error_name(e)}")
            try:
                wait(zk.delete_async(path, version=stat.version), timeout)
            except NoNodeError:
                continue
            except INDEFINITE_ERRORS as e:
                # the delete may have been applied: ``result`` names the value it
                # would have taken (not a value returned: the op is info)
                return Outcome(INFO, int(data), error=f"delete {name}: {error_name(e)}")
            return Outcome(OK, int(data), zxid=stat.czxid)
        return Outcome(FAIL, error=f"lost {self.TRIES} races")

    def execute(self, zk: KazooClient, inv: Invocation, state: ClientState,
                timeout: float) -> Outcome:
        if inv.f == "enqueue":
            path, stat = wait(zk.create_async(f"{self.DIR}/q-", str(inv.value).encode(),
                                              sequence=True, include_data=True), timeout)
            return Outcome(OK, zxid=stat.czxid)
        if inv.f == "dequeue":
            return self.dequeue(zk, timeout)
        raise ValueError(f"queue: unknown op {inv.f!r}")

    def final(self, zk: KazooClient, sid: int,
              record: Callable[[Invocation, Callable[[], Outcome]], Outcome],
              timeout: float) -> None:
        wait(zk.sync_async(self.DIR), timeout)
        for _ in range(self.DRAIN_LIMIT):
            got = record(Invocation("dequeue"), lambda: self.dequeue(zk, timeout))
            if got.type == OK and got.result is None:
                return
            if got.type != OK:
                raise RuntimeError(f"final drain through {sid} failed: {got.error}")
        raise RuntimeError(f"final drain through {sid} did not end")


# ------------------------------------------------------------------------- lock

class Lock(Workload):
    """A lock held as one ephemeral znode.

    ``acquire`` creates it (NodeExists: someone holds it), ``release``
    deletes it with the version it was created with, ``check`` looks at it
    (sync then exists) and reports its owner's session and czxid. The
    runner records ``session-lost`` when kazoo reports a session expired.
    After an op with an unknown outcome the client first checks, so it
    learns whether it holds the lock instead of guessing.
    """

    name = "lock"
    read_only = frozenset({"check"})
    records_session_loss = True
    PATH = f"{ROOT}/lock"

    def setup(self, zk: KazooClient) -> None:
        zk.ensure_path(ROOT)

    def generate(self, rng: random.Random, state: ClientState) -> Invocation:
        if state.unsure:
            return Invocation("check")
        if state.held is not None:
            return Invocation("check" if rng.random() < 0.6 else "release")
        return Invocation("acquire" if rng.random() < 0.7 else "check")

    def on_indefinite(self, inv: Invocation, state: ClientState) -> None:
        state.unsure = True

    def execute(self, zk: KazooClient, inv: Invocation, state: ClientState,
                timeout: float) -> Outcome:
        session = session_of(zk)
        if state.held is not None and state.held[0] != session:
            state.held = None  # that session ended: its ephemeral went with it
        if inv.f == "acquire":
            try:
                _path, stat = wait(zk.create_async(self.PATH, str(session).encode(),
                                                   ephemeral=True, include_data=True), timeout)
            except NodeExistsError as e:
                return Outcome(FAIL, error=error_name(e))
            if stat.ephemeralOwner != session:
                log.warning("lock created with owner 0x%x, session 0x%x",
                            stat.ephemeralOwner, session or 0)
            state.held = (stat.ephemeralOwner, stat.version)
            return Outcome(OK, stat.czxid, zxid=stat.czxid, session=stat.ephemeralOwner)
        if inv.f == "release":
            if state.held is None:
                return Outcome(FAIL, error="not held")
            version = state.held[1]
            state.held = None
            try:
                wait(zk.delete_async(self.PATH, version=version), timeout)
            except (NoNodeError, BadVersionError) as e:
                return Outcome(FAIL, error=error_name(e))
            return Outcome(OK)
        if inv.f == "check":
            wait(zk.sync_async(self.PATH), timeout)
            stat = wait(zk.exists_async(self.PATH), timeout)
            # the reply came on the session current now (kazoo fails whatever
            # was pending when a session expires)
            session = session_of(zk)
            state.unsure = False
            if stat is None:
                state.held = None
                return Outcome(OK, None, session=session)
            state.held = (stat.ephemeralOwner, stat.version) \
                if stat.ephemeralOwner == session else None
            return Outcome(OK, [stat.ephemeralOwner, stat.czxid], zxid=stat.czxid,
                           session=session)
        raise ValueError(f"lock: unknown op {inv.f!r}")


#: The workloads by name (what ``--workload`` accepts).
WORKLOADS: Mapping[str, type[Workload]] = MappingProxyType({
    w.name: w for w in (Register, SetWorkload, UniqueIds, Counter, Queue, Lock)
})


def make_workload(name: str) -> Workload:
    """A fresh workload instance (its own value counter) for one run."""
    try:
        return WORKLOADS[name]()
    except KeyError:
        raise ValueError(f"unknown workload {name!r}; known: {', '.join(WORKLOADS)}") from None
