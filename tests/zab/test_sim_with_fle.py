"""The Zab simulator with real Fast Leader Election cores choosing leaders."""

from __future__ import annotations

import os

import pytest

from pyzk.quorum.fleoracle import FleElectionOracle
from pyzk.zab.sim import SimConfig, Simulation

pytestmark = pytest.mark.pure

SEEDS = [int(os.environ["PYZK_SIM_SEED"])] if "PYZK_SIM_SEED" in os.environ else list(range(12))


@pytest.mark.parametrize("seed", SEEDS)
def test_zab_and_fle_together_keep_invariants(seed: int) -> None:
    oracle = FleElectionOracle(seed)
    cfg = SimConfig(voters=5 if seed % 2 else 3, observers=int(seed % 3 == 0), steps=1500,
                    crash_p=0.006, break_p=0.004, partition_p=0.004, max_delay_ms=60)
    sim = Simulation(seed, cfg, oracle=oracle)
    sim.run()
    assert oracle.elections > 0 and oracle.messages > 0
    assert len(sim.committed) > 50
    assert sim.stats["crash"] > 0
