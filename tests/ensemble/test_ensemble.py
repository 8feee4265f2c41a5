"""Ensembles of real server processes on loopback: pyzk alone and mixed with Apache.

Each test starts three servers (tickTime 200 ms), drives them with kazoo
through different members and checks what a user relies on: one leader,
writes through any member visible on every member, sessions that survive a
move to another server (REVALIDATE) and the loss of the leader, no
acknowledged write lost, a restarted follower brought up to date by DIFF,
and the modes and follower counts srvr/mntr report.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyzk.testing.servers import Ensemble, require_reference, wait_for
from tests.ensemble.helpers import SESSION_CFG, client, ensemble_with_flags, rejoin

pytestmark = [pytest.mark.ensemble, pytest.mark.reference]


def mntr(ens: Ensemble, sid: int) -> dict[str, str]:
    out = {}
    for line in ens[sid].four_letter("mntr").splitlines():
        k, _, v = line.partition("\t")
        out[k] = v
    return out


def gauge_keys(ens: Ensemble, sid: int) -> list[str]:
    """mntr's keys up to zk_quorum_size: the gauges, in the order printed."""
    keys = [line.partition("\t")[0] for line in ens[sid].four_letter("mntr").splitlines()]
    return keys[: keys.index("zk_quorum_size") + 1]


def writes_everywhere(ens: Ensemble, prefix: str) -> None:
    """A write through every member, then each member has all of them."""
    for sid in ens.servers:
        with client(ens[sid].address) as zk:
            zk.create(f"/{prefix}{sid}", f"via {sid}".encode(), makepath=True)
    for sid in ens.servers:
        with client(ens[sid].address) as zk:
            zk.sync("/")
            for other in ens.servers:
                assert zk.get(f"/{prefix}{other}")[0] == f"via {other}".encode(), (sid, other)


def check_modes(ens: Ensemble, leader: int) -> None:
    for sid in ens.servers:
        expected = "leader" if sid == leader else "follower"
        assert ens.mode(sid) == expected
        assert mntr(ens, sid)["zk_server_state"] == expected
    m = mntr(ens, leader)
    assert m["zk_synced_followers"] == str(len(ens.servers) - 1)
    assert m["zk_learners"] == str(len(ens.servers) - 1)


@contextlib.contextmanager
def led_by(ens: Ensemble, first: int, second: int) -> Iterator[None]:
    """Start ``first`` and ``second`` alone, then the others: with empty logs
    the larger sid of a pair must win. (Started all at once, two members can
    settle on the larger of themselves within finalizeWait, 200 ms, before a
    third one's vote reaches them.)"""
    try:
        ens[first].start(wait=False)
        ens[second].start(wait=False)
        assert ens.wait_leader(among=[first, second], timeout=60) == max(first, second)
        for sid in ens.servers:
            if sid not in (first, second):
                rejoin(ens[sid])
        yield
    finally:
        ens.stop()


@pytest.mark.timeout(120)
def test_pyzk_ensemble_survives_the_loss_of_its_leader(tmp_path: Path) -> None:
    ens = Ensemble(tmp_path, {1: "pyzk", 2: "pyzk", 3: "pyzk"}, extra_cfg=SESSION_CFG)
    with led_by(ens, 3, 2):
        leader = ens.wait_leader()
        assert leader == 3  # empty logs: the largest sid wins
        check_modes(ens, leader)
        writes_everywhere(ens, "w")
        followers = [s for s in ens.servers if s != leader]

        # a session on the leader, with an ephemeral and acknowledged writes
        hosts = ens.hosts([leader, *followers])
        with client(hosts) as zk:
            session = zk.client_id
            zk.create("/eph", b"mine", ephemeral=True)
            acked = []
            for i in range(30):
                zk.create(f"/acked/n{i}", str(i).encode(), makepath=True)
                acked.append(i)
            # reads through a follower never go back in time for this session
            before = zk.get("/acked/n29")[1].mzxid

            ens[leader].kill()
            new_leader = ens.wait_leader(among=followers)
            assert new_leader in followers
            # the client moved to a follower with its session and ephemeral intact
            wait_for(lambda: zk.connected, what="reconnection")
            assert zk.client_id == session
            assert zk.get("/eph")[0] == b"mine"
            assert zk.get("/acked/n29")[1].mzxid >= before
            zk.create("/after", b"failover")
            for sid in followers:
                with client(ens[sid].address) as other:
                    other.sync("/")
                    assert sorted(other.get_children("/acked")) == \
                        sorted(f"n{i}" for i in acked)
                    assert other.get("/after")[0] == b"failover"

            # the old leader comes back as a follower and catches up
            rejoin(ens[leader])
            assert ens.wait_leader() == new_leader
            with client(ens[leader].address) as back:
                back.sync("/")
                assert back.get("/after")[0] == b"failover"
                assert back.exists("/eph") is not None
        # the session closed: its ephemeral is gone everywhere
        for sid in ens.servers:
            with client(ens[sid].address) as zk:
                zk.sync("/")
                assert zk.exists("/eph") is None


@pytest.mark.timeout(120)
def test_restarted_follower_catches_up_by_diff(tmp_path: Path) -> None:
    ens = Ensemble(tmp_path, {1: "pyzk", 2: "pyzk", 3: "pyzk"}, extra_cfg=SESSION_CFG)
    with ens:
        leader = ens.wait_leader()
        follower = min(s for s in ens.servers if s != leader)
        with client(ens[leader].address) as zk:
            zk.create("/before", b"1")
        ens[follower].kill()
        with client(ens[leader].address) as zk:
            for i in range(20):
                zk.create(f"/missed{i}", b"x")
            zk.set("/before", b"2")
        log = ens[leader].log_path.read_text()
        rejoin(ens[follower])
        with client(ens[follower].address) as zk:
            assert zk.get("/before")[0] == b"2"
            assert all(zk.exists(f"/missed{i}") for i in range(20))
        new_log = ens[leader].log_path.read_text()[len(log):]
        assert f"Syncing learner sid {follower}" in new_log
        assert "with DIFF" in new_log and "with SNAP" not in new_log
        check_modes(ens, leader)


def _zxid(ens: Ensemble, sid: int) -> str:
    return next(line for line in ens[sid].four_letter("srvr").splitlines()
                if line.startswith("Zxid:"))


@pytest.mark.timeout(150)
def test_follower_catches_up_a_long_diff_from_the_disk_log(tmp_path: Path) -> None:
    """A follower that missed 6,000 txns (creates): beyond the leader's committed window,
    so the leader reads them from its log (off its loop), and more than the
    commits a learner applies per loop iteration, so they are applied in runs
    while it answers PINGs. It must come back whole without being dropped (at
    tickTime 200 a DIFF applied in one go outlasted syncLimit), and a write
    made while it catches up must reach it too."""
    ens = ensemble_with_flags(tmp_path, {1: "pyzk", 2: "pyzk", 3: "pyzk"},
                              ["-Dzookeeper.snapshotSizeFactor=100000"], extra_cfg=SESSION_CFG)
    with ens:
        leader = ens.wait_leader()
        follower = min(s for s in ens.servers if s != leader)
        with client(ens[leader].address) as zk:
            zk.create("/n", b"start")
        ens[follower].kill()
        with client(ens[leader].address) as zk:
            for r in [zk.create_async(f"/n/c{i}", b"%d" % i) for i in range(5999)]:
                r.get(timeout=30)
            zk.set("/n", b"5999")
        log = ens[leader].log_path.read_text()
        rejoin(ens[follower], timeout=60)
        with client(ens[leader].address) as zk:
            zk.create("/after", b"a")
        with client(ens[follower].address) as zk:
            zk.sync("/")
            # every one of the 6,000 txns applied
            assert zk.get("/n")[0] == b"5999" and zk.get("/after")[0] == b"a"
            assert len(zk.get_children("/n")) == 5999
        wait_for(lambda: _zxid(ens, follower) == _zxid(ens, leader), 10)
        new_log = ens[leader].log_path.read_text()[len(log):]
        assert f"Syncing learner sid {follower}" in new_log and "with DIFF" in new_log
        assert "with SNAP" not in new_log and "Dropping learner" not in new_log
        check_modes(ens, leader)


@pytest.mark.timeout(150)
def test_pyzk_leader_with_two_apache_followers(tmp_path: Path) -> None:
    require_reference()
    ens = Ensemble(tmp_path, {1: "apache", 2: "apache", 3: "pyzk"}, extra_cfg=SESSION_CFG)
    # Apache 1 and 2 started together can settle on 2 before pyzk's vote
    # reaches them; with 1 still down, 2 needs 3's vote: pyzk leads, every time.
    with led_by(ens, 3, 2):
        assert ens.wait_leader() == 3
        check_modes(ens, 3)
        writes_everywhere(ens, "mixed")
        # a session made through an Apache follower is global: it revalidates on
        # the pyzk leader and its ephemeral is seen everywhere
        with client(ens[1].address) as zk:
            zk.create("/from-apache", b"e", ephemeral=True)
            with client(ens[3].address, client_id=zk.client_id) as again:
                assert again.get("/from-apache")[0] == b"e"
                again.set("/from-apache", b"f")
                with client(ens[2].address) as other:
                    other.sync("/")
                    assert other.get("/from-apache")[0] == b"f"
            # leaving closed the session (kazoo sends closeSession): the pyzk
            # leader deleted its ephemeral on every member
            with client(ens[2].address) as other:
                other.sync("/")
                assert other.exists("/from-apache") is None
        pyzk_leader_keys = gauge_keys(ens, 3)

        # the pyzk leader dies: the Apache servers elect one of them, and the
        # pyzk server comes back as its follower with everything written
        with client(ens.hosts([3, 1, 2])) as zk:
            zk.create("/survives", b"s", ephemeral=True)
            session = zk.client_id
            ens[3].kill()
            assert ens.wait_leader(among=[1, 2]) == 2
            wait_for(lambda: zk.connected, what="reconnection")
            assert zk.client_id == session
            assert zk.get("/survives")[0] == b"s"
            # Apache's leader lists the same gauges as pyzk's did (its order moves
            # as gauges are registered again after an election, so compare sets)
            assert set(gauge_keys(ens, 2)) == set(pyzk_leader_keys)
            rejoin(ens[3])
            assert ens.wait_leader() == 2
            with client(ens[3].address) as back:
                back.sync("/")
                assert back.get("/survives")[0] == b"s"
                assert back.get("/mixed1")[0] == b"via 1"


@pytest.mark.timeout(150)
def test_apache_leader_with_a_pyzk_follower(tmp_path: Path) -> None:
    require_reference()
    ens = Ensemble(tmp_path, {1: "pyzk", 2: "apache", 3: "apache"}, extra_cfg=SESSION_CFG)
    with ens:
        # 3 leads unless 1 and 2 formed a quorum before it started (then 2 does):
        # an Apache leader either way
        leader = ens.wait_leader()
        assert leader in (2, 3)
        other_apache = 5 - leader
        check_modes(ens, leader)  # Apache's leader counts the pyzk follower as synced
        writes_everywhere(ens, "mixed")
        # pyzk and Apache followers
        assert set(gauge_keys(ens, 1)) == set(gauge_keys(ens, other_apache))
        # a session made on the pyzk follower is known to the Apache leader, and
        # an Apache session revalidates through the pyzk follower
        with client(ens[1].address) as zk:
            zk.create("/from-pyzk", b"p", ephemeral=True)
            with client(ens[3].address, client_id=zk.client_id) as again:
                assert again.get("/from-pyzk")[0] == b"p"
        with client(ens[2].address) as zk:
            zk.create("/from-apache", b"a", ephemeral=True)
            with client(ens[1].address, client_id=zk.client_id) as again:
                again.sync("/")
                assert again.get("/from-apache")[0] == b"a"
                again.delete("/from-apache")
            with client(ens[3].address) as other:
                other.sync("/")
                assert other.exists("/from-apache") is None


@pytest.mark.timeout(120)
def test_pyzk_observer_serves_without_voting(tmp_path: Path) -> None:
    ens = Ensemble(tmp_path, {1: "pyzk", 2: "pyzk", 3: "pyzk", 4: "pyzk"}, observers=(4,),
                   extra_cfg=SESSION_CFG)
    with ens:
        leader = ens.wait_leader()
        assert leader == 3  # the observer's larger sid does not make it a candidate
        assert ens.mode(4) == "observer"
        m = mntr(ens, 4)
        assert m["zk_peer_state"] == "observing - broadcast"
        assert m["zk_observer_master_id"] == str(leader)
        assert m["zk_quorum_size"] == "3"
        lm = mntr(ens, leader)
        assert (lm["zk_synced_followers"], lm["zk_synced_observers"]) == ("2", "1")
        writes_everywhere(ens, "obs")
        # a session made on the observer lives and closes through the leader
        with client(ens[4].address) as zk:
            zk.create("/obs-eph", b"o", ephemeral=True)
            assert zk.get("/obs-eph")[0] == b"o"
        with client(ens[leader].address) as zk:
            assert zk.exists("/obs-eph") is None
