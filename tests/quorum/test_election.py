"""FastLeaderElection core, step by step, against lookForLeader's rules."""

from __future__ import annotations

import pytest

from pyzk.config import ServerSpec
from pyzk.quorum.election import (
    LONG_MIN,
    CancelTimer,
    ConnectAll,
    Decided,
    FastLeaderElection,
    NewerConfig,
    Send,
    ServerState,
    SetTimer,
    Vote,
    total_order_predicate,
)
from pyzk.quorum.verifier import QuorumMaj
from pyzk.quorum.wire import Notification

pytestmark = pytest.mark.pure

L, F, LD, _OBS = (int(s) for s in ServerState)


def qv(voters: int = 3, observers: int = 0, version: int = 0) -> QuorumMaj:
    specs = [
        ServerSpec(i, "127.0.0.1", 2000 + i, 3000 + i,
                   "participant" if i <= voters else "observer")
        for i in range(1, voters + observers + 1)
    ]  # fmt: skip
    return QuorumMaj(specs, version)


def note(state: int, leader: int, zxid: int, ee: int, pe: int, **kw) -> Notification:
    return Notification(state, leader, zxid, ee, pe, config=kw.get("config", qv().to_bytes()))


def sends(actions) -> list[tuple[int, Notification]]:
    return [(a.to, a.notification) for a in actions if isinstance(a, Send)]


def timers(actions) -> list[int]:
    return [a.delay_ms for a in actions if isinstance(a, SetTimer)]


def decided(actions) -> Decided | None:
    found = [a for a in actions if isinstance(a, Decided)]
    return found[0] if found else None


def test_total_order_predicate() -> None:
    v = qv()
    # (leader, zxid, peer_epoch): epoch first, then zxid, then id.
    assert total_order_predicate((1, 0, 2), (3, 99, 1), v)
    assert total_order_predicate((1, 5, 1), (3, 4, 1), v)
    assert total_order_predicate((3, 5, 1), (2, 5, 1), v)
    assert not total_order_predicate((2, 5, 1), (2, 5, 1), v)
    assert not total_order_predicate((2, 5, 1), (3, 5, 1), v)


def test_start_proposes_self_to_every_voter_including_self() -> None:
    core = FastLeaderElection(2, qv(3, 1), last_zxid=0x100000005, current_epoch=1)
    actions = core.start()
    out = sends(actions)
    assert [to for to, _ in out] == [1, 2, 3]  # voters only, self included
    n = out[0][1]
    assert (n.state, n.leader, n.zxid, n.election_epoch, n.peer_epoch) == (L, 2, 0x100000005, 1, 1)
    assert n.version == 2 and n.config == qv(3, 1).to_bytes()
    assert timers(actions) == [200]
    assert core.logical_clock == 1
    core.start()
    assert core.logical_clock == 2


def test_notification_timeout_backs_off_to_60s() -> None:
    core = FastLeaderElection(1, qv())
    core.start()
    seen = []
    for _ in range(12):
        actions = core.timeout()
        assert len(sends(actions)) == 3
        seen += timers(actions)
    assert seen == [400, 800, 1600, 3200, 6400, 12800, 25600, 51200] + [60000] * 4
    actions = core.timeout(have_delivered=False)
    assert ConnectAll() in actions and not sends(actions)


def test_three_servers_elect_highest_id() -> None:
    core = FastLeaderElection(1, qv())
    core.start()
    # Our own vote comes back through the loop-back.
    assert timers(core.receive(1, note(L, 1, 0, 1, 0))) == [200]
    # Server 3 votes for itself: better, so we adopt it and tell everyone.
    actions = core.receive(3, note(L, 3, 0, 1, 0))
    assert [(to, n.leader) for to, n in sends(actions)] == [(1, 3), (2, 3), (3, 3)]
    # Our own updated vote plus 3's make a quorum: the finalize wait begins.
    assert timers(core.receive(1, note(L, 3, 0, 1, 0))) == [200]
    assert core.supporters == {1, 3}
    # A vote that is not better is consumed and the wait restarts.
    actions = core.receive(2, note(L, 2, 0, 1, 0))
    assert timers(actions) == [200] and 2 not in core.recvset
    d = decided(core.timeout())
    assert d is not None
    assert d.state == ServerState.FOLLOWING and d.vote == Vote(3, 0, 1, 0)
    assert core.state == ServerState.FOLLOWING and not core.running


def test_better_vote_during_finalize_reopens_the_election() -> None:
    core = FastLeaderElection(2, qv())
    core.start()
    core.receive(2, note(L, 2, 0, 1, 0))
    core.receive(1, note(L, 2, 0, 1, 0))
    assert core.supporters == {1, 2}
    actions = core.receive(3, note(L, 3, 7, 1, 0))
    assert [n.leader for _, n in sends(actions)] == [3, 3, 3]
    assert core.proposed_leader == 3 and core.proposed_zxid == 7
    assert timers(actions) == [200]
    # The timer now is the notification timeout, not a decision.
    assert decided(core.timeout()) is None


def test_epoch_then_zxid_beats_id() -> None:
    core = FastLeaderElection(3, qv(), last_zxid=0x100000009, current_epoch=1)
    core.start()
    core.receive(1, note(L, 1, 0x200000001, 1, 2))
    assert core.proposed_leader == 1
    core.receive(2, note(L, 2, 0x100000000, 1, 3))
    assert (core.proposed_leader, core.proposed_epoch) == (2, 3)


def test_higher_election_epoch_jumps_and_clears_votes() -> None:
    core = FastLeaderElection(2, qv())
    core.start()
    core.receive(2, note(L, 2, 0, 1, 0))
    actions = core.receive(1, note(L, 1, 0, 5, 0))
    assert core.logical_clock == 5
    # 1's vote is worse than our own initial vote, so we propose ourselves again.
    assert [(n.leader, n.election_epoch) for _, n in sends(actions)] == [(2, 5)] * 3
    assert set(core.recvset) == {1}


def test_lagging_looking_peer_gets_our_round() -> None:
    core = FastLeaderElection(2, qv())
    core.start()
    core.receive(3, note(L, 3, 0, 4, 0))
    actions = core.receive(1, note(L, 1, 0, 2, 0))
    back = sends(actions)
    assert back == [(1, Notification(L, 3, 0, 4, 0, 2, qv().to_bytes()))]
    assert 1 not in core.recvset


def test_zxid_minus_one_is_ignored() -> None:
    core = FastLeaderElection(1, qv())
    core.start()
    core.receive(3, note(L, 3, -1, 1, 0))
    assert core.proposed_leader == 1 and 3 not in core.recvset


def test_bad_state_from_voter_is_dropped() -> None:
    core = FastLeaderElection(1, qv())
    core.start()
    assert core.receive(3, note(7, 3, 0, 1, 0)) == []


def _leader_of_three() -> FastLeaderElection:
    core = FastLeaderElection(3, qv())
    core.start()
    core.receive(3, note(L, 3, 0, 1, 0))
    core.receive(2, note(L, 3, 0, 1, 0))
    d = decided(core.timeout())
    assert d is not None and d.state == ServerState.LEADING
    return core


def test_decided_server_answers_looking_peers_with_its_leader() -> None:
    core = _leader_of_three()
    core.update_peer_epoch(1)
    actions = core.receive(1, note(L, 1, 0, 9, 0))
    assert sends(actions) == [(1, Notification(LD, 3, 0, 1, 1, 2, qv().to_bytes()))]
    assert core.logical_clock == 1
    # Peers out of election are not answered.
    assert core.receive(2, note(F, 3, 0, 1, 1)) == []


def test_late_joiner_follows_established_leader() -> None:
    core = FastLeaderElection(1, qv())
    core.start()
    # A follower's answer alone is not enough: the leader must say it leads.
    assert decided(core.receive(2, note(F, 3, 0, 1, 1))) is None
    actions = core.receive(3, note(LD, 3, 0, 1, 1))
    d = decided(actions)
    assert d is not None and CancelTimer() in actions
    assert d.state == ServerState.FOLLOWING and d.vote == Vote(3, 0, 1, 1)
    assert d.supporters == {2, 3}
    # Our round (1) matched theirs, so the decision came from recvset.
    assert core.logical_clock == 1


def test_late_joiner_takes_the_leaders_round() -> None:
    core = FastLeaderElection(1, qv())
    core.start()
    core.receive(2, note(F, 3, 0, 6, 1))
    d = decided(core.receive(3, note(LD, 3, 0, 6, 1)))
    assert d is not None and d.vote.election_epoch == 6
    assert core.logical_clock == 6


def test_followers_disagreeing_on_epoch_do_not_make_a_quorum() -> None:
    core = FastLeaderElection(1, qv())
    core.start()
    core.receive(2, note(F, 3, 0, 6, 1))
    assert decided(core.receive(3, note(LD, 3, 0, 6, 2))) is None


def test_observer() -> None:
    v = qv(3, 1)
    core = FastLeaderElection(4, v)
    assert core.learner_type == "observer"
    actions = core.start()
    out = sends(actions)
    assert [to for to, _ in out] == [1, 2, 3]  # not to itself: it does not vote
    assert {(n.leader, n.zxid, n.peer_epoch) for _, n in out} == {(LONG_MIN,) * 3}
    cfg = v.to_bytes()
    core.receive(1, Notification(F, 3, 0, 1, 1, 2, cfg))
    d = decided(core.receive(3, Notification(LD, 3, 0, 1, 1, 2, cfg)))
    assert d is not None and d.state == ServerState.OBSERVING


def test_voter_answers_non_voter_at_once() -> None:
    core = FastLeaderElection(2, qv(3, 1), last_zxid=5, current_epoch=1)
    core.start()
    # Even a state Apache does not know is answered, before it is looked at.
    actions = core.receive(4, Notification(9, LONG_MIN, LONG_MIN, 1, LONG_MIN))
    assert sends(actions) == [(4, Notification(L, 2, 5, 1, 1, 2, qv(3, 1).to_bytes()))]
    assert timers(actions) == []  # not a notification for the election loop


def test_messages_before_start_are_kept_for_the_election() -> None:
    core = FastLeaderElection(1, qv())
    assert core.receive(3, note(L, 3, 0, 1, 0)) == []
    actions = core.start()
    assert core.proposed_leader == 3
    assert [n.leader for _, n in sends(actions)][-3:] == [3, 3, 3]


def test_newer_config_is_reported() -> None:
    core = FastLeaderElection(1, qv())
    core.start()
    newer = qv(3, 0, version=0x100000002)
    actions = core.receive(2, Notification(L, 2, 0, 1, 0, 2, newer.to_bytes()))
    found = [a for a in actions if isinstance(a, NewerConfig)]
    assert len(found) == 1 and found[0].verifier.version == 0x100000002
    assert found[0].from_sid == 2
    assert not [a for a in core.receive(2, note(L, 2, 0, 1, 0)) if isinstance(a, NewerConfig)]


def test_vote_equality_rules() -> None:
    looking = Vote(3, 5, 1, 1)
    assert looking.agrees(Vote(3, 5, 1, 1, ServerState.FOLLOWING))
    assert not looking.agrees(Vote(3, 5, 2, 1, ServerState.FOLLOWING))
    a = Vote(3, 5, 1, 1, ServerState.FOLLOWING, 2)
    assert a.agrees(Vote(3, 9, 7, 1, ServerState.LEADING, 2))  # zxid, round ignored
    assert not a.agrees(Vote(3, 9, 7, 2, ServerState.LEADING, 2))
    assert a.agrees(Vote(3, 9, 7, 2, ServerState.LEADING, 0))  # mixed versions: id only


def test_next_config_needs_both_quorums() -> None:
    cur = qv(3, 0, version=1)
    nxt = QuorumMaj([ServerSpec(i, "127.0.0.1", 2000 + i, 3000 + i) for i in (3, 4, 5)], version=2)
    core = FastLeaderElection(3, cur, last_seen=nxt)
    actions = core.start()
    assert [to for to, _ in sends(actions)] == [1, 2, 3, 4, 5]
    cfg = cur.to_bytes()
    for sid in (3, 1, 2):
        actions = core.receive(sid, Notification(L, 3, 0, 1, 0, 2, cfg))
    assert core.supporters == frozenset()  # {1,2,3} is no quorum of {3,4,5}
    core.receive(4, Notification(L, 3, 0, 1, 0, 2, cfg))
    assert core.supporters == {1, 2, 3, 4}


@pytest.mark.parametrize("bad", ["leader", "sender"])
def test_votes_naming_non_members_are_ignored(bad: str) -> None:
    core = FastLeaderElection(1, qv(3, 1))
    core.start()
    if bad == "leader":
        core.receive(2, note(L, 9, 5, 1, 0))
        assert core.proposed_leader == 1 and 2 not in core.recvset
    else:
        core.receive(4, note(L, 4, 5, 1, 5))
        assert core.proposed_leader == 1 and 4 not in core.recvset
