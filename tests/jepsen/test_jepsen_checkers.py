"""The Jepsen harness's history format and checkers, on hand-made and simulated histories.

Each hand-made history that must be rejected holds one anomaly of the kind its
test names; the ones that must pass are the tricky legal cases (ops of unknown
outcome that did or did not happen, overlapping ops whose only legal order is
not their invocation order, failed cas). The randomized test simulates a
linearizable register (each op takes effect atomically at a random point of its
interval, some ops lose their outcome) and corrupts one read into a stale one.
"""

from __future__ import annotations

import random
import time
from typing import Any

import pytest

from pyzk.testing.jepsen.checkers import (
    FINAL_PROCESS_BASE,
    Anomaly,
    CheckResult,
    check,
    check_register,
    explain,
    summary,
)
from pyzk.testing.jepsen.history import History, NemesisEvent, Op
from pyzk.testing.jepsen.linearizability import RegisterModel, cut_start, search

pytestmark = pytest.mark.pure


class Builder:
    """Hand-made histories: ``b.op(...)`` appends an op, indices in call order."""

    def __init__(self, workload: str, **meta: Any) -> None:
        self.history = History(meta={"workload": workload, **meta})

    def op(self, process: int, f: str, invoke: float, complete: float | None,
           type: str = "ok", value: Any = None, result: Any = None, key: str | None = None,
           session: int | None = None, zxid: int | None = None, node: str = "1") -> Op:
        op = Op(index=len(self.history.ops), process=process, node=node, f=f, key=key,
                value=value, type=type, invoke=invoke,
                complete=None if type == "info" else complete, result=result,
                session=session, zxid=zxid)
        self.history.ops.append(op)
        return op

    def check(self) -> CheckResult:
        return check(self.history)


def rejected(result: CheckResult, kind: str) -> Anomaly:
    assert result.valid is False, explain(result)
    kinds = [a.kind for a in result.anomalies]
    assert kind in kinds, explain(result)
    return next(a for a in result.anomalies if a.kind == kind)


def accepted(result: CheckResult) -> None:
    assert result.valid is True, explain(result)
    assert not result.anomalies


# -- history format ------------------------------------------------------------------


def test_history_save_load_round_trip(tmp_path):
    h = History(meta={"workload": "register", "seed": 7, "kinds": {"1": "pyzk"}},
                ops=[Op(0, 1, "1", "write", "r0", 3, "ok", 0.125, 0.25, result=1,
                        session=0x1234, zxid=0x100000002),
                     Op(1, 2, "2", "cas", "r1", [0, 5], "fail", 0.2, 0.3, error="BadVersion"),
                     Op(2, 3, "3", "read", "r0", None, "info", 0.3, None, error="timeout")],
                nemesis=[NemesisEvent(0.5, "partition", "start", ["1", "2"], "1,2|3"),
                         NemesisEvent(1.5, "partition", "stop", [])])
    path = tmp_path / "h.jsonl"
    h.save(path)
    lines = path.read_text().splitlines()
    assert len(lines) == 1 + 3 + 2 and lines[0].startswith('{"meta"')
    assert History.load(path) == h


def test_history_load_ignores_unknown_fields_and_defaults_missing(tmp_path):
    path = tmp_path / "h.jsonl"
    path.write_text('{"meta": {"workload": "set"}}\n\n'
                    '{"op": {"index": 0, "process": 1, "node": "1", "f": "add", "key": null,'
                    ' "value": 4, "type": "ok", "invoke": 0.0, "complete": 0.1, "new": 1}}\n'
                    '{"nemesis": {"time": 1.0, "kind": "kill", "phase": "start",'
                    ' "targets": ["2"]}}\n')
    h = History.load(path)
    assert h.ops[0].result is None and h.ops[0].session is None
    assert h.nemesis[0].detail == ""
    path.write_text('{"meta": {}}\n{"bogus": 1}\n')
    with pytest.raises(ValueError, match="line 2"):
        History.load(path)


# -- register: must be rejected ------------------------------------------------------


def test_register_stale_read_rejected_with_minimal_window():
    b = Builder("register")
    b.op(1, "write", 0.0, 1.0, value=1, result=1, key="r0")
    w2 = b.op(1, "write", 2.0, 3.0, value=2, result=2, key="r0")
    b.op(2, "read", 0.5, 1.5, result=[1, 1], key="r0")  # fine: sees the first write
    stale = b.op(2, "read", 4.0, 5.0, result=[1, 1], key="r0")
    b.op(3, "read", 6.0, 7.0, result=[2, 2], key="r0")
    a = rejected(b.check(), "stale-read")
    assert a.key == "r0"
    assert [o.index for o in a.ops] == [w2.index, stale.index]
    text = explain(b.check())
    assert "stale-read" in text and "#3" in text and "write r0 2 -> 2" in text


def test_register_write_result_version_gap_rejected():
    b = Builder("register")
    b.op(1, "write", 0.0, 1.0, value=1, result=2, key="r0")  # version 0 -> 2: no
    rejected(b.check(), "nonlinearizable")


def test_register_info_write_cannot_take_effect_before_it_began():
    b = Builder("register")
    b.op(1, "read", 0.0, 1.0, result=[9, 1], key="r0")
    b.op(2, "write", 2.0, None, "info", value=9, key="r0")
    rejected(b.check(), "nonlinearizable")


def test_register_successful_cas_on_wrong_version_rejected():
    b = Builder("register")
    b.op(1, "write", 0.0, 1.0, value=1, result=1, key="r0")
    b.op(2, "cas", 2.0, 3.0, value=[0, 7], result=1, key="r0")  # expected 0, is 1
    rejected(b.check(), "nonlinearizable")


def test_register_read_of_value_never_written_rejected():
    b = Builder("register")
    b.op(1, "write", 0.0, 1.0, value=1, result=1, key="r1")
    b.op(2, "read", 2.0, 3.0, result=[5, 1], key="r1")
    a = rejected(b.check(), "nonlinearizable")
    assert a.key == "r1"


def test_register_only_the_bad_key_is_reported():
    b = Builder("register")
    b.op(1, "write", 0.0, 1.0, value=1, result=1, key="r0")
    b.op(2, "read", 2.0, 3.0, result=[1, 1], key="r0")
    b.op(3, "write", 0.0, 1.0, value=1, result=1, key="r1")
    b.op(4, "read", 2.0, 3.0, result=[0, 0], key="r1")
    r = b.check()
    assert [a.key for a in r.anomalies] == ["r1"]
    assert r.stats["per_key"]["r0"]["linearizable"] is True


# -- register: must pass -------------------------------------------------------------


def test_register_info_write_that_took_effect_late():
    b = Builder("register")
    b.op(1, "write", 0.0, None, "info", value=5, key="r0")
    b.op(2, "read", 1.0, 2.0, result=[0, 0], key="r0")  # not yet
    b.op(2, "read", 3.0, 4.0, result=[5, 1], key="r0")  # now it has
    b.op(3, "write", 5.0, 6.0, value=6, result=2, key="r0")
    accepted(b.check())


def test_register_info_ops_that_never_took_effect():
    b = Builder("register")
    b.op(1, "write", 0.0, None, "info", value=5, key="r0")
    b.op(2, "cas", 0.0, None, "info", value=[0, 8], key="r0")
    b.op(3, "read", 0.5, None, "info", key="r0")
    b.op(4, "read", 1.0, 2.0, result=[0, 0], key="r0")
    b.op(4, "write", 3.0, 4.0, value=1, result=1, key="r0")
    b.op(4, "read", 5.0, 6.0, result=[1, 1], key="r0")
    accepted(b.check())


def test_register_many_lost_writes_fill_a_version_gap():
    # 30 writes of unknown outcome, values never read: any 3 of them took effect.
    b = Builder("register")
    for p in range(30):
        b.op(100 + p, "write", 0.01 * p, None, "info", value=1000 + p, key="r0")
    b.op(1, "read", 1.0, 2.0, result=[0, 0], key="r0")
    b.op(1, "write", 3.0, 4.0, value=1, result=4, key="r0")
    b.op(1, "read", 5.0, 6.0, result=[1, 4], key="r0")
    r = b.check()
    accepted(r)
    assert r.stats["states"] < 200  # interchangeable info writes are not permuted


def test_register_overlapping_writes_in_reverse_invocation_order():
    # Three concurrent writes invoked a, b, c whose versions say c, b, a; reads in
    # between pin the order.
    b = Builder("register")
    b.op(1, "write", 0.0, 10.0, value="a", result=3, key="r0")
    b.op(2, "write", 0.1, 10.0, value="b", result=2, key="r0")
    b.op(3, "write", 0.2, 10.0, value="c", result=1, key="r0")
    b.op(4, "read", 0.3, 10.0, result=["c", 1], key="r0")
    b.op(5, "read", 0.3, 10.0, result=["b", 2], key="r0")
    b.op(6, "read", 11.0, 12.0, result=["a", 3], key="r0")
    accepted(b.check())
    # ...and no other order: swap one read and it is rejected
    b.history.ops[4].result = ["b", 1]
    rejected(b.check(), "nonlinearizable")


def test_register_read_concurrent_with_write_may_see_either():
    b = Builder("register")
    b.op(1, "write", 0.0, 4.0, value=1, result=1, key="r0")
    b.op(2, "read", 1.0, 2.0, result=[1, 1], key="r0")  # saw the write early
    b.op(3, "read", 3.0, 3.5, result=[1, 1], key="r0")
    accepted(b.check())
    # but once a read saw the new value a later read cannot see the old one
    b.op(4, "read", 2.5, 3.2, result=[0, 0], key="r0")
    rejected(b.check(), "stale-read")


def test_register_failed_cas_did_not_take_effect():
    b = Builder("register")
    b.op(1, "write", 0.0, 1.0, value=1, result=1, key="r0")
    b.op(2, "cas", 2.0, 3.0, "fail", value=[0, 9], key="r0")
    b.op(2, "cas", 4.0, 5.0, value=[1, 7], result=2, key="r0")
    b.op(3, "read", 6.0, 7.0, result=[7, 2], key="r0")
    b.op(3, "cas", 8.0, None, "info", value=[1, 8], key="r0")  # wrong version: never
    b.op(4, "read", 9.0, 10.0, result=[7, 2], key="r0")
    accepted(b.check())


def test_register_initial_state_from_meta():
    b = Builder("register", initial=[3, 7])
    b.op(1, "read", 0.0, 1.0, result=[3, 7], key="r0")
    b.op(1, "write", 2.0, 3.0, value=4, result=8, key="r0")
    accepted(b.check())


def test_register_budget_exhausted_is_unknown_not_a_pass():
    h = simulate_register(random.Random(5), n_ops=300, procs=6, p_info=0.1)
    assert check_register(h).valid is True
    r = check_register(h, budget=20)
    assert r.valid is None and r.stats["unknown_keys"] == ["r0"]
    assert "UNKNOWN" in summary(r)


# -- register: randomized ------------------------------------------------------------


def simulate_register(rng: random.Random, n_ops: int, procs: int, p_info: float,
                      key: str = "r0", history: History | None = None
                      ) -> History:
    """A linearizable register history: ops take effect at a random point inside
    their interval (info ops that took effect: any time after invocation)."""
    h = history or History(meta={"workload": "register"})
    specs = []  # (invoke, complete, lin, process, f, info, applied)
    clock = [rng.random() * 0.01 for _ in range(procs)]
    pid = list(range(procs))
    next_pid = procs
    for _ in range(n_ops):
        slot = rng.randrange(procs)
        start = clock[slot] + rng.expovariate(200.0)
        end = start + rng.uniform(0.001, 0.03)
        f = rng.choice(["read", "read", "write", "cas"])
        info = rng.random() < p_info
        applied = not info or rng.random() < 0.5
        lin = rng.uniform(start, end) if not info else start + rng.uniform(0, 0.2)
        specs.append([start, end, lin, pid[slot], f, info, applied])
        clock[slot] = end
        if info:
            pid[slot] = next_pid
            next_pid += 1
    value, version = 0, 0
    results: dict[int, tuple[str, Any, Any]] = {}
    for i in sorted(range(len(specs)), key=lambda k: specs[k][2]):
        _, _, _, _, f, info, applied = specs[i]
        if f == "read":
            results[i] = ("ok", None, [value, version])
        elif f == "write":
            x = rng.randrange(1 << 30)
            if applied:
                value, version = x, version + 1
            results[i] = ("ok", x, version)
        else:
            expected = version if rng.random() < 0.7 else max(0, version - rng.randrange(1, 3))
            x = rng.randrange(1 << 30)
            if expected == version and applied:
                value, version = x, version + 1
                results[i] = ("ok", [expected, x], version)
            else:
                results[i] = ("fail" if not info else "ok", [expected, x], None)
    base = len(h.ops)
    for n, i in enumerate(sorted(range(len(specs)), key=lambda k: specs[k][0])):
        start, end, _, process, f, info, _ = specs[i]
        typ, arg, res = results[i]
        if info:
            typ, end, res = "info", None, None
        h.ops.append(Op(index=base + n, process=process, node=str(1 + process % 3), f=f,
                        key=key, value=arg, type=typ, invoke=start, complete=end,
                        result=res if typ == "ok" else None,
                        error="BadVersion" if typ == "fail" else None))
    return h


def corrupt_one_read(rng: random.Random, h: History) -> Op | None:
    """Make one ok read stale: return the state one version before a version that
    an op completed before the read began had already established."""
    values: dict[int, Any] = {0: 0}
    for op in h.ops:
        if op.type == "ok" and op.f == "read":
            values[op.result[1]] = op.result[0]
    known = [(op.complete, op.result if op.f != "read" else op.result[1])
             for op in h.ops if op.type == "ok" and op.f in ("write", "cas", "read")]
    candidates = []
    for op in h.ops:
        if op.type != "ok" or op.f != "read":
            continue
        floor = max((v for done, v in known if done < op.invoke), default=0)
        if floor >= 1 and floor - 1 in values:
            candidates.append((op, floor - 1))
    if not candidates:
        return None
    op, v = rng.choice(candidates)
    op.result = [values[v], v]
    return op


def corrupt_value(rng: random.Random, h: History) -> Op | None:
    """Make one ok read return, at its own version, the value an ok write put at
    another version (values are unique, so no order explains it)."""
    writers = [op for op in h.ops if op.type == "ok" and op.f in ("write", "cas")]
    reads = [op for op in h.ops if op.type == "ok" and op.f == "read" and op.result[1] > 0]
    if not writers or not reads:
        return None
    r = rng.choice(reads)
    w = rng.choice([o for o in writers if o.result != r.result[1]] or writers)
    if w.result == r.result[1]:
        return None
    r.result = [w.value if w.f == "write" else w.value[1], r.result[1]]
    return r


def assert_window_rejected(h: History, a: Anomaly, bad: Op) -> None:
    """The shrunk window holds the bad read, little else, and is itself rejected."""
    window = a.details["window"]
    assert bad.index in window
    assert sum(1 for i in window if h.ops[i].type == "ok") <= 12, window
    ops = [Op(**{**o.to_dict(), "type": "info", "complete": None, "result": None})
           if o.index in a.details["weakened"] else o
           for o in h.ops if o.index in window]
    initial = None if a.details["free_initial"] else (0, 0)
    assert search(ops, RegisterModel(ops, initial)).linearizable is False


@pytest.mark.parametrize("seed", range(25))
def test_register_randomized_linearizable_passes_and_stale_read_fails(seed):
    rng = random.Random(seed)
    h = simulate_register(rng, n_ops=rng.randrange(40, 200), procs=rng.randrange(2, 7),
                          p_info=rng.choice([0.0, 0.05, 0.2]))
    accepted(check(h))
    accepted(check_register(h, precheck=False))
    bad = corrupt_one_read(rng, h)
    assert bad is not None
    r = check(h)
    a = rejected(r, "stale-read")
    assert len(a.ops) == 2 and a.ops[1] is bad, explain(r)
    assert a.ops[0].complete < bad.invoke
    # the search alone rejects it too, and shrinks it to a window around the read
    r = check_register(h, precheck=False)
    assert r.valid is False and len(r.anomalies) == 1, explain(r)
    assert_window_rejected(h, r.anomalies[0], bad)


@pytest.mark.parametrize("seed", range(15))
def test_register_randomized_read_of_another_versions_value_fails(seed):
    rng = random.Random(1000 + seed)
    h = simulate_register(rng, n_ops=rng.randrange(40, 200), procs=rng.randrange(2, 7),
                          p_info=rng.choice([0.0, 0.05, 0.2]))
    bad = corrupt_value(rng, h)
    assert bad is not None
    r = check(h)
    assert r.valid is False and len(r.anomalies) == 1, explain(r)
    a = r.anomalies[0]
    assert a.kind in ("nonlinearizable", "stale-read")
    assert_window_rejected(h, a, bad)
    if a.kind == "nonlinearizable":
        assert bad in a.ops


def test_register_lost_cas_is_not_replaced_by_a_lost_write():
    # Both ops of unknown outcome took effect, the cas first (it can only apply at
    # version 0): a lost write doing "the same" bump must not stand in for it.
    b = Builder("register")
    b.op(1, "cas", 0.0, None, "info", value=[0, 11], key="r0")
    b.op(2, "write", 0.001, None, "info", value=12, key="r0")
    b.op(3, "cas", 0.03, 0.04, value=[2, 13], result=3, key="r0")
    b.op(3, "read", 0.05, 0.06, result=[13, 3], key="r0")
    accepted(b.check())


class PlainRegister(RegisterModel):
    """The register without the search accelerations (their soundness reference)."""

    def info_ranks(self, op):
        return None, None, None

    def interchangeable(self, op):
        return None

    def required_rank(self, op):
        return None


def test_register_accelerations_never_change_the_verdict():
    rng = random.Random(4242)
    verdicts = {True: 0, False: 0}
    for _ in range(150):
        h = simulate_register(rng, n_ops=rng.randrange(5, 40), procs=rng.randrange(1, 5),
                              p_info=rng.choice([0.0, 0.2, 0.4]))
        oks = [o for o in h.ops if o.type == "ok"]
        for o in rng.sample(oks, min(len(oks), rng.randrange(0, 3))):
            if o.f == "read":  # arbitrary damage: may or may not be detectable
                o.result = [o.result[0], max(0, o.result[1] + rng.choice((-1, 1)))]
            else:
                o.type, o.complete, o.result = "info", None, None
        for initial in ((0, 0), None):
            fast = search(h.ops, RegisterModel(h.ops, initial)).linearizable
            plain = search(h.ops, PlainRegister(h.ops, initial), 200_000).linearizable
            assert fast == plain
            verdicts[fast] += 1
        # a window cut in the middle, from a free state, and the same trimmed
        start = rng.choice(h.ops).invoke
        window = [o for o in cut_start(h.ops, start) if RegisterModel(h.ops).relevant(o)]
        model = RegisterModel(window, None)
        full = search(window, model).linearizable
        assert full == search(window, PlainRegister(window, None), 200_000).linearizable
        trimmed = model.trim(window, start)
        assert search(trimmed, RegisterModel(trimmed, None)).linearizable == full
    assert min(verdicts.values()) > 50  # both outcomes well exercised


def test_register_several_keys_interleaved():
    rng = random.Random(99)
    h = History(meta={"workload": "register"})
    for k in range(5):
        simulate_register(rng, n_ops=60, procs=3, p_info=0.1, key=f"r{k}", history=h)
    h.ops.sort(key=lambda o: o.invoke)
    for n, op in enumerate(h.ops):
        op.index = n
    r = check(h)
    accepted(r)
    assert r.stats["keys"] == 5


def test_throughput_5000_ops():
    """5,000 ops on one key, 5 processes, 5% info: measured, and loosely bounded."""
    h = simulate_register(random.Random(1), n_ops=5000, procs=5, p_info=0.05)
    t0 = time.perf_counter()
    r = check_register(h)
    elapsed = time.perf_counter() - t0
    accepted(r)
    assert elapsed < 6.0, f"{elapsed:.2f}s, {r.stats['states']} states"


# -- set -----------------------------------------------------------------------------

F1, F2, F3 = FINAL_PROCESS_BASE + 1, FINAL_PROCESS_BASE + 2, FINAL_PROCESS_BASE + 3


def test_set_acked_add_lost_from_final_read():
    b = Builder("set")
    b.op(1, "add", 0.0, 0.1, value=1)
    lost = b.op(2, "add", 0.0, 0.1, value=2)
    b.op(F1, "read_all", 5.0, 5.1, result=[1, 2], node="1")
    f2 = b.op(F2, "read_all", 5.0, 5.1, result=[1], node="2")
    r = b.check()
    a = rejected(r, "lost")
    assert [o.index for o in a.ops] == [lost.index, f2.index]
    rejected(r, "divergence")


def test_set_divergent_final_reads():
    b = Builder("set")
    b.op(1, "add", 0.0, None, "info", value=1)
    b.op(F1, "read_all", 5.0, 5.1, result=[1], node="1")
    b.op(F2, "read_all", 5.0, 5.1, result=[], node="2")
    a = rejected(b.check(), "divergence")
    assert len(a.ops) == 2


def test_set_unexpected_and_stale_reads():
    b = Builder("set")
    b.op(1, "add", 0.0, 0.1, value=1)
    b.op(1, "add", 0.2, None, "info", value=2)  # took effect: a read saw it
    seen = b.op(2, "read_all", 0.4, 0.5, result=[1, 2])
    later = b.op(3, "read_all", 0.6, 0.7, result=[1])  # lost 2 again
    b.op(F1, "read_all", 5.0, 5.1, result=[1, 2, 77])
    r = b.check()
    a = rejected(r, "stale-read")
    assert [o.index for o in a.ops] == [seen.index, later.index]
    rejected(r, "unexpected")


def test_set_read_missing_an_add_acknowledged_before_it():
    b = Builder("set")
    add = b.op(1, "add", 0.0, 0.1, value=1)
    b.op(2, "add", 0.15, 0.5, value=2)  # concurrent with the read: may be missing
    read = b.op(3, "read_all", 0.2, 0.3, result=[])
    b.op(F1, "read_all", 5.0, 5.1, result=[1, 2])
    a = rejected(b.check(), "stale-read")
    assert [o.index for o in a.ops] == [add.index, read.index]


def test_set_info_adds_may_be_either_and_failed_adds_counted():
    b = Builder("set")
    b.op(1, "add", 0.0, 0.1, value=1)
    b.op(2, "add", 0.0, None, "info", value=2)  # made it
    b.op(3, "add", 0.0, None, "info", value=3)  # did not
    b.op(4, "add", 0.0, 0.1, "fail", value=4)
    b.op(4, "read_all", 0.05, 0.2, result=[])  # concurrent with the add: fine
    b.op(F1, "read_all", 5.0, 5.1, result=[1, 2])
    b.op(F2, "read_all", 5.0, 5.1, result=[1, 2])
    r = b.check()
    accepted(r)
    assert r.stats["recovered_info"] == 1 and r.stats["lost"] == 0


def test_set_without_final_reads_is_unknown():
    b = Builder("set")
    b.op(1, "add", 0.0, 0.1, value=1)
    assert b.check().valid is None


# -- unique ids ----------------------------------------------------------------------


def test_unique_ids_duplicate_rejected():
    b = Builder("unique-ids")
    a1 = b.op(1, "generate", 0.0, 0.1, result="/jepsen/ids/id0000000001")
    b.op(2, "generate", 0.0, 0.1, result="/jepsen/ids/id0000000002")
    b.op(3, "generate", 0.0, None, "info")
    a2 = b.op(4, "generate", 0.2, 0.3, result="/jepsen/ids/id0000000001")
    a = rejected(b.check(), "duplicate")
    assert [o.index for o in a.ops] == [a1.index, a2.index]


def test_unique_ids_distinct_pass():
    b = Builder("unique-ids")
    for i in range(10):
        b.op(i, "generate", 0.0, 0.1, result=f"id{i:010d}")
    r = b.check()
    accepted(r)
    assert r.stats["ids"] == 10


# -- counter -------------------------------------------------------------------------


def test_counter_read_below_acked_adds_rejected():
    b = Builder("counter")
    b.op(1, "add", 0.0, 0.1, value=1)
    big = b.op(1, "add", 0.2, 0.3, value=5)
    low = b.op(2, "read", 0.4, 0.5, result=4)  # must be >= 6
    b.op(F1, "read", 5.0, 5.1, result=6)
    a = rejected(b.check(), "out-of-range")
    assert [o.index for o in a.ops] == [big.index, low.index]


def test_counter_read_above_possible_adds_rejected():
    b = Builder("counter")
    b.op(1, "add", 0.0, 0.1, value=1)
    b.op(2, "add", 0.0, None, "info", value=2)
    b.op(3, "add", 0.0, 0.1, "fail", value=100)
    b.op(4, "read", 0.4, 0.5, result=4)  # at most 1 + 2
    b.op(F1, "read", 5.0, 5.1, result=3)
    rejected(b.check(), "out-of-range")


def test_counter_divergent_final_reads_and_stale_read():
    b = Builder("counter")
    b.op(1, "add", 0.0, 0.1, value=1)
    b.op(2, "add", 0.0, None, "info", value=2)
    b.op(3, "read", 0.2, 0.3, result=3)
    b.op(3, "read", 0.4, 0.5, result=1)  # went back
    b.op(F1, "read", 5.0, 5.1, result=3, node="1")
    b.op(F2, "read", 5.0, 5.1, result=1, node="2")
    r = b.check()
    rejected(r, "divergence")
    rejected(r, "stale-read")


def test_counter_add_results_are_observations():
    b = Builder("counter")
    first = b.op(1, "add", 0.0, 0.1, value=3, result=3)
    b.op(2, "add", 0.0, 0.1, value=2, result=5)
    again = b.op(3, "add", 0.2, 0.3, value=1, result=3)  # 3 again, after 3 and 5
    b.op(F1, "read", 5.0, 5.1, result=6)
    r = b.check()
    a = rejected(r, "duplicate")
    assert [o.index for o in a.ops] == [first.index, again.index]
    rejected(r, "out-of-range")  # at least 3 + 2 + its own 1
    rejected(r, "stale-read")


def test_counter_info_adds_may_be_either():
    b = Builder("counter")
    b.op(1, "add", 0.0, 0.1, value=1, result=3)  # after the info add of 2
    b.op(2, "add", 0.0, None, "info", value=2)
    b.op(3, "add", 0.0, None, "info", value=4)
    b.op(4, "read", 0.05, 0.2, result=0)  # concurrent with the ok add
    b.op(4, "read", 0.3, 0.4, result=3)
    b.op(F1, "read", 5.0, 5.1, result=3)
    b.op(F2, "read", 5.0, 5.1, result=3)
    accepted(b.check())


# -- queue ---------------------------------------------------------------------------


def test_queue_double_dequeue_rejected():
    b = Builder("queue")
    e = b.op(1, "enqueue", 0.0, 0.1, value=1)
    d1 = b.op(2, "dequeue", 0.2, 0.3, result=1)
    d2 = b.op(3, "dequeue", 0.2, 0.3, result=1)
    b.op(4, "dequeue", 1.0, 1.1, result=None)
    a = rejected(b.check(), "double-dequeue")
    assert [o.index for o in a.ops] == [e.index, d1.index, d2.index]


def test_queue_acked_enqueue_never_dequeued_rejected():
    b = Builder("queue")
    b.op(1, "enqueue", 0.0, 0.1, value=1)
    lost = b.op(1, "enqueue", 0.2, 0.3, value=2)
    b.op(2, "dequeue", 0.4, 0.5, result=1)
    b.op(F1, "dequeue", 1.0, 1.1, result=None)  # drained: empty
    a = rejected(b.check(), "lost")
    assert [o.index for o in a.ops] == [lost.index]


def test_queue_unexpected_value_rejected():
    b = Builder("queue")
    b.op(1, "enqueue", 1.0, 1.1, value=1)
    b.op(2, "dequeue", 0.0, 0.5, result=1)  # before it was enqueued
    b.op(2, "dequeue", 0.6, 0.7, result=9)  # never enqueued
    b.op(F1, "dequeue", 2.0, 2.1, result=None)
    r = b.check()
    assert [a.kind for a in r.anomalies] == ["unexpected", "unexpected"]


def test_queue_info_ops_may_account_for_missing_values():
    b = Builder("queue")
    b.op(1, "enqueue", 0.0, 0.1, value=1)
    b.op(2, "enqueue", 0.0, None, "info", value=2)  # never made it
    b.op(3, "enqueue", 0.0, 0.1, value=3)
    b.op(4, "dequeue", 0.2, None, "info", result=3)  # was deleting 3, outcome lost
    b.op(5, "dequeue", 0.3, 0.4, result=1)
    b.op(F1, "dequeue", 1.0, 1.1, result=None)
    r = b.check()
    accepted(r)
    assert r.stats["missing"] == 1


def test_queue_info_dequeue_accounts_only_for_the_value_it_names():
    b = Builder("queue")
    b.op(1, "enqueue", 0.0, 0.1, value=1)
    lost = b.op(1, "enqueue", 0.2, 0.3, value=2)
    b.op(2, "dequeue", 0.4, 0.5, result=1)
    b.op(3, "dequeue", 0.4, None, "info", result=1)  # lost the race for 1
    b.op(F1, "dequeue", 1.0, 1.1, result=None)
    a = rejected(b.check(), "lost")
    assert [o.index for o in a.ops] == [lost.index]
    b.history.ops[3].result = None  # naming nothing, it may have taken 2
    r = b.check()
    accepted(r)
    assert r.stats["unexplained"] == 1


def test_queue_without_drain_is_unknown():
    b = Builder("queue")
    b.op(1, "enqueue", 0.0, 0.1, value=1)
    assert b.check().valid is None


# -- lock ----------------------------------------------------------------------------

S1, S2, S3 = 0x100, 0x200, 0x300


def test_lock_overlap_rejected():
    b = Builder("lock")
    a1 = b.op(1, "acquire", 0.0, 0.1, result=0x10, zxid=0x10, session=S1)
    a2 = b.op(2, "acquire", 0.2, 0.3, result=0x11, zxid=0x11, session=S2)
    alive = b.op(1, "check", 0.4, 0.5, result=[S2, 0x11], session=S1)
    a = rejected(b.check(), "lock-overlap")
    assert [o.index for o in a.ops] == [a1.index, a2.index, alive.index]


def test_lock_ephemeral_vanishing_while_session_alive_rejected():
    b = Builder("lock")
    a1 = b.op(1, "acquire", 0.0, 0.1, result=0x10, session=S1)
    gone = b.op(1, "check", 0.2, 0.3, result=None, session=S1)
    later = b.op(1, "check", 0.4, 0.5, result=None, session=S1)
    a = rejected(b.check(), "early-vanish")
    assert [o.index for o in a.ops] == [a1.index, gone.index, later.index]


def test_lock_reacquire_by_same_session_without_release_rejected():
    b = Builder("lock")
    b.op(1, "acquire", 0.0, 0.1, result=0x10, session=S1)
    b.op(1, "acquire", 0.2, 0.3, result=0x12, session=S1)
    rejected(b.check(), "early-vanish")


def test_lock_handovers_pass():
    b = Builder("lock")
    # S1 acquires, checks, releases; S2 was refused meanwhile, then acquires.
    b.op(1, "acquire", 0.0, 0.1, result=0x10, session=S1)
    b.op(2, "acquire", 0.05, 0.15, "fail", session=S2)
    b.op(1, "check", 0.2, 0.3, result=[S1, 0x10], session=S1)
    b.op(1, "release", 0.4, 0.5, session=S1)
    b.op(2, "acquire", 0.6, 0.7, result=0x14, session=S2)
    # S2's session expires (seen later); S3 gets the lock meanwhile.
    b.op(3, "acquire", 1.0, 1.1, result=0x20, session=S3)
    b.op(2, "session-lost", 1.2, 1.2, session=S2)
    b.op(3, "check", 1.3, 1.4, result=[S3, 0x20], session=S3)
    # S3's release is of unknown outcome; S1 acquires after it.
    b.op(3, "release", 1.5, None, "info", session=S3)
    b.op(1, "acquire", 1.7, 1.8, result=0x22, session=S1)
    b.op(1, "check", 1.9, 2.0, result=[S1, 0x22], session=S1)
    b.op(1, "release", 2.1, 2.2, session=S1)
    b.op(1, "check", 2.3, 2.4, result=None, session=S1)
    r = b.check()
    accepted(r)
    assert r.stats["holds"] == 4


def test_lock_holder_whose_session_expired_may_lose_it():
    b = Builder("lock")
    b.op(1, "acquire", 0.0, 0.1, result=0x10, session=S1)
    b.op(2, "acquire", 0.5, 0.6, result=0x15, session=S2)  # S1 expired meanwhile
    b.op(1, "session-lost", 0.8, 0.8, session=S1)
    accepted(b.check())


# -- dispatch and reporting ----------------------------------------------------------


def test_unknown_workload_raises():
    with pytest.raises(ValueError, match="no checker"):
        check(History(meta={"workload": "bank"}))


def test_summary_and_explain_are_readable():
    b = Builder("unique-ids")
    b.op(1, "generate", 0.0, 0.1, result="x", session=0xAB)
    b.op(2, "generate", 0.5, 0.6, result="x")
    r = b.check()
    s = summary(r)
    assert s.startswith("unique-ids: INVALID") and "duplicate=1" in s and "\n" not in s
    lines = explain(r).splitlines()
    assert lines[0] == s
    assert lines[1].startswith("[1] duplicate")
    assert lines[2].strip() == '#0 p1@n1 ok   generate -> "x" s=0xab [0.000, 0.100]'
    assert len(lines) == 4
    ok = Builder("unique-ids")
    ok.op(1, "generate", 0.0, 0.1, result="y")
    assert summary(ok.check()).startswith("unique-ids: valid")
