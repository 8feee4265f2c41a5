"""LearnerHandler.syncFollower's DIFF/TRUNC/SNAP decision, case by case
(the cases of Apache's LearnerHandlerTest)."""

from __future__ import annotations

import pytest

from pyzk.zab.actions import Entry
from pyzk.zab.history import CommittedLog, plan_sync
from pyzk.zab.packets import PacketType as T
from pyzk.zab.zxid import make_zxid as z

pytestmark = pytest.mark.pure


def E(zxid: int) -> Entry:
    return Entry(zxid, b"txn%x" % zxid)


def kinds(plan) -> list[tuple[int, int]]:  # type: ignore[no-untyped-def]
    return [(p.type, p.zxid) for p in plan.all_packets()]


def test_committed_log_window_keeps_count_plus_one() -> None:
    log = CommittedLog(3, [E(z(1, i)) for i in range(1, 7)])
    assert [e.zxid for e in log] == [z(1, 3), z(1, 4), z(1, 5), z(1, 6)]
    assert (log.min_zxid, log.max_zxid) == (z(1, 3), z(1, 6))


def test_in_sync_gets_empty_diff() -> None:
    log = CommittedLog(10, [E(z(1, 1)), E(z(1, 2))])
    plan = plan_sync(z(1, 2), log, z(1, 2))
    assert not plan.snap and kinds(plan) == [(T.DIFF, z(1, 2))] and plan.forward_from == z(1, 2)


def test_behind_within_committed_log_gets_diff_with_proposals() -> None:
    log = CommittedLog(10, [E(z(1, i)) for i in range(1, 6)])
    plan = plan_sync(z(1, 2), log, z(1, 5))
    assert kinds(plan) == [(T.DIFF, z(1, 5)), (T.PROPOSAL, z(1, 3)), (T.COMMIT, z(1, 3)),
                           (T.PROPOSAL, z(1, 4)), (T.COMMIT, z(1, 4)),
                           (T.PROPOSAL, z(1, 5)), (T.COMMIT, z(1, 5))]
    assert plan.all_packets()[1].data == b"txn%x" % z(1, 3)
    assert plan.forward_from == z(1, 5) and plan.kind == "DIFF"


def test_ahead_of_leader_gets_trunc() -> None:
    log = CommittedLog(10, [E(z(1, i)) for i in range(1, 4)])
    plan = plan_sync(z(1, 7), log, z(1, 3))
    assert kinds(plan) == [(T.TRUNC, z(1, 3))] and plan.forward_from == z(1, 3)
    assert plan.kind == "TRUNC"


def test_diverged_in_same_epoch_gets_trunc_then_proposals() -> None:
    # the peer has 1.3 the leader never had; the leader has 1.2 then 2.1, 2.2
    log = CommittedLog(10, [E(z(1, 1)), E(z(1, 2)), E(z(1, 4)), E(z(1, 5))])
    plan = plan_sync(z(1, 3), log, z(1, 5))
    assert kinds(plan) == [(T.TRUNC, z(1, 2)), (T.PROPOSAL, z(1, 4)), (T.COMMIT, z(1, 4)),
                           (T.PROPOSAL, z(1, 5)), (T.COMMIT, z(1, 5))]


def test_diverged_across_epochs_falls_back_to_snap() -> None:
    log = CommittedLog(10, [E(z(1, 1)), E(z(1, 2)), E(z(3, 1)), E(z(3, 2))])
    plan = plan_sync(z(2, 5), log, z(3, 2))
    assert plan.snap and plan.packets == [] and plan.kind == "SNAP"
    # Apache hands startForwarding the zxid it had reached, not the snapshot's
    assert plan.forward_from == z(2, 5)


def test_new_epoch_zxid_gets_diff_even_if_unknown() -> None:
    log = CommittedLog(10, [E(z(1, 1)), E(z(2, 1)), E(z(2, 2))])
    plan = plan_sync(z(2, 0), log, z(2, 2))
    assert kinds(plan) == [(T.DIFF, z(2, 2)), (T.PROPOSAL, z(2, 1)), (T.COMMIT, z(2, 1)),
                           (T.PROPOSAL, z(2, 2)), (T.COMMIT, z(2, 2))]
    # a new-epoch zxid above the leader's history is never truncated: it is
    # Apache's "unhandled scenario", a SNAP
    assert plan_sync(z(3, 0), log, z(2, 2)).snap


def test_empty_committed_log_uses_last_processed() -> None:
    empty = CommittedLog(10)
    assert kinds(plan_sync(z(2, 0), empty, z(2, 0))) == [(T.DIFF, z(2, 0))]
    assert kinds(plan_sync(z(1, 9), empty, z(1, 4))) == [(T.TRUNC, z(1, 4))]
    assert plan_sync(0, empty, z(1, 4)).snap  # behind, no txn log: SNAP
    assert plan_sync(0, empty, z(1, 4), lambda _z: []).snap  # log does not reach back


def test_too_far_behind_uses_txnlog_then_committed_log() -> None:
    disk = [E(z(1, i)) for i in range(1, 11)]
    log = CommittedLog(3, disk[6:])  # 1.7 .. 1.10
    plan = plan_sync(z(1, 3), log, z(1, 10), lambda start: [e for e in disk])
    assert not plan.snap
    assert kinds(plan)[0] == (T.DIFF, z(1, 10))
    assert [p.zxid for p in plan.all_packets()
            if p.type == T.PROPOSAL] == [z(1, i) for i in range(4, 11)]
    assert plan.forward_from == z(1, 10)
    # without on-disk sync (snapshotSizeFactor < 0) it is a SNAP
    assert plan_sync(z(1, 3), log, z(1, 10), None).snap


def test_gap_between_txnlog_and_committed_log_means_snap() -> None:
    disk = [E(z(1, i)) for i in range(1, 5)]  # ends at 1.4
    log = CommittedLog(3, [E(z(1, i)) for i in range(7, 11)])
    plan = plan_sync(z(1, 2), log, z(1, 10), lambda start: disk)
    assert plan.snap and plan.forward_from == z(1, 10)


def test_force_snap() -> None:
    log = CommittedLog(10, [E(z(1, 1))])
    assert plan_sync(z(1, 1), log, z(1, 1), force_snap=True).snap
