"""Many seeded simulations of election cores; any failure names its seed.

Replay one with ``PYZK_SIM_SEED=<n> python -m pytest tests/quorum/test_sim.py``.
"""

from __future__ import annotations

import os

import pytest

import pyzk.quorum.election as election
from pyzk.quorum.sim import InvariantViolation, SimConfig, Simulation
from pyzk.quorum.wire import Notification

pytestmark = pytest.mark.pure

CONFIGS = {
    "clean3": (SimConfig(voters=3), 60),
    "clean5_slow": (SimConfig(voters=5, min_delay=50, max_delay=400), 60),
    "lossy5": (SimConfig(voters=5, loss=0.1, fault_interval=1500), 150),
    "chaos3_observer": (
        SimConfig(voters=3, observers=1, loss=0.2, fault_interval=800, max_delay=300),
        150,
    ),
    "chaos7": (SimConfig(voters=7, observers=2, loss=0.05, fault_interval=1000), 25),
}


def _seeds(count: int) -> range | list[int]:
    one = os.environ.get("PYZK_SIM_SEED")
    return [int(one)] if one else range(count)


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_many_seeds(name: str) -> None:
    cfg, count = CONFIGS[name]
    for seed in _seeds(count):
        sim = Simulation(seed, cfg)
        sim.run()  # raises InvariantViolation naming the seed
        assert sim.stable_leader() is not None


def test_clean_start_elects_best_in_first_round() -> None:
    """No faults, delays below finalizeWait: one round, one leader, and it is
    the server with the greatest (epoch, zxid, id)."""
    for seed in _seeds(100):
        sim = Simulation(seed, SimConfig(voters=5))
        best = max(sim.nodes.values(), key=lambda n: (n.current_epoch, n.zxid, n.sid)).sid
        while sim.step() and sim.now < 1500:
            pass
        assert sim.split_decisions == 0, seed
        assert sim.decisions == {1: {best}}, seed
        assert all(n.core.state != election.ServerState.LOOKING for n in sim.nodes.values())


def test_same_seed_same_run() -> None:
    cfg = CONFIGS["chaos3_observer"][0]
    a, b = Simulation(11, cfg), Simulation(11, cfg)
    a.run()
    b.run()
    assert (a.steps, a.messages, list(a.trace)) == (b.steps, b.messages, list(b.trace))
    assert Simulation(12, cfg).run() is None


def test_split_rounds_happen_and_zab_resolves_them() -> None:
    """Apache's FLE can let two servers decide to lead in one round when
    votes change during someone's finalize wait; only one can establish."""
    cfg = CONFIGS["lossy5"][0]
    total = 0
    for seed in range(40):
        sim = Simulation(seed, cfg)
        sim.run()
        total += sim.split_decisions
    assert total > 0


def test_broken_vote_order_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """Electing by server id alone loses committed transactions."""
    monkeypatch.setattr(
        election, "total_order_predicate", lambda new, cur, verifier: new[0] > cur[0]
    )
    cfg = CONFIGS["lossy5"][0]
    with pytest.raises(InvariantViolation, match=r"seed \d+: .*(lacks committed|supporter)"):
        for seed in range(50):
            Simulation(seed, cfg).run()


def test_forged_vote_is_caught() -> None:
    sim = Simulation(3, SimConfig(voters=3))
    sim.group = {1: 0, 2: 1, 3: 1}  # 1 hears only from itself and the forger
    node = sim.nodes[1]
    cfg = sim.verifier.to_bytes()
    forged = Notification(0, 1, node.zxid, 1, node.current_epoch, 2, cfg)
    with pytest.raises(InvariantViolation, match="from 2 that was never sent"):
        sim._apply(node, node.core.receive(2, forged))
        for _ in range(200):
            sim.step()
