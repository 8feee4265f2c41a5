"""Ensembles under faults: partitions, rolling restarts, and learners that
must be truncated or sent a snapshot, with pyzk and Apache on either side.

Quorum and election traffic goes through :class:`FaultProxy` (each member
sees the others at proxy ports), client traffic goes straight to the
servers. Writers record only what the ensemble acknowledged; every check
ends by reading all of it back from every member.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import TypeVar

import pytest
from kazoo.client import KazooClient
from kazoo.exceptions import KazooException
from kazoo.handlers.threading import KazooTimeoutError

from pyzk.shell.txnlogfiles import last_logged_zxid
from pyzk.testing.faultproxy import FaultProxy, route_ensemble
from pyzk.testing.servers import Ensemble, ServerProcess, require_reference, wait_for
from tests.ensemble.helpers import SESSION_CFG, client, rejoin, require_reference_for

pytestmark = [pytest.mark.ensemble, pytest.mark.reference]

T = TypeVar("T")


class Writer:
    """Creates ``/load/<tag>-<n>`` in a loop from its own thread, through any
    member it can reach, and keeps the paths the ensemble acknowledged."""

    def __init__(self, hosts: str, tag: str, limit_s: float = 60.0) -> None:
        self.hosts = hosts
        self.tag = tag
        self.limit_s = limit_s
        self.acked: list[str] = []
        self.failures = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"writer-{tag}", daemon=True)
        self.error: BaseException | None = None

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)
        assert not self._thread.is_alive(), "writer did not stop"

    def _run(self) -> None:
        try:
            with client(self.hosts) as zk:
                zk.ensure_path("/load")
                deadline = time.monotonic() + self.limit_s
                n = 0
                while not self._stop.is_set() and time.monotonic() < deadline:
                    path = f"/load/{self.tag}-{n:05d}"
                    n += 1
                    try:
                        zk.create_async(path, path.encode()).get(timeout=5)
                    except (KazooException, KazooTimeoutError):
                        self.failures += 1
                        time.sleep(0.05)
                        continue
                    self.acked.append(path)
                    time.sleep(0.005)
        except BaseException as e:  # reported by the test
            self.error = e

    def wait_acks(self, more: int, timeout: float = 30.0) -> None:
        """Until ``more`` writes beyond the current count were acknowledged."""
        target = len(self.acked) + more
        wait_for(lambda: len(self.acked) >= target or self.error, timeout,
                 f"{more} acknowledged writes by {self.tag}")
        assert self.error is None, self.error


def check_converged(ens: Ensemble, acked: list[str], sids: list[int] | None = None,
                    absent: tuple[str, ...] = ()) -> None:
    """Every member (after a sync) holds every acknowledged write, and the same
    children under /load as every other member."""
    seen = {}
    for sid in sids or list(ens.servers):
        with client(ens[sid].address) as zk:
            zk.sync("/")
            have = set(zk.get_children("/load"))
            missing = [p for p in acked if p.rsplit("/", 1)[1] not in have]
            assert not missing, (sid, missing[:5], len(missing))
            for p in absent:
                assert zk.exists(p) is None, (sid, p)
            seen[sid] = have
    first = next(iter(seen.values()))
    assert all(v == first for v in seen.values()), {s: len(v) for s, v in seen.items()}


@pytest.mark.timeout(120)
@pytest.mark.parametrize("how", ["reset", "blackhole"])
def test_partitioned_leader_loses_its_role_and_rejoins(tmp_path: Path, how: str) -> None:
    """The leader is cut off from the other four: they elect a new leader and
    go on serving; the old leader stops serving (its clients move), commits
    nothing alone, and after the heal follows and converges."""
    ens = Ensemble(tmp_path, {i: "pyzk" for i in range(1, 6)}, extra_cfg=SESSION_CFG)
    with FaultProxy() as proxy:
        route_ensemble(ens, proxy)
        with ens:
            old = ens.wait_leader()
            rest = [s for s in ens.servers if s != old]
            with Writer(ens.hosts([old, *rest]), "a") as wa, \
                    Writer(ens.hosts(rest), "b") as wb, \
                    client(ens[old].address) as lone:
                wa.wait_acks(20)
                wb.wait_acks(20)
                if how == "reset":
                    proxy.block(old)
                else:
                    proxy.isolate_by_dropping(old)
                # a write sent to the isolated leader is never acknowledged
                attempt = lone.create_async("/isolated", b"x")
                with pytest.raises((KazooException, KazooTimeoutError)):
                    attempt.get(timeout=15)
                new = ens.wait_leader(among=rest, timeout=30)
                wait_for(lambda: ens.mode(old) is None, 15, "the old leader to stop serving")
                # both writers go on through the majority
                wa.wait_acks(20)
                wb.wait_acks(20)
                proxy.heal()
                assert ens.wait_leader(timeout=30) == new
                assert ens.mode(old) == "follower"
                wa.wait_acks(10)
            assert wa.error is None and wb.error is None
            check_converged(ens, wa.acked + wb.acked, absent=("/isolated",))


@pytest.mark.timeout(150)
def test_rolling_restart_under_write_load(tmp_path: Path) -> None:
    """Each member of a 3-pyzk ensemble is stopped and started again in turn
    while two clients write: they reconnect and go on, and nothing is lost."""
    ens = Ensemble(tmp_path, {1: "pyzk", 2: "pyzk", 3: "pyzk"}, extra_cfg=SESSION_CFG)
    with ens:
        ens.wait_leader()
        with Writer(ens.hosts([1, 2, 3]), "a") as wa, Writer(ens.hosts([3, 2, 1]), "b") as wb:
            wa.wait_acks(20)
            wb.wait_acks(20)
            for sid in ens.servers:
                ens[sid].stop()
                wa.wait_acks(10)  # two of three still make a quorum
                wb.wait_acks(10)
                rejoin(ens[sid])
                ens.wait_leader(timeout=30)
                wa.wait_acks(10)
                wb.wait_acks(10)
        assert wa.error is None and wb.error is None
        check_converged(ens, wa.acked + wb.acked)


def last_logged(server: ServerProcess) -> int:
    return last_logged_zxid(server.data_dir)


def strand_a_proposal(ens: Ensemble, proxy: FaultProxy, straggler: int) -> tuple[int, int]:
    """The leader proposes a write that only ``straggler`` logs and no ACK
    reaches: then the leader dies and the straggler is kept out while the
    other three elect a leader that never saw the proposal.

    Returns (old leader, new leader); the straggler is still blocked.
    """
    old = ens.wait_leader()
    assert old != straggler
    # only the old leader in its hosts, and kazoo's default connection retry
    # rather than RECONNECT's endless one: nothing to fail over to once it dies
    with client(ens[old].address, timeout=20, connection_retry=None) as lone:
        # its session is committed while ACKs still flow
        before = last_logged(ens[straggler])
        for sid in ens.servers:
            if sid != old:
                # every ACK to the leader is lost; only the straggler gets proposals
                proxy.set_drop(True, src=sid, dst=old, tag="quorum",
                               direction="up" if sid == straggler else "both")
        attempt = lone.create_async("/uncommitted", b"never acked")
        wait_for(lambda: last_logged(ens[straggler]) > before, 10,
                 "the straggler to log the proposal")
        proxy.block(straggler)
        ens[old].kill()
        with pytest.raises((KazooException, KazooTimeoutError)):
            attempt.get(timeout=15)
    proxy.set_drop(False)
    others = [s for s in ens.servers if s not in (old, straggler)]
    return old, ens.wait_leader(among=others, timeout=30)


#: More txns than Apache's smallest committed-log window (500) holds.
MISSED = 600


def write_missed(zk: KazooClient) -> list[str]:
    """MISSED creates under /load, 100 in flight at a time; the acknowledged paths."""
    missed = [f"/load/missed-{i:04d}" for i in range(MISSED)]
    acked = []
    for start in range(0, MISSED, 100):
        batch = [zk.create_async(p, b"m") for p in missed[start:start + 100]]
        for p, r in zip(missed[start:start + 100], batch, strict=True):
            r.get(timeout=30)
            acked.append(p)
    return acked


@pytest.mark.timeout(150)
@pytest.mark.parametrize(("kinds", "new_epoch_writes", "expected"), [
    ({1: "pyzk", 2: "pyzk", 3: "pyzk", 4: "apache", 5: "apache"}, 0, "TRUNC"),
    ({1: "apache", 2: "pyzk", 3: "pyzk", 4: "pyzk", 5: "pyzk"}, 0, "TRUNC"),
    ({1: "apache", 2: "pyzk", 3: "pyzk", 4: "pyzk", 5: "pyzk"}, 5, "SNAP"),
], ids=["apache-leader-truncates-pyzk", "pyzk-leader-truncates-apache",
        "pyzk-leader-snaps-apache-across-epochs"])
def test_straggler_with_an_uncommitted_proposal(tmp_path: Path, kinds: dict[int, str],
                                                new_epoch_writes: int, expected: str) -> None:
    """A follower logged a proposal that never committed before its leader
    died. A leader elected without it sends TRUNC; once the new epoch has its
    own commits the proposal's epoch is behind them and it sends SNAP
    instead (Apache's "Cannot send TRUNC to peer: peer zxid is from
    different epoch"). Either way the proposal is gone everywhere."""
    require_reference_for(*kinds.values())
    straggler = 1
    ens = Ensemble(tmp_path, kinds, extra_cfg=SESSION_CFG, sync_limit=25)
    with FaultProxy() as proxy:
        route_ensemble(ens, proxy)
        with ens:
            ens.wait_leader()
            acked = []
            with client(ens.hosts()) as zk:
                zk.ensure_path("/load")
                for i in range(10):
                    zk.create(f"/load/before-{i}", b"x")
                    acked.append(f"/load/before-{i}")
            stranded = last_logged(ens[straggler])
            old, new = strand_a_proposal(ens, proxy, straggler)
            assert ens[new].kind == ("apache" if kinds[straggler] == "pyzk" else "pyzk")
            assert last_logged(ens[straggler]) > stranded
            if new_epoch_writes:
                others = [s for s in ens.servers if s not in (old, straggler)]
                with client(ens.hosts(others)) as zk:
                    for i in range(new_epoch_writes):
                        zk.create(f"/load/after-{i}", b"y")
                        acked.append(f"/load/after-{i}")
            logs = {s: ens[s].log_path.read_text() for s in ens.servers}
            proxy.unblock(straggler)
            running = [s for s in ens.servers if s != old]
            assert ens.wait_leader(among=running, timeout=30) == new
            assert ens.mode(straggler) == "follower"
            check_converged(ens, acked, sids=running, absent=("/uncommitted",))
            if kinds[straggler] == "pyzk":
                got = ens[straggler].log_path.read_text()[len(logs[straggler]):]
                assert "Truncating log to get in sync with the leader" in got
            else:
                got = ens[new].log_path.read_text()[len(logs[new]):]
                assert f"Syncing learner sid {straggler} (last zxid 0x" in got
                assert f"with {expected}" in got, got[-2000:]
            # the old leader, which logged the proposal too, is brought in line
            rejoin(ens[old])
            assert ens.wait_leader(timeout=30) == new
            check_converged(ens, acked, absent=("/uncommitted",))


@pytest.mark.timeout(150)
def test_apache_leader_sends_a_far_behind_pyzk_follower_a_snapshot(tmp_path: Path) -> None:
    """A pyzk follower that missed more than the leader's committed-log window
    (zookeeper.commitLogCount, which Apache will not lower below 500) is sent
    the whole database. Apache's on-disk fallback refuses log files (after
    the one it starts in) larger than a third of the snapshot: with a small
    snapCount the missed txns span several files preallocated to 64 MB."""
    require_reference()
    ens = Ensemble(tmp_path, {1: "pyzk", 2: "apache", 3: "apache"}, extra_cfg=SESSION_CFG)
    for sid in (2, 3):
        ens[sid].jvm_flags = ["-Dzookeeper.snapCount=100"]
    with ens:
        leader = ens.wait_leader()
        assert ens[leader].kind == "apache"
        acked = []
        with client(ens.hosts([2, 3])) as zk:
            zk.ensure_path("/load")
            for i in range(3):
                zk.create(f"/load/early-{i}", b"e")
                acked.append(f"/load/early-{i}")
            ens[1].stop()
            acked += write_missed(zk)
        mark = len(ens[1].log_path.read_text())
        rejoin(ens[1])
        assert ens.wait_leader() == leader
        got = ens[1].log_path.read_text()[mark:]
        assert "Getting a snapshot from leader 0x" in got
        assert "Getting a diff" not in got
        check_converged(ens, acked)


@pytest.mark.timeout(150)
def test_pyzk_leader_sends_a_far_behind_apache_follower_a_snapshot(tmp_path: Path) -> None:
    """The reverse: a pyzk leader applies Apache's on-disk rules too (the log
    must reach back to the learner's zxid and the files after the first must
    stay under snapshotSizeFactor x the snapshot), so a far-behind Apache
    follower gets a SNAP, not a DIFF read from a gapped or oversized log."""
    require_reference()
    ens = Ensemble(tmp_path, {1: "apache", 2: "pyzk", 3: "pyzk"}, extra_cfg=SESSION_CFG)
    for sid in (2, 3):
        ens[sid].jvm_flags = ["-Dzookeeper.snapCount=100"]
    with ens:
        leader = ens.wait_leader()
        assert ens[leader].kind == "pyzk"
        acked = []
        with client(ens.hosts([2, 3])) as zk:
            zk.ensure_path("/load")
            ens[1].stop()
            acked += write_missed(zk)
        mark = len(ens[leader].log_path.read_text())
        rejoin(ens[1])
        assert ens.wait_leader() == leader
        got = ens[leader].log_path.read_text()[mark:]
        assert "Syncing learner sid 1" in got and "with SNAP" in got, got[-2000:]
        check_converged(ens, acked)


@pytest.mark.timeout(120)
def test_slow_and_reset_quorum_links_under_write_load(tmp_path: Path) -> None:
    """One follower's links are slow (every chunk 300 ms late, longer than a
    tick): the quorum commits without waiting for it, and it still keeps up.
    Then every quorum connection is reset at once, three times: the ensemble
    elects again each time, the writers reconnect, and nothing is lost."""
    ens = Ensemble(tmp_path, {1: "pyzk", 2: "pyzk", 3: "pyzk"}, extra_cfg=SESSION_CFG)
    with FaultProxy() as proxy:
        route_ensemble(ens, proxy)
        with ens:
            leader = ens.wait_leader()
            slow = min(s for s in ens.servers if s != leader)
            with Writer(ens.hosts([leader]), "a") as wa, Writer(ens.hosts(), "b") as wb:
                wa.wait_acks(10)
                proxy.set_delay(0.3, src=slow)
                proxy.set_delay(0.3, dst=slow)
                t0 = time.monotonic()
                wa.wait_acks(30)
                # acknowledged at the pace of the fast follower, not the slow one
                assert time.monotonic() - t0 < 30 * 0.3
                assert ens.mode(slow) == "follower"
                proxy.set_delay(0.0)
                for _ in range(3):
                    assert proxy.cut(tag="quorum") >= 2
                    ens.wait_leader(timeout=30)
                    wb.wait_acks(10)
                wa.wait_acks(5)
            assert wa.error is None and wb.error is None
            check_converged(ens, wa.acked + wb.acked)
