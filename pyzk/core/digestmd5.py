"""The server side of SASL DIGEST-MD5 (RFC 2831), as ZooKeeper runs it.

Apache creates its SaslServer with protocol ``zookeeper`` and server name
``zk-sasl-md5``; clients (the JDK's, pure-sasl under kazoo) answer with
``digest-uri="zookeeper/zk-sasl-md5"``. Only ``qop=auth`` is offered, which
is all ZooKeeper uses (the session itself is not wrapped).

Written by hand because no maintained Python library implements the server
side of DIGEST-MD5 (pure-sasl and the GSSAPI bindings are client-side or
Kerberos-only). Sans-IO: the nonce is given by the caller.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping

REALM = "zk-sasl-md5"
PROTOCOL = "zookeeper"
DIGEST_URI = f"{PROTOCOL}/{REALM}"

_DIRECTIVE = re.compile(r'\s*([A-Za-z][A-Za-z0-9-]*)\s*=\s*("(?:[^"\\]|\\.)*"|[^,\s]*)\s*(?:,|$)')


class SaslError(Exception):
    """The client's response is refused; the message is for the log (no secrets)."""


def parse_directives(token: bytes) -> dict[str, str]:
    """``key=value, key="quoted"`` pairs of a digest response."""
    text = token.decode("utf-8", "replace")
    out: dict[str, str] = {}
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _DIRECTIVE.match(text, pos)
        if m is None or m.end() == pos:
            raise SaslError("DIGEST-MD5: digest response format violation")
        key, value = m.group(1).lower(), m.group(2)
        if value.startswith('"'):
            value = re.sub(r"\\(.)", r"\1", value[1:-1])
        if key in out:
            raise SaslError(f"DIGEST-MD5: digest response format violation: duplicate {key}")
        out[key] = value
        pos = m.end()
    return out


def _octets(text: str, utf8: bool) -> bytes:
    """RFC 2831 2.1.2: ISO-8859-1 whenever it can hold the string, UTF-8 only
    beyond it (and only with charset=utf-8), as the JDK's DigestMD5Server."""
    if utf8 and any(ord(c) > 0xFF for c in text):
        return text.encode("utf-8")
    return text.encode("latin-1")


def _h(data: bytes) -> bytes:
    return hashlib.md5(data).digest()  # noqa: S324 - RFC 2831 is MD5


def _hex(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()  # noqa: S324 - RFC 2831 is MD5


def _response_values(user: str, realm: str, password: str, nonce: str, cnonce: str,
                     authzid: str | None, uri: str, qop: str, utf8: bool) -> tuple[str, str]:
    """RFC 2831 2.1.2.1: the client's ``response`` and the server's ``rspauth``
    (nonce count 1), one computation for both sides so they cannot disagree."""
    try:
        secret = _h(b":".join(_octets(x, utf8) for x in (user, realm, password)))
    except UnicodeEncodeError:
        raise SaslError("DIGEST-MD5: user name or password not in ISO-8859-1") from None
    a1 = secret + f":{nonce}:{cnonce}".encode()
    if authzid:
        a1 += b":" + authzid.encode("utf-8")
    ha1 = _hex(a1)
    tail = f":{nonce}:00000001:{cnonce}:{qop}:"
    response = _hex(f"{ha1}{tail}{_hex(f'AUTHENTICATE:{uri}'.encode())}".encode())
    rspauth = _hex(f"{ha1}{tail}{_hex(f':{uri}'.encode())}".encode())
    return response, rspauth


class DigestMD5Server:
    """One client's negotiation: challenge, then check its response.

    ``users`` maps user names to passwords (DigestLoginModule's ``user_*``).
    """

    __slots__ = ("users", "nonce", "step", "complete", "authentication_id", "authorization_id",
                 "realm", "digest_uri")

    def __init__(self, users: Mapping[str, str], nonce: str, *, protocol: str = PROTOCOL,
                 server_name: str = REALM) -> None:
        # the JDK's DigestMD5Server offers its server name as the one realm and
        # expects digest-uri "protocol/server name": the client port's is
        # zookeeper/zk-sasl-md5, the quorum's zookeeper-quorum/zk-quorum-sasl-md5
        self.users = users
        self.nonce = nonce
        self.realm = server_name
        self.digest_uri = f"{protocol}/{server_name}"
        self.step = 0
        self.complete = False
        self.authentication_id: str | None = None
        self.authorization_id: str | None = None

    def challenge(self) -> bytes:
        return (f'realm="{self.realm}",nonce="{self.nonce}",qop="auth",charset=utf-8,'
                f"algorithm=md5-sess").encode()

    def evaluate(self, token: bytes) -> bytes:
        """The next server token for the client's ``token``; SaslError if refused."""
        if self.complete:
            raise SaslError("DIGEST-MD5: authentication already complete")
        if self.step == 0:
            self.step = 1
            if token:
                # the client spoke first: DIGEST-MD5 has no initial response
                raise SaslError("DIGEST-MD5: unexpected initial response")
            return self.challenge()
        self.step = 2
        d = parse_directives(token)
        for key in ("username", "nonce", "cnonce", "response"):
            if key not in d:
                raise SaslError(f"DIGEST-MD5: digest response format violation: no {key}")
        if d["nonce"] != self.nonce:
            raise SaslError("DIGEST-MD5: digest response format violation. Mismatched nonce.")
        if d.get("nc", "00000001") != "00000001":
            raise SaslError("DIGEST-MD5: nonce count is not 1")
        qop = d.get("qop", "auth")
        if qop != "auth":
            raise SaslError(f"DIGEST-MD5: qop {qop} is not offered")
        realm = d.get("realm", self.realm)
        if realm != self.realm:
            raise SaslError(f"DIGEST-MD5: digest response format violation. "
                            f"Nonexistent realm: {realm}")
        uri = d.get("digest-uri", "")
        if uri != self.digest_uri:
            raise SaslError(f"DIGEST-MD5: digest response format violation. "
                            f"Mismatched URI: {uri}; expecting: {self.digest_uri}")
        utf8 = d.get("charset", "").lower() == "utf-8"
        user = d["username"]
        password = self.users.get(user)
        if password is None:
            raise SaslError(f"DIGEST-MD5: cannot acquire password for {user} in realm : {realm}")
        authzid = d.get("authzid")
        expected, rspauth = _response_values(user, realm, password, self.nonce, d["cnonce"],
                                             authzid, uri, qop, utf8)
        if not hmac.compare_digest(expected, d["response"].lower()):
            raise SaslError("DIGEST-MD5: digest response format violation. Mismatched response.")
        self.complete = True
        # ZooKeeper's SaslServerCallbackHandler maps the authentication id to
        # the SASL id (pyzk.core.kerberosname); the requested authzid is kept
        # only when that mapping fails.
        self.authentication_id = user
        self.authorization_id = authzid or user
        return f"rspauth={rspauth}".encode()


class DigestMD5Client:
    """The client side (RFC 2831 2.1.2), as the JDK's DigestMD5Client answers.

    A pyzk quorum learner authenticates with it to a quorum server (pyzk's or
    Apache's, the JDK's DigestMD5Server). DIGEST-MD5 has no initial response:
    the first :meth:`evaluate` takes the server's challenge and returns the
    digest response, the second checks the server's ``rspauth`` (proof that
    it knows the password too) and returns None. Like the JDK's client it
    asks for ``qop=auth`` only and names the user as authorization id.
    Sans-IO: the client nonce is given by the caller.
    """

    __slots__ = ("username", "password", "authzid", "cnonce", "digest_uri", "complete",
                 "_rspauth")

    #: SaslClient.hasInitialResponse: the server speaks first.
    initial_response = False

    def __init__(self, username: str, password: str, cnonce: str, *, protocol: str = PROTOCOL,
                 server_name: str = REALM, authzid: str | None = None) -> None:
        self.username = username
        self.password = password
        self.authzid = authzid
        self.cnonce = cnonce
        self.digest_uri = f"{protocol}/{server_name}"
        self.complete = False
        self._rspauth: str | None = None

    def __repr__(self) -> str:  # never the password
        return f"DigestMD5Client(username={self.username!r}, digest_uri={self.digest_uri!r})"

    def evaluate(self, challenge: bytes) -> bytes | None:
        """The response to the server's token; SaslError if it is refused."""
        if self.complete:
            raise SaslError("DIGEST-MD5: authentication already complete")
        if self._rspauth is None:
            return self._respond(challenge)
        d = parse_directives(challenge)
        if not hmac.compare_digest(d.get("rspauth", "").lower(), self._rspauth):
            raise SaslError("DIGEST-MD5: Server's rspauth value does not match what client "
                            "expects")
        self.complete = True
        return None

    def _respond(self, challenge: bytes) -> bytes:
        if len(challenge) > 2048:
            # RFC 2831 2.1.1: a challenge is at most 2048 bytes
            raise SaslError("DIGEST-MD5: Invalid digest-challenge length. Got: "
                            f"{len(challenge)} Expected < 2048")
        d = parse_directives(challenge)
        nonce = d.get("nonce")
        if not nonce:
            raise SaslError("DIGEST-MD5: Digest-challenge format violation: Missing nonce")
        if d.get("algorithm", "").lower() != "md5-sess":
            raise SaslError("DIGEST-MD5: Digest-challenge format violation: algorithm "
                            "directive missing or not md5-sess")
        offered = [q.strip().lower() for q in d.get("qop", "auth").split(",")]
        if "auth" not in offered:
            raise SaslError("DIGEST-MD5: No common protection layer between client and server")
        utf8 = d.get("charset", "").lower() == "utf-8"
        # RealmCallback's default: the (first) realm the server offers; none
        # offered means the empty realm, left out of the response (2.1.2)
        realm = d.get("realm", "")
        response, self._rspauth = _response_values(
            self.username, realm, self.password, nonce, self.cnonce, self.authzid,
            self.digest_uri, "auth", utf8)

        def quote(v: str) -> str:
            return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'

        parts = ["charset=utf-8"] if utf8 else []
        parts.append(f"username={quote(self.username)}")
        if "realm" in d:
            parts.append(f"realm={quote(realm)}")
        parts += [f"nonce={quote(nonce)}", "nc=00000001", f"cnonce={quote(self.cnonce)}",
                  f"digest-uri={quote(self.digest_uri)}", "maxbuf=65536",
                  f"response={response}", "qop=auth"]
        if self.authzid:
            parts.append(f"authzid={quote(self.authzid)}")
        return ",".join(parts).encode("utf-8")
