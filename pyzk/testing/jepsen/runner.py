"""One Jepsen-style run: an ensemble, clients, a nemesis, a history, a verdict.

A run (:func:`run`) goes through these steps, each bounded in time:

1. Start a 3- (or 5-) member ensemble of the given kinds (pyzk, Apache or a
   mix) with every quorum and election connection routed through a
   :class:`~pyzk.testing.faultproxy.FaultProxy`, and a short tickTime so
   elections and session expiry happen within a short run.
2. Create the workload's znodes, then start the clients: kazoo clients in
   threads, each pinned to one member (its only host), invoking random ops of
   the workload and recording each one's invocation and completion.
3. Meanwhile the nemesis injects its seeded schedule of faults.
4. At the deadline: the nemesis stops, the clients stop, everything is healed
   (killed members started, paused ones continued, the proxy healed) and the
   run waits until there is one leader and every member serves.
5. The final reads (processes ``10000 + sid``) where the workload needs them,
   then :func:`pyzk.testing.jepsen.checkers.check` on the whole history.

Client rules (Jepsen's): one op at a time per process; an op whose outcome is
unknown (timeout, connection loss, session expiry after a write was sent)
ends ``info`` and its process is retired, the client continuing as a new
process; a read that got no answer ends ``fail`` (it changed nothing). Kazoo
never retries a request by itself here: its command retry is never used, and
a request lost with a connection fails with ConnectionLoss. A client does
not invoke ops while kazoo knows it is disconnected (it waits for the
reconnect), so faults produce unknown outcomes only for ops in flight.
"""

from __future__ import annotations

import contextlib
import datetime
import logging
import random
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import KazooException
from kazoo.protocol.states import KeeperState

from pyzk.testing.diskfaults import DiskFaults
from pyzk.testing.faultproxy import FaultProxy, route_ensemble
from pyzk.testing.jepsen.checkers import CheckResult, check
from pyzk.testing.jepsen.history import FAIL, INFO, OK, History, NemesisEvent, Op
from pyzk.testing.jepsen.nemesis import (
    FAULTS,
    FaultFactory,
    Nemesis,
    NemesisContext,
    uses_disk,
)
from pyzk.testing.jepsen.workloads import (
    INDEFINITE_ERRORS,
    ClientState,
    Invocation,
    Outcome,
    Workload,
    error_name,
    make_workload,
    session_of,
)
from pyzk.testing.servers import Ensemble, ServerError

log = logging.getLogger(__name__)

#: Process numbers of the final reads: FINAL_PROCESS + sid.
FINAL_PROCESS = 10000

#: How a client reconnects to its one member: forever, quickly (connection
#: retries only; no request is ever re-sent by kazoo).
RECONNECT: dict[str, Any] = {"max_tries": -1, "delay": 0.05, "max_delay": 0.3}
#: Kazoo's command retry, used only by ``KazooClient.retry`` (never called):
#: zero tries so that nothing in kazoo can re-send a write.
NO_COMMAND_RETRY: dict[str, Any] = {"max_tries": 0}

#: The ensembles ``--kinds`` names, for 3 and 5 members.
KIND_LAYOUTS: Mapping[str, tuple[str, ...]] = {
    "pyzk": ("pyzk",) * 5,
    "apache": ("apache",) * 5,
    "mixed": ("pyzk", "apache", "pyzk", "apache", "pyzk"),
}


def ensemble_kinds(name: str, members: int = 3) -> dict[int, str]:
    """``{sid: kind}`` for ``--kinds`` pyzk, apache or mixed (3 or 5 members)."""
    if name not in KIND_LAYOUTS:
        raise ValueError(f"unknown kinds {name!r}; known: {', '.join(KIND_LAYOUTS)}")
    if members not in (3, 5):
        raise ValueError("an ensemble has 3 or 5 members here")
    return {sid: KIND_LAYOUTS[name][sid - 1] for sid in range(1, members + 1)}


def kinds_label(kinds: Mapping[int, str]) -> str:
    values = set(kinds.values())
    return values.pop() if len(values) == 1 else "mixed"


@dataclass
class RunConfig:
    """Everything that defines one run (the seed makes op and fault choices
    repeatable; the timing of a real ensemble is not)."""

    kinds: dict[int, str]
    workload: str | Workload
    nemesis: str = "mixed"
    seed: int = 0
    duration: float = 20.0
    tick_time: int = 250
    #: requested client session timeout, s; must be within [2, 20] x tickTime
    session_timeout: float = 3.0
    #: how long one request may take before the op ends info (or fail)
    op_timeout: float = 2.0
    clients_per_node: int = 2
    #: pause between a client's ops, s (uniform): keeps 2 cores breathing
    think: tuple[float, float] = (0.0, 0.02)
    #: after healing, how long the ensemble may take to serve everywhere
    heal_timeout: float = 60.0
    faults: Mapping[str, FaultFactory] = field(default_factory=lambda: FAULTS)

    @property
    def workload_name(self) -> str:
        return self.workload if isinstance(self.workload, str) else self.workload.name

    def run_id(self) -> str:
        members = "" if len(self.kinds) == 3 else f"{len(self.kinds)}x"
        nemesis = self.nemesis.replace(",", "+")
        return f"{members}{kinds_label(self.kinds)}-{self.workload_name}-{nemesis}-s{self.seed}"


@dataclass
class RunResult:
    """A finished run: its history, the checker's verdict, and what broke in
    the harness or the ensemble itself (a member that never served again)."""

    config: RunConfig
    history: History
    check: CheckResult
    errors: list[str]
    elapsed: float
    path: Path | None = None
    logs: Path | None = None

    @property
    def valid(self) -> bool:
        """Checked and found correct, with nothing broken on the way (an
        incomplete check, ``check.valid is None``, is not a pass)."""
        return self.check.valid is True and not self.errors

    @property
    def verdict(self) -> str:
        """VALID, INVALID (anomalies), UNKNOWN (check incomplete) or BROKEN
        (harness or ensemble errors, nothing invalid found)."""
        if self.check.valid is False:
            return "INVALID"
        if self.errors:
            return "BROKEN"
        return "VALID" if self.check.valid else "UNKNOWN"

    def figures(self) -> dict[str, Any]:
        """The numbers a summary line and a report need."""
        counts = self.history.counts()
        starts = [e for e in self.history.nemesis if e.phase == "start"]
        faults: dict[str, int] = {}
        for e in starts:
            faults[e.kind] = faults.get(e.kind, 0) + 1
        return {"ops": len(self.history.ops), **counts, "faults": len(starts),
                "fault_kinds": faults, "anomalies": len(self.check.anomalies),
                "errors": len(self.errors), "elapsed": round(self.elapsed, 1)}

    def summary_line(self) -> str:
        f = self.figures()
        kinds = ",".join(f"{k}:{v}" for k, v in sorted(f["fault_kinds"].items())) or "-"
        line = (f"{self.config.run_id():<40} {self.verdict:<7} ops={f['ops']} ok={f['ok']} "
                f"fail={f['fail']} info={f['info']} faults={f['faults']}({kinds}) "
                f"anomalies={f['anomalies']} {f['elapsed']}s")
        if self.errors:
            line += f" errors={len(self.errors)}"
        if self.path is not None:
            line += f" -> {self.path}"
        return line


class Recorder:
    """The history being written: ops in invocation order, nemesis events,
    process numbers. Thread-safe; times are seconds since :attr:`t0`."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.ops: list[Op] = []
        self.nemesis: list[NemesisEvent] = []
        self._next_process = 0
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def new_process(self) -> int:
        with self._lock:
            p = self._next_process
            self._next_process += 1
            return p

    def invoke(self, process: int, node: str, inv: Invocation, session: int | None) -> Op:
        """Append the op as invoked (type info, no completion, until completed)."""
        with self._lock:
            op = Op(index=len(self.ops), process=process, node=node, f=inv.f, key=inv.key,
                    value=inv.value, type=INFO, invoke=self.now(), complete=None,
                    session=session)
            self.ops.append(op)
            return op

    def complete(self, op: Op, outcome: Outcome) -> None:
        with self._lock:
            op.type = outcome.type
            op.result = outcome.result
            op.error = outcome.error
            op.zxid = outcome.zxid
            if outcome.session is not None:
                op.session = outcome.session
            op.complete = None if outcome.type == INFO else self.now()

    def instant(self, process: int, node: str, f: str, session: int | None,
                error: str | None = None) -> Op:
        """An op that happened at one instant (``session-lost``): ok, invoke = complete."""
        with self._lock:
            t = self.now()
            op = Op(index=len(self.ops), process=process, node=node, f=f, key=None, value=None,
                    type=OK, invoke=t, complete=t, session=session, error=error)
            self.ops.append(op)
            return op

    def event(self, ev: NemesisEvent) -> None:
        with self._lock:
            self.nemesis.append(ev)


def run_op(workload: Workload, zk: KazooClient, inv: Invocation, state: ClientState,
           timeout: float) -> Outcome:
    """Execute one op and classify whatever went wrong: no answer makes a
    write info and a read fail; an unexpected ZooKeeper error is info (we
    cannot tell what it did), logged so a harness bug shows."""
    try:
        return workload.execute(zk, inv, state, timeout)
    except INDEFINITE_ERRORS as e:
        kind = FAIL if inv.f in workload.read_only else INFO
        return Outcome(kind, error=error_name(e))
    except KazooException as e:
        log.warning("%s %s: unexpected %s", workload.name, inv.f, error_name(e))
        kind = FAIL if inv.f in workload.read_only else INFO
        return Outcome(kind, error=error_name(e))


def make_client(address: str, session_timeout: float) -> KazooClient:
    """A kazoo client pinned to one member, reconnecting to it forever."""
    return KazooClient(hosts=address, timeout=session_timeout, randomize_hosts=False,
                       connection_retry=dict(RECONNECT), command_retry=dict(NO_COMMAND_RETRY))


class ClientWorker:
    """One kazoo client in its own thread, pinned to member ``sid``."""

    #: how long a disconnected client waits before looking again
    IDLE = 0.05

    def __init__(self, runner: Run, sid: int, n: int) -> None:
        self.runner = runner
        self.sid = sid
        self.rng = random.Random(runner.config.seed * 1000 + n)
        self.state = ClientState()
        self.process = -1
        self.error: BaseException | None = None
        self.zk: KazooClient | None = None
        self._thread = threading.Thread(target=self._run, name=f"client-{sid}-{n}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def join(self, timeout: float) -> bool:
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def _listener(self, state: str) -> None:
        """Kazoo's state listener (its connection thread): a session that
        expired is recorded for the lock checker. It carries the client's
        current process number although that process may have an op in
        flight: the checker goes by session id, not by process."""
        zk = self.zk
        if zk is None or state != KazooState.LOST or not self.runner.workload.records_session_loss:
            return
        if zk.client_state != KeeperState.EXPIRED_SESSION:
            return  # closed by us at the end of the run
        # the client forgets the session id right after the listeners ran
        self.runner.recorder.instant(self.process, str(self.sid), "session-lost", session_of(zk),
                                     error="session expired")

    def _run(self) -> None:
        cfg = self.runner.config
        rec = self.runner.recorder
        workload = self.runner.workload
        server = self.runner.ensemble[self.sid]
        try:
            zk = self.zk = make_client(server.address, cfg.session_timeout)
            zk.add_listener(self._listener)
            zk.start(timeout=30)
            self.process = rec.new_process()
            deadline = self.runner.deadline
            while rec.now() < deadline:
                if not zk.connected:
                    time.sleep(self.IDLE)
                    continue
                inv = workload.generate(self.rng, self.state)
                op = rec.invoke(self.process, str(self.sid), inv, session_of(zk))
                outcome = run_op(workload, zk, inv, self.state, cfg.op_timeout)
                rec.complete(op, outcome)
                if outcome.type == INFO:
                    workload.on_indefinite(inv, self.state)
                    self.process = rec.new_process()
                time.sleep(self.rng.uniform(*cfg.think))
        except BaseException as e:
            log.exception("client %s failed", self._thread.name)
            self.error = e
        finally:
            if self.zk is not None:
                with contextlib.suppress(Exception):
                    self.zk.stop()
                    self.zk.close()


class Run:
    """The moving parts of one run; :func:`run` drives them."""

    def __init__(self, config: RunConfig, base_dir: Path) -> None:
        self.config = config
        self.workload = make_workload(config.workload) if isinstance(config.workload, str) \
            else config.workload
        self.recorder = Recorder()
        self.errors: list[str] = []
        self.deadline = config.duration
        self.ensemble = Ensemble(
            base_dir, config.kinds, tick_time=config.tick_time,
            extra_cfg={"maxSessionTimeout": str(int(config.session_timeout * 1000) * 2),
                       "minSessionTimeout": str(2 * config.tick_time)})
        self.proxy = FaultProxy()
        #: the members' disk-fault controls, when the nemesis may fail disks
        self.disks: dict[int, DiskFaults] = {}
        if uses_disk(config.nemesis):
            for sid, server in self.ensemble.servers.items():
                self.disks[sid] = DiskFaults(server.data_dir / "version-2",
                                             workdir=base_dir / f"disk{sid}")
                self.disks[sid].attach(server)
        self.nemesis: Nemesis | None = None
        self.meta: dict[str, Any] = {}

    @contextlib.contextmanager
    def running(self) -> Iterator[None]:
        """The proxy and the ensemble, up for the body and always torn down
        (a paused member is continued first so that it can be stopped)."""
        self.proxy.start()
        try:
            route_ensemble(self.ensemble, self.proxy)
            self.ensemble.start()
            try:
                yield
            finally:
                if self.nemesis is not None:
                    with contextlib.suppress(Exception):
                        self.nemesis.stop()
                        self.nemesis.heal_all()
                self.ensemble.stop()
        finally:
            self.proxy.stop()
            for disk in self.disks.values():
                disk.close()

    def setup(self) -> int:
        leader = self.ensemble.wait_leader(timeout=60)
        zk = make_client(self.ensemble.hosts(), 10.0)
        zk.start(timeout=30)
        try:
            self.workload.setup(zk)
        finally:
            zk.stop()
            zk.close()
        return leader

    def clients(self) -> list[ClientWorker]:
        n = 0
        workers = []
        for _ in range(self.config.clients_per_node):
            for sid in sorted(self.ensemble.servers):
                workers.append(ClientWorker(self, sid, n))
                n += 1
        return workers

    def heal(self) -> None:
        """Undo every fault and wait until the whole ensemble serves again."""
        assert self.nemesis is not None
        done = self.nemesis.heal_all()
        t = self.recorder.now()
        self.recorder.event(NemesisEvent(t, "heal", "stop", [str(s) for s in self.ensemble.servers],
                                         "; ".join(done) or "nothing to undo"))
        deadline = time.monotonic() + self.config.heal_timeout
        for sid, server in self.ensemble.servers.items():
            try:
                server.wait_ready(max(1.0, deadline - time.monotonic()))
            except ServerError as e:
                self.errors.append(f"member {sid} did not serve again after healing: "
                                   f"{str(e).splitlines()[0]}")
        try:
            leader = self.ensemble.wait_leader(timeout=max(1.0, deadline - time.monotonic()))
            self.meta["leader_after_heal"] = leader
        except ServerError as e:
            self.errors.append(f"no single leader after healing: {e}")

    def final_reads(self) -> None:
        """The workload's final reads, through every member or one of them."""
        sids = sorted(self.ensemble.servers)
        if not self.workload.final_per_node:
            sids = [random.Random(self.config.seed).choice(sids)]
        for sid in sids:
            try:
                self._final_through(sid)
            except Exception as e:  # a member that cannot answer: the run is broken
                log.exception("final reads through %d failed", sid)
                self.errors.append(f"final reads through member {sid}: {error_name(e)}")

    def _final_through(self, sid: int) -> None:
        rec = self.recorder
        process = FINAL_PROCESS + sid
        timeout = max(self.config.op_timeout, 5.0)

        def record(inv: Invocation, fn: Callable[[], Outcome]) -> Outcome:
            for _attempt in range(10):
                op = rec.invoke(process, str(sid), inv, session_of(zk))
                try:
                    outcome = fn()
                except (*INDEFINITE_ERRORS, KazooException) as e:
                    outcome = Outcome(FAIL if inv.f in self.workload.read_only else INFO,
                                      error=error_name(e))
                rec.complete(op, outcome)
                if outcome.type == OK:
                    return outcome
                if outcome.type == INFO:
                    raise RuntimeError(f"final {inv.f} through {sid} ended info: "
                                       f"{outcome.error}")
                time.sleep(0.5)
            return outcome

        zk = KazooClient(hosts=self.ensemble[sid].address, timeout=10.0, randomize_hosts=False,
                         connection_retry=dict(RECONNECT), command_retry=dict(NO_COMMAND_RETRY))
        zk.start(timeout=30)
        try:
            self.workload.final(zk, sid, record, timeout)
        finally:
            zk.stop()
            zk.close()

    def history(self) -> History:
        return History(meta=self.meta, ops=list(self.recorder.ops),
                       nemesis=list(self.recorder.nemesis))


#: Tries at starting the ensemble: free ports are picked before the members
#: bind them, and another process on the machine may take one meanwhile.
START_ATTEMPTS = 3


def _port_clash(e: BaseException) -> bool:
    text = str(e).lower()
    return "address already in use" in text or "bindexception" in text


def run(config: RunConfig, out_dir: Path | None = None, keep_logs: bool = False) -> RunResult:
    """Carry out one run; save its history (and, when it failed or when
    ``keep_logs``, the members' logs) under ``out_dir``."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="pyzk-jepsen-") as tmp:
        with contextlib.ExitStack() as stack:
            for attempt in range(START_ATTEMPTS):
                r = Run(config, Path(tmp) / f"start{attempt}")
                try:
                    stack.enter_context(r.running())
                    break
                except ServerError as e:
                    if attempt + 1 == START_ATTEMPTS or not _port_clash(e):
                        raise
                    log.warning("a port was taken before the ensemble bound it; new ports")
            r.meta.update({
                "workload": r.workload.name, "nemesis": config.nemesis, "seed": config.seed,
                "kinds": {str(s): k for s, k in config.kinds.items()},
                "duration": config.duration, "tick_time": config.tick_time,
                "session_timeout": config.session_timeout, "op_timeout": config.op_timeout,
                "clients": config.clients_per_node * len(config.kinds),
                "final_process": FINAL_PROCESS,
                "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                **r.workload.meta(),
            })
            r.meta["leader_at_start"] = r.setup()
            ctx = NemesisContext(r.ensemble, r.proxy, r.recorder.now, config.session_timeout,
                                 r.recorder.event, disks=dict(r.disks))
            r.nemesis = Nemesis(ctx, config.nemesis, config.seed, config.faults)
            workers = r.clients()
            r.recorder.t0 = time.monotonic()
            for w in workers:
                w.start()
            r.nemesis.start(r.deadline)
            time.sleep(max(0.0, r.deadline - r.recorder.now()))
            r.nemesis.stop()
            # a counter add may take TRIES rounds of two requests
            grace = 20 * config.op_timeout + 30
            for w in workers:
                if not w.join(grace):
                    r.errors.append(f"client on member {w.sid} did not stop")
                if w.error is not None:
                    r.errors.append(f"client on member {w.sid}: {error_name(w.error)}")
            if r.nemesis.error is not None:
                r.errors.append(f"nemesis: {error_name(r.nemesis.error)}")
            r.heal()
            r.final_reads()
        history = r.history()
        history.meta["errors"] = list(r.errors)
        verdict = check(history)
        result = RunResult(config, history, verdict, r.errors, time.monotonic() - started)
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            result.path = out_dir / f"{config.run_id()}.jsonl"
            history.save(result.path)
            if keep_logs or not result.valid:
                result.logs = save_logs(r.ensemble, out_dir / f"{config.run_id()}.logs")
    return result


def save_logs(ens: Ensemble, dest: Path) -> Path:
    """Copy each member's server log to ``dest/<kind><sid>.log``."""
    dest.mkdir(parents=True, exist_ok=True)
    for sid, server in ens.servers.items():
        with contextlib.suppress(FileNotFoundError):
            shutil.copyfile(server.log_path, dest / f"{server.kind}{sid}.log")
    return dest
