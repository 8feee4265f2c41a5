"""The follower core against a real Apache ZooKeeper 3.8 leader, over TCP.

Two Apache servers and a third member whose address is this test's driver
form an ensemble of three: the two Apache servers are a quorum, elect a
leader, and the driver connects to the leader's quorum port as server 3. It
must get through discovery and synchronisation (Apache picks DIFF or SNAP),
be counted as a synced follower, then receive the PROPOSAL and COMMIT of a
client's write and decode the txn.
"""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from pyzk.jute.constants import OpCode
from pyzk.jute.records import CreateTxn, TxnHeader
from pyzk.testing.servers import ApacheServer, free_port, require_reference
from pyzk.zab.actions import (
    Commit,
    ConfigSeen,
    LoadSnapshot,
    LogTxn,
    PersistEpoch,
    Send,
    Shutdown,
    StartServing,
    TakeSnapshot,
    Truncate,
)
from pyzk.zab.follower import Follower
from pyzk.zab.packets import LearnerStream, PacketType
from pyzk.zab.zxid import epoch_of

pytestmark = [pytest.mark.ensemble, pytest.mark.reference]

TICK = 500


class Driver:
    """A test-only shell: one socket, the core, and a record of every action."""

    def __init__(self, host: str, port: int, epoch: int = 0, last_zxid: int = 0) -> None:
        self.sock = socket.create_connection((host, port), timeout=10)
        self.sock.settimeout(0.1)
        self.stream = LearnerStream()
        self.core = Follower(3, "leader", accepted_epoch=epoch, current_epoch=epoch,
                             last_logged_zxid=last_zxid,
                             now=time.monotonic() * 1000, tick_time=TICK, init_limit=5,
                             sync_limit=2)
        self.actions: list[object] = []
        self.received: list[int] = []
        self.do(self.core.start())

    def do(self, actions: list[object]) -> None:
        for a in actions:
            self.actions.append(a)
            if isinstance(a, Send):
                self.sock.sendall(a.packet.to_bytes())
            elif isinstance(a, LogTxn):
                # "durable" at once: report it, which sends the ACKs
                self.do(self.core.on_logged(a.entry.zxid))
            elif isinstance(a, Shutdown):
                raise AssertionError(f"core shut down: {a.reason}")

    def pump(self, until, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
        deadline = time.monotonic() + timeout
        while not until():
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out; actions so far: {self.actions!r}")
            try:
                data = self.sock.recv(65536)
            except TimeoutError:
                data = None
            if data == b"":
                raise AssertionError("leader closed the connection")
            self.do(self.core.on_tick(time.monotonic() * 1000))
            if data:
                for item in self.stream.feed(data):
                    ptype = item.packet.type if hasattr(item, "snapshot") else item.type
                    self.received.append(ptype)
                    self.do(self.core.on_packet(item))

    def of(self, cls: type) -> list:  # type: ignore[type-arg]
        return [a for a in self.actions if isinstance(a, cls)]


def _start_ensemble(tmp_path: Path) -> tuple[list[ApacheServer], dict[int, tuple[int, int]]]:
    ports = {sid: (free_port(), free_port()) for sid in (1, 2, 3)}
    servers_cfg = {f"server.{sid}": f"127.0.0.1:{q}:{e}" for sid, (q, e) in ports.items()}
    servers = []
    for sid in (1, 2):
        d = tmp_path / f"s{sid}"
        d.mkdir()
        (d / "myid").write_text(f"{sid}\n")
        cfg = {"tickTime": str(TICK), "initLimit": "5", "syncLimit": "2", **servers_cfg}
        servers.append(ApacheServer(d, extra_cfg=cfg))
    with ThreadPoolExecutor(2) as pool:
        for f in [pool.submit(s.start, 60) for s in servers]:
            f.result()
    return servers, ports


def _leader(servers: list[ApacheServer]) -> int:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        for i, s in enumerate(servers):
            if "Mode: leader" in s.four_letter("srvr"):
                return i
        time.sleep(0.1)
    raise AssertionError("no Apache leader")


def _mntr(server: ApacheServer) -> dict[str, str]:
    out = {}
    for line in server.four_letter("mntr").splitlines():
        k, _, v = line.partition("\t")
        out[k] = v
    return out


@pytest.mark.timeout(120)
def test_follower_core_follows_apache_leader(tmp_path: Path) -> None:
    require_reference()
    from kazoo.client import KazooClient

    servers, ports = _start_ensemble(tmp_path)
    try:
        li = _leader(servers)
        leader = servers[li]
        lsid = li + 1
        d = Driver("127.0.0.1", ports[lsid][0])
        d.pump(lambda: bool(d.of(StartServing)))

        # discovery: LEADERINFO for a new epoch, persisted before ACKEPOCH
        assert d.received[0] == PacketType.LEADERINFO
        epoch = d.core.new_epoch
        assert epoch >= 1
        assert PersistEpoch("acceptedEpoch", epoch) in d.actions
        assert PersistEpoch("currentEpoch", epoch) in d.actions
        # synchronisation: Apache chose DIFF or SNAP for an empty follower
        assert d.core.sync_kind in ("DIFF", "SNAP"), d.core.sync_kind
        assert not d.of(Truncate)
        if d.core.sync_kind == "SNAP":
            (load,) = d.of(LoadSnapshot)
            snap = load.snapshot.to_snapshot()
            assert snap.tree.get_node("/zookeeper") is not None
            assert d.of(TakeSnapshot) == [TakeSnapshot(True)]
        # NEWLEADER carried the leader's config; without reconfigEnabled its
        # version stays 0, and UPTODATE activates it
        seen = d.of(ConfigSeen)
        assert [c.activate for c in seen] == [False, True]
        assert seen[0].config.endswith(b"\nversion=0")
        assert f"server.3=127.0.0.1:{ports[3][0]}".encode() in seen[0].config
        assert d.received.index(PacketType.NEWLEADER) < d.received.index(PacketType.UPTODATE)

        # Apache counts us as a synced follower (our PING replies keep us there)
        d.pump(lambda: PacketType.PING in d.received)
        deadline = time.monotonic() + 10
        while _mntr(leader).get("zk_synced_followers") != "2":
            assert time.monotonic() < deadline, _mntr(leader)
            d.pump(lambda: True)
            time.sleep(0.05)

        # a client's write reaches us as PROPOSAL then COMMIT, and decodes
        zk = KazooClient(hosts=leader.address, timeout=10)
        zk.start()
        try:
            zk.create("/zab-test", b"hello from apache")
        finally:
            zk.stop()
            zk.close()

        def committed_create() -> bool:
            return any(_is_create(c) for c in d.of(Commit))

        d.pump(committed_create)
        logged = [a.entry for a in d.of(LogTxn)]
        commit = next(c for c in d.of(Commit) if _is_create(c))
        assert commit.entry in logged
        hdr = TxnHeader.from_bytes(commit.entry.data)
        assert epoch_of(hdr.zxid) == epoch and hdr.zxid == commit.entry.zxid
        from pyzk.txnlog.txn import decode_txn

        _h, txn, digest = decode_txn(commit.entry.data)
        assert isinstance(txn, CreateTxn)
        assert txn.path == "/zab-test" and txn.data == b"hello from apache"
        assert digest is not None  # 3.8 appends the tree digest
        assert d.received.count(PacketType.PROPOSAL) >= 1
        assert d.received.count(PacketType.COMMIT) >= 1
        d.sock.close()

        # a follower that comes back knowing the first write gets a DIFF with
        # what it missed, and does not re-accept the epoch (ACKEPOCH -1)
        zk = KazooClient(hosts=leader.address, timeout=10)
        zk.start()
        try:
            zk.set("/zab-test", b"missed")
        finally:
            zk.stop()
            zk.close()
        last = max(e.zxid for e in logged)
        d2 = Driver("127.0.0.1", ports[lsid][0], epoch=epoch, last_zxid=last)
        d2.pump(lambda: bool(d2.of(StartServing)))
        assert d2.core.sync_kind == "DIFF"
        assert not any(p.name == "acceptedEpoch" for p in d2.of(PersistEpoch))
        assert d2.received[:2] == [PacketType.LEADERINFO, PacketType.DIFF]
        applied = [a.entry for a in d2.of(Commit)]
        assert applied and all(e.zxid > last for e in applied)
        txns = [decode_txn(e.data)[1] for e in applied]
        assert any(getattr(t, "path", None) == "/zab-test" and getattr(t, "data", None) == b"missed"
                   for t in txns), txns
        # committed during the sync: logged at NEWLEADER, applied after UPTODATE
        kinds = [type(a).__name__ for a in d2.actions]
        assert kinds.index("LogTxn") < kinds.index("StartServing") < kinds.index("Commit")
        d2.sock.close()
    finally:
        for s in servers:
            s.stop()


def _is_create(c: Commit) -> bool:
    hdr = TxnHeader.from_bytes(c.entry.data)
    return hdr.type in (OpCode.create, OpCode.create2)
