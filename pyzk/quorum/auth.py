"""Quorum SASL: Apache's QuorumAuth exchange as two sans-IO state machines.

With ``quorum.auth.enableSasl`` a server that opens a quorum connection (the
election port after its initial message, the quorum port as a learner) is
the *learner* of this exchange and the one that accepts it the *server*:
SaslQuorumAuthLearner and SaslQuorumAuthServer. They trade QuorumAuthPacket
records (``long magic, int status, buffer token``, no length prefix), the
magic telling an auth packet from the first bytes of a peer that does not
authenticate:

    learner -> IN_PROGRESS, the mechanism's initial response (empty for DIGEST-MD5)
    server  -> IN_PROGRESS, a challenge            (repeated while incomplete,
    learner -> IN_PROGRESS, the response            at most MAX_RETRIES times)
    server  -> SUCCESS, the final token (DIGEST-MD5's rspauth), or ERROR

A learner with ``learnerRequireSasl=false`` sends nothing; a server with
``serverRequireSasl=false`` lets through a peer that does not authenticate,
or whose authentication fails (the rolling upgrade path), and closes neither.

The machines take bytes and return bytes; the shell (pyzk.shell.quorumauth)
owns the sockets, the deadline and the logging. The SASL work is a
*mechanism*: DIGEST-MD5 is pyzk.core.digestmd5's (a pure module this
package cannot import, hence the protocols below); GSSAPI plugs in the same
way.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from pyzk.jute.codec import DEFAULT_MAX_BUFFER, LONG, JuteError, Truncated
from pyzk.jute.records import QuorumAuthPacket

#: Java's ``-0xa0dbcafecafe1234L``: the hex literal is already negative as a
#: long, so the magic is positive, and its first four bytes, read as a
#: frame length by a server without quorum SASL, are far over any limit.
MAGIC = 0x5F2435013501EDCC
IN_PROGRESS = 0
SUCCESS = 1
ERROR = -1
STATUS_NAMES = {IN_PROGRESS: "IN_PROGRESS", SUCCESS: "SUCCESS", ERROR: "ERROR"}

#: QuorumAuth.QUORUM_SERVER_PROTOCOL_NAME and QUORUM_SERVER_SASL_DIGEST: the
#: SASL protocol and server name both sides use, so DIGEST-MD5's realm is
#: zk-quorum-sasl-md5 and its digest-uri zookeeper-quorum/zk-quorum-sasl-md5.
PROTOCOL = "zookeeper-quorum"
SERVER_NAME = "zk-quorum-sasl-md5"
#: QuorumAuth.QUORUM_KERBEROS_SERVICE_PRINCIPAL_DEFAULT_VALUE
DEFAULT_SERVICE_PRINCIPAL = "zkquorum/localhost"
DEFAULT_LEARNER_CONTEXT = "QuorumLearner"
DEFAULT_SERVER_CONTEXT = "QuorumServer"
#: SaslQuorumAuthServer.MAX_RETRIES: challenges sent before the server gives up.
MAX_RETRIES = 5
#: BinaryInputArchive's limit on a token: jute.maxbuffer plus the default
#: extra of the same size.
MAX_TOKEN = 2 * DEFAULT_MAX_BUFFER


class ServerMechanism(Protocol):
    """A SaslServer: DigestMD5Server, or GSSAPI's."""

    complete: bool
    authentication_id: str | None
    authorization_id: str | None

    def evaluate(self, token: bytes) -> bytes | None:
        """SaslServer.evaluateResponse; raises (any Exception) to refuse."""
        ...


class ClientMechanism(Protocol):
    """A SaslClient: DigestMD5Client, or GSSAPI's."""

    complete: bool
    initial_response: bool

    def evaluate(self, challenge: bytes) -> bytes | None:
        """SaslClient.evaluateChallenge; raises (any Exception) to refuse."""
        ...


class QuorumAuthError(Exception):
    """Authentication failed; the message is for the log (never a secret)."""


def encode_packet(status: int, token: bytes | None) -> bytes:
    """One QuorumAuthPacket as BinaryOutputArchive writes it (None: length -1)."""
    return QuorumAuthPacket(MAGIC, status, token).to_bytes()


def is_auth_packet(first8: bytes) -> bool:
    """QuorumAuth.nextPacketIsAuth on the first eight bytes a peer sent."""
    return len(first8) >= 8 and LONG.unpack_from(first8)[0] == MAGIC


def authorized(authentication_id: str, authorization_id: str,
               authz_hosts: Collection[str], kerberos: bool = False) -> bool:
    """SaslQuorumServerCallbackHandler.handleAuthorizeCallback: a learner may
    act only as itself; with Kerberos (not DIGEST-MD5) its principal must be
    ``service/host@REALM`` with the host one of the ensemble's hosts."""
    if authentication_id != authorization_id:
        return False
    if not kerberos:
        return True
    parts = _split_principal(authorization_id)
    return len(parts) == 3 and parts[1] in authz_hosts


def _split_principal(name: str) -> list[str]:
    """Java's ``name.split("[/@]")``: trailing empty strings dropped."""
    parts = name.replace("@", "/").split("/")
    while parts and parts[-1] == "":
        parts.pop()
    return parts


class _PacketReader:
    """Cuts QuorumAuthPacket records out of a byte stream."""

    __slots__ = ("buf",)

    def __init__(self) -> None:
        self.buf = b""

    def next(self) -> QuorumAuthPacket | None:
        """The next whole packet, None until one is in; QuorumAuthError on a bad
        one (an oversized token length is seen as soon as its header is in)."""
        try:
            pkt, used = QuorumAuthPacket.decode(self.buf, 0, MAX_TOKEN)
        except Truncated:
            return None
        except JuteError as e:
            raise QuorumAuthError(f"bad quorum auth packet: {e}") from None
        self.buf = self.buf[used:]
        return pkt


class LearnerAuth:
    """SaslQuorumAuthLearner.authenticate for one connection.

    :meth:`start` gives the first packet; feed what the server sends to
    :meth:`feed`, which returns the packets to send and raises
    :class:`QuorumAuthError` on failure (the learner then closes the
    connection). ``done`` is set on SUCCESS, and ``rest`` holds any bytes the
    server sent after its last auth packet (the election port's first
    notification may follow at once).
    """

    __slots__ = ("mech", "done", "rest", "_reader", "_final")

    def __init__(self, mech: ClientMechanism) -> None:
        self.mech = mech
        self.done = False
        self.rest = b""
        self._reader = _PacketReader()
        self._final = False

    def start(self) -> bytes:
        token = self._evaluate(b"") if self.mech.initial_response else b""
        return encode_packet(IN_PROGRESS, token)

    def feed(self, data: bytes) -> bytes:
        if self.done:
            self.rest += data
            return b""
        self._reader.buf += data
        out = b""
        while not self.done:
            pkt = self._reader.next()
            if pkt is None:
                break
            out += self._on_packet(pkt.status, pkt.token)
        if self.done:
            self.rest, self._reader.buf = self._reader.buf, b""
        return out

    def _on_packet(self, status: int, token: bytes | None) -> bytes:
        if self.mech.complete:
            # the mechanism finished on the previous challenge: only the
            # server's verdict is left (checkAuthStatus)
            return self._finish(status)
        if status == SUCCESS:
            if self._evaluate(token) is not None:
                raise QuorumAuthError("Protocol error: attempting to send response after "
                                      "completion")
            if not self.mech.complete:
                raise QuorumAuthError("the server reported SUCCESS before the SASL "
                                      "mechanism completed")
            return self._finish(status)
        if status == IN_PROGRESS:
            return encode_packet(IN_PROGRESS, self._evaluate(token))
        raise QuorumAuthError(f"Authentication failed: the server answered "
                              f"{STATUS_NAMES.get(status, f'unknown status {status}')}")

    def _finish(self, status: int) -> bytes:
        if status != SUCCESS:
            raise QuorumAuthError(f"Authentication failed, qpStatus: "
                                  f"{STATUS_NAMES.get(status, status)}")
        self.done = True
        return b""

    def _evaluate(self, token: bytes | None) -> bytes | None:
        if token is None:
            raise QuorumAuthError("Error in authenticating with a Zookeeper Quorum member: "
                                  "the quorum member's saslToken is null.")
        try:
            return self.mech.evaluate(token)
        except Exception as e:  # any mechanism failure ends the exchange, never the server
            raise QuorumAuthError(f"An error: ({e}) occurred when evaluating Zookeeper "
                                  "Quorum Member's received SASL token.") from None


#: ServerAuth outcomes.
AUTHENTICATED = "authenticated"
LET_THROUGH = "let through"
REFUSED = "refused"


class ServerAuth:
    """SaslQuorumAuthServer.authenticate for one accepted connection.

    Feed the peer's bytes to :meth:`feed` (and :meth:`eof` when the peer
    closed or the deadline passed); it returns the packets to send. Once
    ``outcome`` is set the exchange is over: AUTHENTICATED, LET_THROUGH (no
    or failed authentication, but ``serverRequireSasl`` is false) or REFUSED
    (close the connection); ``reason`` says why authentication did not
    happen and ``rest`` holds the bytes after the exchange, which belong to
    the protocol that follows (the peeked first packet of a peer that does
    not authenticate, for one).
    """

    __slots__ = ("mech", "required", "authz_hosts", "kerberos", "outcome", "reason", "rest",
                 "_reader", "_started", "_answered", "_tries")

    def __init__(self, mech: ServerMechanism, required: bool,
                 authz_hosts: Collection[str] = (), kerberos: bool = False) -> None:
        self.mech = mech
        self.required = required
        self.authz_hosts = authz_hosts
        self.kerberos = kerberos
        self.outcome: str | None = None
        self.reason = ""
        self.rest = b""
        self._reader = _PacketReader()
        self._started = False     # the magic was seen
        self._answered = False    # the first packet was read (dout exists in Apache)
        self._tries = 0

    def feed(self, data: bytes) -> bytes:
        if self.outcome is not None:
            self.rest += data
            return b""
        self._reader.buf += data
        if not self._started:
            if len(self._reader.buf) < 8:
                return b""
            if not is_auth_packet(self._reader.buf):
                if self.required:
                    self._fail("Learner not trying to authenticate and authentication is "
                               "required")
                else:
                    self.outcome = LET_THROUGH  # "we don't require auth": not a failure
                self.rest, self._reader.buf = self._reader.buf, b""
                return b""
            self._started = True
        out = b""
        try:
            while self.outcome is None:
                pkt = self._reader.next()
                if pkt is None:
                    break
                self._answered = True
                out += self._on_token(pkt.token)
        except QuorumAuthError as e:
            out += self._error(str(e))
        if self.outcome is not None:
            self.rest, self._reader.buf = self._reader.buf, b""
        return out

    def eof(self, why: str = "the learner closed the connection") -> bytes:
        """The peer went away or the deadline passed mid-exchange."""
        if self.outcome is not None:
            return b""
        if not self._started:
            # nextPacketIsAuth failed: an exception, not "no auth"; only
            # serverRequireSasl decides
            self._fail(why)
            return b""
        return self._error(why)

    def _on_token(self, token: bytes | None) -> bytes:
        if token is None:
            raise QuorumAuthError("the learner sent a null SASL token")
        try:
            challenge = self.mech.evaluate(token)
        except Exception as e:  # any mechanism failure ends the exchange, never the server
            raise QuorumAuthError(str(e) or type(e).__name__) from None
        if self.mech.complete:
            authn = self.mech.authentication_id or ""
            authz = self.mech.authorization_id or authn
            if not authorized(authn, authz, self.authz_hosts, self.kerberos):
                raise QuorumAuthError(f"SASL authorization completed, {authz} is not "
                                      f"authorized to connect")
            self.outcome = AUTHENTICATED
            return self._send(challenge, SUCCESS)
        self._tries += 1
        if self._tries > MAX_RETRIES:
            # Apache sends ERROR here and then returns as if authenticated: a
            # mechanism that never completes must not get a learner in, so
            # pyzk applies serverRequireSasl as for any other failure.
            out = self._send(challenge, ERROR)
            self._fail(f"retries={self._tries} exceeded")
            return out
        return self._send(challenge, IN_PROGRESS)

    def _send(self, challenge: bytes | None, status: int) -> bytes:
        # SaslQuorumAuthServer.send: a null challenge goes out as IN_PROGRESS
        # unless the status is SUCCESS
        if challenge is None and status != SUCCESS:
            status = IN_PROGRESS
        return encode_packet(status, challenge)

    def _error(self, reason: str) -> bytes:
        """The catch block: ERROR with an empty token once the learner's first
        packet was read, then close or let through."""
        out = encode_packet(ERROR, b"") if self._answered else b""
        self._fail(reason)
        return out

    def _fail(self, reason: str) -> None:
        self.reason = reason
        self.outcome = REFUSED if self.required else LET_THROUGH
