"""Linearizability checking: a Wing & Gong search with Lowe's memoisation.

The search follows porcupine (Athalye's Go checker): the ok ops of one key are
a doubly linked list of call and return entries in time order; at each
configuration the candidates are the calls before the first pending return
(those ops may take effect next); the search applies one to the model state,
lifts its call and return out of the list, and backtracks when no candidate
fits. Lowe's memoisation caches every (set of linearized ops, model state)
reached, so a configuration is explored once. All ok ops placed = linearizable.

On top of the textbook algorithm, each sound (never turns a linearizable
history into a rejected one; ``test_register_accelerations_never_change_the_
verdict`` compares against the plain search):

* ``info`` ops (outcome unknown) have no return (complete = +inf): they are
  candidates from their invocation on, forever, and may also never happen:
  the search ends as soon as every ok op is placed.
* Interchangeable info ops (same effect on every state, e.g. lost writes of
  values nobody ever read) are tried only in invocation order, so a burst of k
  of them costs k configurations instead of 2^k.
* A rank (the znode version) that no op decreases: each ok op states the
  highest rank it may be placed at (a read of version v needs version v); a
  state past the lowest such bound among unplaced ok ops is a dead branch.
* Info ops that, from some rank on, can only bump the rank ("free") are
  interchangeable from then on: one of them is tried per configuration, the
  memo counts how many were used instead of naming them (fewer used
  dominates), and a non-free op whose effect a free one matches is left for
  later. Info ops that can no longer apply (a cas on an older version) are
  dropped from the memo key. Without this a failing history with many lost
  writes explores every subset of them.

The search is bounded by a budget of cached configurations; when it runs out
the answer is ``None`` (unknown), never a pass.

:func:`shrink` reduces a rejected history to a small window that is still
rejected, using only steps that cannot invent an anomaly (were the original
linearizable, so would the reduced one be):

* cutting the end at time T: ops invoked after T are dropped and ops still
  running at T become info (they may have taken effect before T, or not);
* cutting the start at time T0 with a *free* initial state: ops completed
  before T0 are dropped, ops running at T0 become info, and the model starts
  from whatever state the dropped ops could have left;
* dropping a read (an observation that constrains nothing else);
* dropping info ops that provably cannot matter to the window
  (``RegisterModel.trim``, exact).

Measured on the development machine (2 shared cores, CPython 3.11, under load
from other jobs, so upper bounds): a linearizable register history of 5,000
ops on one key with 5 or 10 concurrent processes checks in 0.04-0.13 s with
5% or 20% info ops (40,000-140,000 ops/s); 20,000 ops in 0.3-0.8 s. A
rejected 5,000-op key, search plus shrinking to a 3-6 op window, takes
0.3-1 s; 20,000 ops about 4-7 s.
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import time
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from pyzk.testing.jepsen.history import INFO, OK, Op

log = logging.getLogger(__name__)

#: Default budget of memoised configurations for one key.
DEFAULT_BUDGET = 500_000

_INF = float("inf")
_UNSET: Any = object()


class Model(Protocol):
    """A sequential specification, as the search needs it.

    ``step`` returns the state after ``op`` or ``None`` when ``op`` cannot be
    linearized in ``state``. States must be hashable. ``rank``/``required_rank``
    and ``interchangeable`` are optional accelerations (return ``None``).
    """

    def initial(self) -> Hashable: ...

    def relevant(self, op: Op) -> bool: ...

    def step(self, state: Any, op: Op) -> Hashable | None: ...

    def rank(self, state: Any) -> int | None: ...

    def required_rank(self, op: Op) -> int | None: ...

    def interchangeable(self, op: Op) -> Hashable | None: ...

    # Optional (looked up with getattr):
    #
    # info_ranks(op) -> (live_from, dead_from, free_from), ranks or None. The info
    #   op can apply only at ranks in [live_from, dead_from). From rank free_from
    #   on it is "free": every free op has the same effect in every state, and no
    #   op's effect is weaker. An op without dead_from must be applicable in every
    #   state with an effect at least as strong as a free op's (so a free op may
    #   be used in its place, keeping it for later).
    # observes_only(op) -> bool: the op never changes the state (a read).
    # trim(window, start) -> list[Op]: the window without info ops that cannot
    #   change its verdict from a free initial state (used by shrink).


@dataclass(slots=True)
class SearchResult:
    """The outcome of one search: ``linearizable`` is None when the budget ran out."""

    linearizable: bool | None
    states: int  # memoised configurations explored
    ops: int  # ops that took part (ok + effectful info)
    max_depth: int  # most ops linearized at once (how far the search got)
    elapsed: float


def search(ops: Sequence[Op], model: Model, budget: int = DEFAULT_BUDGET) -> SearchResult:
    """Is the history ``ops`` (one key) linearizable with respect to ``model``?"""
    t0 = time.perf_counter()
    rel = [op for op in ops if model.relevant(op)]
    oks = sorted((op for op in rel if op.type == OK), key=lambda o: (o.invoke, o.index))
    infos = sorted((op for op in rel if op.type != OK), key=lambda o: (o.invoke, o.index))
    if not oks:
        return SearchResult(True, 0, len(rel), 0, time.perf_counter() - t0)

    # The ok ops: a linked list of call and return entries in time order (calls
    # first on equal times: concurrent, the lenient choice). Entry ids 1..; 0 is
    # the head; -1 ends the list.
    events: list[tuple[float, int, int]] = []
    for j, op in enumerate(oks):
        events.append((op.invoke, 0, j))
        events.append((op.complete if op.complete is not None else _INF, 1, j))
    events.sort()
    n_entries = len(events)
    nxt = list(range(1, n_entries + 2))
    nxt[n_entries] = -1
    prv = list(range(-1, n_entries))
    is_call = [False] * (n_entries + 1)
    ent_op = [0] * (n_entries + 1)
    ent_time = [0.0] * (n_entries + 1)
    ret_of = [0] * len(oks)
    call_of = [0] * len(oks)
    for eid, (t, kind, j) in enumerate(events, 1):
        ent_op[eid] = j
        ent_time[eid] = t
        if kind == 0:
            is_call[eid] = True
            call_of[j] = eid
        else:
            ret_of[j] = eid
    match = [0] * (n_entries + 1)
    for j in range(len(oks)):
        match[call_of[j]] = ret_of[j]
    req: list[int | None] = [model.required_rank(op) for op in oks]
    reqs = sorted(r for r in req if r is not None)

    # The info ops: not in the list (they have no return); indexed by invocation.
    n_info = len(infos)
    iinv = [op.invoke for op in infos]
    used = [False] * n_info
    ranks = getattr(model, "info_ranks", None)
    live_a = [-_INF] * n_info
    dead_a = [_INF] * n_info
    free_a = [_INF] * n_info
    for k, op in enumerate(infos):
        if ranks is not None:
            live, dead, free = ranks(op)
            if live is not None:
                live_a[k] = live
            if dead is not None:
                dead_a[k] = dead
            if free is not None:
                free_a[k] = free
    cls = [-1] * n_info
    cls_rank = [0] * n_info
    class_ids: dict[Hashable, int] = {}
    members: list[list[int]] = []
    for k, op in enumerate(infos):
        c = model.interchangeable(op)
        if c is None:
            continue
        cid = class_ids.setdefault(c, len(class_ids))
        if cid == len(members):
            members.append([])
        cls[k] = cid
        cls_rank[k] = len(members[cid])
        members[cid].append(k)
    done = [0] * len(members)
    # classes of free ops (all members alike: one threshold); ops live at one rank
    # only, by that rank; the rest "loose", scanned by blocks of their free_from.
    free_classes = [c for c, mem in enumerate(members) if free_a[mem[0]] < _INF]
    in_free_class = {k for c in free_classes for k in members[c]}
    buckets: dict[float, list[int]] = {}
    loose: list[int] = []
    for k in range(n_info):
        if k in in_free_class:
            continue
        if live_a[k] > -_INF and dead_a[k] == live_a[k] + 1:
            buckets.setdefault(live_a[k], []).append(k)
        else:
            loose.append(k)
    block = 32
    block_max = [max(free_a[k] for k in loose[b:b + block]) for b in range(0, len(loose), block)]

    # Memo masks: free ops (from their threshold on) are counted, not named; dead
    # ones are left out. Sorted thresholds and prefix ORs of their bits.
    def masks(thresholds: list[float]) -> tuple[list[float], list[int]]:
        pairs = sorted((t, 1 << k) for k, t in enumerate(thresholds) if t < _INF)
        acc = [0]
        for _, bit in pairs:
            acc.append(acc[-1] | bit)
        return [t for t, _ in pairs], acc

    free_t, free_m = masks(free_a)
    dead_t, dead_m = masks(dead_a)
    use_masks = bool(free_t or dead_t)
    bisect_right = bisect.bisect_right

    step = model.step
    rank = model.rank

    def candidates(state: Any, cur_rank: float) -> tuple[list[int], int]:
        """The ops that may be linearized next: ok calls before the first pending
        return (entry ids > 0) and info ops invoked by then (~k). Returns them and
        the free representative (an info index, or -1)."""
        cands: list[int] = []
        e = nxt[0]
        while is_call[e]:
            cands.append(e)
            e = nxt[e]
        invoked = bisect_right(iinv, ent_time[e])
        if not n_info or not invoked:
            return cands, -1
        if cur_rank == -_INF:  # rank unknown: every invoked info op, class by class
            for k in range(invoked):
                if not used[k] and (cls[k] < 0 or cls_rank[k] == done[cls[k]]):
                    cands.append(~k)
            return cands, -1
        rep = -1
        for c in free_classes:
            d = done[c]
            mem = members[c]
            if d < len(mem) and mem[d] < invoked and dead_a[mem[d]] > cur_rank \
                    and live_a[mem[d]] <= cur_rank:
                if free_a[mem[d]] <= cur_rank:
                    if rep < 0:
                        rep = mem[d]
                else:
                    cands.append(~mem[d])
        for k in buckets.get(cur_rank, ()):
            if k >= invoked:
                break
            if not used[k] and (cls[k] < 0 or cls_rank[k] == done[cls[k]]):
                cands.append(~k)
        n_loose = bisect.bisect_left(loose, invoked)
        for b in range(0, n_loose, block):
            if block_max[b // block] <= cur_rank and rep >= 0:
                continue  # all free, and a free one is already chosen
            for pos in range(b, min(b + block, n_loose)):
                k = loose[pos]
                if used[k] or dead_a[k] <= cur_rank or live_a[k] > cur_rank:
                    continue
                if cls[k] >= 0 and cls_rank[k] != done[cls[k]]:
                    continue
                if free_a[k] <= cur_rank:
                    if rep < 0:
                        rep = k
                else:
                    cands.append(~k)
        if rep >= 0:
            cands.append(~rep)
        return cands, rep

    state: Any = model.initial()
    r0 = rank(state)
    cur_rank: float = -_INF if r0 is None else r0
    lin_ok = 0
    lin_info = 0
    # Memo: configuration -> fewest free info ops used to reach it (fewer used,
    # more still available, dominates).
    cache: dict[tuple[int, int, int, Any], int] = {}
    stack: list[tuple[list[int], int, int, Any, Any, int]] = []
    cands, rep = candidates(state, cur_rank)
    pos = 0
    free_s2: Any = _UNSET
    max_depth = 0
    verdict: bool | None = None
    while True:
        if pos < len(cands):
            x = cands[pos]
            pos += 1
            if x > 0:
                j = ent_op[x]
                s2 = step(state, oks[j])
                ri = req[j]
            else:
                k = ~x
                ri = None
                s2 = step(state, infos[k])
                if k == rep:
                    free_s2 = s2
                elif s2 is not None and rep >= 0 and dead_a[k] == _INF:
                    # A free op would do the same and keep this one for later (valid
                    # for ops that stay applicable: see Model.info_ranks).
                    if free_s2 is _UNSET:
                        free_s2 = step(state, infos[rep])
                    if s2 == free_s2:
                        s2 = None
            if s2 is None:
                continue
            r2 = rank(s2)
            if reqs and r2 is not None:
                bound = reqs[0]
                if ri is not None and ri == bound:
                    bound = reqs[1] if len(reqs) > 1 else None
                if bound is not None and r2 > bound:
                    continue  # an unplaced ok op needs a lower rank: dead branch
            if x > 0:
                lo = lin_ok | (1 << ent_op[x])
                li = lin_info
            else:
                lo = lin_ok
                li = lin_info | (1 << ~x)
            # Compress: ok ops linearized form a dense prefix plus a sparse tail.
            p = ((lo + 1) & ~lo).bit_length() - 1
            n_free = 0
            lk = li
            if use_masks and r2 is not None:
                fm = free_m[bisect_right(free_t, r2)]
                dm = dead_m[bisect_right(dead_t, r2)]
                n_free = (li & fm).bit_count()
                lk = li & ~(fm | dm)
            key = (p, lo >> p, lk, s2)
            seen = cache.get(key)
            if seen is not None and seen <= n_free:
                continue
            cache[key] = n_free
            if len(cache) > budget:
                break
            stack.append((cands, pos, x, state, free_s2, rep))
            state = s2
            cur_rank = -_INF if r2 is None else r2
            lin_ok = lo
            lin_info = li
            if x > 0:
                # lift the call and its return out of the list
                nxt[prv[x]] = nxt[x]
                prv[nxt[x]] = prv[x]
                r = match[x]
                nxt[prv[r]] = nxt[r]
                if nxt[r] != -1:
                    prv[nxt[r]] = prv[r]
                if ri is not None:
                    del reqs[bisect.bisect_left(reqs, ri)]
                if nxt[0] == -1:
                    verdict = True  # every ok op placed; the info ops left never happened
                    break
            else:
                k = ~x
                used[k] = True
                if cls[k] >= 0:
                    done[cls[k]] += 1
            if len(stack) > max_depth:
                max_depth = len(stack)
            cands, rep = candidates(state, cur_rank)
            pos = 0
            free_s2 = _UNSET
        else:
            if not stack:
                verdict = False
                break
            cands, pos, x, state, free_s2, rep = stack.pop()
            r0 = rank(state)
            cur_rank = -_INF if r0 is None else r0
            if x > 0:
                j = ent_op[x]
                lin_ok &= ~(1 << j)
                ri = req[j]
                if ri is not None:
                    bisect.insort(reqs, ri)
                # unlift: the return first, then the call (reverse of lifting)
                r = match[x]
                nxt[prv[r]] = r
                if nxt[r] != -1:
                    prv[nxt[r]] = r
                nxt[prv[x]] = x
                prv[nxt[x]] = x
            else:
                k = ~x
                lin_info &= ~(1 << k)
                used[k] = False
                if cls[k] >= 0:
                    done[cls[k]] -= 1
    elapsed = time.perf_counter() - t0
    if verdict is None:
        log.info("linearizability search gave up after %d states (%d ops)", len(cache),
                 len(rel))
    return SearchResult(verdict, len(cache), len(rel), max_depth, elapsed)


# -- the versioned register of the `register` workload ------------------------------


class _Sentinel:
    """A value that equals nothing but itself (hashable, for model states)."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


#: Canonical value of a state whose value no ok read returns: such values are
#: indistinguishable for the rest of the history, so they share one state.
UNREAD: Any = _Sentinel("UNREAD")
#: The unknown value of a free initial state (matches the first read).
UNKNOWN: Any = _Sentinel("UNKNOWN")


def freeze(value: Any) -> Hashable:
    """JSON value -> hashable (lists become tuples, dicts sorted item tuples)."""
    if isinstance(value, list | tuple):
        return tuple(freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, freeze(v)) for k, v in value.items()))
    return value


def _pair(result: Any) -> tuple[Hashable, int] | None:
    if isinstance(result, list | tuple) and len(result) == 2 and isinstance(result[1], int):
        return freeze(result[0]), result[1]
    return None


def _cas_arg(value: Any) -> tuple[int, Hashable] | None:
    if isinstance(value, list | tuple) and len(value) == 2 and isinstance(value[0], int):
        return value[0], freeze(value[1])
    return None


class RegisterModel:
    """A znode's (value, version): read / write (version bump) / cas (versioned set).

    State ``(value, version, known)``. With a known initial state ``known`` is
    always True. With a free initial state (``initial=None``, used when a
    shrunk window starts in the middle of a run) the version is counted as an
    offset from an unknown base until the first op that reveals a version
    binds it; the value is UNKNOWN until a read reveals it or a write sets it.

    ``fail`` ops and ``info`` reads take no part: a failed op did not take
    effect, an unknown read observed nothing we know.
    """

    def __init__(self, ops: Sequence[Op], initial: tuple[Any, int] | None = (0, 0)) -> None:
        self.reads: set[tuple[Hashable, int]] = set()
        for op in ops:
            if op.type == OK and op.f == "read":
                pr = _pair(op.result)
                if pr is not None:
                    self.reads.add(pr)
        self.read_values = {v for v, _ in self.reads}
        self._last_read: dict[Hashable, int] = {}
        for v, ver in self.reads:
            self._last_read[v] = max(ver, self._last_read.get(v, ver))
        self._initial = None if initial is None else (freeze(initial[0]), initial[1])

    def _canon(self, value: Hashable, version: int) -> Hashable:
        return value if (value, version) in self.reads else UNREAD

    def _canon_static(self, value: Hashable) -> Hashable:
        return value if value in self.read_values else UNREAD

    def initial(self) -> Hashable:
        if self._initial is None:
            return (UNKNOWN, 0, False)
        v, ver = self._initial
        return (self._canon(v, ver), ver, True)

    def relevant(self, op: Op) -> bool:
        if op.type == OK:
            if op.f == "read":
                return _pair(op.result) is not None
            if op.f == "write":
                return True
            if op.f == "cas":
                return _cas_arg(op.value) is not None
            return False
        if op.type == INFO:
            if op.f == "write":
                return True
            if op.f == "cas":
                return _cas_arg(op.value) is not None
        return False

    def step(self, state: Any, op: Op) -> Hashable | None:
        val, ver, known = state
        f = op.f
        if val is UNKNOWN and not known and op.type == INFO:
            # From a free state, an op of unknown outcome leads to a state the free
            # state already covers (some value, a later version): never needed.
            return None
        if f == "read":
            rv, rver = _pair(op.result)  # type: ignore[misc]
            if known:
                return state if (ver == rver and val == rv) else None
            if rver < ver or not (val is UNKNOWN or val == rv):
                return None
            return (rv, rver, True)
        if f == "write":
            x = freeze(op.value)
            r = op.result if op.type == OK and isinstance(op.result, int) else None
            if known:
                if r is not None and r != ver + 1:
                    return None
                return (self._canon(x, ver + 1), ver + 1, True)
            if r is not None:
                if r - 1 < ver:
                    return None
                return (self._canon(x, r), r, True)
            return (self._canon_static(x), ver + 1, False)
        # cas
        e, x = _cas_arg(op.value)  # type: ignore[misc]
        r = op.result if op.type == OK and isinstance(op.result, int) else None
        if r is not None and r != e + 1:
            return None
        if known:
            if ver != e:
                return None
        elif e < ver:
            return None
        return (self._canon(x, e + 1), e + 1, True)

    def rank(self, state: Any) -> int | None:
        return state[1] if state[2] else None

    def required_rank(self, op: Op) -> int | None:
        if op.type != OK:
            return None
        if op.f == "read":
            pr = _pair(op.result)
            return None if pr is None else pr[1]
        if op.f == "write":
            return op.result - 1 if isinstance(op.result, int) else None
        if op.f == "cas":
            ca = _cas_arg(op.value)
            return None if ca is None else ca[0]
        return None

    def info_ranks(self, op: Op) -> tuple[int | None, int | None, int | None]:
        """(live_from, dead_from, free_from) versions of an info op.

        A cas on version e applies at version e only. A write applies anywhere;
        from the last version its value is read at on, applying it only bumps
        the version, like every other such write (it is free).
        """
        if op.f == "write":
            return None, None, self._last_read.get(freeze(op.value), 0)
        if op.f == "cas":
            ca = _cas_arg(op.value)
            if ca is not None:
                return ca[0], ca[0] + 1, None
        return None, None, None

    def trim(self, window: Sequence[Op], start: float) -> list[Op]:
        """Drop the info ops of a free-start window that cannot matter to it.

        Exact (the window's verdict does not change), for a window whose ok ops
        all state their version and which starts from a free state: the first ok
        op linearized binds the version to at least ``lo`` (the lowest version an
        ok op needs) and no info op applies before it (see ``step``); the last ok
        op needs at most ``hi``. So a cas on a version outside [lo, hi] never
        matters, at most ``hi - lo`` version bumps happen in between, and of the
        writes begun before the window (available all along) whose values no
        read of the window returns, which are interchangeable, ``hi - lo`` are
        enough; of such cas ops on one version, one.
        """
        needs = [self.required_rank(o) for o in window if o.type == OK]
        if not needs or any(r is None for r in needs):
            return list(window)
        lo, hi = min(needs), max(needs)  # type: ignore[type-var]
        bumps = 0
        cas_seen: set[int] = set()
        out = []
        for op in sorted(window, key=lambda o: (o.invoke, o.index)):
            if op.type == INFO and op.f == "cas":
                e, x = _cas_arg(op.value)  # type: ignore[misc]
                if not lo <= e <= hi:
                    continue
                if op.invoke < start and x not in self.read_values:
                    if e in cas_seen:
                        continue
                    cas_seen.add(e)
            elif op.type == INFO and op.f == "write" and op.invoke < start \
                    and freeze(op.value) not in self.read_values:
                if bumps >= hi - lo:
                    continue
                bumps += 1
            out.append(op)
        return out

    def observes_only(self, op: Op) -> bool:
        """Reads change nothing: dropping one from a history cannot add an anomaly."""
        return op.f == "read"

    def interchangeable(self, op: Op) -> Hashable | None:
        if op.type != INFO:
            return None
        if op.f == "write":
            return ("write",) if self._canon_static(freeze(op.value)) is UNREAD else None
        if op.f == "cas":
            ca = _cas_arg(op.value)
            if ca is not None and self._canon_static(ca[1]) is UNREAD:
                return ("cas", ca[0])
        return None


# -- shrinking -------------------------------------------------------------------------

#: Builds a model for a (sub-)history; ``free`` asks for a free initial state.
ModelFactory = Callable[[Sequence[Op], bool], Model]


def weaken(op: Op) -> Op:
    """The same op with its outcome forgotten (ok -> info)."""
    return dataclasses.replace(op, type=INFO, complete=None, result=None)


@dataclass
class Shrunk:
    """A small window of a rejected history that is still rejected."""

    ops: list[Op]  # the window as checked (weakened ops are info here)
    weakened: list[int]  # indices of ops that were ok in the history, info here
    free_initial: bool  # the window starts from any state, not the initial one
    start: float  # window bounds in run time
    end: float
    checks: int  # searches spent shrinking


def cut_end(ops: Sequence[Op], t: float) -> list[Op]:
    """Drop ops invoked after ``t``; ops still running at ``t`` become info."""
    out = []
    for op in ops:
        if op.invoke > t:
            continue
        if op.type == OK and (op.complete is None or op.complete > t):
            out.append(weaken(op))
        else:
            out.append(op)
    return out


def cut_start(ops: Sequence[Op], t0: float) -> list[Op]:
    """Drop ok ops completed before ``t0``; ops running at ``t0`` become info."""
    out = []
    for op in ops:
        if op.type == OK and op.complete is not None and op.complete < t0:
            continue
        if op.type == OK and op.invoke < t0:
            out.append(weaken(op))
        else:
            out.append(op)
    return out


def shrink(ops: Sequence[Op], factory: ModelFactory, *, budget: int = 50_000,
           max_checks: int = 300) -> Shrunk | None:
    """Shrink a rejected history (of one key) to a small window still rejected.

    Returns None if ``ops`` is not (provably) rejected within ``budget``. Ops of
    unknown outcome in the window stay, but for those the model's ``trim``
    proves irrelevant: dropping one could invent an anomaly (it may be what
    explains a read), so the window lists every one that may matter to it.
    """
    checks = 0
    relevant = factory(ops, False).relevant

    def fails(window: Sequence[Op], free: bool) -> bool:
        nonlocal checks
        checks += 1
        return search(window, factory(window, free), budget).linearizable is False

    base = [op for op in ops if relevant(op)]
    if not fails(base, False):
        return None
    # 1. the shortest failing prefix (on end times; monotone): gallop from the
    # start, then bisect, so the cost follows where the anomaly is.
    ends = sorted({op.complete for op in base if op.type == OK and op.complete is not None})
    lo, hi = 0, len(ends) - 1
    probe = 1
    while probe < hi and checks < max_checks:
        if fails([o for o in cut_end(base, ends[probe]) if relevant(o)], False):
            hi = probe
            break
        lo = probe + 1
        probe *= 2
    while lo < hi and checks < max_checks:
        mid = (lo + hi) // 2
        if fails([o for o in cut_end(base, ends[mid]) if relevant(o)], False):
            hi = mid
        else:
            lo = mid + 1
    t_end = ends[hi] if ends else max(op.invoke for op in base)
    window = [o for o in cut_end(base, t_end) if relevant(o)]
    # 2. the latest start that still fails from a free initial state (monotone too).
    free = False
    t_start = min(op.invoke for op in window)
    starts = sorted({op.invoke for op in window if op.type == OK})
    lo, hi = 0, len(starts) - 1
    best = -1
    while lo <= hi and checks < max_checks:
        mid = (lo + hi) // 2
        if fails([o for o in cut_start(window, starts[mid]) if relevant(o)], True):
            best = mid
            lo = mid + 1
        else:
            hi = mid - 1

    def trimmed(window: list[Op]) -> list[Op]:
        trim = getattr(factory(window, True), "trim", None)
        return trim(window, t_start) if trim is not None else window

    if best >= 0:
        free = True
        t_start = starts[best]
        window = trimmed([o for o in cut_start(window, t_start) if relevant(o)])
    # 3. greedy: drop ok ops that only observe (reads), while it still fails.
    model = factory(window, free)
    for op in [o for o in window if o.type == OK and _observes_only(model, o)]:
        if checks >= max_checks:
            break
        trial = [o for o in window if o is not op]
        if fails(trial, free):
            window = trial
    if free:
        window = trimmed(window)
    original = {op.index: op for op in ops}
    weakened = sorted(o.index for o in window
                      if o.type == INFO and original[o.index].type == OK)
    return Shrunk(ops=window, weakened=weakened, free_initial=free, start=t_start,
                  end=t_end, checks=checks)


def _observes_only(model: Model, op: Op) -> bool:
    """Does ``op`` leave every state unchanged (a read)? Asked of the model."""
    observes = getattr(model, "observes_only", None)
    return bool(observes(op)) if observes is not None else False
