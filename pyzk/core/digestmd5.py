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


class DigestMD5Server:
    """One client's negotiation: challenge, then check its response.

    ``users`` maps user names to passwords (DigestLoginModule's ``user_*``).
    """

    __slots__ = ("users", "nonce", "step", "complete", "authorization_id")

    def __init__(self, users: Mapping[str, str], nonce: str) -> None:
        self.users = users
        self.nonce = nonce
        self.step = 0
        self.complete = False
        self.authorization_id: str | None = None

    def challenge(self) -> bytes:
        return (f'realm="{REALM}",nonce="{self.nonce}",qop="auth",charset=utf-8,'
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
        realm = d.get("realm", REALM)
        if realm != REALM:
            raise SaslError(f"DIGEST-MD5: digest response format violation. "
                            f"Nonexistent realm: {realm}")
        uri = d.get("digest-uri", "")
        if uri != DIGEST_URI:
            raise SaslError(f"DIGEST-MD5: digest response format violation. "
                            f"Mismatched URI: {uri}; expecting: {DIGEST_URI}")
        utf8 = d.get("charset", "").lower() == "utf-8"
        user = d["username"]
        password = self.users.get(user)
        if password is None:
            raise SaslError(f"DIGEST-MD5: cannot acquire password for {user} in realm : {realm}")
        authzid = d.get("authzid")
        try:
            secret = _h(b":".join(_octets(x, utf8) for x in (user, realm, password)))
        except UnicodeEncodeError:
            raise SaslError("DIGEST-MD5: user name or password not in ISO-8859-1") from None
        a1 = secret + f":{self.nonce}:{d['cnonce']}".encode()
        if authzid:
            a1 += b":" + authzid.encode("utf-8")
        ha1 = _hex(a1)
        tail = f":{self.nonce}:{d.get('nc', '00000001')}:{d['cnonce']}:{qop}:"
        expected = _hex(f"{ha1}{tail}{_hex(f'AUTHENTICATE:{uri}'.encode())}".encode())
        if not hmac.compare_digest(expected, d["response"].lower()):
            raise SaslError("DIGEST-MD5: digest response format violation. Mismatched response.")
        rspauth = _hex(f"{ha1}{tail}{_hex(f':{uri}'.encode())}".encode())
        self.complete = True
        # ZooKeeper's SaslServerCallbackHandler authorizes the authentication
        # id (its Kerberos short name, which for a plain user name is itself)
        self.authorization_id = user
        return f"rspauth={rspauth}".encode()
