"""The leader and learner cores driven by hand: discovery, sync, broadcast, limits."""

from __future__ import annotations

import pytest

from pyzk.config import ServerSpec
from pyzk.quorum.verifier import QuorumMaj
from pyzk.zab import actions as A
from pyzk.zab import packets as P
from pyzk.zab.follower import Follower, Observer
from pyzk.zab.history import CommittedLog
from pyzk.zab.leader import LeaderCore
from pyzk.zab.packets import PacketType as T
from pyzk.zab.sim import txn_bytes
from pyzk.zab.zxid import make_zxid as z

pytestmark = pytest.mark.pure

TICK = 100


def quorum(voters: int = 3, observers: int = 0) -> QuorumMaj:
    return QuorumMaj([ServerSpec(s, "127.0.0.1", 1000 + s, 2000 + s,
                                 "observer" if s > voters else "participant")
                      for s in range(1, voters + observers + 1)])


def leader(**kw) -> LeaderCore:  # type: ignore[no-untyped-def]
    q = kw.pop("q", None) or quorum()
    args = dict(accepted_epoch=1, current_epoch=1, last_zxid=z(1, 2), now=0, tick_time=TICK,
                init_limit=5, sync_limit=2,
                committed=CommittedLog(10, [A.Entry(z(1, i), txn_bytes(z(1, i), b""))
                                            for i in (1, 2)]))
    args.update(kw)
    return LeaderCore(3, q, **args)  # type: ignore[arg-type]


def flat(actions):  # type: ignore[no-untyped-def]
    """The actions with each SendCommitted spelled out as the Sends it stands for."""
    out = []
    for a in actions:
        if isinstance(a, A.SendCommitted):
            out += [A.Send(a.peer, p) for p in a.packets()]
        else:
            out.append(a)
    return out


def sends(actions, peer=None) -> list[tuple[int, int]]:  # type: ignore[no-untyped-def]
    actions = flat(actions)
    return [(a.packet.type, a.packet.zxid) for a in actions
            if isinstance(a, A.Send) and (peer is None or a.peer == peer)]


def wire(actions, learner) -> list:  # type: ignore[no-untyped-def]
    """Feed a leader's Sends through a learner core; return the learner's actions."""
    out = []
    for a in flat(actions):
        if isinstance(a, A.Send):
            out += learner.on_packet(a.packet)
    return out


def establish(ld: LeaderCore, fol, peer="p1"):  # type: ignore[no-untyped-def]
    """Connect one follower and run discovery + sync until both serve."""
    acts = ld.on_connect(peer)
    return acts + pump(ld, fol, peer, fol.start())


def pump(ld: LeaderCore, fol, peer, up):  # type: ignore[no-untyped-def]
    """Carry the follower's actions ``up`` to the leader and back until quiet."""
    log: list = list(up)
    for _ in range(10):
        down = []
        for a in up:
            if isinstance(a, A.Send):
                down += flat(ld.on_packet(peer, a.packet))
        log += down
        up = wire([a for a in down if getattr(a, "peer", peer) == peer], fol)
        for a in list(up):
            if isinstance(a, A.LogTxn):
                up += fol.on_logged(a.entry.zxid)
        log += up
        if not up:
            break
    return log


def test_discovery_picks_max_accepted_epoch_plus_one_and_persists_first() -> None:
    ld = leader(accepted_epoch=1)
    f = Follower(1, "L", accepted_epoch=4, current_epoch=3, last_logged_zxid=z(1, 2), now=0,
                 tick_time=TICK, init_limit=5, sync_limit=2)
    out = ld.on_connect("p1") + ld.on_packet("p1", f.start()[0].packet)
    # leader + follower are a quorum of 3: epoch is max(1, 4) + 1
    assert ld.epoch == 5 and out[0] == A.PersistEpoch("acceptedEpoch", 5)
    assert sends(out) == [(T.LEADERINFO, z(5, 0))]
    back = f.on_packet(out[1].packet)
    assert back[0] == A.PersistEpoch("acceptedEpoch", 5)  # before the ACKEPOCH goes out
    assert sends(back) == [(T.ACKEPOCH, z(1, 2))] and P.parse_ack_epoch(back[1].packet)[0] == 3
    # the follower is ahead of the leader's summary (current epoch 3 > 1): dropped
    out = ld.on_packet("p1", back[1].packet)
    assert out == [A.Disconnect("p1", out[0].reason)] and "ahead of the leader" in out[0].reason


def test_follower_that_already_accepted_the_epoch_answers_minus_one() -> None:
    f = Follower(1, "L", accepted_epoch=2, current_epoch=1, last_logged_zxid=5, now=0)
    f.start()
    out = f.on_packet(P.leader_info_packet(2))
    assert not any(isinstance(a, A.PersistEpoch) for a in out)
    assert P.parse_ack_epoch(out[0].packet) == (-1, 5)
    f2 = Follower(1, "L", accepted_epoch=3, current_epoch=1, last_logged_zxid=5, now=0)
    f2.start()
    assert isinstance(f2.on_packet(P.leader_info_packet(2))[0], A.Shutdown)


def test_full_establishment_diff_then_broadcast_commit_in_order() -> None:
    ld = leader()
    f = Follower(1, "L", accepted_epoch=1, current_epoch=1, last_logged_zxid=z(1, 1), now=0,
                 tick_time=TICK, init_limit=5, sync_limit=2)
    acts = establish(ld, f)
    assert ld.established and f.phase == "BROADCAST" and f.sync_kind == "DIFF"
    assert A.StartServing(2) in acts
    leader_sends = [(a.packet.type, a.packet.zxid) for a in acts
                    if isinstance(a, A.Send) and a.peer == "p1"]
    assert leader_sends == [(T.LEADERINFO, z(2, 0)), (T.DIFF, z(1, 2)), (T.PROPOSAL, z(1, 2)),
                            (T.COMMIT, z(1, 2)), (T.NEWLEADER, z(2, 0)), (T.UPTODATE, -1)]
    # the follower logged 1.2 at NEWLEADER, acked NEWLEADER only after that was durable,
    # and applied it after UPTODATE
    f_sends = [(a.packet.type, a.packet.zxid) for a in acts
               if isinstance(a, A.Send) and a.peer == "L"]
    assert f_sends[2:] == [(T.ACK, z(2, 0)), (T.ACK, z(1, 2)), (T.ACK, z(2, 0))]
    assert [a.entry.zxid for a in acts if isinstance(a, A.Commit)] == [z(1, 2)]

    # broadcast: two proposals; a commit needs a quorum and goes in zxid order
    e1, e2 = (A.Entry(z(2, i), txn_bytes(z(2, i), b"v")) for i in (1, 2))
    assert ld.next_zxid() == z(2, 1)
    out = ld.propose(e1) + ld.propose(e2)
    assert sends(out) == [(T.PROPOSAL, z(2, 1)), (T.PROPOSAL, z(2, 2))]
    assert [a.entry for a in out if isinstance(a, A.LogTxn)] == [e1, e2]
    assert ld.on_packet("p1", P.ack_packet(z(2, 2))) == []  # 2.1 still outstanding
    out = ld.on_logged(z(2, 2))  # leader durable: 2.1 has no follower ack yet
    assert not any(isinstance(a, A.Commit) for a in out)
    out = ld.on_packet("p1", P.ack_packet(z(2, 1)))
    assert sends(out) == [(T.COMMIT, z(2, 1))]
    assert [a.entry for a in out if isinstance(a, A.Commit)] == [e1]
    # the follower logs, acks once durable, applies commits in order
    fo = f.on_packet(P.proposal_packet(e1.zxid, e1.data))
    assert [type(a) for a in fo] == [A.LogTxn]
    assert sends(f.on_logged(e1.zxid)) == [(T.ACK, e1.zxid)]
    assert f.on_packet(P.commit_packet(e1.zxid)) == [A.Commit(e1)]
    # a commit that skips the pending head is fatal (Apache exits)
    f.on_packet(P.proposal_packet(e2.zxid, e2.data))
    assert isinstance(f.on_packet(P.commit_packet(z(2, 7)))[0], A.Shutdown)


def test_trunc_and_snap_paths_of_the_follower() -> None:
    ld = leader(accepted_epoch=2, current_epoch=2)
    f = Follower(1, "L", accepted_epoch=1, current_epoch=1, last_logged_zxid=z(1, 9), now=0)
    acts = establish(ld, f)
    assert A.Truncate(z(1, 2)) in acts and f.sync_kind == "TRUNC"
    assert A.TakeSnapshot(False) in acts
    ld2 = leader(committed=CommittedLog(10, [A.Entry(z(1, 2), txn_bytes(z(1, 2), b""))]))
    f2 = Follower(2, "L", accepted_epoch=0, current_epoch=0, last_logged_zxid=0, now=0)
    ld2.on_connect("p1")
    # p2 is a follower with nothing: the leader's window starts at 1.2 and no txn log
    out = establish(ld2, f2, "p2")
    snaps = [a for a in out if isinstance(a, A.SendSnapshot)]
    assert snaps == [A.SendSnapshot("p2", z(1, 2))]
    i = out.index(snaps[0])
    assert isinstance(out[i - 1], A.Send) and out[i - 1].packet.type == T.SNAP


def test_observer_gets_inform_and_does_not_count() -> None:
    q = quorum(3, 1)
    ld = leader(q=q)
    ob = Observer(4, "L", accepted_epoch=1, current_epoch=1, last_logged_zxid=z(1, 2), now=0)
    out = ld.on_connect("o") + ld.on_packet("o", ob.start()[0].packet)
    assert out == [] and ld.epoch == -1 or not ld.established  # an observer is no quorum
    f = Follower(1, "L", accepted_epoch=1, current_epoch=1, last_logged_zxid=z(1, 2), now=0)
    acts = establish(ld, f)
    assert ld.established
    o_acts = wire([a for a in acts if isinstance(a, A.Send) and a.peer == "o"], ob)
    assert sends(o_acts) == [(T.ACKEPOCH, z(1, 2))]
    down = ld.on_packet("o", o_acts[-1].packet)
    assert sends(down) == [(T.DIFF, z(1, 2)), (T.NEWLEADER, z(2, 0))]
    o_acts = wire(down, ob)
    assert sends(o_acts) == [(T.ACK, z(2, 0))]  # no log to wait for: at once
    down = ld.on_packet("o", o_acts[-1].packet)
    assert sends(down) == [(T.UPTODATE, -1)]
    assert sends(wire(down, ob)) == [(T.ACK, z(2, 0))] and ob.phase == "BROADCAST"
    e = A.Entry(z(2, 1), txn_bytes(z(2, 1), b"o"))
    out = ld.propose(e)
    assert sends(out, "o") == []  # no PROPOSAL to observers
    out = ld.on_logged(e.zxid) + ld.on_packet("p1", P.ack_packet(e.zxid))
    assert sends(out, "o") == [(T.INFORM, e.zxid)]
    assert wire([a for a in out if isinstance(a, A.Send) and a.peer == "o"], ob) == [
        A.LogTxn(e), A.Commit(e)]
    assert ob.on_logged(e.zxid) == []  # observers never ack


def test_leader_pings_then_drops_a_silent_follower_and_loses_quorum() -> None:
    ld = leader()
    f = Follower(1, "L", accepted_epoch=1, current_epoch=1, last_logged_zxid=z(1, 2), now=0)
    establish(ld, f)
    out = ld.on_tick(TICK / 2)
    assert sends(out) == [(T.PING, z(2, 0))]
    pong = f.on_packet(out[0].packet)
    f.touch(0x55, 4000)
    assert sends(pong) == [(T.PING, z(2, 0))]
    touches = ld.on_packet("p1", f.on_packet(P.ping_packet(z(2, 0)))[0].packet)
    assert touches == [A.TouchSessions("p1", [(0x55, 4000)])]
    # silence: after syncLimit (2 ticks) the read times out and the learner is dropped,
    # then the leader alone is no quorum and steps down
    out = []
    t = TICK / 2
    while not any(isinstance(a, A.Shutdown) for a in out) and t < 20 * TICK:
        t += TICK / 2
        out += ld.on_tick(t)
    assert any(isinstance(a, A.Disconnect) for a in out)
    shut = [a for a in out if isinstance(a, A.Shutdown)]
    assert shut and "Not sufficient followers synced" in shut[0].reason
    assert t <= 6 * TICK


def test_unacked_proposal_past_sync_limit_drops_the_learner() -> None:
    ld = leader()
    fs = [Follower(i, "L", accepted_epoch=1, current_epoch=1, last_logged_zxid=z(1, 2), now=0)
          for i in (1, 2)]
    establish(ld, fs[0], "p1")
    establish(ld, fs[1], "p2")
    assert ld.established
    ld.propose(A.Entry(z(2, 1), txn_bytes(z(2, 1), b"")))
    t, dropped = 0.0, []
    while t < 10 * TICK and not dropped:
        t += TICK / 2
        out = ld.on_tick(t)
        # p1 keeps pinging back but never acks; p2 acks everything
        for a in out:
            if isinstance(a, A.Send) and a.packet.type == T.PING:
                ld.on_packet(a.peer, P.ping_packet(a.packet.zxid))
        if t == TICK:
            ld.on_packet("p2", P.ack_packet(z(2, 1)))
        dropped = [a for a in out if isinstance(a, A.Disconnect)]
    assert dropped and dropped[0].peer == "p1" and "transaction timeout" in dropped[0].reason
    assert 2 * TICK <= t <= 3 * TICK


def test_epoch_wait_times_out_after_init_limit() -> None:
    ld = leader()
    assert ld.on_tick(5 * TICK - 1) == []
    out = ld.on_tick(5 * TICK)
    assert out == [A.Shutdown("Timeout while waiting for epoch from quorum")]


def test_requests_revalidation_and_sync_relay() -> None:
    ld = leader()
    f = Follower(1, "L", accepted_epoch=1, current_epoch=1, last_logged_zxid=z(1, 2), now=0)
    establish(ld, f)
    req = f.forward_request(0x9, 3, 1, b"create-bytes")[0].packet
    assert ld.on_packet("p1", req) == [A.SubmitRequest("p1", P.parse_request(req))]
    rv = f.revalidate(0x9, 30000)[0].packet
    (check,) = ld.on_packet("p1", rv)
    assert isinstance(check, A.CheckSession) and check.session_id == 0x9
    reply = ld.revalidated("p1", check.packet, 0x9, True)
    assert f.on_packet(reply[0].packet) == [A.SessionValidated(0x9, True)]
    assert sends(ld.process_sync("p1")) == [(T.SYNC, 0)]
    e = A.Entry(z(2, 1), txn_bytes(z(2, 1), b""))
    ld.propose(e)
    assert ld.process_sync("p1") == []  # waits for 2.1 to commit
    ld.on_logged(e.zxid)
    out = ld.on_packet("p1", P.ack_packet(e.zxid))
    assert sends(out) == [(T.COMMIT, e.zxid), (T.SYNC, 0)]
    assert f.on_packet(P.sync_packet()) == [A.SyncDone()]


def test_rollover_steps_down() -> None:
    ld = leader()
    f = Follower(1, "L", accepted_epoch=1, current_epoch=1, last_logged_zxid=z(1, 2), now=0)
    establish(ld, f)
    ld.last_proposed = z(2, 0xFFFFFFFE)
    out = ld.propose(A.Entry(z(2, 0xFFFFFFFF), b""))
    assert isinstance(out[0], A.Shutdown) and "rolled over" in out[0].reason


def _two_followers() -> tuple[LeaderCore, float]:
    """A leader in broadcast with p1 and p2, pings answered up to the returned time."""
    ld = leader()
    for i, peer in ((1, "p1"), (2, "p2")):
        establish(ld, Follower(i, "L", accepted_epoch=1, current_epoch=1,
                               last_logged_zxid=z(1, 2), now=0), peer)
    t = 0.0
    for _ in range(4):
        t += TICK / 2
        for a in ld.on_tick(t):
            if isinstance(a, A.Send) and a.packet.type == T.PING:
                ld.on_packet(a.peer, P.ping_packet(a.packet.zxid))
    return ld, t


@pytest.mark.parametrize("stalled", [True, False])
def test_a_stalled_loop_does_not_time_out_learners(stalled: bool) -> None:
    """Regression: a leader whose loop was held 10 ticks (planning a 100k-txn
    DIFF for a third member) dropped its healthy followers, whose pings sat
    unread, then lost its quorum. Told of the stall, it waits on; told
    nothing, the same late tick is a real silence and it steps down."""
    ld, t = _two_followers()
    proposal = A.Entry(z(2, 1), txn_bytes(z(2, 1), b""))
    ld.propose(proposal)  # unacked across the stall: the proposal age moves on too
    held = 10 * TICK
    out = ld.on_tick(t + held, held if stalled else 0.0)
    bad = [a for a in out if isinstance(a, A.Disconnect | A.Shutdown)]
    if not stalled:
        assert bad
        return
    assert not bad, bad
    # the pings that waited in the kernel are read, the acks come: all is well
    for peer in ("p1", "p2"):
        ld.on_packet(peer, P.ping_packet(z(2, 0)))
        ld.on_packet(peer, P.ack_packet(z(2, 1)))
    for k in range(1, 5):
        out = ld.on_tick(t + held + k * TICK / 2)
        assert not [a for a in out if isinstance(a, A.Disconnect | A.Shutdown)]
        for a in out:
            if isinstance(a, A.Send) and a.packet.type == T.PING:
                ld.on_packet(a.peer, P.ping_packet(a.packet.zxid))
    # silence after the stall still times out, syncLimit later
    out = []
    k = 5
    while not any(isinstance(a, A.Shutdown) for a in out) and k < 40:
        out += ld.on_tick(t + held + k * TICK / 2)
        k += 1
    assert any(isinstance(a, A.Shutdown) for a in out) and k <= 5 + 2 * 2 + 3


def test_a_stalled_follower_keeps_its_leader() -> None:
    f = Follower(1, "L", accepted_epoch=1, current_epoch=1, last_logged_zxid=z(1, 2), now=0,
                 tick_time=TICK, init_limit=5, sync_limit=2)
    f.start()
    assert f.on_tick(5 * TICK - 1, 5 * TICK - 1) == []  # held all along: not a silence
    assert f.on_tick(6 * TICK) == []
    out = f.on_tick(10 * TICK)
    assert out and isinstance(out[-1], A.Shutdown) and out[-1].reason == "Read timed out"


def _behind_leader(entries_on_disk: list[A.Entry]):  # type: ignore[no-untyped-def]
    """A leader in broadcast with p1 whose committed window (2 txns) starts at
    1.8, reading older txns off the loop (ReadLog); p2 (last zxid 1.2) has
    sent its ACKEPOCH and waits while its txns are read."""
    window = CommittedLog(2, [A.Entry(z(1, i), txn_bytes(z(1, i), b"")) for i in (8, 9, 10)])
    reads = []

    def txnlog(zxid: int) -> list[A.Entry]:
        reads.append(zxid)
        return entries_on_disk

    ld = leader(last_zxid=z(1, 10), committed=window, txnlog=txnlog, read_log_async=True)
    establish(ld, Follower(1, "L", accepted_epoch=1, current_epoch=1,
                           last_logged_zxid=z(1, 10), now=0), "p1")
    assert ld.established
    f2 = Follower(2, "L", accepted_epoch=1, current_epoch=1, last_logged_zxid=z(1, 2), now=0,
                  tick_time=TICK, init_limit=5, sync_limit=2)
    acts = ld.on_connect("p2") + pump(ld, f2, "p2", f2.start())
    assert [a for a in acts if isinstance(a, A.ReadLog)] == [A.ReadLog("p2", z(1, 2))]
    assert reads == [] and ld.learners()["p2"] == (2, "await-log")
    # commits go on while the disk is read
    for i in (1, 2):
        e = A.Entry(z(2, i), txn_bytes(z(2, i), b""))
        ld.propose(e)
        ld.on_logged(e.zxid)
        ld.on_packet("p1", P.ack_packet(e.zxid))
    return ld, f2


def test_a_learner_behind_the_window_gets_its_txns_read_off_the_loop() -> None:
    disk = [A.Entry(z(1, i), txn_bytes(z(1, i), b"")) for i in range(1, 11)]
    ld, f2 = _behind_leader(disk)
    out = flat(ld.on_log_read("p2", disk))
    # the txns from disk up to the window, then the window with what was committed
    # meanwhile, each a PROPOSAL and a COMMIT, then NEWLEADER
    expect = [(T.DIFF, z(2, 2))]
    for zz in [z(1, i) for i in range(3, 11)] + [z(2, 1), z(2, 2)]:
        expect += [(T.PROPOSAL, zz), (T.COMMIT, zz)]
    assert sends(out, "p2") == expect + [(T.NEWLEADER, z(2, 0))]
    up = wire([a for a in out if getattr(a, "peer", None) == "p2"], f2)
    up += [b for a in list(up) if isinstance(a, A.LogTxn) for b in f2.on_logged(a.entry.zxid)]
    acts = up + pump(ld, f2, "p2", up)
    assert f2.phase == "BROADCAST" and ld.learners()["p2"] == (2, "active")
    assert [a.entry.zxid for a in acts if isinstance(a, A.Commit)][-1] == z(2, 2)


def test_a_log_read_that_stops_short_of_the_window_means_snap() -> None:
    disk = [A.Entry(z(1, i), txn_bytes(z(1, i), b"")) for i in range(1, 6)]
    ld, _ = _behind_leader(disk)
    out = ld.on_log_read("p2", disk)
    assert sends(out, "p2")[0] == (T.SNAP, z(2, 2))
    assert [a for a in out if isinstance(a, A.SendSnapshot)] == [A.SendSnapshot("p2", z(2, 2))]
    # a learner gone while its log was read: the answer is dropped
    ld2, _ = _behind_leader(disk)
    ld2.on_disconnect("p2")
    assert ld2.on_log_read("p2", disk) == []


def test_a_diff_in_one_call_does_what_a_call_per_packet_does() -> None:
    """LearnerCore.on_sync_packets: same actions, same state, and it stops where
    the phase ends (UPTODATE) or a packet is not a plain one."""
    def fresh() -> Follower:
        f = Follower(1, "L", accepted_epoch=1, current_epoch=1, last_logged_zxid=z(1, 2), now=0,
                     tick_time=TICK, init_limit=5, sync_limit=2)
        f.start()
        f.on_packet(P.leader_info_packet(2))
        return f

    body = [P.diff_packet(z(1, 6))]
    for i in range(3, 7):
        body += [P.proposal_packet(z(1, i), txn_bytes(z(1, i), b"")), P.commit_packet(z(1, i))]
    body += [P.new_leader_packet(z(2, 0), None), P.uptodate_packet(), P.ping_packet(z(2, 0))]
    one = fresh()
    expect = [a for p in body for a in one.on_packet(p)]
    many = fresh()
    # DIFF itself arrives in SYNC_MODE: not batched
    actions, end = many.on_sync_packets(body, 0)
    assert (actions, end) == ([], 0)
    got = many.on_packet(body[0])
    actions, end = many.on_sync_packets(body, 1)
    got += actions
    assert end == len(body) - 1  # stopped after UPTODATE: BROADCAST is one by one
    got += many.on_packet(body[end])
    assert got == expect
    assert many.phase == one.phase == "BROADCAST"
    assert many.on_logged(z(1, 6)) == one.on_logged(z(1, 6))
