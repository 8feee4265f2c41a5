"""Dynamic reconfiguration and /zookeeper/config on real ensembles.

/zookeeper/config holds the quorum configuration on every member; with
reconfigEnabled the first leader gives the configuration a version (the new
epoch's first zxid, ZOOKEEPER-1783) and every member writes it to
``zoo.cfg.dynamic.<version>``. A reconfig issued by a super user removes or
adds members: the reply is the new configuration, every member's config node
and dynamic file agree, and zoo.cfg points to the new file. The same is done
against an Apache leader with a pyzk follower and a pyzk leader with Apache
followers, and the error cases are compared with Apache.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path

import pytest
from kazoo.exceptions import (
    BadArgumentsError,
    BadVersionError,
    NewConfigNoQuorumError,
    NoAuthError,
    UnimplementedError,
    ZookeeperError,
)

from pyzk.config import ServerSpec
from pyzk.core.prep import Prepared, Preparer
from pyzk.core.reconfig import ReconfigPreparer
from pyzk.datatree.acl import digest_id
from pyzk.datatree.tree import DataTree
from pyzk.jute.constants import OpCode
from pyzk.jute.records import Id, ReconfigRequest, SetDataTxn, TxnHeader
from pyzk.quorum.verifier import QuorumMaj
from pyzk.shell.configfile import load_config, read_properties
from pyzk.testing.servers import Ensemble, PyzkServer, require_reference
from pyzk.txnlog.txn import encode_txn
from pyzk.zab import actions as A
from pyzk.zab import packets as P
from pyzk.zab.follower import Follower
from pyzk.zab.history import CommittedLog
from pyzk.zab.packets import PacketType as T
from pyzk.zab.reconfigleader import ActivateConfig, ReconfigLeaderCore, SeeConfig
from pyzk.zab.sim import txn_bytes
from pyzk.zab.zxid import make_zxid as zx
from tests.ensemble.helpers import (
    SESSION_CFG,
    client,
    ensemble_with_flags,
    rejoin,
    require_reference_for,
    wait_for_slow,
)

SUPER = "super:secret"
SUPER_FLAGS = [f"-Dzookeeper.DigestAuthenticationProvider.superDigest={digest_id(SUPER)}"]
#: A client's auth_data to connect as the super user (reconfig needs it).
ADMIN = [("digest", SUPER)]
RECONFIG = {"reconfigEnabled": "true", **SESSION_CFG}


def config_of(text: bytes | str) -> dict[str, str]:
    if isinstance(text, bytes):
        text = text.decode()
    return dict(line.split("=", 1) for line in text.splitlines())


def make(tmp_path: Path, kinds: dict[int, str], extra: dict[str, str] | None = None) -> Ensemble:
    return ensemble_with_flags(tmp_path, kinds, SUPER_FLAGS, tick_time=500, init_limit=6,
                               sync_limit=3, extra_cfg={**RECONFIG, **(extra or {})})


def member_config(ens: Ensemble, sid: int) -> tuple[dict[str, str], dict[str, str]]:
    """(what /zookeeper/config holds, the dynamic file zoo.cfg points to) on ``sid``."""
    with client(ens[sid].address) as zk:
        zk.sync("/zookeeper/config")
        data, _stat = zk.get("/zookeeper/config")
    static = read_properties(str(ens[sid].cfg_path))
    dyn_path = static["dynamicConfigFile"]
    version = dyn_path.rsplit(".", 1)[1]
    dyn = config_of(Path(dyn_path).read_text())
    dyn["version"] = version
    return config_of(data), dyn


def agreed_config(ens: Ensemble, sids: list[int], version: str | None = None
                  ) -> dict[str, str]:
    """Wait until every member in ``sids`` holds the same configuration (of
    ``version`` if given) in its config node and its dynamic file; return it."""
    def same() -> dict[str, str] | None:
        seen = [member_config(ens, sid) for sid in sids]
        first = seen[0][0]
        if version is not None and first.get("version") != version:
            return None
        return first if all(node == first and dyn == first for node, dyn in seen) else None
    return wait_for_slow(same, what="members to agree on the configuration")


ALL_PYZK = {1: "pyzk", 2: "pyzk", 3: "pyzk"}
ALL_APACHE = {1: "apache", 2: "apache", 3: "apache"}
APACHE_LEADS = {1: "pyzk", 2: "apache", 3: "apache"}  # the largest sid leads a fresh ensemble
PYZK_LEADS = {1: "apache", 2: "apache", 3: "pyzk"}


@pytest.mark.ensemble
@pytest.mark.reference
@pytest.mark.parametrize("kinds", [ALL_PYZK, ALL_APACHE], ids=["pyzk", "apache"])
def test_config_node_without_reconfig(tmp_path: Path, kinds: dict[int, str]) -> None:
    """reconfigEnabled=false: the node holds the static configuration, version 0,
    readable by anyone, and reconfig is refused with ReconfigDisabled."""
    require_reference_for(*kinds.values())
    ens = Ensemble(tmp_path, kinds, tick_time=500, init_limit=6, sync_limit=3)
    with ens:
        ens.wait_leader()
        for sid in ens.servers:
            with client(ens[sid].address) as zk:
                data, stat = zk.get("/zookeeper/config")
                cfg = config_of(data)
                assert cfg["version"] == "0"
                assert sorted(k for k in cfg if k.startswith("server.")) == \
                    ["server.1", "server.2", "server.3"]
                assert cfg["server.2"] == \
                    f"127.0.0.1:{ens.quorum_ports[2]}:{ens.election_ports[2]}:participant"
                assert stat.version == -1 and stat.mzxid == 0
                with pytest.raises(ZookeeperError) as e:
                    zk.reconfig(joining=None, leaving="3", new_members=None)
                assert e.value.code == -123  # ReconfigDisabled
        assert not list(ens[1].data_dir.glob("zoo.cfg.dynamic.*"))


@pytest.mark.ensemble
@pytest.mark.reference
@pytest.mark.parametrize("kinds", [ALL_PYZK, APACHE_LEADS, PYZK_LEADS],
                         ids=["pyzk", "apache-leader", "pyzk-leader"])
def test_remove_and_add_a_server(tmp_path: Path, kinds: dict[int, str]) -> None:
    """Remove a follower, then add it back through another member; every member
    (pyzk or Apache) ends with the same configuration in its node and files."""
    require_reference_for(*kinds.values())
    ens = make(tmp_path, kinds)
    with ens, ExitStack() as stack:
        leader = ens.wait_leader()
        assert kinds[leader] == kinds[3], "the largest sid should lead a fresh ensemble"
        start = agreed_config(ens, [1, 2, 3])
        version = int(start["version"], 16)
        assert version >> 32 >= 1 and version & 0xFFFFFFFF == 0  # the first epoch's zxid
        # zoo.cfg now points at the dynamic file and holds no server lines
        static = read_properties(str(ens[1].cfg_path))
        assert not any(k.startswith("server.") for k in static)
        assert static["clientPort"] == str(ens[1].port)

        removed = next(s for s in ens.servers if s != leader)
        watcher = next(s for s in ens.servers if s not in (leader, removed))
        events: list[object] = []
        wzk = stack.enter_context(client(ens[watcher].address))
        wzk.get("/zookeeper/config", watch=events.append)
        with client(ens[leader].address) as zk, pytest.raises(NoAuthError):
            zk.reconfig(joining=None, leaving=str(removed), new_members=None)
        with client(ens[leader].address, auth_data=ADMIN) as zk:
            with pytest.raises(BadVersionError):
                zk.reconfig(joining=None, leaving=str(removed), new_members=None,
                            from_config=version + 1)
            data, stat = zk.reconfig(joining=None, leaving=str(removed), new_members=None,
                                     from_config=version)
        new = config_of(data)
        assert f"server.{removed}" not in new
        assert int(new["version"], 16) == stat.mzxid > version
        remaining = [s for s in ens.servers if s != removed]
        after = agreed_config(ens, remaining, new["version"])
        assert after == new
        # a getConfig watch fires on every member when the reconfig commits
        wait_for_slow(lambda: events, what="the config watch")
        assert events[0].type == "CHANGED" and events[0].path == "/zookeeper/config"
        # the removed server learns the new configuration as well
        agreed_config(ens, [removed], new["version"])
        # the ensemble of two still takes writes
        with client(ens.hosts(remaining)) as zk:
            zk.create("/after-remove", b"x")

        # add it back, through a follower
        spec = (f"server.{removed}=127.0.0.1:{ens.quorum_ports[removed]}:"
                f"{ens.election_ports[removed]}:participant;127.0.0.1:{ens[removed].port}")
        follower = next(s for s in remaining if s != leader)
        with client(ens[follower].address, auth_data=ADMIN) as zk:
            data, stat = zk.reconfig(joining=spec, leaving=None, new_members=None)
        added = config_of(data)
        assert added[f"server.{removed}"] == spec.split("=", 1)[1]
        assert agreed_config(ens, [1, 2, 3], added["version"]) == added
        assert not (ens[removed].data_dir / "zoo.cfg.dynamic.next").exists()

        # a restart reads the rewritten zoo.cfg and dynamic file
        cfg = load_config(str(ens[removed].cfg_path))
        assert sorted(cfg.servers) == [1, 2, 3]
        assert cfg.config_version == int(added["version"], 16)
        ens[removed].stop()
        ens[removed].write_config = lambda: None  # type: ignore[method-assign] # keep its files
        rejoin(ens[removed], 60)
        assert agreed_config(ens, [1, 2, 3], added["version"]) == added
        assert not (ens[removed].data_dir / "zoo.cfg.dynamic.next").exists()


@pytest.mark.ensemble
@pytest.mark.reference
@pytest.mark.parametrize("kinds", [ALL_PYZK, ALL_APACHE], ids=["pyzk", "apache"])
def test_reconfig_errors(tmp_path: Path, kinds: dict[int, str]) -> None:
    require_reference_for(*kinds.values())
    ens = make(tmp_path, kinds)
    with ens:
        leader = ens.wait_leader()
        start = agreed_config(ens, [1, 2, 3])
        with client(ens[leader].address, auth_data=ADMIN) as zk:
            # fewer than two voters left
            with pytest.raises(BadArgumentsError):
                zk.reconfig(joining=None, leaving="1,2", new_members=None)
            # a joiner without a client port
            with pytest.raises(BadArgumentsError):
                zk.reconfig(joining="server.7=127.0.0.1:1:2:participant", leaving=None,
                            new_members=None)
            # a joiner reusing another's address (loopback addresses are never compared)
            with pytest.raises(BadArgumentsError):
                zk.reconfig(joining="server.7=10.9.9.9:1000:1001:participant;1002,"
                                    "server.8=10.9.9.9:1000:1003:participant;1004",
                            leaving=None, new_members=None)
            # a new configuration whose quorum is not connected
            with pytest.raises(NewConfigNoQuorumError):
                zk.reconfig(joining=None, leaving=None,
                            new_members="server.7=127.0.0.1:5:6:participant;7,"
                                        "server.8=127.0.0.1:8:9:participant;10")
        # nothing changed
        assert agreed_config(ens, [1, 2, 3], start["version"]) == start


@pytest.mark.server
def test_standalone_reconfig_is_unimplemented(tmp_path: Path) -> None:
    with PyzkServer(tmp_path / "s", extra_cfg={"reconfigEnabled": "true"}) as s, \
            client(s.address) as zk, pytest.raises(UnimplementedError):
        zk.reconfig(joining=None, leaving="1", new_members=None)


@pytest.mark.ensemble
@pytest.mark.reference
@pytest.mark.parametrize("kinds", [ALL_PYZK, ALL_APACHE], ids=["pyzk", "apache"])
def test_remove_the_leader(tmp_path: Path, kinds: dict[int, str]) -> None:
    """The leader removes itself: another voter of the new configuration leads it,
    and the remaining pair agrees on the configuration and takes writes."""
    require_reference_for(*kinds.values())
    ens = make(tmp_path, kinds)
    with ens:
        leader = ens.wait_leader()
        agreed_config(ens, [1, 2, 3])
        with client(ens[leader].address, auth_data=ADMIN) as zk:
            data, _stat = zk.reconfig(joining=None, leaving=str(leader), new_members=None)
        new = config_of(data)
        assert f"server.{leader}" not in new
        remaining = [s for s in ens.servers if s != leader]
        assert agreed_config(ens, remaining, new["version"]) == new
        wait_for_slow(lambda: {ens.mode(s) for s in remaining} == {"leader", "follower"},
                      what="a leader among the remaining members")
        # the old leader stays on as a non-voting follower of the new one
        wait_for_slow(lambda: ens.mode(leader) == "follower", what="the old leader to follow")
        agreed_config(ens, [leader], new["version"])
        with client(ens.hosts(remaining)) as zk:
            zk.create("/after-leader-left", b"x")
            assert zk.get("/after-leader-left")[0] == b"x"


@pytest.mark.ensemble
@pytest.mark.reference
@pytest.mark.parametrize("kinds", [
    {1: "pyzk", 2: "pyzk", 3: "pyzk", 4: "pyzk"},
    {1: "apache", 2: "apache", 3: "apache", 4: "apache"},
    {1: "apache", 2: "apache", 3: "apache", 4: "pyzk"},
    {1: "pyzk", 2: "pyzk", 3: "pyzk", 4: "apache"},
], ids=["pyzk", "apache", "pyzk-joins-apache", "apache-joins-pyzk"])
def test_a_new_server_joins(tmp_path: Path, kinds: dict[int, str]) -> None:
    """A fourth server started with the ensemble's lines plus its own adopts the
    ensemble's (newer) configuration, follows without a vote, and becomes a
    voter through reconfig -add."""
    require_reference_for(*kinds.values())
    ens = make(tmp_path, kinds)
    for sid in (1, 2, 3):
        del ens[sid].extra_cfg["server.4"]
    for sid in (1, 2, 3):
        ens[sid].start(wait=False)
    for sid in (1, 2, 3):
        ens[sid].wait_ready(60)
    try:
        start = agreed_config(ens, [1, 2, 3])
        assert "server.4" not in start
        rejoin(ens[4], 60)
        assert agreed_config(ens, [4], start["version"]) == start
        assert ens.mode(4) == "follower"
        spec = (f"server.4=127.0.0.1:{ens.quorum_ports[4]}:{ens.election_ports[4]}"
                f":participant;127.0.0.1:{ens[4].port}")
        with client(ens.hosts([1, 2, 3]), auth_data=ADMIN) as zk:
            data, _stat = zk.reconfig(joining=spec, leaving=None, new_members=None)
        new = config_of(data)
        assert new["server.4"] == spec.split("=", 1)[1]
        assert agreed_config(ens, [1, 2, 3, 4], new["version"]) == new
        with client(ens[4].address) as zk:
            zk.create("/via-4", b"4")
        with client(ens[1].address) as zk:
            zk.sync("/via-4")
            assert zk.get("/via-4")[0] == b"4"
    finally:
        ens.stop()


@pytest.mark.ensemble
@pytest.mark.reference
@pytest.mark.parametrize("kinds", [ALL_PYZK, ALL_APACHE], ids=["pyzk", "apache"])
def test_non_incremental_reconfig(tmp_path: Path, kinds: dict[int, str]) -> None:
    """newMembers replaces the member list (commas between lines), as a super user."""
    require_reference_for(*kinds.values())
    ens = make(tmp_path, kinds)
    with ens:
        leader = ens.wait_leader()
        start = agreed_config(ens, [1, 2, 3])
        keep = [s for s in ens.servers if s != leader][:1] + [leader]
        members = ",".join(f"server.{s}={start[f'server.{s}']};127.0.0.1:{ens[s].port}"
                           for s in sorted(keep))
        with client(ens[leader].address, auth_data=ADMIN) as zk:
            data, stat = zk.reconfig(joining=None, leaving=None, new_members=members,
                                     from_config=int(start["version"], 16))
        new = config_of(data)
        assert sorted(k for k in new if k != "version") == [f"server.{s}" for s in sorted(keep)]
        assert new[f"server.{keep[0]}"].endswith(f";127.0.0.1:{ens[keep[0]].port}")
        assert int(new["version"], 16) == stat.mzxid
        assert agreed_config(ens, keep, new["version"]) == new


@pytest.mark.ensemble
@pytest.mark.reference
def test_files_as_apache_writes_them(tmp_path: Path) -> None:
    """pyzk's dynamic file and rewritten zoo.cfg are byte for byte what Apache
    writes for the same configuration (ZOOKEEPER-1783's first activation)."""
    from pyzk.shell.dynamicfile import dynamic_config_text, static_config_text

    require_reference()
    ens = make(tmp_path, ALL_APACHE)
    with ens:
        ens.wait_leader()
        agreed_config(ens, [1, 2, 3])
        for sid in ens.servers:
            apache_cfg = ens[sid].cfg_path.read_text()
            dyn_path = read_properties(str(ens[sid].cfg_path))["dynamicConfigFile"]
            with client(ens[sid].address) as zk:
                node = zk.get("/zookeeper/config")[0].decode()
            assert dynamic_config_text(node, keep_version=False) == Path(dyn_path).read_text()
            original = tmp_path / f"orig{sid}.cfg"
            original.write_text("".join(f"{k}={v}\n" for k, v in ens[sid].config().items()))
            assert static_config_text(str(original), dyn_path, erase_client=False) == apache_cfg


# ---------------------------------------------------------------------------
# The pure parts, without processes: the leader core's commit rule and prep's checks.


def _spec(sid: int, role: str = "participant") -> ServerSpec:
    return ServerSpec(sid, "127.0.0.1", 1000 + sid, 2000 + sid, role)


def _reconfig_txn(zxid: int, qv: QuorumMaj) -> bytes:
    hdr = TxnHeader(0x5EED, 1, zxid, 0, int(OpCode.reconfig))
    return encode_txn(hdr, SetDataTxn("/zookeeper/config", qv.to_string().encode(), -1))


def _history() -> CommittedLog:
    """What the leader has committed: followers at 1.2 are synced with a DIFF."""
    return CommittedLog(10, [A.Entry(zx(1, i), txn_bytes(zx(1, i), b"")) for i in (1, 2)])


def _establish(ld: ReconfigLeaderCore, sid: int, peer: str) -> None:
    fol = Follower(sid, peer, accepted_epoch=1, current_epoch=1, last_logged_zxid=zx(1, 2),
                   now=0, tick_time=100, init_limit=5, sync_limit=2)
    ld.on_connect(peer)
    up = fol.start()
    for _ in range(10):
        down = [d for a in up if isinstance(a, A.Send) for d in ld.on_packet(peer, a.packet)]
        up = [u for d in down if isinstance(d, A.Send) and d.peer == peer
              for u in fol.on_packet(d.packet)]
        up += [x for a in list(up) if isinstance(a, A.LogTxn) for x in fol.on_logged(a.entry.zxid)]
        if not up:
            break


@pytest.mark.pure
def test_leader_core_needs_both_quorums_while_a_reconfig_is_pending() -> None:
    old = QuorumMaj([_spec(1), _spec(2), _spec(3)], 0x100000000)
    ld = ReconfigLeaderCore(3, old, last_seen=old, accepted_epoch=1, current_epoch=1,
                            last_zxid=zx(1, 2), now=0, tick_time=100, init_limit=5,
                            sync_limit=2, committed=_history())
    _establish(ld, 1, "p1")
    _establish(ld, 4, "p4")  # not a voter yet: a non-voting follower
    assert ld.established and {h.sid for h in ld.forwarding} == {1, 4}
    assert [h.state for h in ld.forwarding] == ["active", "active"]
    new = QuorumMaj([_spec(1), _spec(3), _spec(4)], zx(2, 1))
    assert ld.is_quorum_synced(new)
    assert not ld.is_quorum_synced(QuorumMaj([_spec(3), _spec(5), _spec(6)], 1))

    entry = A.Entry(zx(2, 1), _reconfig_txn(zx(2, 1), new))
    out = ld.propose(entry)
    assert any(isinstance(a, SeeConfig) and a.verifier.version == zx(2, 1) for a in out)
    ld.on_logged(zx(2, 1))  # the leader's own ack: a voter of both
    out = ld.on_packet("p4", P.ack_packet(zx(2, 1)))  # new config has 3+4, old only 3
    assert not any(isinstance(a, A.Commit) for a in out)
    out = ld.on_packet("p1", P.ack_packet(zx(2, 1)))  # now both have a quorum
    activate = [a for a in out if isinstance(a, ActivateConfig)]
    assert len(activate) == 1 and activate[0].designated_leader == 3
    assert activate[0].verifier.version == zx(2, 1)
    kinds = [(a.peer, a.packet.type) for a in out if isinstance(a, A.Send)]
    assert sorted(kinds) == [("p1", T.COMMITANDACTIVATE), ("p4", T.COMMITANDACTIVATE)]
    assert [a.entry for a in out if isinstance(a, A.Commit)] == [entry]
    assert ld.quorum is activate[0].verifier

    # after activation the new configuration alone decides: 3 and 4 suffice
    e2 = A.Entry(zx(2, 2), txn_bytes(zx(2, 2), b"v"))
    ld.propose(e2)
    ld.on_logged(zx(2, 2))
    out = ld.on_packet("p4", P.ack_packet(zx(2, 2)))
    assert [a.entry for a in out if isinstance(a, A.Commit)] == [e2]
    assert sends_of(out) == [("p1", T.COMMIT), ("p4", T.COMMIT)]


def sends_of(actions: list[object]) -> list[tuple[object, int]]:
    return sorted((a.peer, a.packet.type) for a in actions if isinstance(a, A.Send))


@pytest.mark.pure
def test_leader_core_designates_another_leader_when_removed() -> None:
    old = QuorumMaj([_spec(1), _spec(2), _spec(3)], 0x100000000)
    ld = ReconfigLeaderCore(3, old, last_seen=old, accepted_epoch=1, current_epoch=1,
                            last_zxid=zx(1, 2), now=0, tick_time=100, init_limit=5,
                            sync_limit=2, committed=_history())
    _establish(ld, 1, "p1")
    _establish(ld, 2, "p2")
    assert [h.state for h in ld.forwarding] == ["active", "active"]
    new = QuorumMaj([_spec(1), _spec(2)], zx(2, 1))
    ld.propose(A.Entry(zx(2, 1), _reconfig_txn(zx(2, 1), new)))
    e2 = A.Entry(zx(2, 2), txn_bytes(zx(2, 2), b"v"))
    ld.propose(e2)
    ld.on_logged(zx(2, 2))
    ld.on_packet("p1", P.ack_packet(zx(2, 1)))
    ld.on_packet("p2", P.ack_packet(zx(2, 2)))
    out = ld.on_packet("p2", P.ack_packet(zx(2, 1)))
    activate = [a for a in out if isinstance(a, ActivateConfig)]
    # 3 is not a voter any more: of the voters that acked the reconfig, the one
    # that also acked what follows (2.2) leads the new configuration
    assert activate and activate[0].designated_leader == 2
    assert [P.parse_activate(a.packet)[0] for a in out if isinstance(a, A.Send)] == [2, 2]
    assert not ld.allowed_to_commit
    # no more commits from this leader
    assert not any(isinstance(a, A.Commit) for a in ld.on_packet("p1", P.ack_packet(zx(2, 2))))


class _Peer:
    def __init__(self, version: int, seen: int) -> None:
        members = [_spec(1), _spec(2), _spec(3)]
        self.verifier = QuorumMaj(members, version)
        self.last_seen = QuorumMaj(members, seen)


def _prepare(peer: _Peer, req: ReconfigRequest, auth: list[Id], *, synced: bool = True
             ) -> Prepared:
    tree = DataTree()
    prep = Preparer(tree, reconfig_enabled=True)
    prep.reconfig = ReconfigPreparer(peer, lambda qv: synced)
    return prep.prepare(0x77, 1, int(OpCode.reconfig), req.to_bytes(), auth, zx(2, 5), 1234)


SUPER_ID = [Id("super", "")]


@pytest.mark.pure
@pytest.mark.parametrize(("req", "peer", "auth", "synced", "err"), [
    (ReconfigRequest(None, "3", None, -1), _Peer(5, 6), SUPER_ID, True, -14),
    (ReconfigRequest(None, "3", None, 4), _Peer(5, 5), SUPER_ID, True, -103),
    (ReconfigRequest(None, "x", None, -1), _Peer(5, 5), SUPER_ID, True, -5),
    (ReconfigRequest(None, "2,3", None, -1), _Peer(5, 5), SUPER_ID, True, -8),
    (ReconfigRequest("server.4=h:1:2", None, None, -1), _Peer(5, 5), SUPER_ID, True, -8),
    (ReconfigRequest("server.4", None, None, -1), _Peer(5, 5), SUPER_ID, True, -8),
    (ReconfigRequest(None, None, "group.1=1:2", -1), _Peer(5, 5), SUPER_ID, True, -8),
    (ReconfigRequest(None, "3", None, -1), _Peer(5, 5), SUPER_ID, False, -13),
    (ReconfigRequest(None, "3", None, -1), _Peer(5, 5), [Id("digest", "u:x")], True, -102),
], ids=["in-progress", "bad-version", "bad-id", "too-few", "no-client-port", "no-equals",
        "hierarchical", "no-quorum", "no-auth"])
def test_prep_checks(req: ReconfigRequest, peer: _Peer, auth: list[Id], synced: bool,
                     err: int) -> None:
    assert _prepare(peer, req, auth, synced=synced).err == err


@pytest.mark.pure
def test_prep_builds_the_config_txn() -> None:
    p = _prepare(_Peer(5, 5), ReconfigRequest("server.4=127.0.0.1:7:8:observer;9", "1", None,
                                              5), SUPER_ID)
    assert p.err == 0 and p.hdr.type == OpCode.reconfig
    assert p.txn == SetDataTxn("/zookeeper/config", p.txn.data, -1)
    cfg = config_of(p.txn.data)
    assert cfg == {"server.2": "127.0.0.1:1002:2002:participant",
                   "server.3": "127.0.0.1:1003:2003:participant",
                   "server.4": "127.0.0.1:7:8:observer;0.0.0.0:9", "version": f"{zx(2, 5):x}"}


@pytest.mark.pure
def test_disabled_and_standalone_reconfig_in_prep() -> None:
    req = ReconfigRequest(None, "3", None, -1).to_bytes()
    assert Preparer(DataTree()).prepare(1, 1, int(OpCode.reconfig), req, SUPER_ID, 1, 0).err \
        == -123
    assert Preparer(DataTree(), reconfig_enabled=True).prepare(
        1, 1, int(OpCode.reconfig), req, SUPER_ID, 1, 0).err == -6
