"""The test harness itself: process control, the wire client, normalisation.

Most of these run without Java against tiny fake servers, so a harness bug
shows up here rather than as a confusing differential failure. The last
tests use Apache (skipped without it) to prove that two fresh Apache servers
give equal outcomes, i.e. normalisation hides exactly what differs.
"""

from __future__ import annotations

import socket
import struct
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyzk.jute import records as R
from pyzk.jute.constants import CreateMode, EventType, OpCode
from pyzk.testing import scenario as S
from pyzk.testing.servers import (
    ApacheServer,
    ServerError,
    ServerProcess,
    four_letter,
    free_port,
    require_reference,
)
from pyzk.testing.wire import (
    ConnectionClosed,
    MultiResult,
    WireClient,
    decode_body,
    decode_multi,
    encode_multi,
)

LEN = struct.Struct(">i")

# A stand-in server: answers any ConnectRequest as Apache answers a bad
# reconnect (invalid session), "ruok" with "imok", then closes.
FAKE_SERVER = r"""
import socket, struct, sys, threading
port = int(sys.argv[1])
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", port)); s.listen(16)
print("fake listening", flush=True)
def serve(c):
    with c:
        head = c.recv(4)
        if head == b"ruok":
            c.sendall(b"imok"); return
        n = struct.unpack(">i", head)[0]
        while n > 0:
            n -= len(c.recv(n))
        body = struct.pack(">iiq", 0, 0, 0) + struct.pack(">i", 16) + bytes(16) + b"\0"
        c.sendall(struct.pack(">i", len(body)) + body)
while True:
    c, _ = s.accept()
    threading.Thread(target=serve, args=(c,), daemon=True).start()
"""


class FakeServer(ServerProcess):
    kind = "fake"

    def command(self) -> list[str]:
        return [sys.executable, "-c", FAKE_SERVER, str(self.port)]


class DeadServer(ServerProcess):
    kind = "dead"

    def command(self) -> list[str]:
        return [sys.executable, "-c", "import sys; print('boom'); sys.exit(3)"]


@pytest.mark.server
def test_server_process_lifecycle(tmp_path: Path) -> None:
    srv = FakeServer(tmp_path / "d", extra_cfg={"tickTime": "500", "foo": "bar"})
    with srv:
        assert srv.running() and srv.pid
        cfg = srv.cfg_path.read_text().splitlines()
        assert "tickTime=500" in cfg and "foo=bar" in cfg
        assert f"clientPort={srv.port}" in cfg and "4lw.commands.whitelist=*" in cfg
        assert f"dataDir={srv.data_dir}" in cfg
        assert srv.rss_bytes() > 1_000_000
        assert four_letter(srv.host, srv.port, "ruok") == "imok"
        pid = srv.pid
        srv.restart()
        assert srv.pid != pid and srv.running()
        srv.kill()
        assert not srv.running() and srv.pid is None
        srv.start()
    assert not srv.running()
    assert "fake listening" in srv.log_path.read_text()


@pytest.mark.server
def test_server_that_dies_reports_its_log(tmp_path: Path) -> None:
    srv = DeadServer(tmp_path / "d")
    with pytest.raises(ServerError, match="exited with 3") as ei:
        srv.start(timeout=10)
    assert "boom" in str(ei.value)
    assert not srv.running()


@pytest.mark.server
def test_server_never_ready_is_killed(tmp_path: Path) -> None:
    class Silent(ServerProcess):
        def command(self) -> list[str]:
            return [sys.executable, "-c", "import time; time.sleep(60)"]

    srv = Silent(tmp_path / "d")
    with pytest.raises(ServerError, match="not ready"):
        srv.start(timeout=0.5)
    assert not srv.running()


@pytest.mark.server
def test_free_port_is_bindable() -> None:
    p = free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", p))


# --- wire client against a scripted peer ---------------------------------


class ScriptedPeer:
    """A one-connection server that answers the n-th frame it receives (the
    handshake is the 0th) with the n-th list of frames in ``script``;
    "close" instead of a frame closes the connection."""

    def __init__(self) -> None:
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(1)
        self.port = self.lsock.getsockname()[1]
        self.script: list[list] = []
        self.received: list[bytes] = []

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True).start()

    def _recv_exact(self, c: socket.socket, n: int) -> bytes | None:
        buf = b""
        while len(buf) < n:
            b = c.recv(n - len(buf))
            if not b:
                return None
            buf += b
        return buf

    def _run(self) -> None:
        c, _ = self.lsock.accept()
        with c:
            for frames in self.script:
                head = self._recv_exact(c, 4)
                if head is None:
                    return
                body = self._recv_exact(c, LEN.unpack(head)[0])
                self.received.append(body or b"")
                for f in frames:
                    if f == "close":
                        return
                    c.sendall(LEN.pack(len(f)) + f)


@pytest.fixture
def peer() -> Iterator[ScriptedPeer]:
    p = ScriptedPeer()
    yield p
    p.lsock.close()


def reply(xid: int, zxid: int, err: int, body: bytes = b"") -> bytes:
    return R.ReplyHeader(xid, zxid, err).to_bytes() + body


def event(etype: int, path: str) -> bytes:
    return reply(-1, -1, 0, R.WatcherEvent(etype, 3, path).to_bytes())


@pytest.mark.server
def test_wire_handshake_events_and_order(peer: ScriptedPeer) -> None:
    resp = R.ConnectResponse(0, 4000, 0x1234_0000_0001, b"p" * 16).to_bytes()
    stat = R.Stat(2, 2, 1, 1, 0, 0, 0, 0, 1, 0, 2)
    peer.script += [
        [resp + b"\x01"],
        [event(EventType.NodeDataChanged, "/a"),
         reply(1, 5, 0, R.SetDataResponse(stat).to_bytes())],
        [reply(-2, 5, 0)],
        [reply(2, 5, -101)],
        ["close"],
    ]
    peer.start()
    c = WireClient(timeout=5)
    hs = c.connect("127.0.0.1", peer.port, session_timeout=4000, last_zxid=7, read_only=True)
    assert hs.session_id == 0x1234_0000_0001 and hs.timeout == 4000 and hs.read_only is True
    req = R.ConnectRequest.from_bytes(peer.received[0])
    assert (req.lastZxidSeen, req.timeOut) == (7, 4000) and peer.received[0][-1:] == b"\x01"
    r = c.call_reply(OpCode.setData, R.SetDataRequest("/a", b"x", -1))
    assert r.err == 0 and r.decode().stat == stat
    assert [type(t).__name__ for t in c.trace] == ["Event", "Reply"]
    assert c.next_event(0.1).as_tuple == (EventType.NodeDataChanged, 3, "/a")
    assert c.ping().header.xid == -2
    ping_hdr = R.RequestHeader.from_bytes(peer.received[2])
    assert (ping_hdr.xid, ping_hdr.type) == (-2, OpCode.ping)
    hdr, body = c.call(OpCode.exists, R.ExistsRequest("/nope", False))
    assert hdr.err == -101 and body == b""
    assert c.last_zxid == 5
    with pytest.raises(ConnectionClosed):
        c.call(OpCode.exists, R.ExistsRequest("/x", False))


@pytest.mark.server
def test_wire_old_client_handshake_has_no_readonly_byte(peer: ScriptedPeer) -> None:
    resp = R.ConnectResponse(0, 0, 0, bytes(16)).to_bytes()
    peer.script += [[resp]]
    peer.start()
    c = WireClient(timeout=5)
    hs = c.connect("127.0.0.1", peer.port, read_only=None)
    assert hs.read_only is None and hs.session_id == 0
    assert len(peer.received[0]) == len(R.ConnectRequest(0, 0, 0, 0, bytes(16)).to_bytes())
    c.close()


@pytest.mark.pure
def test_multi_codec_round_trip() -> None:
    ops = [
        (OpCode.check, R.CheckVersionRequest("/a", 1)),
        (OpCode.create, S.create("/a/b", b"d", CreateMode.EPHEMERAL)),
        (OpCode.delete, R.DeleteRequest("/c", -1)),
    ]
    raw = encode_multi(ops)
    pos = 0
    seen = []
    while True:
        h, pos = R.MultiHeader.decode(raw, pos)
        if h.done:
            assert (h.type, h.err) == (-1, -1)
            break
        assert h.err == -1 and not h.done
        cls = {OpCode.check: R.CheckVersionRequest, OpCode.create: R.CreateRequest,
               OpCode.delete: R.DeleteRequest}[h.type]
        rec, pos = cls.decode(raw, pos)
        seen.append((h.type, rec))
    assert seen == ops and pos == len(raw)
    stat = R.Stat(*range(11))
    resp = bytearray()
    for t, err, rec in [(OpCode.create2, 0, R.Create2Response("/x", stat)),
                        (OpCode.delete, 0, None), (OpCode.check, 0, None),
                        (OpCode.error, -101, R.ErrorResponse(-101))]:
        R.MultiHeader(t, False, err).encode(resp)
        if rec is not None:
            rec.encode(resp)
    R.MultiHeader(-1, True, -1).encode(resp)
    out = decode_multi(bytes(resp))
    assert out == [MultiResult(OpCode.create2, 0, R.Create2Response("/x", stat)),
                   MultiResult(OpCode.delete, 0), MultiResult(OpCode.check, 0),
                   MultiResult(OpCode.error, -101, R.ErrorResponse(-101))]
    assert decode_body(OpCode.multi, bytes(resp)) == out
    assert decode_body(OpCode.check, R.SetDataResponse(stat).to_bytes()).stat == stat
    assert decode_body(OpCode.delete, b"") is None
    with pytest.raises(ValueError):
        decode_body(OpCode.delete, b"\0")


# --- normalisation --------------------------------------------------------


@pytest.mark.pure
def test_normaliser_masks_times_and_names_sessions() -> None:
    n = S._Normaliser()
    sid = 0x1000_0ABC_0000_0001
    n.session_names[sid] = "alice"
    st = R.Stat(2, 3, 1700000000000, 1700000000123, 1, 0, 0, sid, 4, 0, 2)
    out = n(R.GetDataResponse(b"data", st))
    d = out[1]["stat"][1]
    assert d["ctime"] == d["mtime"] == "<time>"
    assert d["ephemeralOwner"] == "<session alice>"
    assert d["czxid"] == 2 and d["mzxid"] == 3 and out[1]["data"] == b"data"
    zero = n(R.Stat())[1]
    assert zero["ctime"] == 0 and zero["ephemeralOwner"] == 0
    # An unknown big id is kept as is, so a stray id still shows as a diff.
    assert n(0x2000_0000_0000_0001) == 0x2000_0000_0000_0001
    assert n(R.ConnectResponse(0, 1, sid, b"x" * 16))[1]["passwd"] == "<16 bytes>"


@pytest.mark.pure
def test_assert_same_reports_both_sides() -> None:
    a = S.Outcome([("create", "a", ("OK", 2, None))], {"a": [("reply", 1, "OK")]})
    b = S.Outcome([("create", "a", ("NONODE", 2, None))], {"a": [("reply", 1, "NONODE")]})
    S.assert_same(a, S.Outcome(list(a.steps), dict(a.traces)))
    with pytest.raises(AssertionError) as ei:
        S.assert_same(a, b)
    msg = str(ei.value)
    assert "--- apache" in msg and "+++ pyzk" in msg and "NONODE" in msg


# --- against Apache ---------------------------------------------------------

SCENARIO = [
    S.connect("a"),
    S.connect("b"),
    S.op("a", OpCode.create, S.create("/n", b"1")),
    S.op("a", OpCode.create, S.create("/n/e", b"", CreateMode.EPHEMERAL)),
    S.op("b", OpCode.getData, R.GetDataRequest("/n/e", True)),
    S.op("b", OpCode.setData, R.SetDataRequest("/n", b"2", -1)),
    S.op("a", OpCode.delete, R.DeleteRequest("/n/e", -1)),
    S.op("a", OpCode.exists, R.ExistsRequest("/n", False)),
]


@pytest.mark.reference
def test_two_fresh_apache_servers_give_equal_outcomes(tmp_path: Path) -> None:
    require_reference()
    outcomes = []
    for i in range(2):
        with ApacheServer(tmp_path / f"a{i}") as srv:
            outcomes.append(S.run_scenario(srv.host, srv.port, SCENARIO))
    S.assert_same(outcomes[0], outcomes[1], ("apache", "apache"))
    o = outcomes[0]
    assert o.steps[2][2] == ("OK", 3, ("CreateResponse", {"path": "/n"}))
    assert o.steps[3][2][0] == "OK"
    owner = o.steps[4][2][2][1]["stat"][1]["ephemeralOwner"]
    assert owner == "<session a>"
    assert ("event", ("WatcherEvent", {"type": 2, "state": 3, "path": "/n/e"}), -1) in o.traces["b"]


@pytest.mark.reference
def test_apache_first_session_is_zxid_one_after_readiness_probe(tmp_path: Path) -> None:
    require_reference()
    with ApacheServer(tmp_path / "a") as srv:
        c = WireClient()
        c.connect(srv.host, srv.port)
        assert c.ping().zxid == 1
        c.close()


@pytest.mark.pure
def test_a_missing_reference_tool_skips_or_fails(monkeypatch, tmp_path) -> None:
    """zkCli.sh / cli_mt tests skip on a laptop without them and fail under CI."""
    from pyzk.testing import servers

    monkeypatch.setattr(servers, "apache_available", lambda: True)
    missing = str(tmp_path / "cli_mt")
    monkeypatch.delenv("PYZK_REQUIRE_REFERENCE", raising=False)
    with pytest.raises(pytest.skip.Exception, match="cli_mt is not installed"):
        servers.require_reference_tool(missing, "cli_mt")
    monkeypatch.setenv("PYZK_REQUIRE_REFERENCE", "1")
    with pytest.raises(pytest.fail.Exception, match="cli_mt is not installed"):
        servers.require_reference_tool(missing, "cli_mt")
    tool = tmp_path / "tool"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    servers.require_reference_tool(str(tool), "tool")  # present: no skip, no failure
