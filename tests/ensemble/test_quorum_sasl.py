"""Quorum SASL (DIGEST-MD5) in real ensembles: pyzk alone, and mixed with
Apache both ways, with authentication required; a member with the wrong
password kept out; the rolling-upgrade settings (enableSasl without
require) next to a member with quorum SASL off; bad auth packets on both
quorum ports. JAAS files are written at run time."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from pyzk.quorum.auth import MAGIC
from pyzk.quorum.wire import encode_initial_message
from pyzk.testing.servers import Ensemble, wait_for
from tests.ensemble.helpers import client, require_reference_for

PASSWORD = "quorum-s3cret"

JAAS = """
QuorumServer {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_learner="%(server)s";
};
QuorumLearner {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="learner"
    password="%(learner)s";
};
"""

ENABLED = {"quorum.auth.enableSasl": "true"}
REQUIRED = {**ENABLED, "quorum.auth.learnerRequireSasl": "true",
            "quorum.auth.serverRequireSasl": "true"}
LEARNER_ONLY = {**ENABLED, "quorum.auth.learnerRequireSasl": "true"}


def _ensemble(tmp: Path, kinds: dict[int, str], cfgs: dict[int, dict[str, str]],
              learner_passwords: dict[int, str] | None = None) -> Ensemble:
    """An ensemble whose member ``sid`` gets ``cfgs[sid]`` and a JAAS file of
    its own (the learner password ``learner_passwords.get(sid)``)."""
    require_reference_for(*kinds.values())
    tmp.mkdir(parents=True, exist_ok=True)
    ens = Ensemble(tmp, kinds)
    for sid, srv in ens.servers.items():
        srv.extra_cfg.update(cfgs.get(sid, {}))
        pw = (learner_passwords or {}).get(sid, PASSWORD)
        jaas = tmp / f"jaas{sid}.conf"
        jaas.write_text(JAAS % {"server": PASSWORD, "learner": pw})
        srv.jvm_flags = [f"-Djava.security.auth.login.config={jaas}"]
    return ens


def _start_largest_first(ens: Ensemble, timeout: float = 30.0) -> None:
    """Start the largest sid, wait until its election port listens, then the
    others: with empty logs it then wins the election whichever kind starts
    faster (two members up first would elect each other)."""
    first = max(ens.servers)
    ens[first].start(wait=False)

    def listening() -> bool:
        try:
            socket.create_connection(("127.0.0.1", ens.election_ports[first]), 0.2).close()
        except OSError:
            return False
        return True

    wait_for(listening, timeout, f"election port of {first}")
    for sid in ens.servers:
        if sid != first:
            ens[sid].start(wait=False)
    for sid in ens.servers:
        ens[sid].wait_ready(timeout)


def _replicates(ens: Ensemble, sids: list[int], path: str) -> None:
    """A write through the first of ``sids`` is read back from each of them."""
    with client(ens.hosts(sids[:1])) as zk:
        zk.create(path, b"through-" + str(sids[0]).encode())
    for sid in sids:
        with client(ens.hosts([sid])) as zk:
            zk.sync(path)
            assert zk.get(path)[0] == b"through-" + str(sids[0]).encode(), sid


def _pyzk_logs(ens: Ensemble) -> str:
    return "".join(s.log_path.read_text(errors="replace") for s in ens.servers.values()
                   if s.kind == "pyzk")


@pytest.mark.ensemble
@pytest.mark.timeout(60)
def test_three_pyzk_elect_and_replicate_with_sasl_required(tmp_path: Path) -> None:
    kinds = {1: "pyzk", 2: "pyzk", 3: "pyzk"}
    ens = _ensemble(tmp_path, kinds, dict.fromkeys(kinds, REQUIRED))
    try:
        # started all at once, 1 and 2 may elect 2 before 3's vote reaches them
        _start_largest_first(ens)
        assert ens.wait_leader(20) == 3
        _replicates(ens, [1, 2, 3], "/sasl-pyzk")
    finally:
        ens.stop()
    text = _pyzk_logs(ens)
    assert "Successfully completed the authentication using SASL. learner addr" in text
    assert "Successfully completed the authentication using SASL. server addr" in text
    assert PASSWORD not in text


@pytest.mark.ensemble
@pytest.mark.timeout(60)
def test_member_with_a_wrong_password_cannot_join(tmp_path: Path) -> None:
    kinds = {1: "pyzk", 2: "pyzk", 3: "pyzk"}
    ens = _ensemble(tmp_path, kinds, dict.fromkeys(kinds, REQUIRED),
                    learner_passwords={3: "wrong-password"})
    # Ensemble.start waits for every member and 3 never serves: start by hand
    for sid in (1, 2, 3):
        ens[sid].start(wait=False)
    try:
        for sid in (1, 2):
            ens[sid].wait_ready(20)
        assert ens.wait_leader(20, among=[1, 2]) == 2
        _replicates(ens, [1, 2], "/without-3")
        time.sleep(1.0)
        assert ens[3].running() and ens.mode(3) is None  # still looking, never joined
        text = ens[1].log_path.read_text() + ens[2].log_path.read_text()
        assert "Failed to authenticate using SASL" in text
        assert "Mismatched response" in text
        assert "wrong-password" not in _pyzk_logs(ens) and PASSWORD not in _pyzk_logs(ens)
    finally:
        ens.stop()


@pytest.mark.ensemble
@pytest.mark.timeout(60)
def test_bad_auth_packets_are_refused_and_the_ensemble_keeps_serving(tmp_path: Path) -> None:
    kinds = {1: "pyzk", 2: "pyzk", 3: "pyzk"}
    with _ensemble(tmp_path, kinds, dict.fromkeys(kinds, REQUIRED)) as ens:
        leader = ens.wait_leader(20)
        magic = MAGIC.to_bytes(8, "big")
        initial = encode_initial_message(1, [("127.0.0.1", ens.election_ports[1])])
        attacks = [
            (ens.quorum_ports[leader], magic + b"\x00" * 4 + b"\x7f\xff\xff\xff"),  # oversized
            (ens.quorum_ports[leader], b"\x00\x00\x00\x0b" + b"\x00" * 12),  # no auth at all
            (ens.election_ports[2], initial + magic + b"\x00" * 4 + b"\x00\x00\x00\x05junk!"),
            (ens.election_ports[2], initial + magic[:5]),  # vanishes mid-packet
        ]
        for port, data in attacks:
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(data)
                if data.endswith(magic[:5]):
                    continue
                s.settimeout(5)
                got = b""
                while chunk := s.recv(4096):  # the server answers (or not), then closes
                    got += chunk
                if b"junk" in data:
                    assert got.startswith(magic + b"\xff\xff\xff\xff")  # ERROR
        # a silent learner is hung up on at the deadline: initLimit ticks on the
        # quorum port, syncLimit ticks on the election port (2 s and 1 s here)
        for port, data, deadline in ((ens.quorum_ports[leader], b"", 2.0),
                                     (ens.election_ports[2], initial, 1.0)):
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(data)
                start = time.monotonic()
                assert s.recv(4096) == b""
                assert deadline - 0.2 < time.monotonic() - start < deadline + 2.0
        _replicates(ens, [1, 2, 3], "/after-attacks")
        assert ens.wait_leader(10) == leader
    text = _pyzk_logs(ens)
    assert "exceeds" in text and "not trying to authenticate" in text
    for module in ("shell/quorumauth.py", "quorum/auth.py", "shell/cnxmanager.py"):
        assert f'{module}", line' not in text  # no traceback through the auth code


@pytest.mark.ensemble
@pytest.mark.reference
@pytest.mark.timeout(90)
@pytest.mark.parametrize("kinds", [
    {1: "pyzk", 2: "pyzk", 3: "apache"},    # Apache leads: pyzk learners log in to it
    {1: "apache", 2: "apache", 3: "pyzk"},  # pyzk leads: Apache learners log in to it
], ids=["apache-leader", "pyzk-leader"])
def test_mixed_with_apache_sasl_required(tmp_path: Path, kinds: dict[int, str]) -> None:
    ens = _ensemble(tmp_path, kinds, dict.fromkeys(kinds, REQUIRED))
    try:
        _start_largest_first(ens)
        assert ens.wait_leader(30) == 3
        _replicates(ens, [1, 2, 3], "/mixed")
        _replicates(ens, [2, 1, 3], "/mixed-2")
    finally:
        ens.stop()
    text = _pyzk_logs(ens)
    assert "Successfully completed the authentication using SASL" in text
    assert PASSWORD not in text


@pytest.mark.ensemble
@pytest.mark.reference
@pytest.mark.timeout(90)
@pytest.mark.parametrize("kinds", [
    {1: "apache", 2: "apache", 3: "pyzk"},  # Apache's servers refuse a pyzk learner
    {1: "pyzk", 2: "pyzk", 3: "apache"},    # pyzk's servers refuse an Apache learner
], ids=["pyzk-refused", "apache-refused"])
def test_mixed_with_apache_wrong_password_is_kept_out(tmp_path: Path,
                                                      kinds: dict[int, str]) -> None:
    ens = _ensemble(tmp_path, kinds, dict.fromkeys(kinds, REQUIRED),
                    learner_passwords={3: "wrong-password"})
    for sid in (1, 2, 3):
        ens[sid].start(wait=False)
    try:
        for sid in (1, 2):
            ens[sid].wait_ready(30)
        assert ens.wait_leader(30, among=[1, 2]) == 2
        _replicates(ens, [1, 2], "/apache-only")
        assert ens[3].running() and ens.mode(3) is None
        if kinds[3] == "pyzk":
            assert "Authentication failed" in ens[3].log_path.read_text()
        else:
            # whichever pyzk server the refused learner tried first logs it
            wait_for(lambda: "Mismatched response" in (ens[1].log_path.read_text()
                                                       + ens[2].log_path.read_text()),
                     10, "a pyzk server logging the learner's mismatched response")
    finally:
        ens.stop()


@pytest.mark.ensemble
@pytest.mark.reference
@pytest.mark.timeout(120)
def test_rolling_upgrade_settings(tmp_path: Path) -> None:
    # stage 1: SASL enabled but not required, next to a member with it off
    kinds = {1: "apache", 2: "pyzk", 3: "pyzk"}
    cfgs: dict[int, dict[str, str]] = {1: {}, 2: ENABLED, 3: ENABLED}
    with _ensemble(tmp_path / "stage1", kinds, cfgs) as ens:
        ens.wait_leader(30)
        _replicates(ens, [1, 2, 3], "/stage1")
    # stage 2: learners authenticate, one server already requires it
    kinds = {1: "pyzk", 2: "apache", 3: "pyzk"}
    cfgs = {1: REQUIRED, 2: LEARNER_ONLY, 3: LEARNER_ONLY}
    with _ensemble(tmp_path / "stage2", kinds, cfgs) as ens:
        ens.wait_leader(30)
        _replicates(ens, [1, 2, 3], "/stage2")
    # a member with SASL off is let in by servers that do not require it
    kinds = {1: "pyzk", 2: "pyzk", 3: "pyzk"}
    cfgs = {1: {}, 2: ENABLED, 3: ENABLED}
    with _ensemble(tmp_path / "stage0", kinds, cfgs) as ens:
        wait_for(lambda: ens.mode(1) in ("leader", "follower"), 20, "member 1 joins")
        _replicates(ens, [1, 2, 3], "/stage0")
