"""pyzk's election core in an ensemble of three with two Apache 3.8 servers.

The core runs over real sockets through the test-only ElectionDriver; Apache
must agree on the leader with it.  The bytes Apache sends are checked with
pyzk's codec on the way (handshake, notification layout, config text).
"""

from __future__ import annotations

import asyncio
import struct
import time
from pathlib import Path

from pyzk.config import ServerSpec
from pyzk.quorum.election import FastLeaderElection, ServerState
from pyzk.quorum.verifier import QuorumMaj
from pyzk.quorum.wire import (
    PROTOCOL_VERSION_V1,
    decode_initial_message,
    decode_notification,
)
from pyzk.testing.servers import ApacheServer, free_port, require_reference

from .fle_driver import ElectionDriver

FOLLOWERINFO = 11


class _ApacheMember(ApacheServer):
    """An ensemble member: it serves clients only once a leader exists, so
    starting it must not wait for that."""

    def wait_ready(self, timeout: float = 30.0) -> None:
        return None

    def wait_serving(self, timeout: float = 30.0) -> None:
        ApacheServer.wait_ready(self, timeout)


def _ensemble(tmp_path: Path, apache_ids: list[int], all_ids: list[int]):
    ports = {sid: (free_port(), free_port(), free_port()) for sid in all_ids}
    specs = [ServerSpec(sid, "127.0.0.1", ports[sid][1], ports[sid][2]) for sid in all_ids]
    cfg = {f"server.{s.sid}": s.to_config_value() for s in specs}
    cfg.update({"initLimit": "5", "syncLimit": "2", "tickTime": "500"})
    servers = {}
    for sid in apache_ids:
        d = tmp_path / f"apache{sid}"
        d.mkdir()
        (d / "myid").write_text(f"{sid}\n")
        servers[sid] = _ApacheMember(d, port=ports[sid][0], extra_cfg=cfg)
    return specs, ports, servers


def _mode(server: ApacheServer) -> str:
    for line in server.four_letter("srvr").splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return ""


def test_pyzk_core_joins_apache_leader(tmp_path: Path) -> None:
    """Apache 2 and 3 elect 3; the core (id 1) arrives late, learns the
    leader from their FOLLOWING/LEADING answers and follows 3."""
    require_reference()
    specs, ports, servers = _ensemble(tmp_path, [2, 3], [1, 2, 3])
    try:
        for s in servers.values():
            s.start()
        for s in servers.values():
            s.wait_serving()
        assert _mode(servers[3]) == "leader" and _mode(servers[2]) == "follower"
        verifier = QuorumMaj(specs)
        core = FastLeaderElection(1, verifier)
        driver = ElectionDriver(core, {sid: p[2] for sid, p in ports.items()})

        async def run():
            await driver.start()
            try:
                assert driver.decided is not None
                return await asyncio.wait_for(driver.decided, 20)
            finally:
                await driver.close()

        decided = asyncio.run(run())
        assert decided.state == ServerState.FOLLOWING
        assert decided.vote.leader == 3
        assert {2, 3} <= decided.supporters
        # What Apache sent, read with pyzk's codec.
        assert driver.initial_messages, "Apache never dialled us back"
        for raw in driver.initial_messages:
            msg, used = decode_initial_message(raw)
            assert used == len(raw)
            assert msg.protocol_version == PROTOCOL_VERSION_V1
            assert msg.sid in (2, 3)
            assert msg.addresses == (("127.0.0.1", ports[msg.sid][2]),)
            assert raw[:8] == struct.pack(">q", -65536)
        states = set()
        for sid, payload in driver.frames:
            n = decode_notification(payload)
            assert n.version == 2
            assert n.config == verifier.to_bytes(), (n.config, verifier.to_bytes())
            assert len(payload) == 44 + len(n.config)
            states.add((sid, n.state, n.leader))
        assert (3, int(ServerState.LEADING), 3) in states
        assert (2, int(ServerState.FOLLOWING), 3) in states
    finally:
        for s in servers.values():
            s.stop()


def _read_followerinfo(data: bytes) -> tuple[int, int]:
    """(type, serverid) of the QuorumPacket a Learner sends first."""
    ptype, _zxid, dlen = struct.unpack_from(">iqi", data, 0)
    (sid,) = struct.unpack_from(">q", data, 16)
    assert dlen >= 8
    return ptype, sid


def test_apache_elects_pyzk_core(tmp_path: Path) -> None:
    """All three start together with empty logs: the highest id, the pyzk
    core (id 3), must win, and both Apache servers then dial its quorum port
    as followers (FOLLOWERINFO carrying their ids)."""
    require_reference()
    specs, ports, servers = _ensemble(tmp_path, [1, 2], [1, 2, 3])
    verifier = QuorumMaj(specs)
    core = FastLeaderElection(3, verifier)
    driver = ElectionDriver(core, {sid: p[2] for sid, p in ports.items()})
    learners: dict[int, int] = {}

    async def learner(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        data = b""
        while len(data) < 24:
            chunk = await reader.read(4096)
            if not chunk:
                break
            data += chunk
        if len(data) >= 24:
            ptype, sid = _read_followerinfo(data)
            learners[sid] = ptype
        writer.close()

    async def run():
        zab = await asyncio.start_server(learner, "127.0.0.1", ports[3][1])
        await driver.start()
        try:
            for s in servers.values():
                await asyncio.to_thread(s.start)
            assert driver.decided is not None
            decided = await asyncio.wait_for(driver.decided, 30)
            deadline = time.monotonic() + 30
            while len(learners) < 2 and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            return decided
        finally:
            await driver.close()
            zab.close()

    try:
        decided = asyncio.run(run())
    finally:
        for s in servers.values():
            s.stop()
    assert decided.state == ServerState.LEADING
    assert decided.vote.leader == 3
    assert learners == {1: FOLLOWERINFO, 2: FOLLOWERINFO}
