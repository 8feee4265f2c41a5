"""A TCP proxy for fault tests: directed links between ensemble members.

Servers find each other through their ``server.N`` lines, so giving every
member its own view of the others (the real ports for itself, a proxy port
for everyone else) routes all quorum and election traffic through here
without touching the servers. Each proxy port is one *directed* link: member
``src`` dialling member ``dst``. Which way a link points matters for a
partition only in that both ends must be on the same side, so the policy is
symmetric; the direction lets a test cut one member's dials alone.

On command the proxy can

* block a member (every link to or from it is cut and new dials are hung up
  on at once), or split the members into groups (a partition);
* drop traffic: keep the connections open but discard the bytes, the way a
  black-holed route looks to TCP (peers notice only by their timeouts); a
  connection that lost bytes has a hole in its stream, so it is reset when
  dropping stops (as TCP would give up on it) and only new ones carry on;
* delay traffic by a fixed time per chunk, keeping the byte order;
* cut the live connections of some links once, letting new ones through.

A link may rewrite the first bytes its dialler sends (``Link.hello``):
:func:`route_ensemble` uses that on election links, whose initial message
names the dialler's own election address, so that a peer dialling back
(Apache does, to a smaller sid) reaches it through the proxy too.

It runs its own asyncio loop in a daemon thread so synchronous tests (kazoo,
subprocess servers) can drive it; every command is applied on that loop and
returns once it took effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Self, TypeVar

from pyzk.quorum.wire import ElectionWireError, decode_initial_message, encode_initial_message

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long a command waits for the proxy's loop to carry it out.
COMMAND_TIMEOUT = 10.0
CHUNK = 65536
#: How often a dial to a target that is not listening is tried again.
RETRY_INTERVAL = 0.02
#: How many kernel-chosen ports a link may turn down (see ``avoid``).
MAX_LISTEN_TRIES = 50


@dataclass
class Link:
    """One listening port forwarding ``src``'s dials to ``dst``'s ``target``."""

    src: int
    dst: int
    target: tuple[str, int]
    tag: str = ""
    port: int = 0
    delay: float = 0.0
    drop_up: bool = False  # bytes from the dialler to the target
    drop_down: bool = False  # bytes from the target back to the dialler
    #: Rewrites what the dialler sends first: given the bytes so far, returns
    #: (bytes to send instead, bytes consumed), or None while it needs more.
    hello: Callable[[bytes], tuple[bytes, int] | None] | None = None
    accepted: int = 0
    refused: int = 0
    forwarded: int = 0
    dropped: int = 0
    conns: set[_Conn] = field(default_factory=set)
    server: asyncio.base_events.Server | None = None


class _Conn:
    """A proxied connection: two pumps, each reading one side and writing the other."""

    __slots__ = ("link", "writers", "tasks", "holed")

    def __init__(self, link: Link) -> None:
        self.link = link
        self.holed = False
        self.writers: list[asyncio.StreamWriter] = []
        self.tasks: list[asyncio.Task[None]] = []

    def close(self) -> None:
        me = asyncio.current_task()
        for t in self.tasks:
            if t is not me:
                t.cancel()
        for w in self.writers:
            # abort, not close: a cut looks like a reset, with nothing flushed
            w.transport.abort()
        self.link.conns.discard(self)


class FaultProxy:
    """Directed links between members, with partitions, drops, delays and cuts."""

    def __init__(self, host: str = "127.0.0.1", connect_patience: float = 2.0) -> None:
        self.host = host
        self.connect_patience = connect_patience
        self.links: list[Link] = []
        self._blocked: set[int] = set()
        self._groups: list[frozenset[int]] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        if self._loop is not None:
            return
        loop = asyncio.new_event_loop()
        ready = threading.Event()

        def run() -> None:
            asyncio.set_event_loop(loop)
            loop.call_soon(ready.set)
            loop.run_forever()

        self._thread = threading.Thread(target=run, name="faultproxy", daemon=True)
        self._thread.start()
        ready.wait(COMMAND_TIMEOUT)
        self._loop = loop

    def stop(self) -> None:
        """Close every listener and connection and end the loop's thread."""
        loop = self._loop
        if loop is None:
            return

        async def shutdown() -> None:
            for link in self.links:
                for c in list(link.conns):
                    c.close()
                if link.server is not None:
                    link.server.close()
            # dials still waiting for their target, and pumps, end here too
            me = asyncio.current_task()
            rest = [t for t in asyncio.all_tasks() if t is not me]
            for t in rest:
                t.cancel()
            await asyncio.gather(*rest, return_exceptions=True)

        self._call(shutdown())
        loop.call_soon_threadsafe(loop.stop)
        assert self._thread is not None
        self._thread.join(COMMAND_TIMEOUT)
        loop.close()
        self._loop = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def _call(self, coro: Any) -> Any:
        if self._loop is None:
            raise RuntimeError("FaultProxy is not started")
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(COMMAND_TIMEOUT)

    def _run(self, fn: Callable[[], T]) -> T:
        async def wrapper() -> T:
            return fn()
        return self._call(wrapper())

    # ------------------------------------------------------------------ links

    def add_link(self, src: int, dst: int, target: tuple[str, int], tag: str = "",
                 avoid: Collection[int] = ()) -> int:
        """Listen on a fresh port for ``src``'s dials to ``dst``; return the port.

        ``avoid`` lists ports picked for servers but not bound yet: the kernel
        could hand one of them out again, and the server would then fail to
        bind it."""
        link = Link(src, dst, target, tag)

        async def listen() -> None:
            for _ in range(MAX_LISTEN_TRIES):
                server = await asyncio.start_server(
                    lambda r, w: self._accept(link, r, w), self.host, 0)
                port = server.sockets[0].getsockname()[1]
                if port not in avoid:
                    link.server, link.port = server, port
                    return
                server.close()
            raise OSError(f"no free port outside {sorted(avoid)}")

        self._call(listen())
        self.links.append(link)
        log.debug("link %d->%d %s on port %d to %s", src, dst, tag, link.port, target)
        return link.port

    def _select(self, src: int | None, dst: int | None, tag: str | None) -> list[Link]:
        return [lk for lk in self.links if (src is None or lk.src == src)
                and (dst is None or lk.dst == dst) and (tag is None or lk.tag == tag)]

    def allowed(self, src: int, dst: int) -> bool:
        """Whether traffic between two members may pass under the current policy."""
        if src in self._blocked or dst in self._blocked:
            return False
        if self._groups is None:
            return True
        return any(src in g and dst in g for g in self._groups)

    async def _accept(self, link: Link, reader: asyncio.StreamReader,
                      writer: asyncio.StreamWriter) -> None:
        try:
            await self._connect(link, reader, writer)
        except asyncio.CancelledError:  # the proxy stops
            writer.transport.abort()

    async def _connect(self, link: Link, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
        if not self.allowed(link.src, link.dst):
            link.refused += 1
            writer.transport.abort()
            return
        # The dial was accepted here before the target was asked: a target not
        # listening yet is retried for a while, as its listen backlog would have
        # held the dial (Apache's leader binds its quorum port before loading
        # its database), and only then is the dialler reset.
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.connect_patience
        while True:
            try:
                up_r, up_w = await asyncio.open_connection(*link.target)
                break
            except OSError:
                if loop.time() >= deadline or not self.allowed(link.src, link.dst):
                    link.refused += 1
                    writer.transport.abort()
                    return
                await asyncio.sleep(RETRY_INTERVAL)
        if not self.allowed(link.src, link.dst):  # the policy changed meanwhile
            link.refused += 1
            writer.transport.abort()
            up_w.transport.abort()
            return
        link.accepted += 1
        conn = _Conn(link)
        conn.writers = [writer, up_w]
        link.conns.add(conn)
        conn.tasks = [asyncio.ensure_future(self._pump(conn, reader, up_w, True)),
                      asyncio.ensure_future(self._pump(conn, up_r, writer, False))]

    async def _pump(self, conn: _Conn, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter, up: bool) -> None:
        """Copy one direction; with a delay, a second task writes each chunk when due."""
        link = conn.link
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()

        async def deliver() -> None:
            while (item := await queue.get()) is not None:
                due, data = item
                wait = due - loop.time()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                await writer.drain()
            with contextlib.suppress(OSError, RuntimeError):
                writer.write_eof()

        sender = asyncio.ensure_future(deliver())
        clean = False
        first = bytearray() if up and link.hello is not None else None
        try:
            while data := await reader.read(CHUNK):
                if first is not None:
                    first += data
                    assert link.hello is not None
                    done = link.hello(bytes(first))
                    if done is None:
                        continue
                    data = done[0] + bytes(first[done[1]:])
                    first = None
                if link.drop_up if up else link.drop_down:
                    link.dropped += len(data)
                    conn.holed = True
                    continue
                link.forwarded += len(data)
                queue.put_nowait((loop.time() + link.delay, data))
                if sender.done():
                    break
            queue.put_nowait(None)
            await sender
            clean = True
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            sender.cancel()
            me = asyncio.current_task()
            # a failure ends both directions; a clean EOF (half close) ends the
            # connection once the other direction ended too
            if not clean or all(t.done() for t in conn.tasks if t is not me):
                conn.close()

    # ------------------------------------------------------------------ faults

    def _enforce(self) -> None:
        """Reset what the policy no longer lets through, and streams with holes."""
        for link in self.links:
            allowed = self.allowed(link.src, link.dst)
            for c in list(link.conns):
                if not allowed or (c.holed and not (link.drop_up or link.drop_down)):
                    c.close()

    def block(self, *members: int) -> None:
        """Isolate ``members``: cut their links and hang up on their new dials."""
        def do() -> None:
            self._blocked.update(members)
            self._enforce()
        self._run(do)

    def unblock(self, *members: int) -> None:
        self._run(lambda: self._blocked.difference_update(members))

    def isolate_by_dropping(self, member: int) -> None:
        """Black-hole every link to or from ``member`` (no resets; timeouts must notice)."""
        def do() -> None:
            for link in self.links:
                if member in (link.src, link.dst):
                    link.drop_up = link.drop_down = True
        self._run(do)

    def partition(self, *groups: Iterable[int]) -> None:
        """Only members in the same group reach each other (others are cut off)."""
        def do() -> None:
            self._groups = [frozenset(g) for g in groups]
            self._enforce()
        self._run(do)

    def heal(self) -> None:
        """Lift every block and partition, and stop dropping and delaying."""
        def do() -> None:
            self._blocked.clear()
            self._groups = None
            for link in self.links:
                link.drop_up = link.drop_down = False
                link.delay = 0.0
            self._enforce()
        self._run(do)

    def set_drop(self, drop: bool, src: int | None = None, dst: int | None = None,
                 tag: str | None = None, direction: str = "both") -> None:
        """Discard (or forward again) the bytes of the selected links.

        ``direction`` "up" is what the dialler sends, "down" what it receives
        (on a quorum link the follower dials: "up" drops its ACKs, "down" the
        leader's proposals). Connections that lost bytes are reset once their
        link drops nothing any more."""
        if direction not in ("both", "up", "down"):
            raise ValueError(f"direction must be both, up or down, not {direction!r}")

        def do() -> None:
            for link in self._select(src, dst, tag):
                if direction != "down":
                    link.drop_up = drop
                if direction != "up":
                    link.drop_down = drop
            self._enforce()
        self._run(do)

    def set_delay(self, seconds: float, src: int | None = None, dst: int | None = None,
                  tag: str | None = None) -> None:
        """Deliver each chunk read on the selected links ``seconds`` later."""
        def do() -> None:
            for link in self._select(src, dst, tag):
                link.delay = seconds
        self._run(do)

    def cut(self, src: int | None = None, dst: int | None = None, tag: str | None = None) -> int:
        """Reset the live connections of the selected links once; return how many."""
        def do() -> int:
            n = 0
            for link in self._select(src, dst, tag):
                for c in list(link.conns):
                    c.close()
                    n += 1
            return n
        return self._run(do)

    def live(self, src: int | None = None, dst: int | None = None,
             tag: str | None = None) -> int:
        """How many proxied connections the selected links carry now."""
        return self._run(lambda: sum(len(lk.conns) for lk in self._select(src, dst, tag)))


def election_hello(address: tuple[str, int]) -> Callable[[bytes], tuple[bytes, int] | None]:
    """A ``hello`` rewriter for election links: the dialler's initial message
    announces ``address`` instead of its own election address.

    Apache dials a smaller sid back at the address its initial message gave
    (QuorumCnxManager.handleConnection), which would bypass the proxy.
    """
    def rewrite(buf: bytes) -> tuple[bytes, int] | None:
        try:
            got = decode_initial_message(buf)
        except ElectionWireError:
            return b"", 0  # not ours to judge: forwarded untouched
        if got is None:
            return None
        msg, used = got
        if msg.protocol_version is None:  # the pre-3.5 form carries no address
            return buf[:used], used
        return encode_initial_message(msg.sid, [address], msg.protocol_version), used
    return rewrite


def route_ensemble(ens: Any, proxy: FaultProxy) -> None:
    """Send every member's quorum and election dials through ``proxy``.

    ``ens`` is a :class:`pyzk.testing.servers.Ensemble` not started yet. Each
    member keeps its own ``server.N`` line (it binds those ports) and sees the
    others at proxy ports of links tagged "quorum" and "election"; the
    election address a member announces when it dials is rewritten to the
    link back to it, so no dial-back goes around the proxy.
    """
    sids = list(ens.servers)
    taken = {ens.servers[s].port for s in sids} | set(ens.quorum_ports.values()) \
        | set(ens.election_ports.values())
    election: dict[tuple[int, int], Link] = {}
    for a in sids:
        cfg = ens.servers[a].extra_cfg
        for b in sids:
            if a == b:
                continue
            line = cfg[f"server.{b}"]
            role = line[line.index(":observer"):] if ":observer" in line else ""
            q = proxy.add_link(a, b, ("127.0.0.1", ens.quorum_ports[b]), "quorum", taken)
            e = proxy.add_link(a, b, ("127.0.0.1", ens.election_ports[b]), "election", taken)
            election[a, b] = proxy.links[-1]
            cfg[f"server.{b}"] = f"{proxy.host}:{q}:{e}{role}"
    for (a, b), link in election.items():
        link.hello = election_hello((proxy.host, election[b, a].port))
