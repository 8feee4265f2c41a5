"""Many seeded simulations of leader + followers (+ observers) with faults.

A failing seed prints its trace and replays exactly with
``python -c "from pyzk.zab.sim import run_seed, SimConfig; run_seed(SEED, SimConfig(...))"``.
The mutation tests break the cores on purpose and require the simulator to
notice, so the invariants cannot silently pass.
"""

from __future__ import annotations

import logging
from collections import Counter

import pytest

from pyzk.zab import follower as follower_mod
from pyzk.zab import leader as leader_mod
from pyzk.zab.sim import InvariantViolation, SimConfig, run_seed

pytestmark = pytest.mark.pure

SEEDS = range(60)


@pytest.fixture(autouse=True)
def _quiet() -> None:
    logging.getLogger("pyzk.zab").setLevel(logging.ERROR)


def _cfg(seed: int) -> SimConfig:
    return SimConfig(voters=5 if seed % 2 else 3, observers=int(seed % 3 == 0), steps=1500,
                     crash_p=0.006, break_p=0.004, partition_p=0.004, max_delay_ms=60)


@pytest.mark.parametrize("seed", SEEDS)
def test_seed_keeps_invariants_and_converges(seed: int) -> None:
    sim = run_seed(seed, _cfg(seed))
    assert len(sim.committed) > 50
    assert sim.stats["crash"] > 0


def test_simulations_cover_every_sync_path() -> None:
    total: Counter[str] = Counter()
    for seed in range(8):
        total += run_seed(seed, _cfg(seed)).stats
    for kind in ("sync DIFF", "sync SNAP", "sync TRUNC", "observer sync DIFF", "lost unsynced"):
        assert total[kind] > 0, (kind, total)


def test_same_seed_same_run() -> None:
    a, b = run_seed(5, _cfg(5)), run_seed(5, _cfg(5))
    assert a.committed == b.committed and a.trace == b.trace


def _violations(seeds: range) -> int:
    bad = 0
    for seed in seeds:
        try:
            run_seed(seed, _cfg(seed))
        except InvariantViolation:
            bad += 1
    return bad


def test_mutant_committing_without_quorum_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    orig = leader_mod.LeaderCore._try_to_commit

    def eager(self, p, zxid):  # type: ignore[no-untyped-def]
        p.acks.update(self.quorum.voting)  # pretend everyone acked
        return orig(self, p, zxid)

    monkeypatch.setattr(leader_mod.LeaderCore, "_try_to_commit", eager)
    assert _violations(range(12)) > 0


def test_mutant_acking_before_durable_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    orig = follower_mod.LearnerCore._log

    def ack_now(self, entry):  # type: ignore[no-untyped-def]
        orig(self, entry)
        self._to_ack.pop()
        self._send(follower_mod.P.ack_packet(entry.zxid))

    monkeypatch.setattr(follower_mod.LearnerCore, "_log", ack_now)
    cfg_seeds = range(40)
    bad = 0
    for seed in cfg_seeds:
        cfg = _cfg(seed)
        cfg.fsync_p = 0.05  # a long page cache makes lost acked txns likely
        cfg.crash_p = 0.01
        try:
            run_seed(seed, cfg)
        except InvariantViolation:
            bad += 1
    assert bad > 0
