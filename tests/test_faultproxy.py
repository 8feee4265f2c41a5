"""The fault proxy against a plain echo server: forwarding, blocks, partitions,
drops, delays, cuts, and the rewriting of an ensemble's server.N lines."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyzk.quorum.wire import PROTOCOL_VERSION_V2, encode_frame, encode_initial_message
from pyzk.testing.faultproxy import FaultProxy, election_hello, route_ensemble
from pyzk.testing.servers import Ensemble

pytestmark = pytest.mark.server


class _Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


class _Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


@pytest.fixture
def echo() -> Iterator[tuple[str, int]]:
    srv = _Server(("127.0.0.1", 0), _Echo)
    t = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    t.start()
    yield srv.server_address  # type: ignore[misc]
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def proxy() -> Iterator[FaultProxy]:
    with FaultProxy() as p:
        yield p


def dial(port: int) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=2.0)
    s.settimeout(2.0)
    return s


def roundtrip(s: socket.socket, data: bytes) -> bytes:
    s.sendall(data)
    got = b""
    while len(got) < len(data):
        b = s.recv(65536)
        if not b:
            break
        got += b
    return got


def is_hung_up(s: socket.socket) -> bool:
    """True when the proxy closed or reset the connection."""
    try:
        s.sendall(b"x")
        return s.recv(1) == b""
    except (ConnectionResetError, BrokenPipeError):
        return True


def test_forwards_both_ways(echo, proxy: FaultProxy) -> None:
    port = proxy.add_link(1, 2, echo)
    with dial(port) as s:
        payload = bytes(range(256)) * 1000
        assert roundtrip(s, payload) == payload
        assert proxy.live() == 1
    link = proxy.links[0]
    assert link.accepted == 1 and link.forwarded == 2 * len(payload)


def test_block_cuts_live_connections_and_refuses_new(echo, proxy: FaultProxy) -> None:
    p12 = proxy.add_link(1, 2, echo)
    p31 = proxy.add_link(3, 1, echo)
    p23 = proxy.add_link(2, 3, echo)
    a, b, c = dial(p12), dial(p31), dial(p23)
    assert roundtrip(a, b"a") == b"a" and roundtrip(b, b"b") == b"b"
    proxy.block(1)
    assert is_hung_up(a) and is_hung_up(b)
    assert roundtrip(c, b"still") == b"still"  # 2 <-> 3 does not involve 1
    with dial(p12) as again:
        assert is_hung_up(again)
    assert proxy.links[0].refused >= 1
    proxy.unblock(1)
    with dial(p12) as again:
        assert roundtrip(again, b"back") == b"back"
    for s in (a, b, c):
        s.close()


def test_partition_keeps_only_links_inside_a_group(echo, proxy: FaultProxy) -> None:
    ports = {(i, j): proxy.add_link(i, j, echo) for i in (1, 2, 3) for j in (1, 2, 3) if i != j}
    proxy.partition([1, 2], [3])
    for (i, j), port in ports.items():
        with dial(port) as s:
            if {i, j} == {1, 2}:
                assert roundtrip(s, b"in") == b"in"
            else:
                assert is_hung_up(s), (i, j)
    assert proxy.allowed(1, 2) and not proxy.allowed(2, 3)
    proxy.heal()
    with dial(ports[(3, 1)]) as s:
        assert roundtrip(s, b"healed") == b"healed"


def test_drop_discards_bytes_but_keeps_the_connection(echo, proxy: FaultProxy) -> None:
    port = proxy.add_link(1, 2, echo)
    with dial(port) as s:
        proxy.set_drop(True, src=1)
        s.sendall(b"lost")
        s.settimeout(0.3)
        with pytest.raises(TimeoutError):
            s.recv(10)
        assert proxy.live() == 1 and proxy.links[0].dropped == 4
        proxy.set_drop(False)
        s.settimeout(2.0)
        assert is_hung_up(s)  # its stream has a hole: reset once dropping stops
    with dial(port) as s:
        assert roundtrip(s, b"new") == b"new"
    proxy.isolate_by_dropping(2)
    with dial(port) as s:
        s.sendall(b"void")
        s.settimeout(0.2)
        with pytest.raises(TimeoutError):
            s.recv(10)
        proxy.heal()
        s.settimeout(2.0)
        assert is_hung_up(s)


def test_drop_one_direction(proxy: FaultProxy) -> None:
    """Dropping "up" loses what the dialler sends, "down" what it is sent."""
    with socket.create_server(("127.0.0.1", 0)) as lst:
        port = proxy.add_link(1, 2, lst.getsockname())
        with dial(port) as s:
            peer, _ = lst.accept()
            with peer:
                peer.settimeout(0.3)
                proxy.set_drop(True, direction="up")
                s.sendall(b"ack")
                with pytest.raises(TimeoutError):
                    peer.recv(10)
                peer.sendall(b"proposal")
                assert s.recv(10) == b"proposal"  # the other way still flows
                proxy.set_drop(False, direction="up")
                assert is_hung_up(s)  # the stream lost bytes
        with dial(port) as s:
            peer, _ = lst.accept()
            with peer:
                proxy.set_drop(True, direction="down")
                peer.sendall(b"lost")
                s.settimeout(0.3)
                with pytest.raises(TimeoutError):
                    s.recv(10)
                s.sendall(b"up")
                peer.settimeout(2.0)
                assert peer.recv(10) == b"up"
    with pytest.raises(ValueError):
        proxy.set_drop(True, direction="sideways")


def test_delay_holds_every_chunk_and_keeps_order(echo, proxy: FaultProxy) -> None:
    port = proxy.add_link(1, 2, echo)
    proxy.set_delay(0.15, dst=2)
    with dial(port) as s:
        t0 = time.monotonic()
        s.sendall(b"one")
        s.sendall(b"two")
        got = b""
        while len(got) < 6:
            got += s.recv(10)
        elapsed = time.monotonic() - t0
    assert got == b"onetwo"
    assert elapsed >= 0.29  # delayed on the way there and on the way back
    proxy.set_delay(0.0)
    with dial(port) as s:
        t0 = time.monotonic()
        assert roundtrip(s, b"fast") == b"fast"
        assert time.monotonic() - t0 < 0.25


def test_cut_resets_live_connections_once(echo, proxy: FaultProxy) -> None:
    p12 = proxy.add_link(1, 2, echo, "quorum")
    p13 = proxy.add_link(1, 3, echo, "election")
    a, b = dial(p12), dial(p13)
    assert roundtrip(a, b"1") == b"1" and roundtrip(b, b"2") == b"2"
    assert proxy.cut(tag="quorum") == 1
    assert is_hung_up(a)
    assert roundtrip(b, b"3") == b"3"
    with dial(p12) as again:
        assert roundtrip(again, b"new") == b"new"
    a.close()
    b.close()


def test_a_dead_target_hangs_up_on_the_dialler(proxy: FaultProxy) -> None:
    proxy.connect_patience = 0.2
    with socket.socket() as tmp:
        tmp.bind(("127.0.0.1", 0))
        dead = tmp.getsockname()
    port = proxy.add_link(1, 2, dead)
    with dial(port) as s:
        t0 = time.monotonic()
        assert is_hung_up(s)
        assert time.monotonic() - t0 >= 0.15  # it was given its patience
    assert proxy.links[0].refused == 1


def test_a_target_that_starts_listening_soon_gets_the_dial(proxy: FaultProxy) -> None:
    with socket.socket() as tmp:
        tmp.bind(("127.0.0.1", 0))
        late = tmp.getsockname()
    port = proxy.add_link(1, 2, late)
    with dial(port) as s:
        s.sendall(b"early")  # held until the target listens
        time.sleep(0.3)
        srv = _Server(late, _Echo)
        threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True).start()
        try:
            got = b""
            while len(got) < 5:
                got += s.recv(10)
            assert got == b"early"
        finally:
            srv.shutdown()
            srv.server_close()


def test_half_close_is_forwarded(echo, proxy: FaultProxy) -> None:
    port = proxy.add_link(1, 2, echo)
    with dial(port) as s:
        s.sendall(b"bye")
        s.shutdown(socket.SHUT_WR)
        got = b""
        while b := s.recv(10):
            got += b
    assert got == b"bye"
    deadline = time.monotonic() + 2
    while proxy.live() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proxy.live() == 0


def test_route_ensemble_gives_each_member_its_own_view(tmp_path: Path, proxy: FaultProxy) -> None:
    ens = Ensemble(tmp_path, {1: "pyzk", 2: "pyzk", 3: "pyzk"}, observers=(3,))
    real = {sid: s.extra_cfg[f"server.{sid}"] for sid, s in ens.servers.items()}
    route_ensemble(ens, proxy)
    assert len(proxy.links) == 12
    for lk in proxy.links:
        assert (lk.hello is not None) == (lk.tag == "election")
    for a, s in ens.servers.items():
        assert s.extra_cfg[f"server.{a}"] == real[a]
        for b in ens.servers:
            if a == b:
                continue
            host, q, e = s.extra_cfg[f"server.{b}"].split(":")[:3]
            assert host == "127.0.0.1"
            (ql,) = [lk for lk in proxy.links if lk.port == int(q)]
            (el,) = [lk for lk in proxy.links if lk.port == int(e)]
            assert (ql.src, ql.dst, ql.tag, ql.target[1]) == (a, b, "quorum",
                                                              ens.quorum_ports[b])
            assert (el.src, el.dst, el.tag, el.target[1]) == (a, b, "election",
                                                              ens.election_ports[b])
            assert s.extra_cfg[f"server.{b}"].endswith(":observer") == (b == 3)


@pytest.mark.parametrize("version", [None, -65536, PROTOCOL_VERSION_V2])
def test_election_hello_announces_the_link_back(proxy: FaultProxy, version: int | None) -> None:
    """The dialler's initial message names the proxy's link back to it, so a
    peer dialling back (Apache does, to a smaller sid) goes through the proxy."""
    if version is None:  # the pre-3.5 form: just the sid, left alone
        hello = (7).to_bytes(8, "big")
        expected = hello
    else:
        hello = encode_initial_message(7, [("127.0.0.1", 1111)], version)
        expected = encode_initial_message(7, [("127.0.0.1", 4242)], version)
    frame = encode_frame(b"notification")
    with socket.create_server(("127.0.0.1", 0)) as lst:
        port = proxy.add_link(7, 1, lst.getsockname(), "election")
        proxy.links[0].hello = election_hello(("127.0.0.1", 4242))
        with dial(port) as s:
            s.sendall(hello[:10])  # split inside the message
            time.sleep(0.05)
            s.sendall(hello[10:] + frame)
            peer, _ = lst.accept()
            with peer:
                peer.settimeout(2.0)
                got = b""
                while len(got) < len(expected) + len(frame):
                    got += peer.recv(4096)
    assert got == expected + frame


def test_election_hello_forwards_what_it_cannot_parse(proxy: FaultProxy) -> None:
    junk = (-5).to_bytes(8, "big", signed=True) + b"rest"
    with socket.create_server(("127.0.0.1", 0)) as lst:
        port = proxy.add_link(7, 1, lst.getsockname(), "election")
        proxy.links[0].hello = election_hello(("127.0.0.1", 4242))
        with dial(port) as s:
            s.sendall(junk)
            peer, _ = lst.accept()
            with peer:
                peer.settimeout(2.0)
                got = b""
                while len(got) < len(junk):
                    got += peer.recv(4096)
    assert got == junk


def test_a_link_never_listens_on_a_port_it_must_avoid(proxy: FaultProxy) -> None:
    first = proxy.add_link(1, 2, ("127.0.0.1", 1))
    proxy.links[0].server.close()  # type: ignore[union-attr]  # free it for the kernel again
    ports = {proxy.add_link(1, 2, ("127.0.0.1", 1), avoid={first}) for _ in range(20)}
    assert first not in ports
    with pytest.raises(OSError, match="no free port"):
        proxy.add_link(1, 2, ("127.0.0.1", 1), avoid=range(65536))
