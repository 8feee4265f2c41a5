"""The worker against pyzk: one server, then an ensemble losing the leader's server."""

from __future__ import annotations

import pytest
from kazoo.client import KazooClient
from worker import Worker, runs


def test_only_one_of_two_workers_leads(zk_client):
    first, second = Worker(zk_client, "a"), Worker(zk_client, "b")
    first.run()
    assert first.led.wait(10)
    second.run()
    assert not second.led.wait(1)  # b waits while a leads
    first.stop.set()
    assert second.led.wait(10)  # a stepped down: b takes over
    assert runs(zk_client) == ["a", "b"]
    second.stop.set()


@pytest.mark.zk_ensemble(size=3)
def test_leadership_moves_when_the_leaders_server_dies(zk_ensemble):
    ens = zk_ensemble(tickTime="200", initLimit="10", syncLimit="5")
    leader_sid = ens.leader()
    others = [sid for sid in ens.servers if sid != leader_sid]
    # worker a talks to the ZooKeeper leader only, worker b to the others
    a_client = KazooClient(hosts=ens.address(leader_sid), timeout=2)
    b_client = KazooClient(hosts=",".join(ens.address(s) for s in others), timeout=4)
    a_client.start()
    b_client.start()
    try:
        a, b = Worker(a_client, "a"), Worker(b_client, "b")
        a.run()
        assert a.led.wait(10)
        b.run()
        ens.kill(leader_sid)  # a's session can only expire now: b must take over
        assert b.led.wait(30)
        assert runs(b_client) == ["a", "b"]
        b.stop.set()
    finally:
        a_client.stop()
        b_client.stop()
