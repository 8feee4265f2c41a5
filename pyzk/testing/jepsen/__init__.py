"""A Jepsen-style harness for pyzk: faults against a live ensemble, a recorded
history of every client operation, and checkers that judge it.

A run starts a 3- or 5-member ensemble (pyzk, Apache ZooKeeper or a mix)
whose quorum and election traffic goes through a fault proxy, lets kazoo
clients pinned to single members run one workload (register, set,
unique-ids, counter, queue, lock) while a seeded nemesis kills, pauses,
partitions or slows members, heals everything, reads the final state and
checks the history (linearizability of registers, no lost or duplicated
elements, counter bounds, queue and lock safety).

The parts:

* :mod:`.history`: :class:`Op`, :class:`NemesisEvent`, :class:`History`
  (JSON lines on disk, so a failing run can be re-checked and read later);
* :mod:`.checkers`: :func:`check` (history -> :class:`CheckResult`);
* :mod:`.workloads`: what each workload's clients do, op by op;
* :mod:`.nemesis`: the faults and their schedule (``FAULTS`` is the registry
  further faults plug into);
* :mod:`.runner`: :func:`run` one :class:`RunConfig` into a :class:`RunResult`;
* ``python -m pyzk.testing.jepsen``: the command line (docs/JEPSEN.md).

The names below are imported on first use, so importing the package (or
:mod:`.history` alone, for the pure checker tests) does not pull in kazoo,
the servers or the proxy.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyzk.testing.jepsen.checkers import CheckResult, check
    from pyzk.testing.jepsen.history import History, NemesisEvent, Op
    from pyzk.testing.jepsen.nemesis import FAULTS, Nemesis
    from pyzk.testing.jepsen.runner import RunConfig, RunResult, ensemble_kinds, run
    from pyzk.testing.jepsen.workloads import WORKLOADS, Workload

_WHERE = {
    "Op": "history", "NemesisEvent": "history", "History": "history",
    "check": "checkers", "CheckResult": "checkers",
    "WORKLOADS": "workloads", "Workload": "workloads",
    "FAULTS": "nemesis", "Nemesis": "nemesis",
    "run": "runner", "RunConfig": "runner", "RunResult": "runner",
    "ensemble_kinds": "runner",
}

__all__ = ["FAULTS", "WORKLOADS", "CheckResult", "History", "Nemesis", "NemesisEvent", "Op",
           "RunConfig", "RunResult", "Workload", "check", "ensemble_kinds", "run"]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)
