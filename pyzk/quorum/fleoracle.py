"""Real Fast Leader Election inside the Zab simulator.

:class:`FleElectionOracle` answers the Zab simulator's election question by
running one :class:`~pyzk.quorum.election.FastLeaderElection` core per LOOKING
voter over a seeded in-memory network that loses, delays and reorders
notifications, until a quorum has decided on the same leader. So the election
and Zab cores are exercised together under one seed, and any failing run is
replayed from that seed.
"""

from __future__ import annotations

import heapq
import random

from pyzk.quorum.election import CancelTimer, Decided, FastLeaderElection, Send, SetTimer
from pyzk.quorum.verifier import QuorumMaj


class FleElectionOracle:
    def __init__(self, seed: int, *, loss: float = 0.1, max_delay_ms: int = 40,
                 max_events: int = 50_000) -> None:
        self.rng = random.Random(seed)
        self.loss = loss
        self.max_delay_ms = max_delay_ms
        self.max_events = max_events
        self.elections = 0
        self.messages = 0
        self.split_rounds = 0

    def elect(self, votes: dict[int, tuple[int, int]], quorum: QuorumMaj) -> int | None:
        """Run FLE among ``votes`` (sid -> (current epoch, last zxid)); the
        leader a quorum of them decided on, or None."""
        if not quorum.contains_quorum(votes):
            return None
        self.elections += 1
        rng = self.rng
        cores = {sid: FastLeaderElection(sid, quorum, last_zxid=zxid, current_epoch=epoch)
                 for sid, (epoch, zxid) in sorted(votes.items())}
        events: list[tuple[int, int, int, int, object]] = []  # (time, seq, kind, sid, payload)
        timer_seq: dict[int, int] = {}
        decided: dict[int, int] = {}
        seq = 0
        now = 0

        def push(at: int, kind: int, sid: int, payload: object) -> None:
            nonlocal seq
            seq += 1
            heapq.heappush(events, (at, seq, kind, sid, payload))

        def run(sid: int, actions: list) -> None:  # type: ignore[type-arg]
            for a in actions:
                if isinstance(a, Send):
                    self.messages += 1
                    if a.to == sid:
                        push(now, 0, sid, (sid, a.notification))
                    elif a.to in cores and rng.random() >= self.loss:
                        push(now + rng.randrange(1, self.max_delay_ms + 1), 0, a.to,
                             (sid, a.notification))
                elif isinstance(a, SetTimer):
                    timer_seq[sid] = seq + 1
                    push(now + a.delay_ms, 1, sid, seq + 1)
                elif isinstance(a, CancelTimer):
                    timer_seq.pop(sid, None)
                elif isinstance(a, Decided):
                    decided[sid] = a.vote.leader

        for sid in sorted(cores):
            run(sid, cores[sid].start())
        handled = 0
        while events and handled < self.max_events and len(decided) < len(cores):
            now, _s, kind, sid, payload = heapq.heappop(events)
            handled += 1
            if sid in decided:
                continue
            core = cores[sid]
            if kind == 0:
                frm, n = payload  # type: ignore[misc]
                run(sid, core.receive(frm, n))
            elif timer_seq.get(sid) == payload:
                del timer_seq[sid]
                run(sid, core.timeout())
        by_leader: dict[int, set[int]] = {}
        for sid, leader in decided.items():
            by_leader.setdefault(leader, set()).add(sid)
        winners = [ld for ld, sids in by_leader.items()
                   if ld in sids and quorum.contains_quorum(sids)]
        if len(by_leader) > 1:
            self.split_rounds += 1
        if len(winners) != 1:
            return None
        return winners[0]
