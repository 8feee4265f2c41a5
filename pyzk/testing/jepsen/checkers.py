"""Checkers for the Jepsen-style workloads: is a recorded history correct?

:func:`check` dispatches on ``history.meta["workload"]`` to one checker per
workload of the harness contract (register, set, unique-ids, counter, queue,
lock). Each returns a :class:`CheckResult` whose anomalies carry the few ops
that prove them, so a failing run can be read without re-running it:
:func:`summary` is a one-line verdict, :func:`explain` prints every anomaly
with its ops, one per line.

``CheckResult.valid`` is ``True`` (checked, no anomaly), ``False`` (at least
one anomaly) or ``None`` (nothing wrong found but the check is incomplete: a
linearizability search ran out of budget, or the final reads the check needs
are missing). Treat ``None`` as "not proven", never as a pass.

Deviations from the contract, all backward compatible: ``valid`` may be
``None`` as just said; :class:`Anomaly` has two optional fields, ``key`` and
``details``; :class:`CheckResult` fields have defaults.

Checks beyond the contract's list, each relying only on what the runner
records (``workloads.py``): a set read (sync + get_children) must hold every
add acknowledged before it began, as a counter read must count it; a counter
add's result (the value its versioned write set) is an observation like a
read, and no two adds set the same value; an info dequeue accounts only for
the value it names. A register key is first scanned for a stale read (an
older version than one already established before the read began), which is
a proof by itself, before the linearizability search.

What each checker assumes of the runner is in its docstring. Final reads are
the ops of processes numbered ``FINAL_PROCESS_BASE`` (10000) and up.
"""

from __future__ import annotations

import bisect
import json
import logging
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from pyzk.testing.jepsen.history import FAIL, INFO, OK, History, Op
from pyzk.testing.jepsen.linearizability import (
    DEFAULT_BUDGET,
    RegisterModel,
    freeze,
    search,
    shrink,
)

log = logging.getLogger(__name__)

#: Processes numbered this or higher made the final reads (10000 + sid).
FINAL_PROCESS_BASE = 10000
#: At most this many anomalies of one kind are listed (the stats count them all).
MAX_ANOMALIES_PER_KIND = 20
#: explain() prints at most this many ops of one anomaly.
MAX_EXPLAIN_OPS = 40


@dataclass
class Anomaly:
    """One thing that went wrong, with the minimal sub-history that shows it."""

    kind: str  # "nonlinearizable", "stale-read", "lost", "duplicate", "divergence", ...
    message: str
    ops: list[Op]
    key: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class CheckResult:
    """A checker's verdict: valid True / False / None (unknown), anomalies, stats."""

    checker: str
    valid: bool | None = True
    anomalies: list[Anomaly] = field(default_factory=list)
    stats: dict[str, Any] = field(default_factory=dict)


class _Anomalies:
    """Collects anomalies, listing at most MAX_ANOMALIES_PER_KIND of each kind."""

    def __init__(self) -> None:
        self.listed: list[Anomaly] = []
        self.counts: Counter[str] = Counter()

    def add(self, anomaly: Anomaly) -> None:
        self.counts[anomaly.kind] += 1
        if self.counts[anomaly.kind] <= MAX_ANOMALIES_PER_KIND:
            self.listed.append(anomaly)

    def result(self, checker: str, stats: dict[str, Any], complete: bool = True) -> CheckResult:
        stats["anomalies"] = dict(self.counts)
        valid: bool | None = False if self.listed else (True if complete else None)
        return CheckResult(checker=checker, valid=valid, anomalies=self.listed, stats=stats)


def _type_counts(ops: Iterable[Op]) -> dict[str, int]:
    c = {OK: 0, FAIL: 0, INFO: 0}
    for op in ops:
        c[op.type] = c.get(op.type, 0) + 1
    return c


def _is_final(op: Op) -> bool:
    return op.process >= FINAL_PROCESS_BASE


def _by_index(ops: Iterable[Op]) -> list[Op]:
    return sorted(ops, key=lambda o: o.index)


def _complete(op: Op) -> float:
    return op.complete if op.complete is not None else float("inf")


# -- register ------------------------------------------------------------------------


def check_register(history: History, *, budget: int = DEFAULT_BUDGET,
                   shrink_budget: int = 50_000, precheck: bool = True) -> CheckResult:
    """Linearizability of every key's versioned register (value, version).

    A key starts at ``meta["initial"]`` (default ``[0, 0]``: value 0, version 0).
    read -> ``[value, version]``; write v -> new version; cas ``[expected, v]`` ->
    new version. Fail ops did not take effect; info ops may take effect at any
    time after their invocation, or never.

    With ``precheck`` a key is first scanned for a stale read (a read returning a
    version older than one an op had completed with before the read began): that
    pair alone proves the key is not linearizable, since no op lowers a version,
    and the search is skipped. Otherwise the search decides, and a rejected key
    is shrunk to a small window (see ``linearizability.shrink``).
    """
    initial_meta = history.meta.get("initial", [0, 0])
    initial = (initial_meta[0], int(initial_meta[1]))
    found = _Anomalies()
    per_key: dict[str, Any] = {}
    unknown: list[str] = []
    t0 = time.perf_counter()
    groups = defaultdict(list)
    for op in history.ops:
        if op.key is not None and op.f in ("read", "write", "cas"):
            groups[op.key].append(op)
    for key in sorted(groups):
        ops = groups[key]
        if precheck:
            pair = _stale_pair(ops, [o for o in ops if o.type == OK and o.f == "read"])
            if pair is not None:
                found.add(_stale_anomaly(key, *pair))
                per_key[key] = {"ops": len(ops), "searched": 0, "states": 0, "seconds": 0.0,
                                "linearizable": False}
                continue
        model = RegisterModel(ops, initial)
        res = search(ops, model, budget)
        per_key[key] = {"ops": len(ops), "searched": res.ops, "states": res.states,
                        "seconds": round(res.elapsed, 4), "linearizable": res.linearizable}
        if res.linearizable is None:
            unknown.append(key)
        elif res.linearizable is False:
            found.add(_register_anomaly(key, ops, initial, shrink_budget))
    stats: dict[str, Any] = {
        "ops": _type_counts(history.ops),
        "keys": len(groups),
        "per_key": per_key,
        "states": sum(k["states"] for k in per_key.values()),
        "unknown_keys": unknown,
        "budget": budget,
        "seconds": round(time.perf_counter() - t0, 4),
    }
    return found.result("register", stats, complete=not unknown)


def _register_anomaly(key: str, ops: Sequence[Op], initial: tuple[Any, int],
                      budget: int) -> Anomaly:
    """Shrink a non-linearizable key to its window; a stale read is shown as its pair."""
    def factory(window: Sequence[Op], free: bool) -> RegisterModel:
        return RegisterModel(window, None if free else initial)

    shrunk = shrink(ops, factory, budget=budget)
    if shrunk is None:  # the shrinking budget was too small to re-prove it
        relevant = [op for op in ops if op.type != FAIL]
        return Anomaly("nonlinearizable", f"key {key}: no linearization of its "
                       f"{len(relevant)} ops (could not shrink within budget)",
                       _by_index(relevant), key=key)
    original = {op.index: op for op in ops}
    kept = _by_index(original[o.index] for o in shrunk.ops)
    details: dict[str, Any] = {
        "window": [o.index for o in kept], "weakened": shrunk.weakened,
        "pending": [o.index for o in kept if o.type == INFO and o.invoke < shrunk.start],
        "free_initial": shrunk.free_initial, "span": [shrunk.start, shrunk.end],
        "shrink_checks": shrunk.checks}
    stale = _stale_pair(ops, [o for o in kept if o.type == OK and o.f == "read"])
    if stale is not None:
        anomaly = _stale_anomaly(key, *stale)
        anomaly.details.update(details)
        return anomaly
    start = "from any initial state" if shrunk.free_initial else (
        f"from the initial state {list(initial)}")
    notes = []
    if shrunk.weakened:
        notes.append("ops " + ", ".join(f"#{i}" for i in shrunk.weakened)
                     + " were still running at a cut and are taken as info")
    if details["pending"]:
        notes.append(f"{len(details['pending'])} op(s) of unknown outcome begun earlier "
                     "may take effect anywhere")
    msg = (f"key {key}: these {len(kept)} ops have no linearization {start}"
           + ("; " + "; ".join(notes) if notes else ""))
    return Anomaly("nonlinearizable", msg, kept, key=key, details=details)


def _stale_anomaly(key: str, before: Op, read: Op, version: int) -> Anomaly:
    # Versions never decrease, whatever else happened: these two ops are the proof.
    return Anomaly("stale-read", f"key {key}: read #{read.index} returned version "
                   f"{read.result[1]} but #{before.index} had completed with version "
                   f"{version} before it began", [before, read], key=key)


def _version_of(op: Op) -> int | None:
    """The version an ok op proves the register had reached when it completed."""
    if op.type != OK:
        return None
    if op.f == "read" and isinstance(op.result, list | tuple) and len(op.result) == 2 \
            and isinstance(op.result[1], int):
        return op.result[1]
    if op.f in ("write", "cas") and isinstance(op.result, int):
        return op.result
    return None


def _stale_pair(ops: Sequence[Op], reads: Sequence[Op]) -> tuple[Op, Op, int] | None:
    """(op, read, version): an ok op completed at ``version`` before ``read`` began,
    and the read returned an older version."""
    known = sorted(((_complete(o), v, o) for o in ops
                    if (v := _version_of(o)) is not None), key=lambda t: t[0])
    times = [t for t, _, _ in known]
    best: list[tuple[int, Op] | None] = []
    top: tuple[int, Op] | None = None
    for _, v, o in known:
        if top is None or v > top[0]:
            top = (v, o)
        best.append(top)
    for r in sorted(reads, key=lambda o: o.index):
        k = bisect.bisect_left(times, r.invoke)
        version = _version_of(r)
        if k and version is not None:
            top = best[k - 1]
            if top is not None and top[0] > version:
                return top[1], r, top[0]
    return None


# -- set -----------------------------------------------------------------------------


def check_set(history: History) -> CheckResult:
    """Grow-only set: acked adds survive, final reads agree, reads never go back.

    Ops: ``add`` (value int), ``read_all`` (ok result: sorted list, read with
    sync + get_children, so it holds every add acknowledged before it began, as a
    counter read does). Final reads are read_all ops of processes >=
    FINAL_PROCESS_BASE. An add that failed is
    counted as attempted (as Jepsen does): its presence is reported in the stats
    (``failed_present``), not as an anomaly.
    """
    found = _Anomalies()
    adds: dict[Hashable, list[Op]] = defaultdict(list)
    for op in history.ops:
        if op.f == "add":
            adds[freeze(op.value)].append(op)
    ok_adds = {v: next(o for o in group if o.type == OK)
               for v, group in adds.items() if any(o.type == OK for o in group)}
    reads = [op for op in history.ops if op.f == "read_all" and op.type == OK
             and isinstance(op.result, list | tuple)]
    finals = [op for op in reads if _is_final(op)]
    contents = {op.index: {freeze(x) for x in op.result} for op in reads}

    # unexpected: present but never attempted
    for op in reads:
        extra = sorted(contents[op.index] - adds.keys(), key=repr)
        if extra:
            found.add(Anomaly("unexpected", f"read #{op.index} contains {len(extra)} "
                              f"element(s) never added, e.g. {extra[0]!r}", [op],
                              details={"elements": extra}))
    # lost: acked add missing from a final read
    lost_values = []
    for v, add in sorted(ok_adds.items(), key=lambda kv: kv[1].index):
        missing = [r for r in finals if v not in contents[r.index]]
        if missing:
            lost_values.append(v)
            found.add(Anomaly("lost", f"add {v!r} was acknowledged but final read(s) "
                              + ", ".join(f"#{r.index} (n{r.node})" for r in missing)
                              + " lack it", [add, *missing], details={"element": v}))
    # divergence: final reads differ
    if len({frozenset(contents[r.index]) for r in finals}) > 1:
        ref = finals[0]
        diffs = []
        for r in finals[1:]:
            a, b = contents[ref.index], contents[r.index]
            if a != b:
                diffs.append(f"n{ref.node} has {len(a - b)} not in n{r.node}, "
                              f"n{r.node} has {len(b - a)} not in n{ref.node}")
        found.add(Anomaly("divergence", "final reads differ: " + "; ".join(diffs),
                          _by_index(finals)))
    # stale: a read (sync + get_children) lacks an add acknowledged before it began
    done_at = sorted((_complete(op), v) for v, op in ok_adds.items())
    done_times = [t for t, _ in done_at]
    for r in reads:
        n_before = bisect.bisect_left(done_times, r.invoke)
        have = contents[r.index]
        if sum(1 for x in have if x in ok_adds and _complete(ok_adds[x]) < r.invoke) \
                < n_before:
            x = next(v for _, v in done_at[:n_before] if v not in have)
            if _is_final(r):
                continue  # reported as lost above
            found.add(Anomaly("stale-read", f"read #{r.index} lacks {x!r}, whose add #"
                              f"{ok_adds[x].index} was acknowledged before the read began",
                              [ok_adds[x], r], details={"element": x}))
    # stale: a read lacks an element that a read completed before it began had seen
    for earlier, later, x in _nonmonotonic_sets(reads, contents):
        found.add(Anomaly("stale-read", f"read #{later.index} lacks {x!r}, which read "
                          f"#{earlier.index} had returned before it began",
                          [earlier, later], details={"element": x}))
    info_values = {v for v, g in adds.items() if v not in ok_adds and any(
        o.type == INFO for o in g)}
    final_union = set().union(*(contents[r.index] for r in finals)) if finals else set()
    failed_only = {v for v, g in adds.items() if all(o.type == FAIL for o in g)}
    stats = {
        "ops": _type_counts(history.ops),
        "attempted": len(adds),
        "acknowledged": len(ok_adds),
        "final_reads": len(finals),
        "final_size": len(final_union),
        "lost": len(lost_values),
        "recovered_info": len(info_values & final_union),
        "failed_present": len(failed_only & final_union),
    }
    return found.result("set", stats, complete=bool(finals) or not ok_adds)


def _nonmonotonic_sets(reads: Sequence[Op], contents: dict[int, set[Hashable]]
                       ) -> Iterable[tuple[Op, Op, Hashable]]:
    """Pairs (R1, R2, x): R1 completed before R2 was invoked, x in R1, x not in R2."""
    first_seen: dict[Hashable, tuple[float, Op]] = {}
    for r in reads:
        done = _complete(r)
        for x in contents[r.index]:
            if x not in first_seen or done < first_seen[x][0]:
                first_seen[x] = (done, r)
    order = sorted(first_seen.items(), key=lambda kv: kv[1][0])
    times = [t for _, (t, _) in order]
    for r in sorted(reads, key=lambda o: o.invoke):
        n_before = bisect.bisect_left(times, r.invoke)
        have = contents[r.index]
        seen_in_r = sum(1 for x in have if first_seen[x][0] < r.invoke)
        if seen_in_r < n_before:
            x, (_, r1) = next((x, s) for x, s in order[:n_before] if x not in have)
            yield r1, r, x


# -- unique ids ----------------------------------------------------------------------


def check_unique_ids(history: History) -> CheckResult:
    """No two ok ``generate`` ops returned the same id."""
    found = _Anomalies()
    by_id: dict[Hashable, list[Op]] = defaultdict(list)
    for op in history.ops:
        if op.f == "generate" and op.type == OK:
            by_id[freeze(op.result)].append(op)
    for ident, ops in sorted(by_id.items(), key=lambda kv: kv[1][0].index):
        if len(ops) > 1:
            found.add(Anomaly("duplicate", f"{len(ops)} generate ops returned {ident!r}",
                              _by_index(ops), details={"id": ident}))
    stats = {"ops": _type_counts(history.ops), "ids": len(by_id),
             "duplicated": sum(1 for g in by_id.values() if len(g) > 1)}
    return found.result("unique-ids", stats)


# -- counter -------------------------------------------------------------------------


def check_counter(history: History) -> CheckResult:
    """A counter of positive adds, read with sync + get.

    An observation is an ok read's result or an ok add's result (the value its
    versioned write set). Each lies in [initial + ok adds completed before it
    began (+ the add's own delta), initial + ok and info adds begun before it
    ended]; observations never go back (adds are positive) and no two adds set
    the same value; final reads agree and lie in [initial + all ok adds,
    initial + all ok and info adds]. ``meta["initial"]`` (default 0) is the
    starting value. Failed adds did not take effect.
    """
    initial = int(history.meta.get("initial", 0))
    found = _Anomalies()
    adds_ok = [op for op in history.ops if op.f == "add" and op.type == OK]
    adds_maybe = [op for op in history.ops if op.f == "add" and op.type in (OK, INFO)]
    reads = [op for op in history.ops if op.f == "read" and op.type == OK
             and isinstance(op.result, int)]
    observed = [op for op in adds_ok if isinstance(op.result, int)]
    finals = [op for op in reads if _is_final(op)]
    by_done = sorted(adds_ok, key=_complete)
    done_times = [_complete(o) for o in by_done]
    done_sums = _prefix([int(o.value) for o in by_done])
    by_inv = sorted(adds_maybe, key=lambda o: o.invoke)
    inv_times = [o.invoke for o in by_inv]
    inv_sums = _prefix([int(o.value) for o in by_inv])
    for r in sorted([*reads, *observed], key=lambda o: o.index):
        own = int(r.value) if r.f == "add" else 0
        k = bisect.bisect_left(done_times, r.invoke)
        low = initial + done_sums[k] + own
        m = bisect.bisect_left(inv_times, _complete(r))
        high = initial + inv_sums[m]
        what = "read" if r.f == "read" else "add"
        if r.result < low:
            proof = _smallest_exceeding(by_done[:k], r.result - initial - own)
            found.add(Anomaly("out-of-range", f"{what} #{r.index} returned {r.result}, but "
                              f"acknowledged adds completed before it began sum to "
                              f"{low - initial - own} (+ initial {initial}"
                              + (f", + its own {own})" if own else ")"), [*proof, r],
                              details={"low": low, "high": high}))
        elif r.result > high:
            found.add(Anomaly("out-of-range", f"{what} #{r.index} returned {r.result}, more "
                              f"than initial {initial} + every add (ok or info) begun before "
                              f"it ended = {high}", [*by_inv[:m], r],
                              details={"low": low, "high": high}))
    for earlier, later in _nonmonotonic_reads([*reads, *observed]):
        found.add(Anomaly("stale-read", f"#{later.index} returned {later.result}, less "
                          f"than {earlier.result} returned by #{earlier.index} before it began",
                          [earlier, later]))
    same: dict[int, list[Op]] = defaultdict(list)
    for op in observed:
        same[op.result].append(op)
    for value, group in sorted(same.items()):
        if len(group) > 1:
            found.add(Anomaly("duplicate", f"{len(group)} adds each set the counter to {value}",
                              _by_index(group)))
    if len({r.result for r in finals}) > 1:
        found.add(Anomaly("divergence", "final reads differ: " + ", ".join(
            f"n{r.node}={r.result}" for r in finals), _by_index(finals)))
    stats = {"ops": _type_counts(history.ops), "reads": len(reads),
             "final_reads": len(finals), "final_values": sorted({r.result for r in finals}),
             "acknowledged_sum": done_sums[-1], "possible_sum": inv_sums[-1]}
    return found.result("counter", stats, complete=bool(finals) or not adds_ok)


def _prefix(values: Sequence[int]) -> list[int]:
    out = [0]
    for v in values:
        out.append(out[-1] + v)
    return out


def _smallest_exceeding(adds: Sequence[Op], value: int) -> list[Op]:
    """Fewest adds whose values sum to more than ``value`` (largest first)."""
    chosen, total = [], 0
    for op in sorted(adds, key=lambda o: -int(o.value)):
        chosen.append(op)
        total += int(op.value)
        if total > value:
            break
    return _by_index(chosen)


def _nonmonotonic_reads(reads: Sequence[Op]) -> Iterable[tuple[Op, Op]]:
    """(R1, R2): R1 completed before R2 began and R2 read less (one pair per R2)."""
    by_done = sorted(reads, key=_complete)
    best: Op | None = None
    j = 0
    for r in sorted(reads, key=lambda o: o.invoke):
        while j < len(by_done) and _complete(by_done[j]) < r.invoke:
            if best is None or by_done[j].result > best.result:
                best = by_done[j]
            j += 1
        if best is not None and r.result < best.result:
            yield best, r


# -- queue ---------------------------------------------------------------------------


def check_queue(history: History) -> CheckResult:
    """Every acked enqueue dequeued exactly once; nothing dequeued twice or from nowhere.

    ``dequeue`` ok results are the value or None (empty). The lost check needs
    the final drain: it runs when the last dequeue of the history returned None
    (the queue was seen empty) or ``meta["drained"]`` is true. An ok enqueue
    missing from the dequeues may have been taken by a dequeue whose outcome is
    unknown (info): such a dequeue accounts for the value it names in its
    ``result`` (the runner records the value it was deleting), or, naming none,
    for any one value. Values count as lost only beyond what info dequeues can
    account for; then every unaccounted one is listed.
    """
    found = _Anomalies()
    enq: dict[Hashable, list[Op]] = defaultdict(list)
    for op in history.ops:
        if op.f == "enqueue":
            enq[freeze(op.value)].append(op)
    deqs = [op for op in history.ops if op.f == "dequeue"]
    ok_deq: dict[Hashable, list[Op]] = defaultdict(list)
    for op in deqs:
        if op.type == OK and op.result is not None:
            ok_deq[freeze(op.result)].append(op)
    info_deqs = [op for op in deqs if op.type == INFO]
    # An info dequeue may name the value it was deleting (the runner records it):
    # it can account for that value only; one naming nothing, for any value.
    named = {freeze(op.result) for op in info_deqs if op.result is not None}
    anonymous = sum(1 for op in info_deqs if op.result is None)
    for v, group in sorted(ok_deq.items(), key=lambda kv: kv[1][0].index):
        e = [o for o in enq.get(v, []) if o.type != FAIL] or enq.get(v, [])
        if len(group) > 1:
            found.add(Anomaly("double-dequeue", f"value {v!r} dequeued {len(group)} times",
                              _by_index([*e[:1], *group]), details={"value": v}))
        if v not in enq:
            found.add(Anomaly("unexpected", f"value {v!r} dequeued but never enqueued",
                              _by_index(group), details={"value": v}))
            continue
        first_inv = min(o.invoke for o in enq[v])
        early = [d for d in group if _complete(d) < first_inv]
        if early:
            found.add(Anomaly("unexpected", f"value {v!r} dequeued before its enqueue "
                              "began", _by_index([*early, *enq[v]]), details={"value": v}))
    last = max(deqs, key=lambda o: (o.invoke, o.index), default=None)
    drained = bool(history.meta.get("drained")) or (
        last is not None and last.type == OK and last.result is None)
    ok_enq = {v: next(o for o in g if o.type == OK) for v, g in enq.items()
              if any(o.type == OK for o in g)}
    missing = [op for v, op in ok_enq.items() if v not in ok_deq]
    unexplained = [op for op in missing if freeze(op.value) not in named]
    if drained and len(unexplained) > anonymous:
        for op in _by_index(unexplained):
            found.add(Anomaly("lost", f"enqueue of {op.value!r} was acknowledged but never "
                              f"dequeued ({len(unexplained)} such, only {anonymous} "
                              "dequeue(s) of unknown outcome and value could account for "
                              "some)", [op], details={"value": freeze(op.value)}))
    stats = {"ops": _type_counts(history.ops), "enqueued_ok": len(ok_enq),
             "dequeued_ok": sum(len(g) for g in ok_deq.values()), "drained": drained,
             "missing": len(missing), "unexplained": len(unexplained),
             "info_dequeues": len(info_deqs)}
    return found.result("queue", stats, complete=drained or not ok_enq)


# -- lock ----------------------------------------------------------------------------


def check_lock(history: History) -> CheckResult:
    """An ephemeral-znode lock: never two holders, and no ephemeral vanishing early.

    Holds are the ok ``acquire`` ops (czxid in ``result`` or ``zxid``) plus any
    lock node a ``check`` revealed ([owner, czxid]) that no ok acquire accounts
    for (an acquire of unknown outcome that took effect). Ordered by czxid, each
    hold must have ended before the next one's node was created. A hold ends by a
    release of the holder (ok or info) or by its session ending (expiry or
    close). It is an anomaly only with proof that neither happened: no release by
    that session was begun before the next acquire completed, and the session
    was still alive afterwards (an ok op with the same session id begun later,
    and no session-lost recorded for it before that op).

    A ``check`` by the holder's own session that sees no node, or another node,
    while the holder had not begun releasing and its session is proven alive by
    a later ok op, is an ephemeral that vanished early.
    """
    found = _Anomalies()
    ops = history.ops
    by_session: dict[int, list[Op]] = defaultdict(list)
    for op in ops:
        if op.session is not None:
            by_session[op.session].append(op)
    lost_at: dict[int, float] = {}
    for op in ops:
        if op.f == "session-lost" and op.session is not None:
            t = _complete(op) if op.complete is not None else op.invoke
            lost_at[op.session] = min(lost_at.get(op.session, t), t)

    def czxid_of(op: Op) -> int | None:
        if isinstance(op.result, int):
            return op.result
        return op.zxid

    holds: dict[int, tuple[int | None, Op]] = {}  # czxid -> (session, op showing it)
    acquires = [op for op in ops if op.f == "acquire" and op.type == OK]
    for op in acquires:
        z = czxid_of(op)
        if z is None:
            continue
        if z in holds:
            found.add(Anomaly("duplicate", f"two acquires report czxid 0x{z:x}",
                              _by_index([holds[z][1], op])))
            continue
        holds[z] = (op.session, op)
    for op in ops:
        if op.f == "check" and op.type == OK and isinstance(op.result, list | tuple) \
                and len(op.result) == 2 and isinstance(op.result[1], int):
            owner, z = op.result
            if z not in holds:
                holds[z] = (owner, op)

    def alive_after(session: int | None, t: float, exclude: Op | None = None) -> Op | None:
        """An ok op of ``session`` begun after ``t`` (proof the session lived on)."""
        if session is None:
            return None
        for op in by_session.get(session, ()):
            if op is exclude or op.type != OK or op.f == "session-lost":
                continue
            if op.invoke > t and lost_at.get(session, float("inf")) > op.invoke:
                return op
        return None

    def released(session: int | None, after: float, before: float) -> bool:
        """Did ``session`` begin a release (ok or info) in (after, before)?"""
        if session is None:
            return True  # unknown holder: assume the best
        return any(op.f == "release" and op.type in (OK, INFO) and after < op.invoke < before
                   for op in by_session.get(session, ()))

    order = sorted(holds.items())
    for (z1, (s1, a1)), (z2, (s2, a2)) in zip(order, order[1:], strict=False):
        # a2 completed after node z2 existed (an acquire, or a check that saw it)
        if released(s1, a1.invoke, _complete(a2)):
            continue
        if s1 == s2:
            found.add(Anomaly("early-vanish", f"session 0x{s1:x} acquired again (czxid "
                              f"0x{z2:x}) without releasing its lock 0x{z1:x}: the ephemeral "
                              "vanished while its session was alive", _by_index([a1, a2])))
            continue
        proof = alive_after(s1, _complete(a2))
        if proof is not None:
            found.add(Anomaly("lock-overlap", f"session 0x{s2:x} acquired (czxid 0x{z2:x}) "
                              f"while session 0x{s1:x} held 0x{z1:x}: it never released and "
                              f"was still alive at #{proof.index}", _by_index([a1, a2, proof])))
    # a holder's own check sees the node gone (or replaced)
    for a in acquires:
        s, z = a.session, czxid_of(a)
        if s is None or z is None:
            continue
        for c in by_session.get(s, ()):
            if c.f != "check" or c.type != OK or c.invoke <= _complete(a):
                continue
            if released(s, a.invoke, _complete(c)):
                break  # from its first release on, the hold may be over
            seen = c.result
            if isinstance(seen, list | tuple) and len(seen) == 2 and seen[1] == z:
                continue
            proof = alive_after(s, _complete(c), exclude=c)
            if proof is not None:
                what = "no lock node" if seen is None else (
                    f"the node of session 0x{seen[0]:x} (czxid 0x{seen[1]:x})"
                    if isinstance(seen, list | tuple) and len(seen) == 2
                    and all(isinstance(x, int) for x in seen) else repr(seen))
                found.add(Anomaly("early-vanish", f"session 0x{s:x} saw {what} instead of "
                                  f"its own lock 0x{z:x}, and was still alive at "
                                  f"#{proof.index}", _by_index([a, c, proof])))
            break
    stats = {"ops": _type_counts(ops), "acquired": len(acquires), "holds": len(holds),
             "sessions": len(by_session), "sessions_lost": len(lost_at)}
    return found.result("lock", stats)


# -- dispatch and reporting ----------------------------------------------------------

CHECKERS: dict[str, Callable[[History], CheckResult]] = {
    "register": check_register,
    "set": check_set,
    "unique-ids": check_unique_ids,
    "counter": check_counter,
    "queue": check_queue,
    "lock": check_lock,
}


def check(history: History) -> CheckResult:
    """Check ``history`` with the checker of its workload (``meta["workload"]``)."""
    workload = history.meta.get("workload")
    try:
        checker = CHECKERS[workload]
    except KeyError:
        raise ValueError(f"no checker for workload {workload!r} "
                         f"(known: {', '.join(CHECKERS)})") from None
    result = checker(history)
    log.info("%s", summary(result))
    return result


def summary(result: CheckResult) -> str:
    """One line: checker, verdict, op counts, anomalies by kind."""
    verdict = {True: "valid", False: "INVALID", None: "UNKNOWN"}[result.valid]
    counts = result.stats.get("ops", {})
    ops = " ".join(f"{k}={v}" for k, v in counts.items())
    kinds = result.stats.get("anomalies") or Counter(a.kind for a in result.anomalies)
    anomalies = ", ".join(f"{k}={v}" for k, v in sorted(kinds.items())) or "none"
    extra = ""
    if result.checker == "register":
        extra = f" keys={result.stats.get('keys')} states={result.stats.get('states')}"
        if result.stats.get("unknown_keys"):
            extra += f" unknown_keys={','.join(result.stats['unknown_keys'])}"
    return f"{result.checker}: {verdict} ({ops}){extra} anomalies: {anomalies}"


def explain(result: CheckResult) -> str:
    """Every anomaly with its sub-history, one op per line."""
    lines = [summary(result)]
    for n, a in enumerate(result.anomalies, 1):
        lines.append(f"[{n}] {a.kind}: {a.message}")
        weakened = set(a.details.get("weakened", ()))
        pending = set(a.details.get("pending", ())) & {op.index for op in a.ops}
        if pending:
            lines.append(f"    (+ {len(pending)} op(s) of unknown outcome begun earlier, "
                         "which may take effect at any point or never:)")
            lines.append("    (" + ", ".join(
                f"#{o.index} {o.f} {json.dumps(o.value)}" for o in a.ops if o.index in pending)
                + ")")
        rest = [op for op in a.ops if op.index not in pending]
        shown = rest[:MAX_EXPLAIN_OPS]
        for op in shown:
            mark = "  (taken as info)" if op.index in weakened else ""
            lines.append("    " + op.describe() + mark)
        if len(rest) > len(shown):
            lines.append(f"    ... {len(rest) - len(shown)} more op(s)")
    if result.valid is None:
        lines.append("(incomplete check: see stats)")
    return "\n".join(lines)
