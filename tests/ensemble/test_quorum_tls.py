"""Quorum TLS (sslQuorum, ssl.quorum.*) and portUnification in real ensembles.

A TLS-only ensemble of pyzk alone, and mixed with Apache both ways, elects,
replicates and survives its leader's death; a plaintext member, and one
whose certificate another CA signed, are kept out; with portUnification a
plaintext member and TLS members form one ensemble (Apache's rolling
upgrade to quorum TLS); plaintext, garbage and truncated handshakes on the
TLS quorum and election ports are hung up on and harm nothing. Certificates
and stores are made at run time.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import time
from pathlib import Path

import pytest

from pyzk.quorum.wire import encode_initial_message
from pyzk.testing.certs import TestPKI, write_keystore
from pyzk.testing.servers import Ensemble, wait_for
from tests.ensemble.helpers import SESSION_CFG, client, require_reference_for

pytestmark = pytest.mark.ensemble

KEYPASS = "quorum-keypass"
TRUSTPASS = "quorum-trustpass"


@pytest.fixture(scope="module")
def pki() -> tuple[TestPKI, TestPKI]:
    """The ensemble's CA and a stranger's."""
    return TestPKI("quorum CA"), TestPKI("another CA")


def _stores(d: Path, sid: int, ca: TestPKI, *, issuer: TestPKI | None = None,
            kind: str = "JKS", elsewhere: bool = False) -> dict[str, str]:
    """ssl.quorum.* keys for member ``sid``: its own certificate (from
    ``issuer``, the ensemble's CA by default; naming another host than
    127.0.0.1/localhost if ``elsewhere``) and a trust store of the CA."""
    d.mkdir(parents=True, exist_ok=True)
    ext = {"JKS": "jks", "PEM": "pem"}[kind]
    names = {"dns": ("zk.elsewhere.example",), "ips": ("10.9.9.9",)} if elsewhere else {}
    ident = (issuer or ca).issue(f"server{sid}", **names)
    ks = write_keystore(ident, d / f"quorum{sid}.{ext}", kind, KEYPASS)
    ts = ca.write_truststore(d / f"quorumtrust{sid}.{ext}", kind,
                             TRUSTPASS if kind == "JKS" else "")
    cfg = {"ssl.quorum.keyStore.location": str(ks), "ssl.quorum.keyStore.password": KEYPASS,
           "ssl.quorum.trustStore.location": str(ts)}
    if kind == "JKS":
        cfg["ssl.quorum.trustStore.password"] = TRUSTPASS
    return cfg


def _ensemble(tmp: Path, kinds: dict[int, str], ca: TestPKI,
              cfgs: dict[int, dict[str, str]], *, issuers: dict[int, TestPKI] | None = None,
              kinds_of_store: dict[int, str] | None = None,
              elsewhere: tuple[int, ...] = ()) -> Ensemble:
    """An ensemble whose member ``sid`` has its own stores and ``cfgs[sid]``."""
    require_reference_for(*kinds.values())
    ens = Ensemble(tmp, kinds, extra_cfg=SESSION_CFG)
    for sid, srv in ens.servers.items():
        srv.extra_cfg.update(_stores(tmp / "pki", sid, ca, issuer=(issuers or {}).get(sid),
                                     kind=(kinds_of_store or {}).get(sid, "JKS"),
                                     elsewhere=sid in elsewhere))
        srv.extra_cfg.update(cfgs.get(sid, {}))
    return ens


def _start(ens: Ensemble, sids: list[int] | None = None, timeout: float = 30.0) -> None:
    """Start ``sids`` (every member by default), largest first, and wait until
    each serves; the largest is up first so it wins whatever kind is faster."""
    order = sorted(sids or list(ens.servers), reverse=True)
    for sid in order:
        ens[sid].start(timeout, wait=False)
    for sid in order:
        ens[sid].wait_ready(timeout)


def _write_everywhere(ens: Ensemble, sids: list[int], tag: str) -> None:
    """A write through each of ``sids`` is seen through every one of them."""
    for sid in sids:
        with client(ens.hosts([sid])) as zk:
            zk.create(f"/{tag}-{sid}", str(sid).encode(), makepath=True)
    for sid in sids:
        with client(ens.hosts([sid])) as zk:
            zk.sync("/")
            for other in sids:
                assert zk.get(f"/{tag}-{other}")[0] == str(other).encode()


def _serving(ens: Ensemble, sid: int) -> bool:
    return ens.mode(sid) in ("leader", "follower")


TLS = {"sslQuorum": "true"}


def test_three_pyzk_tls_ensemble_elects_replicates_and_survives_its_leader(
        tmp_path: Path, pki: tuple[TestPKI, TestPKI]) -> None:
    ca, _other = pki
    ens = _ensemble(tmp_path, {1: "pyzk", 2: "pyzk", 3: "pyzk"}, ca,
                    {1: TLS, 2: TLS, 3: TLS}, kinds_of_store={2: "PEM"})
    try:
        _start(ens)
        leader = ens.wait_leader(20)
        _write_everywhere(ens, [1, 2, 3], "tls")
        ens[leader].kill()
        rest = [s for s in (1, 2, 3) if s != leader]
        new = ens.wait_leader(20, among=rest)
        assert new != leader
        _write_everywhere(ens, rest, "after")
        log = "".join(ens[s].log_path.read_text() for s in rest)
        assert "TLS connection" in log
    finally:
        ens.stop()


@pytest.mark.reference
@pytest.mark.parametrize("kinds", [
    {1: "apache", 2: "pyzk", 3: "pyzk"},
    {1: "pyzk", 2: "apache", 3: "apache"},
], ids=["2pyzk+1apache", "1pyzk+2apache"])
def test_mixed_tls_ensemble_with_apache(tmp_path: Path, pki: tuple[TestPKI, TestPKI],
                                        kinds: dict[int, str]) -> None:
    ca, _other = pki
    ens = _ensemble(tmp_path, kinds, ca, {1: TLS, 2: TLS, 3: TLS})
    try:
        _start(ens)
        leader = ens.wait_leader(20)
        _write_everywhere(ens, [1, 2, 3], "mixed")
        # the leader's death: the other kind must take over or follow
        ens[leader].kill()
        rest = [s for s in (1, 2, 3) if s != leader]
        ens.wait_leader(20, among=rest)
        _write_everywhere(ens, rest, "again")
    finally:
        ens.stop()


def _knock(port: int, payload: bytes, *, tls_then_close: bool = False) -> bytes:
    """Send ``payload`` (or start a TLS handshake and drop it) and return what
    comes back before the server hangs up (b"" for a plain close)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        if tls_then_close:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            obj = ssl.MemoryBIO(), ssl.MemoryBIO()
            tls = ctx.wrap_bio(*obj, server_hostname="localhost")
            with contextlib.suppress(ssl.SSLWantReadError):
                tls.do_handshake()
            hello = obj[1].read()
            s.sendall(hello[: len(hello) // 2])  # a truncated ClientHello, then EOF
            s.shutdown(socket.SHUT_WR)
        else:
            s.sendall(payload)
        got = b""
        s.settimeout(8)
        try:
            while chunk := s.recv(4096):
                got += chunk
        except (ConnectionResetError, TimeoutError):
            pass
        return got


@pytest.mark.parametrize(("pair", "outsider"), [
    ("pyzk", "plaintext"), ("pyzk", "untrusted"), ("pyzk", "wrong-host"),
    pytest.param("apache", "untrusted", marks=pytest.mark.reference),
    pytest.param("apache", "wrong-host", marks=pytest.mark.reference),
])
def test_a_member_without_tls_or_trust_is_kept_out_and_bad_input_is_refused(
        tmp_path: Path, pki: tuple[TestPKI, TestPKI], pair: str, outsider: str) -> None:
    """pyzk's sid 3 dials in plaintext, has a certificate another CA signed,
    or one that names another host (ZKTrustManager's hostname check, on by
    default): it never joins the TLS pair (1, 2) of pyzk or Apache servers,
    which serves on; raw plaintext, garbage and a truncated handshake on the
    pair's TLS-only ports are closed without harm."""
    ca, other = pki
    kinds = {1: pair, 2: pair, 3: "pyzk"}
    cfgs = {1: TLS, 2: TLS, 3: {} if outsider == "plaintext" else TLS}
    issuers = {3: other} if outsider == "untrusted" else {}
    elsewhere = (3,) if outsider == "wrong-host" else ()
    ens = _ensemble(tmp_path, kinds, ca, cfgs, issuers=issuers, elsewhere=elsewhere)
    try:
        _start(ens, [1, 2])
        leader = ens.wait_leader(20, among=[1, 2])
        ens[3].start(30, wait=False)
        wait_for(lambda: "New election" in ens[3].log_path.read_text(), 20, "server 3 to elect")
        time.sleep(3)  # several election rounds and connection attempts
        assert not _serving(ens, 3), "server 3 joined the TLS ensemble"
        logs = "".join(ens[s].log_path.read_text() for s in (1, 2))
        if pair == "pyzk":
            assert {"plaintext": "Blocked insecure connection attempt",
                    "untrusted": "TLS handshake with",
                    "wrong-host": "doesn't match any of the subject alternative names"
                    }[outsider] in logs
        if outsider == "untrusted":  # refused by the pair, it says so itself
            wait_for(lambda: "TLS handshake failed" in ens[3].log_path.read_text(), 10,
                     "server 3 to log the refusal")
        follower = 1 if leader == 2 else 2
        for port in (ens.election_ports[leader], ens.quorum_ports[leader],
                     ens.election_ports[follower]):
            assert _knock(port, encode_initial_message(9, [("127.0.0.1", 1)])) == b""
            _knock(port, b"\x16\x03\x01\x00\x05garbage")
            _knock(port, b"", tls_then_close=True)
        assert ens[leader].running() and ens[follower].running()
        _write_everywhere(ens, [1, 2], "kept")
        assert ens.mode(leader) == "leader"
    finally:
        ens.stop()


#: the same test on three pyzk, and on two Apache members around one pyzk
PYZK_AND_MIXED = pytest.mark.parametrize("kinds", [
    {1: "pyzk", 2: "pyzk", 3: "pyzk"},
    pytest.param({1: "apache", 2: "pyzk", 3: "apache"}, marks=pytest.mark.reference),
], ids=["pyzk", "with-apache"])


@PYZK_AND_MIXED
def test_without_hostname_verification_certificates_of_other_hosts_do(
        tmp_path: Path, pki: tuple[TestPKI, TestPKI], kinds: dict[int, str]) -> None:
    """ssl.quorum.hostnameVerification=false: every certificate names another
    host, the chain is all that is checked, and the ensemble forms."""
    ca, _other = pki
    cfg = {**TLS, "ssl.quorum.hostnameVerification": "false"}
    ens = _ensemble(tmp_path, kinds, ca, {1: cfg, 2: cfg, 3: cfg}, elsewhere=(1, 2, 3))
    try:
        _start(ens)
        ens.wait_leader(20)
        _write_everywhere(ens, [1, 2, 3], "anyhost")
    finally:
        ens.stop()


@PYZK_AND_MIXED
def test_port_unification_lets_plaintext_and_tls_members_interoperate(
        tmp_path: Path, pki: tuple[TestPKI, TestPKI], kinds: dict[int, str]) -> None:
    """Apache's rolling upgrade, middle step: every member takes both on its
    ports (portUnification), sid 2 still dials in plaintext, 1 and 3 in TLS."""
    ca, _other = pki
    unified = {"portUnification": "true"}
    ens = _ensemble(tmp_path, kinds, ca, {1: {**unified, **TLS}, 2: unified,
                                          3: {**unified, **TLS}})
    try:
        _start(ens)
        leader = ens.wait_leader(20)
        _write_everywhere(ens, [1, 2, 3], "unified")
        # the plaintext member leads too: move the leadership until it does
        # (with equal logs the larger remaining sid wins; at most two moves)
        for _ in range(3):
            if leader == 2:
                break
            ens[leader].kill()
            ens.wait_leader(20, among=[s for s in (1, 2, 3) if s != leader])
            ens[leader].start(30)
            leader = ens.wait_leader(20)
        assert leader == 2
        _write_everywhere(ens, [1, 2, 3], "again")
    finally:
        ens.stop()


def test_sslquorum_reload_cert_files_puts_new_stores_to_use(tmp_path: Path,
                                                            pki: tuple[TestPKI, TestPKI]) -> None:
    """sslQuorumReloadCertFiles: every member's key and trust stores move to a
    new CA on disk while the ensemble runs; the leader, restarted, knows only
    the new CA, so it rejoins only because the others reloaded theirs."""
    ca, _other = pki
    cfg = {**TLS, "sslQuorumReloadCertFiles": "true"}
    ens = _ensemble(tmp_path, {1: "pyzk", 2: "pyzk", 3: "pyzk"}, ca, {1: cfg, 2: cfg, 3: cfg})
    try:
        _start(ens)
        leader = ens.wait_leader(20)
        _write_everywhere(ens, [1, 2, 3], "before")
        renewed = TestPKI("renewed quorum CA")
        for sid in (1, 2, 3):
            _stores(tmp_path / "pki", sid, renewed)
        ens[leader].stop()
        ens[leader].start(30)
        ens.wait_leader(20)
        wait_for(lambda: all(_serving(ens, s) for s in (1, 2, 3)), 20, "all three to serve")
        _write_everywhere(ens, [1, 2, 3], "reloaded")
        log = "".join(ens[s].log_path.read_text() for s in (1, 2, 3) if s != leader)
        assert "reloading the TLS contexts" in log
    finally:
        ens.stop()
