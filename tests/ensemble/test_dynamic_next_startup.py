"""A ``zoo.cfg.dynamic.next`` left over at start-up, as Apache's QuorumPeerMain handles it.

A server stopped while a reconfig was in flight keeps the proposed
configuration in ``<zoo.cfg>.dynamic.next``. On start, Apache's
QuorumPeerConfig reads it as the lastSeenQuorumVerifier and
QuorumPeerMain.runFromConfig gives it to the peer
(setLastSeenQuorumVerifier(qv, false): not written back, ignored when
reconfigEnabled is off), so the election counts the proposed voters too
and the election port knows the new members. The file stays until the
configuration is committed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from pyzk.shell.configfile import load_config
from pyzk.shell.quorumpeer import QuorumPeer
from tests.ensemble.test_election_shell import FakeHost

pytestmark = pytest.mark.server

CURRENT = (
    "server.1=127.0.0.1:12881:13881:participant;127.0.0.1:12181\n"
    "server.2=127.0.0.1:12882:13882:participant;127.0.0.1:12182\n"
    "server.3=127.0.0.1:12883:13883:participant;127.0.0.1:12183\n"
)
NEXT = CURRENT + "server.4=127.0.0.1:12884:13884:participant;127.0.0.1:12184\nversion=200000007\n"


def _config(tmp_path: Path, reconfig: bool, next_text: str | None) -> str:
    data = tmp_path / "data"
    (data / "version-2").mkdir(parents=True, exist_ok=True)
    (data / "myid").write_text("1")
    (tmp_path / "zoo.cfg.dynamic.100000000").write_text(CURRENT)
    cfg = tmp_path / "zoo.cfg"
    cfg.write_text(f"tickTime=200\ninitLimit=5\nsyncLimit=2\ndataDir={data}\n"
                   f"reconfigEnabled={'true' if reconfig else 'false'}\n"
                   f"dynamicConfigFile={tmp_path / 'zoo.cfg.dynamic.100000000'}\n")
    if next_text is not None:
        (tmp_path / "zoo.cfg.dynamic.next").write_text(next_text)
    return str(cfg)


def test_leftover_next_file_is_the_last_seen_configuration(tmp_path: Path) -> None:
    path = _config(tmp_path, True, NEXT)
    before = (tmp_path / "zoo.cfg.dynamic.next").read_bytes()
    peer = QuorumPeer(load_config(path), FakeHost())
    assert peer.verifier.version == 0x100000000 and set(peer.verifier.voting) == {1, 2, 3}
    assert peer.last_seen.version == 0x200000007
    assert set(peer.last_seen.voting) == {1, 2, 3, 4}
    assert peer.fle.last_seen is peer.last_seen  # the election counts the proposed voters
    assert peer.cnx.peers[4] == ("127.0.0.1", 13884)  # connectNewPeers
    # not written back, and the committed configuration is untouched
    assert (tmp_path / "zoo.cfg.dynamic.next").read_bytes() == before
    assert sorted(p.name for p in tmp_path.glob("zoo.cfg.dynamic.*")) == [
        "zoo.cfg.dynamic.100000000", "zoo.cfg.dynamic.next"]


def test_next_file_is_ignored_without_reconfig(tmp_path: Path) -> None:
    peer = QuorumPeer(load_config(_config(tmp_path, False, NEXT)), FakeHost())
    assert peer.last_seen is peer.verifier and 4 not in peer.cnx.peers


def test_no_next_file(tmp_path: Path) -> None:
    peer = QuorumPeer(load_config(_config(tmp_path, True, None)), FakeHost())
    assert peer.last_seen is peer.verifier and peer.fle.last_seen is None
