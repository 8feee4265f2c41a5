"""Quorum SASL with GSSAPI (Kerberos): ``QuorumServer``/``QuorumLearner``
sections with Krb5LoginModule and keytabs from a KDC started here, the
service principal from ``quorum.auth.kerberos.servicePrincipal``; pyzk alone
and mixed with Apache both ways, and a learner whose principal names a host
outside the ensemble kept out (SaslQuorumServerCallbackHandler's rule)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pyzk.testing.kdc import TestKDC, kdc_available
from pyzk.testing.servers import Ensemble, wait_for
from tests.ensemble.helpers import require_reference_for
from tests.ensemble.test_quorum_sasl import _replicates, _start_largest_first

pytestmark = pytest.mark.ensemble

JAAS = """
QuorumServer {
    com.sun.security.auth.module.Krb5LoginModule required
    useKeyTab=true
    keyTab="%(server_keytab)s"
    storeKey=true
    useTicketCache=false
    principal="zkquorum/127.0.0.1@EXAMPLE.TEST";
};
QuorumLearner {
    com.sun.security.auth.module.Krb5LoginModule required
    useKeyTab=true
    keyTab="%(learner_keytab)s"
    storeKey=true
    useTicketCache=false
    principal="%(learner)s@EXAMPLE.TEST";
};
"""

REQUIRED = {"quorum.auth.enableSasl": "true", "quorum.auth.learnerRequireSasl": "true",
            "quorum.auth.serverRequireSasl": "true",
            "quorum.auth.kerberos.servicePrincipal": "zkquorum/_HOST"}


@pytest.fixture(scope="module")
def kdc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestKDC]:
    if not kdc_available():
        pytest.skip("MIT Kerberos KDC (Debian krb5-kdc, krb5-admin-server) is not installed")
    pytest.importorskip("gssapi")
    k = TestKDC(tmp_path_factory.mktemp("kdc"))
    k.start()
    # the ensemble is on 127.0.0.1, so that is the host a learner's principal
    # must name; the service principal's _HOST becomes the host dialled
    k.add_principal("zkquorum/127.0.0.1", k.dir / "server.keytab")
    k.add_principal("learner/127.0.0.1", k.dir / "learner.keytab")
    k.add_principal("learner/elsewhere.example", k.dir / "stranger.keytab")
    try:
        yield k
    finally:
        k.stop()


def _ensemble(tmp: Path, kdc: TestKDC, kinds: dict[int, str],
              learners: dict[int, str] | None = None) -> Ensemble:
    require_reference_for(*kinds.values())
    tmp.mkdir(parents=True, exist_ok=True)
    ens = Ensemble(tmp, kinds)
    for sid, srv in ens.servers.items():
        srv.extra_cfg.update(REQUIRED)
        learner = (learners or {}).get(sid, "learner/127.0.0.1")
        keytab = "stranger.keytab" if "elsewhere" in learner else "learner.keytab"
        jaas = tmp / f"jaas{sid}.conf"
        jaas.write_text(JAAS % {"server_keytab": kdc.dir / "server.keytab",
                                "learner_keytab": kdc.dir / keytab, "learner": learner})
        srv.jvm_flags = [f"-Djava.security.auth.login.config={jaas}",
                         f"-Djava.security.krb5.conf={kdc.krb5_conf}"]
    return ens


@pytest.mark.timeout(120)
def test_three_pyzk_authenticate_with_kerberos(tmp_path: Path, kdc: TestKDC) -> None:
    ens = _ensemble(tmp_path, kdc, {1: "pyzk", 2: "pyzk", 3: "pyzk"})
    try:
        _start_largest_first(ens)
        assert ens.wait_leader() == 3
        _replicates(ens, [1, 2, 3], "/krb")
        log = ens[3].log_path.read_text()
        assert "Successfully completed the authentication using SASL" in log
    finally:
        ens.stop()


@pytest.mark.reference
@pytest.mark.timeout(150)
@pytest.mark.parametrize("kinds", [
    {1: "apache", 2: "pyzk", 3: "pyzk"},
    {1: "pyzk", 2: "apache", 3: "apache"},
    {1: "apache", 2: "apache", 3: "pyzk"},
], ids=["apache-learner-of-pyzk", "pyzk-learner-of-apache", "apache-learners-of-pyzk"])
def test_kerberos_quorum_mixed_with_apache(tmp_path: Path, kdc: TestKDC,
                                           kinds: dict[int, str]) -> None:
    ens = _ensemble(tmp_path, kdc, kinds)
    try:
        _start_largest_first(ens, timeout=60)
        assert ens.wait_leader(timeout=60) == 3
        _replicates(ens, [1, 2, 3], "/krb-mixed")
    finally:
        ens.stop()


@pytest.mark.timeout(120)
def test_a_learner_principal_from_another_host_is_kept_out(tmp_path: Path,
                                                           kdc: TestKDC) -> None:
    ens = _ensemble(tmp_path, kdc, {1: "pyzk", 2: "pyzk", 3: "pyzk"},
                    learners={1: "learner/elsewhere.example"})
    try:
        ens[3].start(wait=False)
        ens[2].start(wait=False)
        ens[2].wait_ready(60)
        ens[3].wait_ready(60)
        ens[1].start(wait=False)
        assert ens.wait_leader(among=[2, 3]) == 3
        _replicates(ens, [2, 3], "/krb-two")
        wait_for(lambda: "not authorized to connect" in ens[3].log_path.read_text(), 30,
                 "the leader to refuse the stranger")
        assert ens.mode(1) is None  # never serves
    finally:
        ens.stop()
