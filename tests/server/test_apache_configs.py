"""Configs written for Apache start pyzk unchanged (DESIGN.md section 5)."""

from __future__ import annotations

import pytest
from kazoo.client import KazooClient

from pyzk.testing.servers import PyzkServer, free_port

pytestmark = pytest.mark.server


def test_kazoo_harness_config_starts_and_serves(tmp_path) -> None:
    # The keys kazoo's own test harness (kazoo/testing/common.py) writes.
    extra = {
        "secureClientPort": str(free_port()),
        "maxClientCnxns": "0",
        "admin.serverPort": str(free_port()),
        "serverCnxnFactory": "org.apache.zookeeper.server.NettyServerCnxnFactory",
        "authProvider.1": "org.apache.zookeeper.server.auth.SASLAuthenticationProvider",
        "ssl.keyStore.location": str(tmp_path / "keystore.jks"),
        "ssl.keyStore.password": "apassword",
        "ssl.trustStore.location": str(tmp_path / "truststore.jks"),
        "ssl.trustStore.password": "apassword",
        "reconfigEnabled": "true",
        "standaloneEnabled": "true",
    }
    with PyzkServer(tmp_path / "d", extra_cfg=extra) as srv:
        zk = KazooClient(srv.address)
        zk.start(timeout=10)
        try:
            zk.create("/harness", b"ok")
            assert zk.get("/harness")[0] == b"ok"
        finally:
            zk.stop()
            zk.close()
        log = srv.log_path.read_text()
        assert "serverCnxnFactory" in log  # noted once, not fatal
        assert "apassword" not in log  # secrets are not logged
        # the stores do not exist here: the secure port is left out, with the reason
        assert "is not served: cannot read the trust store" in log
