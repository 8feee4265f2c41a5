"""The recorded history of a Jepsen-style run: operations, faults, and metadata.

The runner (``runner.py``) appends one :class:`Op` per client operation and one
:class:`NemesisEvent` per fault it starts or stops; the checkers
(``checkers.py``) judge the result. Keeping the record a plain, JSON-lines
file means a failing run can be kept, re-checked after a checker fix, and read
by a human (one op per line) without the servers that produced it.

File format (one JSON object per line)::

    {"meta": {...}}                        first line: workload, nemesis, seed, ...
    {"op": {"index": 0, "process": 3, ...}}
    {"nemesis": {"time": 1.5, "kind": "partition", ...}}

Ops and nemesis events may interleave in any order; :meth:`History.load` keeps
each list in file order. Unknown fields in a line are ignored on load (so an
older checker can read a newer file), and missing optional fields take their
defaults.

Times are seconds since the start of the run (``time.monotonic`` based). An
``info`` op (outcome unknown) has ``complete = None``: for the checkers it may
take effect at any time after its invocation, or never.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

OK = "ok"
FAIL = "fail"
INFO = "info"
OP_TYPES = (OK, FAIL, INFO)


@dataclass(slots=True)
class Op:
    """One client operation: its invocation, and how (and when) it ended."""

    index: int  # position in the history, in invocation order (0..)
    process: int  # logical client; one op at a time per process (retired after info)
    node: str  # the server this client is pinned to, e.g. "1"
    f: str  # operation name, per workload
    key: str | None  # register key, else None
    value: Any  # argument (JSON-serialisable)
    type: str  # "ok" | "fail" | "info"
    invoke: float  # seconds since run start
    complete: float | None  # seconds since run start; None for "info"
    result: Any = None  # what an ok op returned (JSON-serialisable)
    error: str | None = None
    session: int | None = None  # ZooKeeper session id of the client, when known
    zxid: int | None = None  # a zxid the op observed (czxid/mzxid), when known

    @property
    def ok(self) -> bool:
        return self.type == OK

    @property
    def failed(self) -> bool:
        return self.type == FAIL

    @property
    def info(self) -> bool:
        return self.type == INFO

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Op:
        return cls(**{k: v for k, v in d.items() if k in _OP_FIELDS})

    def describe(self) -> str:
        """One readable line: ``#12 p3@n1 ok   write r0 7 -> 4  [1.203, 1.250]``."""
        end = "..." if self.complete is None else f"{self.complete:.3f}"
        parts = [f"#{self.index}", f"p{self.process}@n{self.node}", f"{self.type:<4}", self.f]
        if self.key is not None:
            parts.append(str(self.key))
        if self.value is not None:
            parts.append(json.dumps(self.value))
        if self.type == OK and (self.result is not None or self.value is None):
            parts.append("-> " + json.dumps(self.result))  # "-> null": found nothing
        if self.error:
            parts.append(f"({self.error})")
        if self.session is not None:
            parts.append(f"s=0x{self.session:x}")
        if self.zxid is not None:
            parts.append(f"zxid=0x{self.zxid:x}")
        parts.append(f"[{self.invoke:.3f}, {end}]")
        return " ".join(parts)


_OP_FIELDS = frozenset(f.name for f in dataclasses.fields(Op))


@dataclass(slots=True)
class NemesisEvent:
    """A fault started or stopped by the nemesis (kept for reading a history)."""

    time: float
    kind: str  # e.g. "partition", "kill", "pause", "clock", "drop"
    phase: str  # "start" | "stop"
    targets: list[str]
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NemesisEvent:
        return cls(**{k: v for k, v in d.items() if k in _NEMESIS_FIELDS})

    def describe(self) -> str:
        targets = ",".join(self.targets)
        extra = f" {self.detail}" if self.detail else ""
        return f"@{self.time:.3f} nemesis {self.kind} {self.phase} [{targets}]{extra}"


_NEMESIS_FIELDS = frozenset(f.name for f in dataclasses.fields(NemesisEvent))


@dataclass
class History:
    """A whole run: metadata (workload, nemesis, seed, kinds, ...), ops, faults."""

    meta: dict[str, Any] = field(default_factory=dict)
    ops: list[Op] = field(default_factory=list)
    nemesis: list[NemesisEvent] = field(default_factory=list)

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the history as JSON lines (meta first, then ops, then faults)."""
        with open(path, "w", encoding="utf-8") as fh:
            for line in self.lines():
                fh.write(line)
                fh.write("\n")

    def lines(self) -> Iterator[str]:
        yield json.dumps({"meta": self.meta}, sort_keys=True)
        for op in self.ops:
            yield json.dumps({"op": op.to_dict()})
        for ev in self.nemesis:
            yield json.dumps({"nemesis": ev.to_dict()})

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> History:
        with open(path, encoding="utf-8") as fh:
            return cls.from_lines(fh)

    @classmethod
    def from_lines(cls, lines: Iterable[str]) -> History:
        meta: dict[str, Any] = {}
        ops: list[Op] = []
        nemesis: list[NemesisEvent] = []
        for lineno, raw in enumerate(lines, 1):
            line = raw.strip()
            if not line:
                continue
            obj = json.loads(line)
            if "op" in obj:
                ops.append(Op.from_dict(obj["op"]))
            elif "nemesis" in obj:
                nemesis.append(NemesisEvent.from_dict(obj["nemesis"]))
            elif "meta" in obj:
                meta.update(obj["meta"])
            else:
                raise ValueError(f"history line {lineno}: no 'meta', 'op' or 'nemesis'")
        return cls(meta=meta, ops=ops, nemesis=nemesis)

    def by_key(self) -> dict[str | None, list[Op]]:
        """The ops grouped by key, each group in history order."""
        groups: dict[str | None, list[Op]] = {}
        for op in self.ops:
            groups.setdefault(op.key, []).append(op)
        return groups

    def counts(self) -> dict[str, int]:
        """How many ops ended ok / fail / info."""
        c = dict.fromkeys(OP_TYPES, 0)
        for op in self.ops:
            c[op.type] = c.get(op.type, 0) + 1
        return c
