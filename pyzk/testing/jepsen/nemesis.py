"""Faults for Jepsen runs: a seeded schedule of start/stop events against an
ensemble whose quorum and election traffic goes through a FaultProxy.

One fault is active at a time. The schedule is: a quiet gap, a fault for a
while, a quiet gap, ... until the run's deadline; every start and stop is
recorded as a :class:`NemesisEvent`. Whatever happens (the deadline, an
exception, the caller stopping early), :meth:`Nemesis.stop` ends the active
fault and :meth:`Nemesis.heal_all` undoes everything any fault can leave
behind: the proxy heals, every member gets SIGCONT, every member not running
is started again. A run therefore never ends with a member paused or down.

The faults (``FAULTS``, by name):

* ``kill``: SIGKILL a member (the leader half the time), start it again on
  the same data directory after 2-5 s; ``kill-leader`` always the leader.
* ``pause``: SIGSTOP a member's process group (the leader half the time) for
  longer than the client session timeout, then SIGCONT; ``pause-leader``.
* ``partition``: one of ``partition-leader`` (the leader alone vs the rest),
  ``partition-halves`` (a random split; for 3 members one against two),
  ``partition-bridge`` (5 members only: two halves that share one member),
  ``partition-oneway`` (one member's outgoing or incoming quorum/election
  bytes are dropped, the other direction flows).
* ``slow``: every chunk on the links of one member (or all links) delayed by
  50-400 ms.
* ``disk``: the data directory of a member (the leader half the time) fails
  its writes or syncs (fsync EIO, write ENOSPC or write EIO, through
  pyzk.testing.diskfaults' LD_PRELOAD shim, the same for Apache and pyzk)
  for a while; then the disk works again and a member that stopped on it is
  started again (pyzk stops on a failed log; Apache retries by itself);
  ``disk-leader`` always the leader. The runner attaches the shim to every
  member when the nemesis may pick a disk fault.
* ``mixed``: each cycle picks one of kill, pause, partition, slow, disk.

A comma-separated list (``kill,pause``) picks among those names each cycle.

Client traffic never goes through the proxy: a partition cuts members off
from each other, and the clients pinned to a minority member see it stop
serving, as a real partition between servers would show them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, ClassVar

from pyzk.testing.faultproxy import FaultProxy
from pyzk.testing.jepsen.history import NemesisEvent
from pyzk.testing.servers import Ensemble, four_letter

log = logging.getLogger(__name__)

#: How long a "who leads?" query waits for one member (a slow member is skipped).
MODE_TIMEOUT = 1.0


@dataclass
class NemesisContext:
    """What faults act on, and what they must keep track of so that
    :meth:`Nemesis.heal_all` can undo them."""

    ensemble: Ensemble
    proxy: FaultProxy
    clock: Callable[[], float]
    session_timeout: float
    record: Callable[[NemesisEvent], None]
    paused: set[int] = field(default_factory=set)
    down: set[int] = field(default_factory=set)
    #: each member's disk-fault control (pyzk.testing.diskfaults.DiskFaults),
    #: when the run attached them
    disks: dict[int, Any] = field(default_factory=dict)

    @property
    def sids(self) -> list[int]:
        return sorted(self.ensemble.servers)

    def mode(self, sid: int) -> str | None:
        """``Mode:`` of a member that is up and not paused (None otherwise)."""
        if sid in self.paused or sid in self.down:
            return None
        server = self.ensemble[sid]
        try:
            text = four_letter(server.host, server.port, "srvr", timeout=MODE_TIMEOUT)
        except OSError:
            return None
        for line in text.splitlines():
            if line.startswith("Mode: "):
                return line[6:]
        return None

    def leader(self) -> int | None:
        """The member reporting itself leader right now (the first one found)."""
        for sid in self.sids:
            if self.mode(sid) == "leader":
                return sid
        return None

    def target(self, rng: random.Random, leader_only: bool = False) -> int:
        """The leader (always, or half the time), else a random member."""
        if leader_only or rng.random() < 0.5:
            lead = self.leader()
            if lead is not None:
                return lead
        return rng.choice(self.sids)

    def signal(self, sid: int, sig: int) -> None:
        """Send ``sig`` to a member's whole process group (JVM or Python)."""
        pid = self.ensemble[sid].pid
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, sig)


class Fault:
    """One fault, started and later stopped; :attr:`kind` names it in the history."""

    kind: ClassVar[str] = ""

    def __init__(self, ctx: NemesisContext, rng: random.Random) -> None:
        self.ctx = ctx
        self.rng = rng
        #: what start() returned: the stop event names the same members
        self.targets: list[str] = []

    def duration(self) -> float:
        """How long the fault lasts (drawn from the run's seeded random)."""
        return self.rng.uniform(2.0, 5.0)

    def start(self) -> tuple[list[str], str]:
        """Inject the fault; return the targets (sids as str) and a detail line."""
        raise NotImplementedError

    def stop(self) -> str:
        """Undo the fault; return a detail line."""
        raise NotImplementedError


class Kill(Fault):
    kind = "kill"
    leader_only = False

    def start(self) -> tuple[list[str], str]:
        self.sid = self.ctx.target(self.rng, self.leader_only)
        was_leader = self.ctx.mode(self.sid) == "leader"
        self.ctx.down.add(self.sid)
        self.ctx.ensemble[self.sid].kill()
        return [str(self.sid)], "SIGKILL" + (" (leader)" if was_leader else "")

    def stop(self) -> str:
        self.ctx.ensemble[self.sid].start(wait=False)
        self.ctx.down.discard(self.sid)
        return "restarted"


class KillLeader(Kill):
    leader_only = True


class Pause(Fault):
    kind = "pause"
    leader_only = False

    def duration(self) -> float:
        # longer than a session lasts: the member's sessions expire elsewhere
        return self.ctx.session_timeout + self.rng.uniform(1.0, 2.5)

    def start(self) -> tuple[list[str], str]:
        self.sid = self.ctx.target(self.rng, self.leader_only)
        was_leader = self.ctx.mode(self.sid) == "leader"
        self.ctx.paused.add(self.sid)
        self.ctx.signal(self.sid, signal.SIGSTOP)
        return [str(self.sid)], "SIGSTOP" + (" (leader)" if was_leader else "")

    def stop(self) -> str:
        self.ctx.signal(self.sid, signal.SIGCONT)
        self.ctx.paused.discard(self.sid)
        return "SIGCONT"


class PauseLeader(Pause):
    leader_only = True


class Partition(Fault):
    """Base of the partitions: ``groups`` says who still reaches whom."""

    kind = "partition"

    def groups(self) -> list[list[int]]:
        raise NotImplementedError

    def start(self) -> tuple[list[str], str]:
        groups = self.groups()
        self.ctx.proxy.partition(*groups)
        small = min(groups, key=len)
        detail = " | ".join(",".join(map(str, sorted(g))) for g in groups)
        return [str(s) for s in sorted(small)], f"{type(self).__name__}: {detail}"

    def stop(self) -> str:
        self.ctx.proxy.heal()
        return "healed"


class PartitionLeader(Partition):
    def groups(self) -> list[list[int]]:
        lead = self.ctx.target(self.rng, leader_only=True)
        return [[lead], [s for s in self.ctx.sids if s != lead]]


class PartitionHalves(Partition):
    def groups(self) -> list[list[int]]:
        sids = list(self.ctx.sids)
        self.rng.shuffle(sids)
        half = len(sids) // 2
        return [sids[:half], sids[half:]]


class PartitionBridge(Partition):
    """Two halves sharing one member: 1,2,3 and 3,4,5 (5 members): the bridge
    sees everybody, the others only their side (needs at least 5 members)."""

    def groups(self) -> list[list[int]]:
        sids = list(self.ctx.sids)
        if len(sids) < 5:
            raise ValueError("partition-bridge needs at least 5 members")
        self.rng.shuffle(sids)
        half = len(sids) // 2
        bridge = sids[half]
        return [sids[:half] + [bridge], sids[half:]]


class PartitionOneWay(Fault):
    """One member's bytes are dropped in one direction only (its outgoing
    or its incoming), on every quorum and election link it has."""

    kind = "partition"

    def start(self) -> tuple[list[str], str]:
        self.sid = self.ctx.target(self.rng)
        outgoing = self.rng.random() < 0.5
        proxy = self.ctx.proxy
        # a link is "src dials dst": "up" carries src's bytes, "down" dst's
        proxy.set_drop(True, src=self.sid, direction="up" if outgoing else "down")
        proxy.set_drop(True, dst=self.sid, direction="down" if outgoing else "up")
        return [str(self.sid)], "PartitionOneWay: drop " + ("from" if outgoing else "to") \
            + f" {self.sid}"

    def stop(self) -> str:
        self.ctx.proxy.heal()
        return "healed"


class Slow(Fault):
    kind = "slow"

    def start(self) -> tuple[list[str], str]:
        self.delay = round(self.rng.uniform(0.05, 0.4), 3)
        proxy = self.ctx.proxy
        if self.rng.random() < 0.3:
            proxy.set_delay(self.delay)
            return [str(s) for s in self.ctx.sids], f"all links +{self.delay}s"
        sid = self.ctx.target(self.rng)
        proxy.set_delay(self.delay, src=sid)
        proxy.set_delay(self.delay, dst=sid)
        return [str(sid)], f"links of {sid} +{self.delay}s"

    def stop(self) -> str:
        self.ctx.proxy.set_delay(0.0)
        return "delay 0"


FaultFactory = Callable[[NemesisContext, random.Random], Fault]


class Disk(Fault):
    kind = "disk"
    leader_only = False
    MODES = ("fsync-eio", "write-enospc", "write-eio")

    def start(self) -> tuple[list[str], str]:
        if not self.ctx.disks:
            raise RuntimeError("the disk nemesis needs the members' DiskFaults attached")
        self.sid = self.ctx.target(self.rng, self.leader_only)
        self.mode = self.rng.choice(self.MODES)
        was_leader = self.ctx.mode(self.sid) == "leader"
        self.ctx.disks[self.sid].arm(self.mode)
        return [str(self.sid)], self.mode + (" (leader)" if was_leader else "")

    def stop(self) -> str:
        disk = self.ctx.disks[self.sid]
        injected = disk.injected
        disk.disarm()
        server = self.ctx.ensemble[self.sid]
        if server.running():
            return f"disk works again ({injected} calls failed so far)"
        server.start(wait=False)
        return f"disk works again ({injected} calls failed so far); member restarted"


class DiskLeader(Disk):
    leader_only = True


def uses_disk(name: str) -> bool:
    """Whether the nemesis ``name`` may pick a disk fault (the runner then
    attaches the shim to every member before it starts)."""
    names = list(MIXED) if name == "mixed" else [n.strip() for n in name.split(",")]
    return any(n.startswith("disk") for n in names)


def _one_of(*factories: FaultFactory) -> FaultFactory:
    """A factory that picks one of ``factories`` (seeded) each time."""
    def make(ctx: NemesisContext, rng: random.Random) -> Fault:
        return rng.choice(factories)(ctx, rng)
    return make


def _partition_any(ctx: NemesisContext, rng: random.Random) -> Fault:
    kinds: list[FaultFactory] = [PartitionLeader, PartitionHalves, PartitionOneWay]
    if len(ctx.sids) >= 5:
        kinds.append(PartitionBridge)
    return rng.choice(kinds)(ctx, rng)


def _kill_any(ctx: NemesisContext, rng: random.Random) -> Fault:
    return Kill(ctx, rng)


def _pause_any(ctx: NemesisContext, rng: random.Random) -> Fault:
    return Pause(ctx, rng)


#: The nemesis registry: each name makes one fault per cycle. This is the
#: hook for further faults: a disk-fault nemesis (pyzk/testing/diskfaults.py)
#: is one more entry here, a factory returning a :class:`Fault` whose start
#: and stop act on ``ctx.ensemble``; it then also works in a comma-separated
#: list (``--nemesis kill,disk``). A fault that leaves state behind which
#: :meth:`Nemesis.heal_all` cannot undo (not a proxy setting, not a paused or
#: stopped member) must undo it in its own ``stop``.
FAULTS: Mapping[str, FaultFactory] = MappingProxyType({
    "kill": _kill_any,
    "kill-leader": KillLeader,
    "pause": _pause_any,
    "pause-leader": PauseLeader,
    "partition": _partition_any,
    "partition-leader": PartitionLeader,
    "partition-halves": PartitionHalves,
    "partition-bridge": PartitionBridge,
    "partition-oneway": PartitionOneWay,
    "slow": Slow,
    "disk": Disk,
    "disk-leader": DiskLeader,
})

#: What ``mixed`` chooses from, each cycle.
MIXED: tuple[str, ...] = ("kill", "pause", "partition", "slow", "disk")

#: Every name ``--nemesis`` accepts on its own.
NEMESIS_NAMES: tuple[str, ...] = ("none", "mixed", *FAULTS)


def resolve(name: str, faults: Mapping[str, FaultFactory] = FAULTS) -> FaultFactory | None:
    """The factory for a nemesis name: ``none`` (None), ``mixed``, one name of
    ``faults`` or a comma-separated list of them."""
    if name == "none":
        return None
    names = list(MIXED) if name == "mixed" else [n.strip() for n in name.split(",")]
    unknown = [n for n in names if n not in faults]
    if unknown or not names:
        raise ValueError(f"unknown nemesis {name!r}; known: none, mixed, {', '.join(faults)}")
    picks = [faults[n] for n in names]
    return picks[0] if len(picks) == 1 else _one_of(*picks)


class Nemesis:
    """Runs a seeded fault schedule in its own thread until a deadline."""

    #: quiet time before the first fault (clients connect) and between faults
    FIRST_GAP = (1.0, 2.0)
    GAP = (1.0, 3.0)

    def __init__(self, ctx: NemesisContext, name: str, seed: int,
                 faults: Mapping[str, FaultFactory] = FAULTS) -> None:
        self.ctx = ctx
        self.name = name
        self.factory = resolve(name, faults)
        self.rng = random.Random(seed)
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._active: Fault | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def _event(self, fault: Fault, phase: str, detail: str, at: float | None = None) -> None:
        """Record a start or stop; ``at`` is when it began taking effect."""
        t = self.ctx.clock() if at is None else at
        ev = NemesisEvent(t, fault.kind, phase, list(fault.targets), detail)
        log.info("nemesis %s", ev.describe())
        self.ctx.record(ev)

    def start(self, deadline: float) -> None:
        """Run the schedule until ``deadline`` (a ``ctx.clock()`` time)."""
        if self.factory is None:
            return
        self._thread = threading.Thread(target=self._run, args=(deadline,),
                                        name="nemesis", daemon=True)
        self._thread.start()

    def _sleep_until(self, t: float) -> bool:
        """Wait until clock time ``t``; False if told to stop first."""
        return not self._stop.wait(max(0.0, t - self.ctx.clock()))

    def _run(self, deadline: float) -> None:
        assert self.factory is not None
        try:
            if not self._sleep_until(self.ctx.clock() + self.rng.uniform(*self.FIRST_GAP)):
                return
            while self.ctx.clock() < deadline - 1.0:
                fault = self.factory(self.ctx, self.rng)
                length = fault.duration()
                with self._lock:
                    if self._stop.is_set():
                        return
                    began = self.ctx.clock()
                    fault.targets, detail = fault.start()
                    self._active = fault
                self._event(fault, "start", detail, began)
                self._sleep_until(min(deadline, self.ctx.clock() + length))
                self._end_active()
                if not self._sleep_until(self.ctx.clock() + self.rng.uniform(*self.GAP)):
                    return
        except BaseException as e:  # reported by the runner, which heals anyway
            log.exception("nemesis failed")
            self.error = e

    def _end_active(self) -> None:
        with self._lock:
            fault, self._active = self._active, None
            if fault is None:
                return
            detail = fault.stop()
        self._event(fault, "stop", detail)

    def stop(self) -> None:
        """Stop the schedule and end the active fault (if any)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(60.0)
            if self._thread.is_alive():
                log.error("nemesis thread did not stop")
        self._end_active()

    def heal_all(self) -> list[str]:
        """Undo anything a fault may have left: heal the proxy, SIGCONT every
        member, start every member that is not running. Returns what it did."""
        done = []
        self.ctx.proxy.heal()
        for disk in self.ctx.disks.values():
            if disk.mode != "off":
                disk.disarm()
                done.append("disk works again")
        for sid in self.ctx.sids:
            server = self.ctx.ensemble[sid]
            if server.running():
                self.ctx.signal(sid, signal.SIGCONT)
                if sid in self.ctx.paused:
                    done.append(f"SIGCONT {sid}")
            else:
                server.start(wait=False)
                done.append(f"started {sid}")
        self.ctx.paused.clear()
        self.ctx.down.clear()
        return done
