"""pyzk's SASL handling under bad configuration and bad clients."""

from __future__ import annotations

from pathlib import Path

import pytest
from puresasl.client import SASLClient

from pyzk.jute import records as R
from pyzk.jute.constants import Err, OpCode
from pyzk.testing.servers import PyzkServer, ServerError
from pyzk.testing.wire import ConnectionClosed, WireClient

pytestmark = pytest.mark.server

JAAS = """Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_bob="b0b-s3cret";
};
"""


def _server(tmp_path: Path, jaas: str) -> PyzkServer:
    (tmp_path / "jaas.conf").write_text(jaas)
    return PyzkServer(tmp_path / "data",
                      jvm_flags=[f"-Djava.security.auth.login.config={tmp_path / 'jaas.conf'}"])


def _sasl(c: WireClient, token: bytes) -> tuple[int, bytes | None]:
    r = c.call_reply(OpCode.sasl, R.GetSASLRequest(token))
    if r.err:
        return r.err, None
    return 0, R.SetSASLResponse.decode(r.body, 0)[0].token


def test_a_broken_jaas_file_stops_the_server_without_echoing_it(tmp_path: Path) -> None:
    srv = _server(tmp_path, 'Server { org.apache.zookeeper.server.auth.DigestLoginModule '
                            'required user_bob="b0b-s3cret" };')
    with pytest.raises(ServerError) as info:
        srv.start()
    text = str(info.value)
    assert "No JAAS configuration section named 'Server' was found in" in text
    assert "b0b-s3cret" not in text


def test_negotiation_then_a_token_flood_then_a_wrong_password(tmp_path: Path) -> None:
    with _server(tmp_path, JAAS) as srv:
        c = WireClient()
        c.connect(srv.host, srv.port)
        client = SASLClient("zk-sasl-md5", service="zookeeper", mechanism="DIGEST-MD5",
                            username="bob", password="b0b-s3cret")
        err, challenge = _sasl(c, client.process(None) or b"")
        assert err == 0 and challenge is not None
        err, rspauth = _sasl(c, client.process(challenge))
        assert err == 0 and rspauth is not None and rspauth.startswith(b"rspauth=")
        client.process(rspauth)
        assert client.complete
        who = c.call_reply(OpCode.whoAmI).decode()
        assert ("sasl", "bob") in [(i.authScheme, i.user) for i in who.clientInfo]
        # more tokens after completion: refused, and the connection is closed
        assert _sasl(c, b"again")[0] == Err.AUTHFAILED
        with pytest.raises((ConnectionClosed, OSError)):
            c.call_reply(OpCode.exists, R.ExistsRequest("/", False))
        c.close()
        w = WireClient()
        w.connect(srv.host, srv.port)
        bad = SASLClient("zk-sasl-md5", service="zookeeper", mechanism="DIGEST-MD5",
                         username="bob", password="Wr0ng-pw")
        _err, challenge = _sasl(w, b"")
        assert _sasl(w, bad.process(challenge))[0] == Err.AUTHFAILED
        w.close()
        log = srv.log_tail(10_000)
        assert "failed to SASL authenticate: DIGEST-MD5: digest response format violation" in log
        assert "b0b-s3cret" not in log and "Wr0ng-pw" not in log


def test_required_sasl_refuses_a_failed_or_missing_negotiation(tmp_path: Path) -> None:
    (tmp_path / "jaas.conf").write_text(JAAS)
    srv = PyzkServer(tmp_path / "data", extra_cfg={
        "sessionRequireClientSASLAuth": "true",
        "authProvider.1": "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"},
        jvm_flags=[f"-Djava.security.auth.login.config={tmp_path / 'jaas.conf'}"])
    with srv:
        w = WireClient()
        w.connect(srv.host, srv.port)
        bad = SASLClient("zk-sasl-md5", service="zookeeper", mechanism="DIGEST-MD5",
                         username="bob", password="nope")
        _err, challenge = _sasl(w, b"")
        assert _sasl(w, bad.process(challenge))[0] == Err.SESSIONCLOSEDREQUIRESASLAUTH
        w.close()
        plain = WireClient()
        plain.connect(srv.host, srv.port)
        r = plain.call_reply(OpCode.getChildren, R.GetChildrenRequest("/", False))
        assert r.err == Err.SESSIONCLOSEDREQUIRESASLAUTH
        plain.close()
