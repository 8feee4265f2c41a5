"""Differential scenarios: the same requests against two servers, compared.

A scenario is a list of steps run in order over one or more named wire
sessions. Running it yields an `Outcome`: per step a normalised result (error
code, zxid, decoded body) and per session the arrival order of replies and
watch events. Normalisation removes only what legitimately differs between
two correct servers: wall-clock times, session ids and passwords (session ids
become the session's name). Everything else, zxids included, must be equal.
"""

from __future__ import annotations

import difflib
import pprint
import time
from dataclasses import dataclass, field
from typing import Any

from pyzk.jute.constants import CreateMode, Err, OpCode, Perms
from pyzk.jute.records import ACL, CreateRequest, Id, Record
from pyzk.testing.wire import (
    ConnectionClosed,
    Event,
    MultiResult,
    Reply,
    WireClient,
    decode_body,
)

_BIG = 1 << 32  # session ids are far above this; small ints are never renamed

OPEN_ACL = [ACL(Perms.ALL, Id("world", "anyone"))]
READ_ACL = [ACL(Perms.READ, Id("world", "anyone"))]
CREATOR_ALL_ACL = [ACL(Perms.ALL, Id("auth", ""))]


def create(path: str, data: bytes = b"", mode: int = CreateMode.PERSISTENT,
           acl: list[Any] | None = None) -> Any:
    """A CreateRequest with the open ACL unless told otherwise."""
    return CreateRequest(path, data, OPEN_ACL if acl is None else acl, int(mode))


@dataclass
class Step:
    """One scenario step; build them with the helper functions below."""

    kind: str
    session: str = ""
    opcode: int | None = None
    request: Any = None
    options: dict[str, Any] = field(default_factory=dict)


def op(session: str, opcode: int, request: Any = None, **options: Any) -> Step:
    """Send a request and wait for its reply (the reply's xid)."""
    return Step("op", session, int(opcode), request, options)


def send(session: str, opcode: int, request: Any = None) -> Step:
    """Send a request without waiting; its reply shows up in the session trace."""
    return Step("send", session, int(opcode), request)


def multi(session: str, ops: list[tuple[int, Any]], read: bool = False) -> Step:
    return Step("multi", session, OpCode.multiRead if read else OpCode.multi, ops)


def connect(session: str, **kw: Any) -> Step:
    """Open a new session (kw as WireClient.connect: session_timeout, ...)."""
    return Step("connect", session, options=kw)


def reconnect(session: str, *, wrong_password: bool = False, **kw: Any) -> Step:
    """Drop the socket and reattach the same session id on a new connection."""
    return Step("reconnect", session, options=dict(kw, wrong_password=wrong_password))


def drop(session: str) -> Step:
    """Close the TCP connection without closing the session."""
    return Step("drop", session)


def close(session: str) -> Step:
    """closeSession."""
    return Step("close", session)


def auth(session: str, scheme: str, credential: bytes) -> Step:
    return Step("auth", session, OpCode.auth, (scheme, credential))


def ping(session: str) -> Step:
    return Step("ping", session, OpCode.ping)


def wait_event(session: str, timeout: float = 10.0) -> Step:
    """Block until the session receives a watch event (or time out)."""
    return Step("wait_event", session, options={"timeout": timeout})


def sleep(seconds: float) -> Step:
    return Step("sleep", options={"seconds": seconds})


def raw(session: str, data: bytes, expect_reply: bool = True) -> Step:
    """Send raw bytes (a whole frame with its length prefix)."""
    return Step("raw", session, request=data, options={"expect_reply": expect_reply})


@dataclass
class Outcome:
    """The normalised result of one scenario run."""

    steps: list[Any]
    traces: dict[str, list[Any]]

    def lines(self) -> list[str]:
        out = []
        for i, s in enumerate(self.steps):
            out.append(f"step {i}: {s!r}")
        for name, tr in sorted(self.traces.items()):
            out.append(f"trace {name}:")
            out.extend(f"    {t!r}" for t in tr)
        return out

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Outcome):
            return NotImplemented
        return self.steps == other.steps and self.traces == other.traces


def side_by_side(a: Outcome, b: Outcome, names: tuple[str, str] = ("apache", "pyzk")) -> str:
    """A unified diff plus both outcomes in full, for assertion messages."""
    diff = difflib.unified_diff(a.lines(), b.lines(), names[0], names[1], lineterm="", n=2)
    full_a = pprint.pformat(a.lines(), width=140)
    full_b = pprint.pformat(b.lines(), width=140)
    return "\n".join(diff) + f"\n--- {names[0]} ---\n{full_a}\n--- {names[1]} ---\n{full_b}"


def assert_same(a: Outcome, b: Outcome, names: tuple[str, str] = ("apache", "pyzk")) -> None:
    if a != b:
        raise AssertionError("outcomes differ:\n" + side_by_side(a, b, names))


class _Normaliser:
    """Turns records into plain, comparable values, hiding times and ids."""

    def __init__(self) -> None:
        self.session_names: dict[int, str] = {}

    def __call__(self, v: Any) -> Any:
        if isinstance(v, Record):
            d = {}
            for f in v.FIELDS:
                x = getattr(v, f)
                if f in ("ctime", "mtime"):
                    d[f] = "<time>" if x > 0 else x
                elif f == "passwd":
                    d[f] = f"<{len(x) if x is not None else None} bytes>"
                else:
                    d[f] = self(x)
            return (type(v).__name__, d)
        if isinstance(v, MultiResult):
            return ("result", v.type, v.err, self(v.record))
        if isinstance(v, (list, tuple)):
            return [self(x) for x in v]
        if isinstance(v, bool):
            return v
        if isinstance(v, int) and abs(v) >= _BIG and v in self.session_names:
            return f"<session {self.session_names[v]}>"
        return v


def _err_name(err: int) -> str | int:
    try:
        return Err(err).name
    except ValueError:
        return err


class ScenarioRunner:
    """Runs steps against one server address and records the outcome."""

    def __init__(self, host: str, port: int, timeout: float = 10.0) -> None:
        self.host = host
        self.port = port
        self.timeout = timeout
        self.clients: dict[str, WireClient] = {}
        self.creds: dict[str, tuple[int, bytes]] = {}
        self.norm = _Normaliser()
        self.traces: dict[str, list[Any]] = {}
        self._step_of: dict[tuple[str, int], int] = {}

    def run(self, steps: list[Step]) -> Outcome:
        results = []
        try:
            for i, st in enumerate(steps):
                results.append(self._run_step(i, st))
            for name in list(self.clients):
                # A ping round trip flushes every event the server sent
                # before answering it.
                results.append(("drain", name, self._safe(name, lambda c: c.ping())))
        finally:
            for c in self.clients.values():
                c.close()
        for name, c in self.clients.items():
            self._record_trace(name, c)
        return Outcome(results, self.traces)

    def _safe(self, name: str, fn: Any) -> Any:
        c = self.clients[name]
        if c.sock is None:
            return "disconnected"
        try:
            r = fn(c)
        except ConnectionClosed:
            c.close()
            return "closed"
        except TimeoutError:
            return "timeout"
        return self._reply(r)

    def _reply(self, r: Reply | Event) -> Any:
        if isinstance(r, Event):
            return ("event", self.norm(r.event), r.zxid)
        body: Any
        try:
            body = decode_body(r.opcode, r.body) if r.opcode is not None else r.body
        except ValueError:
            body = ("undecodable", r.body.hex())
        return (_err_name(r.err), r.zxid, self.norm(body))

    def _record_trace(self, name: str, c: WireClient) -> None:
        tr = self.traces.setdefault(name, [])
        for item in c.trace:
            if isinstance(item, Event):
                tr.append(("event", self.norm(item.event), item.zxid))
            else:
                tr.append(("reply", item.header.xid, _err_name(item.err)))
        c.trace.clear()

    def _client(self, name: str) -> WireClient:
        return self.clients[name]

    def _run_step(self, i: int, st: Step) -> Any:
        k = st.kind
        if k == "sleep":
            time.sleep(st.options["seconds"])
            return ("sleep",)
        if k == "connect":
            if st.session in self.clients:
                self._record_trace(st.session, self.clients[st.session])
                self.clients[st.session].close()
            c = WireClient(self.timeout)
            self.clients[st.session] = c
            try:
                hs = c.connect(self.host, self.port, **st.options)
            except ConnectionClosed:
                c.close()
                return ("connect", st.session, "closed")
            if hs.session_id:
                self.creds[st.session] = (hs.session_id, hs.passwd)
                self.norm.session_names.setdefault(hs.session_id, st.session)
            return ("connect", st.session, self.norm(hs.response), hs.read_only)
        if k == "reconnect":
            sid, pw = self.creds[st.session]
            opts = dict(st.options)
            if opts.pop("wrong_password"):
                pw = bytes(b ^ 0xFF for b in pw)
            old = self.clients[st.session]
            self._record_trace(st.session, old)
            opts.setdefault("last_zxid", old.last_zxid)
            old.close()
            c = WireClient(self.timeout)
            self.clients[st.session] = c
            try:
                hs = c.connect(self.host, self.port, session_id=sid, passwd=pw, **opts)
            except ConnectionClosed:
                c.close()
                return ("reconnect", st.session, "closed")
            return ("reconnect", st.session, self.norm(hs.response), hs.read_only)
        if k == "drop":
            self._record_trace(st.session, self.clients[st.session])
            self.clients[st.session].close()
            return ("drop", st.session)
        c = self._client(st.session)
        if k == "close":
            return ("close", st.session, self._safe(st.session, lambda c: c.close_session()))
        if k == "op":
            return (OpCode(st.opcode).name if st.opcode in OpCode._value2member_map_
                    else st.opcode, st.session,
                    self._safe(st.session, lambda c: c.call_reply(st.opcode, st.request)))
        if k == "multi":
            read = st.opcode == OpCode.multiRead
            return ("multiRead" if read else "multi", st.session,
                    self._safe(st.session, lambda c: c.multi(st.request, read)))
        if k == "send":
            c.send(st.opcode, st.request)
            return ("send", st.session)
        if k == "auth":
            scheme, cred = st.request
            return ("auth", st.session, self._safe(st.session, lambda c: c.auth(scheme, cred)))
        if k == "ping":
            return ("ping", st.session, self._safe(st.session, lambda c: c.ping()))
        if k == "wait_event":
            t = st.options["timeout"]
            return ("wait_event", st.session, self._safe(st.session, lambda c: c.next_event(t)))
        if k == "raw":
            c.send_bytes(st.request)
            if st.options["expect_reply"]:
                return ("raw", st.session, self._safe(st.session, lambda c: c.recv()))
            return ("raw", st.session)
        raise ValueError(f"unknown step kind {k!r}")


def run_scenario(host: str, port: int, steps: list[Step], timeout: float = 10.0) -> Outcome:
    return ScenarioRunner(host, port, timeout).run(steps)
