"""SASL GSSAPI (Kerberos V5, RFC 4752) on the client port, through python-gssapi.

Apache's server takes GSSAPI when the JAAS ``Server`` section logs in with
``Krb5LoginModule`` (a keytab and a ``service/host@REALM`` principal); the
JDK's GssKrb5Server then runs the exchange this module runs with MIT's
library: GSS context tokens until the context is established (the client
then sends an empty token), a wrapped four-byte offer of security layers
(only "none": ZooKeeper's qop is auth) and our maximum buffer, and the
client's wrapped choice with its authorization id. The Kerberos work itself
(keytab, replay cache, decryption) is libkrb5's, so this lives in the shell;
the name the client ends up with is :mod:`pyzk.core.kerberosname`'s.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from pyzk.config.errors import ConfigError
from pyzk.core.digestmd5 import SaslError

if TYPE_CHECKING:
    import gssapi as _gssapi

    from pyzk.config import ServerConfig
    from pyzk.config.jaas import KerberosLogin

log = logging.getLogger(__name__)

#: javax.security.sasl.maxbuffer's default, the size GssKrb5Server offers.
MAX_BUFFER = 65536
#: RFC 4752 security layer bits: no layer / integrity / confidentiality.
LAYER_NONE = 1


def krb5_conf_path(sysprops: dict[str, str]) -> str:
    """The krb5.conf the JDK would read: ``java.security.krb5.conf``, else
    MIT's ``KRB5_CONFIG``, else /etc/krb5.conf."""
    return (sysprops.get("java.security.krb5.conf") or os.environ.get("KRB5_CONFIG")
            or "/etc/krb5.conf")


def default_realm(sysprops: dict[str, str]) -> str:
    """KerberosUtil.getDefaultRealm: ``java.security.krb5.realm``, else the
    krb5.conf ``default_realm``; "" when neither is there (as Apache)."""
    from pyzk.core.kerberosname import default_realm_of

    if sysprops.get("java.security.krb5.realm"):
        return sysprops["java.security.krb5.realm"]
    try:
        with open(krb5_conf_path(sysprops), encoding="utf-8", errors="replace") as f:
            return default_realm_of(f.read()) or ""
    except OSError:
        return ""


def _use_krb5_conf(cfg: ServerConfig) -> None:
    """libkrb5 reads its configuration from KRB5_CONFIG when a context is
    made; the JDK's ``java.security.krb5.conf`` names the same file."""
    conf = cfg.system_properties.get("java.security.krb5.conf")
    if conf:
        os.environ["KRB5_CONFIG"] = conf


class GssapiServer:
    """One client's GSSAPI negotiation (GssKrb5Server's three stages)."""

    __slots__ = ("_ctx", "_stage", "complete", "authentication_id", "authorization_id")

    def __init__(self, ctx: _gssapi.SecurityContext) -> None:
        self._ctx = ctx
        self._stage = 0
        self.complete = False
        self.authentication_id: str | None = None
        self.authorization_id: str | None = None

    def evaluate(self, token: bytes) -> bytes | None:
        """The next server token for the client's; SaslError if refused."""
        import gssapi.exceptions

        if self.complete:
            raise SaslError("SASL authentication already complete")
        ctx = self._ctx
        try:
            if self._stage == 0:
                if not token:
                    # python-gssapi takes no token as "start", the JDK as a defect
                    raise SaslError("GSS initiate failed [Caused by GSSException: "
                                    "Defective token detected]")
                out = ctx.step(token)
                if ctx.complete:
                    self._stage = 1
                    self.authentication_id = str(ctx.initiator_name)
                return out or b""
            if self._stage == 1:
                if token:
                    raise SaslError("Handshake expecting no response data from server")
                self._stage = 2
                offer = bytes([LAYER_NONE]) + MAX_BUFFER.to_bytes(3, "big")
                return ctx.wrap(offer, encrypt=False).message
            answer = ctx.unwrap(token).message
        except gssapi.exceptions.GSSError as e:
            raise SaslError(f"GSS initiate failed [Caused by GSSException: {e.gen_message()}]"
                            ) from None
        if len(answer) < 4:
            raise SaslError("Final handshake response too short")
        if not answer[0] & LAYER_NONE:
            raise SaslError(f"Client selected unsupported protection: {answer[0]}")
        peer = self.authentication_id or ""
        try:
            self.authorization_id = answer[4:].decode("utf-8") if len(answer) > 4 else peer
        except UnicodeDecodeError:
            raise SaslError("Final handshake response has a malformed authorization id"
                            ) from None
        self.complete = True
        return None


class GssapiAcceptor:
    """The server's Kerberos credentials, acquired once at start-up."""

    __slots__ = ("_creds",)

    def __init__(self, creds: _gssapi.Credentials) -> None:
        self._creds = creds

    @classmethod
    def login(cls, cfg: ServerConfig, login: KerberosLogin) -> GssapiAcceptor:
        """Acceptor credentials for the JAAS section's principal and keytab.

        ConfigError (the server does not start) when python-gssapi is missing
        or the keytab holds no key for the principal, as Apache's
        configureSaslLogin stops the server when the login fails.
        """
        why = ("Could not configure server because SASL configuration did not allow the "
               " ZooKeeper server to authenticate itself properly: ")
        try:
            import gssapi
            import gssapi.exceptions
        except ImportError:
            raise ConfigError(why + "python-gssapi is not installed "
                              "(pip install 'pyzk[kerberos]')") from None
        _use_krb5_conf(cfg)
        store = {"keytab": login.keytab} if login.keytab else None
        name = None
        if login.principal and login.principal != "*":
            name = gssapi.Name(login.principal, gssapi.NameType.kerberos_principal)
        try:
            creds = gssapi.Credentials(name=name, usage="accept", store=store)
            if name is not None:
                # a keytab without the principal's key fails here, not at the first client
                creds.inquire()
        except gssapi.exceptions.GSSError as e:
            raise ConfigError(why + f"Kerberos login of {login.principal or '*'} from keytab "
                              f"{login.keytab or '(default)'} failed: {e.gen_message()}"
                              ) from None
        log.info("SASL GSSAPI: accepting Kerberos clients as %s", login.principal or "*")
        return cls(creds)

    def new_server(self) -> GssapiServer:
        import gssapi

        return GssapiServer(gssapi.SecurityContext(creds=self._creds, usage="accept"))


class GssapiClient:
    """The learner's side of GSSAPI on the quorum (the JDK's GssKrb5Client).

    It speaks first (the AP-REQ), follows the server's context tokens, then
    answers the wrapped offer of security layers choosing none, naming its
    own principal as the authorization id, as SecurityUtils.createSaslClient
    asks the JDK to.
    """

    __slots__ = ("_ctx", "_authzid", "complete", "initial_response")

    def __init__(self, ctx: _gssapi.SecurityContext, authzid: str) -> None:
        self._ctx = ctx
        self._authzid = authzid
        self.complete = False
        self.initial_response = True

    def evaluate(self, challenge: bytes) -> bytes | None:
        import gssapi.exceptions

        if self.complete:
            raise SaslError("SASL authentication already complete")
        ctx = self._ctx
        try:
            if not ctx.complete:
                out = ctx.step(challenge or None)
                return out or b""
            offer = ctx.unwrap(challenge).message
            if len(offer) != 4:
                raise SaslError("Invalid length of the server's security layer offer")
            if not offer[0] & LAYER_NONE:
                raise SaslError("No common protection layer between client and server")
            answer = bytes([LAYER_NONE]) + MAX_BUFFER.to_bytes(3, "big")
            answer += self._authzid.encode("utf-8")
            self.complete = True
            return ctx.wrap(answer, encrypt=False).message
        except gssapi.exceptions.GSSError as e:
            raise SaslError(f"GSS initiate failed [Caused by GSSException: {e.gen_message()}]"
                            ) from None


class GssapiInitiator:
    """A learner's Kerberos credentials, from its JAAS section's keytab."""

    __slots__ = ("_creds", "principal")

    def __init__(self, creds: _gssapi.Credentials, principal: str) -> None:
        self._creds = creds
        self.principal = principal

    @classmethod
    def login(cls, cfg: ServerConfig, login: KerberosLogin) -> GssapiInitiator:
        """Initiator credentials from the keytab, kept in a ccache of this
        process's memory (the user's ticket cache is left alone). ConfigError
        when they cannot be had."""
        try:
            import gssapi
            import gssapi.exceptions
        except ImportError:
            raise ConfigError("Kerberos quorum authentication needs python-gssapi "
                              "(pip install 'pyzk[kerberos]')") from None
        _use_krb5_conf(cfg)
        store = {"ccache": f"MEMORY:pyzk-{os.getpid()}-{id(login)}"}
        if login.keytab:
            store["client_keytab"] = login.keytab
        try:
            name = gssapi.Name(login.principal, gssapi.NameType.kerberos_principal)
            creds = gssapi.Credentials(name=name, usage="initiate", store=store)
        except gssapi.exceptions.GSSError as e:
            raise ConfigError(f"Kerberos login of {login.principal} from keytab "
                              f"{login.keytab or '(default)'} failed: {e.gen_message()}"
                              ) from None
        return cls(creds, login.principal)

    def new_client(self, service_principal: str) -> GssapiClient:
        """A client for ``service/host@REALM`` (the realm defaults to ours)."""
        import gssapi

        if "@" not in service_principal and "@" in self.principal:
            service_principal += "@" + self.principal.rsplit("@", 1)[1]
        target = gssapi.Name(service_principal, gssapi.NameType.kerberos_principal)
        ctx = gssapi.SecurityContext(name=target, creds=self._creds, usage="initiate",
                                     flags=gssapi.RequirementFlag.mutual_authentication)
        return GssapiClient(ctx, self.principal)
