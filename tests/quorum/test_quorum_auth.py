"""Quorum SASL without sockets: the QuorumAuthPacket codec, the learner and
server state machines (pyzk.quorum.auth), the DIGEST-MD5 client
(pyzk.core.digestmd5) against RFC 2831's example, pyzk's server and
pure-sasl, and the configuration that turns it on."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from puresasl.client import SASLClient

from pyzk.config import ConfigError
from pyzk.core.digestmd5 import DigestMD5Client, DigestMD5Server, SaslError
from pyzk.jute.codec import DEFAULT_MAX_BUFFER
from pyzk.jute.records import QuorumAuthPacket
from pyzk.quorum import auth as qa
from pyzk.shell.configfile import load_config
from pyzk.shell.quorumauth import QuorumAuth

pytestmark = pytest.mark.pure

USERS = {"learner": "s3cret-pw", "other": "x"}


def _server(users: dict[str, str] | None = None) -> DigestMD5Server:
    return DigestMD5Server(users or USERS, "server-nonce", protocol=qa.PROTOCOL,
                           server_name=qa.SERVER_NAME)


def _client(user: str = "learner", password: str = "s3cret-pw") -> DigestMD5Client:
    return DigestMD5Client(user, password, "client-nonce", protocol=qa.PROTOCOL,
                           server_name=qa.SERVER_NAME, authzid=user)


def _exchange(learner: qa.LearnerAuth, server: qa.ServerAuth, *, chunk: int = 1 << 20,
              after_success: bytes = b"") -> list[tuple[str, bytes]]:
    """Pipe the two machines into each other, ``chunk`` bytes at a time; the
    packets each sent, in order."""
    wire: list[tuple[str, bytes]] = []
    to_server = learner.start()
    wire.append(("learner", to_server))
    for _ in range(20):
        to_learner = b""
        for i in range(0, len(to_server), chunk):
            to_learner += server.feed(to_server[i:i + chunk])
        if server.outcome == qa.AUTHENTICATED:
            to_learner += after_success
        if to_learner:
            wire.append(("server", to_learner))
        if not to_learner or server.outcome not in (None, qa.AUTHENTICATED):
            break
        to_server = b""
        for i in range(0, len(to_learner), chunk):
            to_server += learner.feed(to_learner[i:i + chunk])
        if learner.done or not to_server:
            break
        wire.append(("learner", to_server))
    return wire


# ------------------------------------------------------------------ the packet


def test_packet_bytes_are_apaches() -> None:
    # Java's -0xa0dbcafecafe1234L, a positive long on the wire
    assert qa.MAGIC.to_bytes(8, "big").hex() == "5f2435013501edcc"
    assert qa.encode_packet(qa.IN_PROGRESS, b"") == bytes.fromhex(
        "5f2435013501edcc" "00000000" "00000000")
    assert qa.encode_packet(qa.ERROR, None) == bytes.fromhex(
        "5f2435013501edcc" "ffffffff" "ffffffff")
    pkt = QuorumAuthPacket.from_bytes(qa.encode_packet(qa.SUCCESS, b"tok"))
    assert (pkt.magic, pkt.status, pkt.token) == (qa.MAGIC, qa.SUCCESS, b"tok")
    assert qa.is_auth_packet(qa.encode_packet(qa.IN_PROGRESS, b""))
    assert not qa.is_auth_packet(b"\x00\x00\x00\x28\x00\x00\x00\x01")


def test_authorized_is_the_callback_handlers_rule() -> None:
    # DIGEST-MD5 (isDigestAuthn): the learner may act only as itself
    assert qa.authorized("learner", "learner", ())
    assert not qa.authorized("learner", "super", ())
    assert qa.authorized("zkquorum/evil@R", "zkquorum/evil@R", {"h1"})
    # Kerberos: also name/host@REALM with one of the ensemble's hosts
    assert qa.authorized("zkquorum/h1@R", "zkquorum/h1@R", {"h1"}, kerberos=True)
    assert not qa.authorized("zkquorum/evil@R", "zkquorum/evil@R", {"h1"}, kerberos=True)
    assert not qa.authorized("learner@R", "learner@R", {"h1"}, kerberos=True)
    assert not qa.authorized("a/h1@R", "b/h1@R", {"h1"}, kerberos=True)


# ------------------------------------------------------------------ DIGEST-MD5 client


def test_digest_client_matches_rfc_2831_example() -> None:
    c = DigestMD5Client("chris", "secret", "OA6MHXh6VqTrRk", protocol="imap",
                        server_name="elwood.innosoft.com")
    assert not c.initial_response
    response = c.evaluate(b'realm="elwood.innosoft.com",nonce="OA6MG9tEQGm2hh",qop="auth",'
                          b'algorithm=md5-sess,charset=utf-8')
    assert response is not None
    assert b"response=d388dad90d4bbd760a152321f2143af7" in response
    assert b'digest-uri="imap/elwood.innosoft.com"' in response
    assert c.evaluate(b"rspauth=ea40f60335c427b5527b84dbabcdfffd") is None and c.complete
    assert "secret" not in repr(c)


def test_digest_client_refuses_a_forged_rspauth_and_bad_challenges() -> None:
    c = _client()
    c.evaluate(_server().evaluate(b""))
    with pytest.raises(SaslError, match="rspauth"):
        c.evaluate(b"rspauth=00000000000000000000000000000000")
    for challenge, msg in ((b'realm="r",qop="auth",algorithm=md5-sess', "nonce"),
                           (b'nonce="n",qop="auth"', "algorithm"),
                           (b'nonce="n",qop="auth-conf",algorithm=md5-sess', "protection"),
                           (b"x" * 3000, "length")):
        with pytest.raises(SaslError, match=msg):
            _client().evaluate(challenge)


def test_digest_client_and_pyzk_server_with_the_quorum_names() -> None:
    s, c = _server(), _client()
    challenge = s.evaluate(b"")
    assert b'realm="zk-quorum-sasl-md5"' in challenge
    response = c.evaluate(challenge)
    assert response is not None
    assert b'digest-uri="zookeeper-quorum/zk-quorum-sasl-md5"' in response
    assert b'authzid="learner"' in response and b"s3cret" not in response
    assert c.evaluate(s.evaluate(response)) is None
    assert c.complete and s.complete and s.authentication_id == s.authorization_id == "learner"


def test_pure_sasl_against_pyzk_server_with_the_quorum_names() -> None:
    # an independent client: the realm and digest-uri the JDK's use
    s = _server()
    client = SASLClient(qa.SERVER_NAME, service=qa.PROTOCOL, mechanism="DIGEST-MD5",
                        username="learner", password="s3cret-pw")
    response = client.process(s.evaluate(client.process(None) or b""))
    client.process(s.evaluate(response))
    assert client.complete and s.complete


def test_pyzk_client_response_equals_pure_sasls(monkeypatch: pytest.MonkeyPatch) -> None:
    import puresasl.mechanisms as mechs

    monkeypatch.setattr(mechs.random, "random", lambda: 0.123456789)
    challenge = _server().evaluate(b"")
    pure = SASLClient(qa.SERVER_NAME, service=qa.PROTOCOL, mechanism="DIGEST-MD5",
                      username="learner", password="s3cret-pw")
    pure.process(None)
    theirs = dict(kv.split(b"=", 1) for kv in pure.process(challenge).split(b","))
    ours = DigestMD5Client("learner", "s3cret-pw", theirs[b"cnonce"].strip(b'"').decode(),
                           protocol=qa.PROTOCOL, server_name=qa.SERVER_NAME)
    mine = dict(kv.split(b"=", 1) for kv in (ours.evaluate(challenge) or b"").split(b","))
    assert mine[b"response"] == theirs[b"response"]


# ------------------------------------------------------------------ the exchange


@pytest.mark.parametrize("chunk", [1, 7, 1 << 20])
def test_learner_and_server_authenticate(chunk: int) -> None:
    learner = qa.LearnerAuth(_client())
    server = qa.ServerAuth(_server(), required=True)
    notification = b"\x00\x00\x00\x28" + b"n" * 40
    wire = _exchange(learner, server, chunk=chunk, after_success=notification)
    statuses = [(who, QuorumAuthPacket.from_bytes(data).status) for who, data in wire]
    assert statuses == [("learner", qa.IN_PROGRESS), ("server", qa.IN_PROGRESS),
                        ("learner", qa.IN_PROGRESS), ("server", qa.SUCCESS)]
    assert QuorumAuthPacket.from_bytes(wire[0][1]).token == b""  # no initial response
    assert server.outcome == qa.AUTHENTICATED and learner.done
    assert learner.rest == notification  # the election's first message, kept
    assert server.rest == b""


@pytest.mark.parametrize("required", [True, False])
def test_wrong_password_is_refused_without_the_password(required: bool) -> None:
    learner = qa.LearnerAuth(_client(password="wrong-pw"))
    server = qa.ServerAuth(_server(), required=required)
    wire = _exchange(learner, server)
    last = QuorumAuthPacket.from_bytes(wire[-1][1])
    assert wire[-1][0] == "server" and (last.status, last.token) == (qa.ERROR, b"")
    assert server.outcome == (qa.REFUSED if required else qa.LET_THROUGH)
    assert "Mismatched response" in server.reason
    assert "s3cret" not in server.reason and "wrong-pw" not in server.reason
    with pytest.raises(qa.QuorumAuthError, match="ERROR") as info:
        learner.feed(wire[-1][1])
    assert "wrong-pw" not in str(info.value)


def test_unknown_user_and_an_authzid_not_its_own_are_refused() -> None:
    server = qa.ServerAuth(_server(), required=True)
    _exchange(qa.LearnerAuth(_client(user="mallory")), server)
    assert server.outcome == qa.REFUSED and "mallory" in server.reason
    c = DigestMD5Client("learner", "s3cret-pw", "cn", protocol=qa.PROTOCOL,
                        server_name=qa.SERVER_NAME, authzid="other")
    server = qa.ServerAuth(_server(), required=True)
    _exchange(qa.LearnerAuth(c), server)
    assert server.outcome == qa.REFUSED and "not authorized" in server.reason


@pytest.mark.parametrize(("required", "outcome"), [(True, qa.REFUSED), (False, qa.LET_THROUGH)])
def test_a_learner_that_does_not_authenticate(required: bool, outcome: str) -> None:
    # an election notification (or FOLLOWERINFO) where an auth packet should be
    first = b"\x00\x00\x00\x28\x00\x00\x00\x01rest-of-it"
    server = qa.ServerAuth(_server(), required=required)
    assert server.feed(first[:5]) == b"" and server.outcome is None  # peeking: 8 bytes
    assert server.feed(first[5:]) == b""  # nothing is sent either way
    assert server.outcome == outcome
    if required:
        assert "not trying to authenticate" in server.reason
    else:
        assert server.reason == "" and server.rest == first  # handed on untouched


@pytest.mark.parametrize(("required", "outcome"), [(True, qa.REFUSED), (False, qa.LET_THROUGH)])
def test_peer_vanishing(required: bool, outcome: str) -> None:
    # before the magic: nothing to answer; after the first packet: ERROR
    server = qa.ServerAuth(_server(), required=required)
    assert server.eof() == b"" and server.outcome == outcome
    server = qa.ServerAuth(_server(), required=required)
    server.feed(qa.encode_packet(qa.IN_PROGRESS, b""))
    out = server.eof("deadline")
    assert QuorumAuthPacket.from_bytes(out).status == qa.ERROR
    assert server.outcome == outcome and server.reason == "deadline"


def test_oversized_token_is_refused_from_its_header() -> None:
    server = qa.ServerAuth(_server(), required=True)
    header = qa.MAGIC.to_bytes(8, "big") + (0).to_bytes(4, "big") + \
        (3 * DEFAULT_MAX_BUFFER).to_bytes(4, "big")
    assert server.feed(header) == b""  # the first packet was never read: no ERROR
    assert server.outcome == qa.REFUSED and "exceeds" in server.reason
    server = qa.ServerAuth(_server(), required=True)
    assert server.feed(header[:8] + b"\x00\x00\x00\x00\xff\xff\xff\xf0") == b""
    assert server.outcome == qa.REFUSED  # a negative length


def test_garbage_token_gets_error() -> None:
    server = qa.ServerAuth(_server(), required=True)
    out = server.feed(qa.encode_packet(qa.IN_PROGRESS, b"garbage"))
    assert QuorumAuthPacket.from_bytes(out).status == qa.ERROR
    assert server.outcome == qa.REFUSED and "initial response" in server.reason
    server = qa.ServerAuth(_server(), required=True)
    out = server.feed(qa.encode_packet(qa.IN_PROGRESS, b""))
    out = server.feed(qa.encode_packet(qa.IN_PROGRESS, b"\xff\xfe not a digest response"))
    assert QuorumAuthPacket.from_bytes(out).status == qa.ERROR
    assert server.outcome == qa.REFUSED


class _Endless:
    """A mechanism that never completes."""

    complete = False
    authentication_id = None
    authorization_id = None

    def evaluate(self, token: bytes) -> bytes | None:
        return b"more"


def test_server_gives_up_after_max_retries() -> None:
    server = qa.ServerAuth(_Endless(), required=True)
    statuses = []
    for _ in range(qa.MAX_RETRIES + 1):
        out = server.feed(qa.encode_packet(qa.IN_PROGRESS, b"x"))
        statuses.append(QuorumAuthPacket.from_bytes(out).status)
    assert statuses == [qa.IN_PROGRESS] * qa.MAX_RETRIES + [qa.ERROR]
    assert server.outcome == qa.REFUSED and "retries" in server.reason


def test_server_sends_a_null_challenge_as_in_progress() -> None:
    class NullChallenge(_Endless):
        def evaluate(self, token: bytes) -> bytes | None:
            return None

    server = qa.ServerAuth(NullChallenge(), required=True)
    out = server.feed(qa.encode_packet(qa.IN_PROGRESS, b""))
    pkt = QuorumAuthPacket.from_bytes(out)
    assert (pkt.status, pkt.token) == (qa.IN_PROGRESS, None)


def test_learner_refuses_bad_answers() -> None:
    for packet, msg in ((qa.encode_packet(qa.ERROR, b""), "ERROR"),
                        (qa.encode_packet(7, b""), "unknown status 7"),
                        (qa.encode_packet(qa.IN_PROGRESS, None), "saslToken is null"),
                        (qa.encode_packet(qa.SUCCESS, b'nonce="n"'), "SASL token"),
                        (qa.MAGIC.to_bytes(8, "big") + b"\x00" * 4 + b"\x7f" * 4,
                         "bad quorum auth packet")):
        learner = qa.LearnerAuth(_client())
        learner.start()
        with pytest.raises(qa.QuorumAuthError, match=msg):
            learner.feed(packet)
    # a SUCCESS whose status came before the mechanism finished its work
    learner = qa.LearnerAuth(_client())
    learner.start()
    learner.feed(qa.encode_packet(qa.IN_PROGRESS, _server().evaluate(b"")))
    with pytest.raises(qa.QuorumAuthError):
        learner.feed(qa.encode_packet(qa.SUCCESS, b"rspauth=00"))


# ------------------------------------------------------------------ configuration

JAAS = """
QuorumServer {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_learner="s3cret-pw";
};
QuorumLearner {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="learner" password="s3cret-pw";
};
"""


def _cfg(tmp_path: Path, jaas: str | None, extra: str = "") -> Path:
    (tmp_path / "data").mkdir(exist_ok=True)
    (tmp_path / "data" / "myid").write_text("1\n")
    flags = ""
    if jaas is not None:
        (tmp_path / "jaas.conf").write_text(jaas)
        flags = f"-Djava.security.auth.login.config={tmp_path / 'jaas.conf'}"
    (tmp_path / "zoo.cfg").write_text(
        f"dataDir={tmp_path / 'data'}\nclientPort=2181\ntickTime=100\ninitLimit=7\n"
        "syncLimit=3\nserver.1=127.0.0.1:2888:3888\nserver.2=127.0.0.2:2889:3889\n"
        "quorum.auth.enableSasl=true\nquorum.auth.learnerRequireSasl=true\n"
        "quorum.auth.serverRequireSasl=true\nquorum.cnxn.threads.size=20\n" + extra)
    (tmp_path / "flags").write_text(flags)
    return tmp_path / "zoo.cfg"


def test_config_loads_the_quorum_sections(tmp_path: Path,
                                          caplog: pytest.LogCaptureFixture) -> None:
    path = _cfg(tmp_path, JAAS)
    with caplog.at_level(logging.DEBUG):
        cfg = load_config(str(path), jvm_flags=(tmp_path / "flags").read_text())
    assert cfg.quorum_server_login and cfg.quorum_learner_login
    assert "s3cret" not in repr(cfg) and "s3cret" not in caplog.text
    auth = QuorumAuth.from_config(cfg)
    assert auth is not None and auth.server_required and auth.learner_required
    assert auth.election_timeout == pytest.approx(0.3)    # tickTime * syncLimit
    assert auth.quorum_timeout == pytest.approx(0.7)      # tickTime * initLimit
    assert auth.authz_hosts == {"127.0.0.1", "127.0.0.2"}
    assert "s3cret" not in repr(auth)
    # the two mechanisms authenticate each other
    learner = qa.LearnerAuth(auth.learner_mechanism("127.0.0.1"))
    server = qa.ServerAuth(auth.server_mechanism(), True, auth.authz_hosts)
    _exchange(learner, server)
    assert learner.done and server.outcome == qa.AUTHENTICATED


def test_config_renamed_contexts_and_errors(tmp_path: Path) -> None:
    renamed = JAAS.replace("QuorumServer", "QS").replace("QuorumLearner", "QL")
    path = _cfg(tmp_path, renamed, "quorum.auth.server.saslLoginContext=QS\n"
                                   "quorum.auth.learner.saslLoginContext=QL\n")
    cfg = load_config(str(path), jvm_flags=(tmp_path / "flags").read_text())
    assert cfg.quorum_server_login_context == "QS" and QuorumAuth.from_config(cfg)
    for jaas, msg in ((None, "'QuorumServer' could not be found"),
                      (JAAS.replace("QuorumLearner", "Other"), "'QuorumLearner' could not")):
        # (a Krb5LoginModule whose login fails: tests/server/test_gssapi_mechanism.py)
        path = _cfg(tmp_path, jaas)
        with pytest.raises(ConfigError, match=msg) as info:
            load_config(str(path), jvm_flags=(tmp_path / "flags").read_text())
        assert "s3cret" not in str(info.value)


def test_sasl_off_means_no_quorum_auth(tmp_path: Path) -> None:
    path = _cfg(tmp_path, None)
    text = path.read_text().replace("quorum.auth.enableSasl=true",
                                    "quorum.auth.enableSasl=false")
    path.write_text(text.replace("quorum.auth.learnerRequireSasl=true\n", "")
                    .replace("quorum.auth.serverRequireSasl=true\n", ""))
    assert QuorumAuth.from_config(load_config(str(path))) is None
