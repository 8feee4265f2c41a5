"""SessionMoved: once a session has moved to another server, a write still
sent through the old server is refused and that connection is closed without
an answer, as Apache does (the leader tracks each session's owner)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pyzk.jute import records as R
from pyzk.jute.constants import OpCode
from pyzk.testing.servers import Ensemble
from pyzk.testing.wire import ConnectionClosed, connect
from tests.ensemble.helpers import SESSION_CFG, require_reference_for

pytestmark = [pytest.mark.ensemble, pytest.mark.reference]

OPEN = [R.ACL(31, R.Id("world", "anyone"))]


def _scenario(ens: Ensemble) -> tuple[str, bool, int]:
    leader = ens.wait_leader()
    first, second = [s for s in ens.servers if s != leader][:2]
    a_host, a_port = ens[first].address.split(":")
    b_host, b_port = ens[second].address.split(":")
    old = connect(a_host, int(a_port))
    assert old.call_reply(OpCode.create, R.CreateRequest("/before", b"", OPEN, 0)).err == 0
    sid = old.session_id
    passwd = old.handshake.passwd
    # The same session connects through the second follower: it moves there.
    moved = connect(b_host, int(b_port), session_id=sid, passwd=passwd)
    assert moved.session_id == sid
    assert moved.call_reply(OpCode.exists, R.ExistsRequest("/before", False)).err == 0
    # A write through the old connection now.
    old.send(OpCode.create, R.CreateRequest("/stale", b"", OPEN, 0))
    try:
        r = old.recv()
        outcome = f"reply {r.err}"
    except ConnectionClosed:
        outcome = "closed"
    # The moved session keeps working; the stale write was not applied.
    stale = moved.call_reply(OpCode.exists, R.ExistsRequest("/stale", False)).err == 0
    r = moved.call_reply(OpCode.create, R.CreateRequest("/after", b"", OPEN, 0))
    old.close()
    moved.close()
    return outcome, stale, r.err


@pytest.mark.timeout(120)
@pytest.mark.parametrize("kind", ["pyzk", "apache"])
def test_write_through_the_old_server_after_a_move(tmp_path: Path, kind: str) -> None:
    require_reference_for(kind)
    ens = Ensemble(tmp_path, {1: kind, 2: kind, 3: kind}, extra_cfg=SESSION_CFG)
    with ens:
        assert _scenario(ens) == ("closed", False, 0)
