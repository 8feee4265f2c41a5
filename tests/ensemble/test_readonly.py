"""Read-only mode: a member cut off from its quorum keeps serving reads.

With ``-Dreadonlymode.enabled=true`` (SERVER_JVMFLAGS, as Apache takes it) a
member whose election has not ended within max(2 s, tickTime) serves
read-only clients: kazoo's ``read_only=True`` client connects and reads,
writes fail with NotReadOnly, isro says ``ro`` and srvr ``Mode: read-only``;
other clients are turned away. Once the quorum is back the member is a normal
follower or leader again. Each scenario runs on pyzk and, when installed, on
Apache, and the raw handshakes are compared byte for byte where they are
deterministic.
"""

from __future__ import annotations

import socket
import struct
from pathlib import Path

import pytest
from kazoo.exceptions import NotReadOnlyCallError
from kazoo.protocol.states import KeeperState

from pyzk.jute.records import ConnectRequest, ConnectResponse
from pyzk.testing.servers import Ensemble
from tests.ensemble.helpers import (
    SESSION_CFG,
    client,
    ensemble_with_flags,
    require_reference_for,
    wait_for_slow,
)

pytestmark = [pytest.mark.ensemble, pytest.mark.reference]

_LEN = struct.Struct(">i")
RO_FLAGS = ["-Dreadonlymode.enabled=true"]


def handshake(address: str, *, read_only: bool | None,
              session_id: int = 0) -> tuple[str, bytes]:
    """One raw ConnectRequest: ("closed", b"") when the server hangs up,
    else ("frame", the reply frame's bytes)."""
    host, port = address.split(":")
    body = ConnectRequest(0, 0, 30000, session_id, b"\0" * 16).to_bytes()
    if read_only is not None:
        body += b"\1" if read_only else b"\0"
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(_LEN.pack(len(body)) + body)
        buf = b""
        try:
            while len(buf) < 4 or len(buf) < 4 + _LEN.unpack_from(buf)[0]:
                chunk = s.recv(4096)
                if not chunk:
                    break
                buf += chunk
        except ConnectionResetError:
            pass
    if len(buf) < 4:
        return "closed", b""
    return "frame", buf[4 : 4 + _LEN.unpack_from(buf)[0]]


def _ensemble(tmp_path: Path, kind: str, extra: dict[str, str]) -> Ensemble:
    return ensemble_with_flags(tmp_path / kind, {1: kind, 2: kind, 3: kind}, RO_FLAGS,
                               tick_time=500, init_limit=4, sync_limit=2,
                               extra_cfg={**SESSION_CFG, **extra})


def _kinds() -> list[str]:
    return ["pyzk", "apache"]


@pytest.mark.parametrize("kind", _kinds())
def test_survivor_serves_read_only_clients(tmp_path: Path, kind: str) -> None:
    require_reference_for(kind)
    ens = _ensemble(tmp_path, kind, {"localSessionsEnabled": "true"})
    with ens:
        leader = ens.wait_leader()
        survivor = next(s for s in ens.servers if s != leader)
        with client(ens[survivor].address, read_only=True) as zk:
            zk.create("/ro", b"before the partition")
            zk.sync("/")
        assert ens[survivor].four_letter("isro") == "rw"
        others = [s for s in ens.servers if s != survivor]
        for sid in others:
            ens[sid].kill()
        wait_for_slow(lambda: ens.mode(survivor) == "read-only", what="read-only mode")
        assert ens[survivor].four_letter("isro") == "ro"
        assert "READ-ONLY mode; serving only read-only clients" in ens[survivor].four_letter("srvr")

        # only clients that asked for read-only service are served
        assert handshake(ens[survivor].address, read_only=False) == ("closed", b"")
        assert handshake(ens[survivor].address, read_only=None) == ("closed", b"")
        state, frame = handshake(ens[survivor].address, read_only=True)
        assert state == "frame"
        rsp, pos = ConnectResponse.decode(frame, 0)
        assert rsp.sessionId != 0 and frame[pos:] == b"\1"

        with client(ens[survivor].address, read_only=True) as zk:
            assert zk.client_state == KeeperState.CONNECTED_RO
            data, stat = zk.get("/ro")
            assert data == b"before the partition"
            assert zk.exists("/ro").version == stat.version
            assert "ro" in zk.get_children("/")
            with pytest.raises(NotReadOnlyCallError):
                zk.create("/ro/new", b"x")
            with pytest.raises(NotReadOnlyCallError):
                zk.set("/ro", b"y")
            with pytest.raises(NotReadOnlyCallError):
                zk.delete("/ro")
            # reads still work after the refused writes
            assert zk.get("/ro")[0] == b"before the partition"

        for sid in others:
            ens[sid].start(wait=False)
        wait_for_slow(lambda: ens.mode(survivor) in ("leader", "follower"), timeout=60,
                      what="the survivor to rejoin")
        assert ens[survivor].four_letter("isro") == "rw"
        ens.wait_leader(timeout=60)
        with client(ens[survivor].address, read_only=True) as zk:
            wait_for_slow(lambda: zk.client_state == KeeperState.CONNECTED, what="read-write")
            zk.set("/ro", b"after")
            assert zk.get("/ro")[0] == b"after"


@pytest.mark.parametrize("kind", _kinds())
def test_read_only_without_local_sessions(tmp_path: Path, kind: str) -> None:
    """Without localSessionsEnabled a new session is refused with a NotReadOnly
    reply header in place of the ConnectResponse (Apache's ReadOnlyRequestProcessor)."""
    require_reference_for(kind)
    ens = _ensemble(tmp_path, kind, {})
    with ens:
        leader = ens.wait_leader()
        survivor = next(s for s in ens.servers if s != leader)
        for sid in ens.servers:
            if sid != survivor:
                ens[sid].kill()
        wait_for_slow(lambda: ens.mode(survivor) == "read-only", what="read-only mode")
        state, frame = handshake(ens[survivor].address, read_only=True)
        assert state == "frame"
        xid, _zxid, err = struct.unpack(">iqi", frame)
        assert (xid, err) == (0, -119)
