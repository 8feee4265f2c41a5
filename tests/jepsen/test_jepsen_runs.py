"""Short Jepsen-style runs (the CI version of docs/JEPSEN.md's soak).

Each run is a real 3-member ensemble under a seeded nemesis with kazoo
clients pinned to single members; the test asserts that the checker found no
anomaly, that the nemesis really disrupted something (faults recorded, and
ops that failed or went unknown, or a member killed or paused), and that
enough ops succeeded for the check to mean something. The last test proves
the wiring: a workload that drops one acknowledged element from its final
reads must make the run invalid, and the command line's re-check of the
saved history must exit non-zero (and zero once the element is put back).

Budget: about 2.5 minutes in all on 2 cores (runs of 12-20 s plus start,
heal and final reads).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionLoss, NoAuthError, SessionExpiredError
from kazoo.handlers.threading import KazooTimeoutError

from pyzk.testing.jepsen.__main__ import EXIT_ANOMALY, EXIT_VALID, main
from pyzk.testing.jepsen.history import FAIL, INFO, OK
from pyzk.testing.jepsen.nemesis import FAULTS, MIXED, resolve
from pyzk.testing.jepsen.runner import (
    FINAL_PROCESS,
    RunConfig,
    RunResult,
    ensemble_kinds,
    run,
    run_op,
)
from pyzk.testing.jepsen.workloads import ClientState, Invocation, Outcome, SetWorkload
from pyzk.testing.servers import require_reference

#: Faults that certainly disturb clients (a slow link alone may not).
DISRUPTIVE = {"kill", "pause", "partition"}


def assert_clean_run(result: RunResult, min_ok: int) -> None:
    """No anomaly, a nemesis that did something, and enough successful ops."""
    figures = result.figures()
    assert result.errors == [], result.errors
    assert result.check.valid is True, (result.summary_line(), result.check.anomalies[:3])
    assert result.valid
    starts = [e for e in result.history.nemesis if e.phase == "start"]
    stops = [e for e in result.history.nemesis if e.phase == "stop" and e.kind != "heal"]
    assert starts, "the nemesis injected nothing"
    assert len(stops) == len(starts), "a fault was started and never stopped"
    disturbed = figures["fail"] + figures["info"]
    assert disturbed > 0 or DISRUPTIVE & {e.kind for e in starts}, figures
    assert figures["ok"] >= min_ok, figures
    assert result.path is not None and result.path.exists()


@pytest.mark.ensemble
@pytest.mark.timeout(150)
@pytest.mark.parametrize(("workload", "seed"), [("register", 11), ("set", 12), ("lock", 13),
                                                     ("queue", 14)])
def test_pyzk_ensemble_under_mixed_faults(tmp_path: Path, workload: str, seed: int) -> None:
    """A pyzk-only ensemble keeps each workload's guarantees under the mixed
    nemesis (kills, pauses past the session timeout, partitions, slow links)."""
    config = RunConfig(ensemble_kinds("pyzk"), workload, "mixed", seed=seed, duration=20.0)
    result = run(config, tmp_path)
    assert_clean_run(result, min_ok=300)
    if workload == "set":
        finals = [op for op in result.history.ops if op.process >= FINAL_PROCESS]
        assert sorted(op.node for op in finals if op.type == OK) == ["1", "2", "3"]


@pytest.mark.reference
@pytest.mark.timeout(150)
def test_apache_baseline_register(tmp_path: Path) -> None:
    """The same harness against Apache ZooKeeper alone: the baseline that
    shows the harness and checker accept what the reference does."""
    require_reference()
    config = RunConfig(ensemble_kinds("apache"), "register", "mixed", seed=21, duration=15.0)
    assert_clean_run(run(config, tmp_path), min_ok=200)


@pytest.mark.ensemble
@pytest.mark.reference
@pytest.mark.timeout(150)
def test_mixed_ensemble_counter(tmp_path: Path) -> None:
    """pyzk and Apache members in one ensemble (pyzk, Apache, pyzk): the
    counter's reads stay within the bounds of the acknowledged adds."""
    require_reference()
    config = RunConfig(ensemble_kinds("mixed"), "counter", "mixed", seed=31, duration=15.0)
    assert_clean_run(run(config, tmp_path), min_ok=200)


class LosingSet(SetWorkload):
    """The set workload with a planted bug: its final reads leave out the
    smallest element, which was acknowledged (the first add of the run)."""

    def final(self, zk: KazooClient, sid: int,
              record: Callable[[Invocation, Callable[[], Outcome]], Outcome],
              timeout: float) -> None:
        def lossy() -> Outcome:
            got = self.read_all(zk, timeout)
            return Outcome(got.type, got.result[1:], got.error, got.zxid)
        record(Invocation("read_all"), lossy)


@pytest.mark.ensemble
@pytest.mark.timeout(120)
def test_runner_reports_a_lost_acknowledged_write(tmp_path: Path) -> None:
    """End to end through the runner's check path and the command line: a
    lost acknowledged add is an anomaly, the run is invalid, and re-checking
    its saved history exits non-zero; the repaired history checks clean."""
    config = RunConfig(ensemble_kinds("pyzk"), LosingSet(), "none", seed=41, duration=4.0)
    result = run(config, tmp_path)
    assert result.errors == []
    assert result.check.valid is False
    assert not result.valid and result.verdict == "INVALID"
    # the final reads also lack what an earlier read saw: stale-read may join
    assert {a.kind for a in result.check.anomalies} in ({"lost"}, {"lost", "stale-read"})
    (lost,) = [a for a in result.check.anomalies if a.kind == "lost"]
    assert lost.ops[0].f == "add" and lost.ops[0].type == OK
    acked = [op.value for op in result.history.ops if op.f == "add" and op.type == OK]
    assert lost.ops[0].value == min(acked)
    assert result.path is not None and result.logs is not None and result.logs.is_dir()
    assert main(["--check", str(result.path)]) == EXIT_ANOMALY

    # put the element back into every final read: the same history is valid
    repaired = tmp_path / "repaired.jsonl"
    with result.path.open() as src, repaired.open("w") as dst:
        for line in src:
            obj = json.loads(line)
            op = obj.get("op")
            if op and op["process"] >= FINAL_PROCESS and op["f"] == "read_all":
                op["result"] = sorted([lost.ops[0].value, *op["result"]])
            dst.write(json.dumps(obj) + "\n")
    assert main(["--check", str(repaired)]) == EXIT_VALID


class Raising(SetWorkload):
    """A workload whose every op raises the exception it is given."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__()
        self.exc = exc

    def execute(self, zk: KazooClient, inv: Invocation, state: ClientState,
                timeout: float) -> Outcome:
        raise self.exc


@pytest.mark.pure
@pytest.mark.parametrize(("exc", "write", "read"), [
    (ConnectionLoss(), INFO, FAIL),
    (SessionExpiredError(), INFO, FAIL),
    (KazooTimeoutError(), INFO, FAIL),
    (NoAuthError(), INFO, FAIL),
])
def test_unanswered_writes_are_unknown_and_unanswered_reads_failed(
        exc: BaseException, write: str, read: str) -> None:
    """Jepsen's rule as the runner applies it: a write without an answer may
    have happened (info); a read without one changed nothing (fail)."""
    workload = Raising(exc)
    state = ClientState()
    got_write = run_op(workload, None, Invocation("add", None, 1), state, 1.0)  # type: ignore[arg-type]
    got_read = run_op(workload, None, Invocation("read_all"), state, 1.0)  # type: ignore[arg-type]
    assert (got_write.type, got_read.type) == (write, read)
    assert got_write.error and type(exc).__name__ in got_write.error


@pytest.mark.pure
def test_nemesis_names() -> None:
    """Every registered fault, mixed, lists of them and none resolve; an
    unknown name is refused before any run starts."""
    assert resolve("none") is None
    for name in (*FAULTS, "mixed", "kill,pause", "partition-halves, slow"):
        assert callable(resolve(name)), name
    assert set(MIXED) <= set(FAULTS)
    with pytest.raises(ValueError, match="unknown nemesis"):
        resolve("kill,clock")
    assert ensemble_kinds("mixed") == {1: "pyzk", 2: "apache", 3: "pyzk"}
    assert set(ensemble_kinds("apache", 5).values()) == {"apache"}
