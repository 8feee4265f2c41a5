"""An ensemble member whose disk fails (fsync EIO on its log) while clients write.

pyzk's member stops (exit code 1, one clear log line), as a standalone
server does; the other two elect among themselves and go on; restarted
once the disk works again, it rejoins and catches up. Apache's member
instead leaves its role and tries again and again (it is elected, fails
to write its epoch or its log, goes back to LOOKING) and rejoins by itself
once the disk works. Either way no acknowledged write is lost.

(pyzk used to try again too, but its leader writes acceptedEpoch before
any learner hears of the new epoch, so a failing member with the highest
sid won every election and failed again: the ensemble stalled as long as
the disk did. A member that stops cannot win.)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError

from pyzk.testing.diskfaults import DiskFaults, DiskFaultsUnavailable
from pyzk.testing.servers import ApacheServer, Ensemble, ServerProcess, require_reference, wait_for
from tests.ensemble.helpers import SESSION_CFG, client


class Writer:
    """Creates ``/load/n<i>`` one after the other through ``hosts`` (kazoo,
    reconnecting), keeping the names the ensemble acknowledged."""

    def __init__(self, hosts: str, limit_s: float = 60.0) -> None:
        self.hosts = hosts
        self.limit_s = limit_s
        self.acked: list[str] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            with client(self.hosts) as zk:
                zk.ensure_path("/load")
                deadline = time.monotonic() + self.limit_s
                n = 0
                while not self._stop.is_set() and time.monotonic() < deadline:
                    name = f"n{n:05d}"
                    n += 1
                    try:
                        zk.create_async(f"/load/{name}", b"x").get(timeout=5)
                    except (KazooException, KazooTimeoutError):
                        time.sleep(0.05)
                        continue
                    self.acked.append(name)
        except BaseException as e:  # reported by the test
            self.error = e

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def wait_acks(self, more: int, timeout: float = 30.0) -> None:
        target = len(self.acked) + more
        wait_for(lambda: len(self.acked) >= target or self.error, timeout,
                 f"{more} more acknowledged writes")
        assert self.error is None, self.error

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive(), "writer did not stop"


@pytest.fixture
def faulty_ensemble(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[
        tuple[Ensemble, dict[int, DiskFaults]]]:
    """A three-member ensemble of the kind the test's ``kind`` parameter
    names, each member under its own DiskFaults (on its version-2)."""
    kind = request.param
    if kind == "apache":
        require_reference()
    ens = Ensemble(tmp_path, {1: kind, 2: kind, 3: kind}, extra_cfg=SESSION_CFG)
    faults: dict[int, DiskFaults] = {}
    try:
        for sid, srv in ens.servers.items():
            if kind == "apache":  # its log lines, for the assertions below
                _log_through_slf4j_simple(srv)
            faults[sid] = DiskFaults(srv.data_dir / "version-2", workdir=tmp_path / f"f{sid}")
            faults[sid].attach(srv)
    except DiskFaultsUnavailable as e:
        pytest.skip(str(e))
    ens.start()
    try:
        yield ens, faults
    finally:
        ens.stop()
        for f in faults.values():
            f.close()


def _log_through_slf4j_simple(srv: ServerProcess) -> None:
    def command() -> list[str]:
        return [a.replace("slf4j-nop", "slf4j-simple") for a in ApacheServer.command(srv)]

    srv.command = command  # type: ignore[method-assign]


def victim_of(ens: Ensemble, which: str) -> int:
    leader = ens.wait_leader()
    return leader if which == "leader" else min(s for s in ens.servers if s != leader)


def check_converged(ens: Ensemble, acked: list[str]) -> None:
    """Every member (after a sync) has every acknowledged write, and all the same."""
    seen = {}
    for sid, srv in ens.servers.items():
        with client(srv.address) as zk:
            zk.sync("/")
            have = set(zk.get_children("/load"))
        missing = [a for a in acked if a not in have]
        assert not missing, (sid, len(missing), missing[:5])
        seen[sid] = have
    first = next(iter(seen.values()))
    assert all(v == first for v in seen.values()), {s: len(v) for s, v in seen.items()}


@pytest.mark.ensemble
@pytest.mark.timeout(90)
@pytest.mark.parametrize("faulty_ensemble", ["pyzk"], indirect=True)
@pytest.mark.parametrize("which", ["leader", "follower"])
def test_pyzk_member_with_a_failing_disk_stops_and_rejoins_once_restarted(
        faulty_ensemble: tuple[Ensemble, dict[int, DiskFaults]], which: str) -> None:
    ens, faults = faulty_ensemble
    victim = victim_of(ens, which)
    rest = [s for s in ens.servers if s != victim]
    srv = ens[victim]
    with Writer(ens.hosts(rest)) as w:
        w.wait_acks(30)
        faults[victim].arm("fsync-eio")
        wait_for(lambda: not srv.running(), 15, f"member {victim} to stop")
        proc = srv._proc  # the harness keeps the Popen until stop() reaps it
        assert proc is not None and proc.returncode == 1
        assert faults[victim].injected >= 1
        text = srv.log_path.read_text()
        assert "stopping this member" in text and "Traceback" not in text
        # the other two go on without it
        w.wait_acks(50)
        assert ens.wait_leader(among=rest, timeout=20) in rest
        faults[victim].disarm()
        srv.stop()
        srv.start()
        wait_for(lambda: ens.mode(victim) in ("follower", "leader"), 20, "the member to rejoin")
        w.wait_acks(20)
    assert w.error is None
    check_converged(ens, w.acked)


@pytest.mark.ensemble
@pytest.mark.reference
@pytest.mark.timeout(90)
@pytest.mark.parametrize("faulty_ensemble", ["apache"], indirect=True)
def test_apache_leader_with_a_failing_disk_retries_and_rejoins_by_itself(
        faulty_ensemble: tuple[Ensemble, dict[int, DiskFaults]]) -> None:
    ens, faults = faulty_ensemble
    victim = victim_of(ens, "leader")
    rest = [s for s in ens.servers if s != victim]
    srv = ens[victim]
    with Writer(ens.hosts(rest)) as w:
        w.wait_acks(30)
        faults[victim].arm("fsync-eio")
        wait_for(lambda: "Severe unrecoverable error, from thread : SyncThread"
                 in srv.log_path.read_text(), 15, "the leader's SyncThread to fail")
        # the others elect a new leader and go on; the faulty one keeps
        # trying (it is still running) but serves nobody
        assert ens.wait_leader(among=rest, timeout=30) in rest
        w.wait_acks(50)
        assert srv.running()
        faults[victim].disarm()
        wait_for(lambda: ens.mode(victim) == "follower", 30, "the member to rejoin by itself")
        w.wait_acks(20)
    assert w.error is None
    check_converged(ens, w.acked)


@pytest.mark.ensemble
@pytest.mark.timeout(90)
def test_pyzk_learner_that_cannot_write_the_leaders_snapshot_stops_and_rejoins(
        tmp_path: Path) -> None:
    """A follower joins with a full disk and is sent a SNAP: it cannot write
    the snapshot, so it stops before it acknowledges NEWLEADER (Apache exits
    there too: "Severe unrecoverable error, exiting", code 10)."""
    ens = Ensemble(tmp_path, {1: "pyzk", 2: "pyzk", 3: "pyzk"}, extra_cfg=SESSION_CFG)
    for srv in ens.servers.values():
        srv.jvm_flags = ["-Dzookeeper.forceSnapshotSync=true"]  # every sync is a SNAP
    try:
        victim = 1
        srv = ens[victim]
        faults = DiskFaults(srv.data_dir / "version-2", workdir=tmp_path / "f")
    except DiskFaultsUnavailable as e:
        pytest.skip(str(e))
    faults.attach(srv)
    rest = [s for s in ens.servers if s != victim]
    with ens, faults:
        with Writer(ens.hosts(rest)) as w:
            w.wait_acks(30)
            srv.stop()
            w.wait_acks(30)
            faults.arm("write-enospc")
            srv.start(wait=False)
            wait_for(lambda: not srv.running(), 20, "the follower to stop")
            proc = srv._proc  # the harness keeps the Popen until stop() reaps it
            assert proc is not None and proc.returncode == 1
            text = srv.log_path.read_text()
            assert "Cannot write a snapshot" in text and "stopping this member" in text
            w.wait_acks(20)
            faults.disarm()
            srv.stop()
            srv.start(wait=False)
            wait_for(lambda: ens.mode(victim) == "follower", 20, "the follower to rejoin")
            w.wait_acks(20)
        assert w.error is None
        check_converged(ens, w.acked)
