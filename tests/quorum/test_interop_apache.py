"""pyzk's election shell in an ensemble of three with two Apache 3.8 servers.

The pyzk member is the shell the server itself runs: a
:class:`~pyzk.shell.quorumpeer.QuorumPeer` (the election loop feeding the FLE
core) over its :class:`~pyzk.shell.cnxmanager.QuorumCnxManager` (the election
port), in this process and on real sockets. Only the role is stood in for
(:class:`_HeldRole`), so no database or Zab is needed; Apache must agree on
the leader with it. The bytes Apache sends are checked with pyzk's codec on
the way (handshake, notification layout, config text), as the real manager
decoded them.

Apache's timeouts are generous (a loaded machine starts JVMs slowly) and
every wait is a bounded poll that says what it was waiting for.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from pyzk.config import ServerConfig, ServerSpec
from pyzk.quorum.election import Decided, ServerState
from pyzk.quorum.verifier import QuorumMaj
from pyzk.quorum.wire import (
    PROTOCOL_VERSION_V1,
    InitialMessage,
    decode_initial_message,
    decode_notification,
)
from pyzk.shell import cnxmanager
from pyzk.shell.quorumpeer import QuorumPeer
from pyzk.testing.servers import ApacheServer, free_port, require_reference

pytestmark = [pytest.mark.ensemble, pytest.mark.reference]

FOLLOWERINFO = 11

#: JVM start plus Apache's own election, per server.
APACHE_START_TIMEOUT = 60.0
#: From the pyzk peer's start to its decision.
ELECTION_TIMEOUT = 60.0
#: From the decision to both Apache followers having registered.
JOIN_TIMEOUT = 60.0

#: tickTime * initLimit is how long an Apache follower waits for LEADERINFO
#: (Learner.connectToLeader's socket timeout). The stand-in leader never
#: answers, so this must outlast JOIN_TIMEOUT: a follower that gives up goes
#: back to LOOKING, and with the other Apache still LOOKING the two elect one
#: of themselves and never dial pyzk (the flake this file once had, when the
#: stub hung up and initLimit was 2.5 s). syncLimit keeps Apache's own
#: follower in test one from dropping its leader during a CPU stall.
APACHE_LIMITS = {"tickTime": "500", "initLimit": "200", "syncLimit": "10"}


def _ensemble(tmp_path: Path, apache_ids: list[int], all_ids: list[int]):
    """Ports, ServerSpecs and Apache servers (not started) of one ensemble."""
    ports = {sid: (free_port(), free_port(), free_port()) for sid in all_ids}
    specs = {sid: ServerSpec(sid, "127.0.0.1", ports[sid][1], ports[sid][2]) for sid in all_ids}
    cfg = {f"server.{s.sid}": s.to_config_value() for s in specs.values()}
    cfg.update(APACHE_LIMITS)
    servers = {
        sid: ApacheServer(tmp_path / f"apache{sid}", port=ports[sid][0], extra_cfg=cfg, myid=sid)
        for sid in apache_ids
    }
    return specs, ports, servers


def _peer_config(tmp_path: Path, my_id: int, specs: dict[int, ServerSpec]) -> ServerConfig:
    """What QuorumPeer reads of a loaded zoo.cfg: the members, myid, dataDir
    (it keeps acceptedEpoch/currentEpoch in dataDir/version-2)."""
    d = tmp_path / f"pyzk{my_id}"
    (d / "version-2").mkdir(parents=True)
    return ServerConfig(
        data_dir=str(d), my_id=my_id, servers=dict(specs), peer_type="participant", config_version=0
    )


def _mode(server: ApacheServer) -> str:
    """srvr's Mode, "" when the server does not answer or is not serving."""
    try:
        text = server.four_letter("srvr")
    except OSError:
        return ""
    for line in text.splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return ""


def _apache_status(servers: dict[int, ApacheServer]) -> dict[int, str]:
    """For failure messages: is each JVM alive (a port it could not bind makes
    it exit), and what it serves as."""
    return {
        sid: (_mode(s) or "not serving") if s.running() else "exited" for sid, s in servers.items()
    }


class _HeldRole:
    """The RoleHost the QuorumPeer runs: an empty database, and a role that
    records the decision and holds until released.

    Holding matters: while a role runs, the real peer keeps answering
    notifications with its decided vote (WorkerReceiver), which is how Apache
    servers that are still LOOKING learn the leader.
    """

    def __init__(self) -> None:
        #: prepare_election is called right after the election port listens.
        self.listening = asyncio.Event()
        self.elected = asyncio.Event()
        self.decisions: list[Decided] = []
        self._release = asyncio.Event()

    async def prepare_election(self) -> int:
        self.listening.set()
        return 0  # empty log: last zxid 0

    async def run_role(self, decision: Decided) -> None:
        self.decisions.append(decision)
        self.elected.set()
        await self._release.wait()

    def config_changed(self) -> None:
        return None

    def release(self) -> None:
        self._release.set()


_Decode = Callable[[bytes], "tuple[InitialMessage, int] | None"]


class _Wire:
    """What the peer's real QuorumCnxManager received, recorded on its way in:
    initial messages as its ``_accepted`` decoded them and frames as it hands
    them to the peer. Nothing is decoded or routed here."""

    def __init__(self) -> None:
        self.initial_messages: list[bytes] = []
        self.frames: list[tuple[int, bytes]] = []

    def decoder(self, decode: _Decode) -> _Decode:
        def recording(buf: bytes) -> tuple[InitialMessage, int] | None:
            got = decode(buf)
            if got is not None:
                self.initial_messages.append(bytes(buf[: got[1]]))
            return got

        return recording

    def receiver(self, deliver: Callable[[int, bytes], None]) -> Callable[[int, bytes], None]:
        def recording(sid: int, payload: bytes) -> None:
            self.frames.append((sid, payload))
            deliver(sid, payload)

        return recording


@contextlib.asynccontextmanager
async def _pyzk_peer(
    cfg: ServerConfig,
    monkeypatch: pytest.MonkeyPatch,
) -> AsyncIterator[tuple[QuorumPeer, _HeldRole, _Wire, asyncio.Task[None]]]:
    """Run ``QuorumPeer(cfg).run()`` until the block ends, with its election
    port listening on entry; a crash of the peer fails the test."""
    wire = _Wire()
    monkeypatch.setattr(
        cnxmanager, "decode_initial_message", wire.decoder(cnxmanager.decode_initial_message)
    )
    host = _HeldRole()
    peer = QuorumPeer(cfg, host)
    peer.cnx.on_message = wire.receiver(peer.cnx.on_message)
    task = asyncio.get_running_loop().create_task(peer.run())
    try:
        await _wait_event(host.listening, task, 10.0, "the election port to listen")
        yield peer, host, wire, task
    finally:
        peer.stop()
        host.release()
        done, _ = await asyncio.wait({task}, timeout=15.0)
        if not done:
            task.cancel()
    assert done, "QuorumPeer.run did not end within 15 s of stop()"
    task.result()


async def _wait_event(
    event: asyncio.Event, task: asyncio.Task[None], timeout: float, what: str
) -> None:
    """Wait for ``event``, failing at once if the peer's task ended instead."""
    waiter = asyncio.ensure_future(event.wait())
    try:
        await asyncio.wait({waiter, task}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if task.done():
        task.result()
        raise AssertionError(f"QuorumPeer.run ended while waiting for {what}")
    assert event.is_set(), f"timed out after {timeout} s waiting for {what}"


async def _poll(cond: Callable[[], bool], timeout: float, what: Callable[[], str]) -> None:
    """Poll ``cond`` every 50 ms for at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s: {what()}")
        await asyncio.sleep(0.05)


def _check_initial_message(raw: bytes, sids: tuple[int, ...], ports: dict) -> None:
    """An Apache handshake as pyzk's codec reads it (protocol version 1)."""
    msg, used = decode_initial_message(raw)
    assert used == len(raw)
    assert msg.protocol_version == PROTOCOL_VERSION_V1
    assert raw[:8] == struct.pack(">q", -65536)
    assert msg.sid in sids
    assert msg.addresses == (("127.0.0.1", ports[msg.sid][2]),)


def _apache_notifications(
    wire: _Wire,
    apache_ids: list[int],
    config: bytes,
) -> set[tuple[int, int, int]]:
    """(sid, state, leader) of every frame an Apache server sent, each checked
    against Apache's layout (version 2, 44 bytes and the config text)."""
    states = set()
    for sid, payload in wire.frames:
        if sid not in apache_ids:
            continue  # our own notifications, looped back without a socket
        n = decode_notification(payload)
        assert n.version == 2
        assert n.config == config, (n.config, config)
        assert len(payload) == 44 + len(n.config)
        states.add((sid, n.state, n.leader))
    return states


@pytest.mark.timeout(300)
def test_pyzk_core_joins_apache_leader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Apache 2 and 3 elect 3; the pyzk peer (id 1) arrives late, learns the
    leader from their FOLLOWING/LEADING answers and follows 3."""
    require_reference()
    specs, ports, servers = _ensemble(tmp_path, [2, 3], [1, 2, 3])
    expected_config = QuorumMaj(specs).to_bytes()
    try:
        for s in servers.values():
            s.start(wait=False)
        for s in servers.values():
            s.wait_ready(APACHE_START_TIMEOUT)  # a member serves once it has a leader
        assert (_mode(servers[3]), _mode(servers[2])) == ("leader", "follower")

        async def run() -> tuple[QuorumPeer, _HeldRole, _Wire]:
            cfg = _peer_config(tmp_path, 1, specs)
            async with _pyzk_peer(cfg, monkeypatch) as (peer, host, wire, task):
                await _wait_event(host.elected, task, ELECTION_TIMEOUT, "the election")
                assert (peer.state, peer.leader_id) == (ServerState.FOLLOWING, 3)
            return peer, host, wire

        peer, host, wire = asyncio.run(run())
        assert len(host.decisions) == 1
        decided = host.decisions[0]
        assert decided.state == ServerState.FOLLOWING
        assert decided.vote.leader == 3
        assert {2, 3} <= decided.supporters
        assert peer.verifier.to_bytes() == expected_config
        # What Apache sent, read with pyzk's codec. Both are larger than 1, so
        # both dial the peer back after it dialled them.
        assert wire.initial_messages, "Apache never dialled us back"
        for raw in wire.initial_messages:
            _check_initial_message(raw, (2, 3), ports)
        states = _apache_notifications(wire, [2, 3], expected_config)
        assert (3, int(ServerState.LEADING), 3) in states
        assert (2, int(ServerState.FOLLOWING), 3) in states
        # the ensemble is undisturbed by the newcomer
        assert (_mode(servers[3]), _mode(servers[2])) == ("leader", "follower")
    finally:
        for s in servers.values():
            s.stop()


def _read_followerinfo(data: bytes) -> tuple[int, int]:
    """(type, serverid) of the QuorumPacket a Learner sends first."""
    ptype, _zxid, dlen = struct.unpack_from(">iqi", data, 0)
    (sid,) = struct.unpack_from(">q", data, 16)
    assert dlen >= 8
    return ptype, sid


class _StandInLeader:
    """The quorum port of the pyzk leader: records each learner's first packet
    and holds the connection without answering, so Apache's follower stays
    FOLLOWING (and says so to the other Apache) instead of re-electing."""

    def __init__(self) -> None:
        self.learners: dict[int, int] = {}
        self._release = asyncio.Event()

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            data = b""
            while len(data) < 24:
                chunk = await reader.read(4096)
                if not chunk:
                    return
                data += chunk
            ptype, sid = _read_followerinfo(data)
            self.learners[sid] = ptype
            await self._release.wait()
        finally:
            writer.close()

    def release(self) -> None:
        self._release.set()


@pytest.mark.timeout(300)
def test_apache_elects_pyzk_core(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """All three start together with empty logs: the highest id, the pyzk
    peer (id 3), must win, and both Apache servers then dial its quorum port
    as followers (FOLLOWERINFO carrying their ids)."""
    require_reference()
    specs, ports, servers = _ensemble(tmp_path, [1, 2], [1, 2, 3])
    expected_config = QuorumMaj(specs).to_bytes()
    leader = _StandInLeader()

    async def run() -> tuple[QuorumPeer, _HeldRole, _Wire]:
        zab = await asyncio.start_server(leader.handle, "127.0.0.1", ports[3][1])
        try:
            cfg = _peer_config(tmp_path, 3, specs)
            async with _pyzk_peer(cfg, monkeypatch) as (peer, host, wire, task):
                for s in servers.values():
                    await asyncio.to_thread(s.start, wait=False)
                await _wait_event(host.elected, task, ELECTION_TIMEOUT, "the election")
                assert (peer.state, peer.leader_id) == (ServerState.LEADING, 3)
                # Both followers register, and what each sent on the election
                # port (before it decided) has been read.
                await _poll(
                    lambda: (
                        len(leader.learners) == 2 and {1, 2} <= {sid for sid, _p in wire.frames}
                    ),
                    JOIN_TIMEOUT,
                    lambda: (
                        f"learners {leader.learners}, frames from "
                        f"{sorted({sid for sid, _p in wire.frames})}, "
                        f"Apache {_apache_status(servers)}"
                    ),
                )
        finally:
            leader.release()
            zab.close()
        return peer, host, wire

    try:
        peer, host, wire = asyncio.run(run())
    finally:
        for s in servers.values():
            s.stop()
    assert len(host.decisions) == 1
    decided = host.decisions[0]
    assert decided.state == ServerState.LEADING
    assert decided.vote.leader == 3
    assert 3 in decided.supporters and len(decided.supporters) >= 2
    assert leader.learners == {1: FOLLOWERINFO, 2: FOLLOWERINFO}
    assert peer.verifier.to_bytes() == expected_config
    # Apache's bytes, read with pyzk's codec. Whether an Apache server dialled
    # us (and was dialled back) or we reached it first is a race, so initial
    # messages are checked when there are some.
    for raw in wire.initial_messages:
        _check_initial_message(raw, (1, 2), ports)
    states = _apache_notifications(wire, [1, 2], expected_config)
    assert {sid for sid, _s, _l in states} == {1, 2}
