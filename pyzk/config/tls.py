"""TLS settings as Apache's X509Util reads them from system properties.

The client port reads ``zookeeper.ssl.*`` (ClientX509Util), the quorum
``zookeeper.ssl.quorum.*`` (QuorumX509Util). A zoo.cfg key ``ssl.X``
becomes the system property ``zookeeper.ssl.X`` as any key QuorumPeerConfig
does not know, so both ``ssl.keyStore.location=...`` in zoo.cfg and
``-Dzookeeper.ssl.keyStore.location=...`` in SERVER_JVMFLAGS land here.

Only the reading is here: which file, which type, which password; the shell
(pyzk.shell.tlscontext) opens the files and builds the ssl.SSLContext.
"""

from __future__ import annotations

import ipaddress
import logging
from dataclasses import dataclass

from pyzk.config.errors import ConfigError

log = logging.getLogger(__name__)

CLIENT_PREFIX = "zookeeper.ssl."
QUORUM_PREFIX = "zookeeper.ssl.quorum."

#: X509Util.DEFAULT_PROTOCOL in 3.8.
DEFAULT_PROTOCOL = "TLSv1.2"

#: KeyStoreFileType and the file extension each is guessed from.
STORE_TYPES = {"JKS": ".jks", "PEM": ".pem", "PKCS12": ".p12", "BCFKS": ".bcfks"}

#: X509Util's defaults on Java 9 and later (GCM first, then CBC).
DEFAULT_CIPHERS = (
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA",
)  # fmt: skip

CLIENT_AUTH = ("NONE", "WANT", "NEED")

#: The property suffixes read here (with a prefix, they are system properties).
SUFFIXES = (
    "protocol", "enabledProtocols", "ciphersuites", "keyStore.location", "keyStore.password",
    "keyStore.passwordPath", "keyStore.type", "trustStore.location", "trustStore.password",
    "trustStore.passwordPath", "trustStore.type", "hostnameVerification", "crl", "ocsp",
    "clientAuth", "handshakeDetectionTimeoutMillis", "authProvider", "allowReverseDnsLookup",
    "context.supplier.class",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class StoreSpec:
    """One key or trust store: where, which type, and how its password is given.

    The password is either inline (``password``) or in a file
    (``password_path``, which wins, as in getPasswordFromConfigPropertyOrFile);
    the shell reads the file. ``repr`` never shows the password.
    """

    location: str
    type: str
    password: str = ""
    password_path: str = ""

    def __repr__(self) -> str:
        return f"StoreSpec(location={self.location!r}, type={self.type!r})"


@dataclass(frozen=True, slots=True)
class TlsSettings:
    """What X509Util and SSLContextAndOptions read for one side (client or quorum)."""

    prefix: str
    keystore: StoreSpec | None
    truststore: StoreSpec | None
    protocol: str = DEFAULT_PROTOCOL
    enabled_protocols: tuple[str, ...] = (DEFAULT_PROTOCOL,)
    ciphersuites: tuple[str, ...] = DEFAULT_CIPHERS
    client_auth: str = "NEED"
    hostname_verification: bool = True
    crl: bool = False
    ocsp: bool = False
    handshake_timeout_ms: int = 5000
    auth_provider: str = "x509"
    #: allowReverseDnsLookup: when a peer's address is not in its certificate,
    #: try the name a reverse lookup gives (QuorumX509Util's default: true).
    allow_reverse_dns: bool = False
    #: context.supplier.class: named, but pyzk cannot run a Java supplier.
    context_supplier: str = ""

    @property
    def client_hostname_verification(self) -> bool:
        """X509Util.isClientHostnameVerificationEnabled: servers check the
        connecting peer's address only on the quorum (shouldVerifyClientHostname)."""
        return self.hostname_verification and self.prefix == QUORUM_PREFIX


def store_type(type_prop: str | None, location: str, key: str) -> str:
    """KeyStoreFileType.fromPropertyValueOrFileName, with Apache's messages."""
    if type_prop:
        upper = type_prop.upper()
        if upper not in STORE_TYPES:
            raise ConfigError(f"Bad value for {key}: {type_prop}")
        return upper
    dot = location.rfind(".")
    if dot >= 0:
        ext = location[dot:]
        for name, default_ext in STORE_TYPES.items():
            if ext == default_ext:
                return name
    raise ConfigError(f"Unable to auto-detect store file type from file name: {location}")


def _store(props: dict[str, str], prefix: str, which: str) -> StoreSpec | None:
    location = props.get(f"{prefix}{which}.location", "")
    if not location:
        return None
    return StoreSpec(
        location=location,
        type=store_type(props.get(f"{prefix}{which}.type"), location, f"{prefix}{which}.type"),
        password=props.get(f"{prefix}{which}.password", ""),
        password_path=props.get(f"{prefix}{which}.passwordPath", ""),
    )


def tls_settings(props: dict[str, str], prefix: str = CLIENT_PREFIX) -> TlsSettings:
    """Read one side's settings from the system properties ``props``.

    ConfigError names the offending property; Apache fails the same
    configurations when it builds the SSL context at startup.
    """
    protocol = props.get(f"{prefix}protocol", DEFAULT_PROTOCOL)
    enabled = props.get(f"{prefix}enabledProtocols")
    ciphers = props.get(f"{prefix}ciphersuites")
    auth = props.get(f"{prefix}clientAuth", "")
    client_auth = auth.upper() if auth else "NEED"
    if client_auth not in CLIENT_AUTH:
        # ClientAuth.valueOf throws: Apache cannot build its SSL context.
        raise ConfigError(f"Bad value for {prefix}clientAuth: {auth}")
    timeout_s = props.get(f"{prefix}handshakeDetectionTimeoutMillis")
    timeout = 5000
    if timeout_s is not None:
        # X509Util.getSslHandshakeTimeoutMillis: a bad or non-positive value
        # is logged and the default used
        try:
            timeout = int(timeout_s)
        except ValueError:
            timeout = 0
        if timeout < 1:
            log.warning("Invalid value for %shandshakeDetectionTimeoutMillis: %s, using the "
                        "default value of 5000", prefix, timeout_s)
            timeout = 5000
    return TlsSettings(
        prefix=prefix,
        keystore=_store(props, prefix, "keyStore"),
        truststore=_store(props, prefix, "trustStore"),
        protocol=protocol,
        enabled_protocols=tuple(enabled.split(",")) if enabled is not None else (protocol,),
        ciphersuites=tuple(ciphers.split(",")) if ciphers is not None else DEFAULT_CIPHERS,
        client_auth=client_auth,
        # Boolean.parseBoolean semantics, default true (isServerHostnameVerificationEnabled)
        hostname_verification=props.get(f"{prefix}hostnameVerification", "true").lower() == "true",
        crl=props.get(f"{prefix}crl", "").lower() == "true",
        ocsp=props.get(f"{prefix}ocsp", "").lower() == "true",
        handshake_timeout_ms=timeout,
        auth_provider=props.get(f"{prefix}authProvider", "x509"),
        # ZKConfig.getBoolean; the quorum's default is true, the client's false
        allow_reverse_dns=props.get(f"{prefix}allowReverseDnsLookup",
                                    str(prefix == QUORUM_PREFIX)).strip().lower() == "true",
        context_supplier=props.get(f"{prefix}context.supplier.class", ""),
    )


def _match_identity(host: str, identity: str) -> bool:
    """ZKHostnameVerifier.matchIdentityStrict: one ``*`` matches within one label."""
    star = identity.find("*")
    if star < 0:
        return host == identity
    prefix, suffix = identity[:star], identity[star + 1:]
    if not host.startswith(prefix) or not host.endswith(suffix):
        return False
    if len(prefix) + len(suffix) > len(host):
        return False
    return "." not in host[len(prefix):len(host) - len(suffix)]


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def host_mismatch(host: str, san_ips: list[str], san_dns: list[str], cn: str | None) -> str | None:
    """ZKHostnameVerifier.verify: None when the certificate names ``host``,
    else why not.

    ``host`` is an address or a name; ``san_ips``/``san_dns`` are the
    certificate's subjectAltName entries (IPs in their normal text form),
    ``cn`` its subject's most specific CN. An address matches only IP
    entries, a name only DNS entries; the CN counts only when the certificate
    has no subjectAltName at all (RFC 2818).
    """
    if san_ips or san_dns:
        if _is_ip(host):
            want = ipaddress.ip_address(host)
            if any(ipaddress.ip_address(ip) == want for ip in san_ips):
                return None
        else:
            lowered = host.lower()
            if any(_match_identity(lowered, d.lower()) for d in san_dns):
                return None
        names = ", ".join([*san_dns, *san_ips])
        return (f"Certificate for <{host}> doesn't match any of the subject alternative "
                f"names: [{names}]")
    if cn is None:
        return (f"Certificate subject for <{host}> doesn't contain a common name and does not "
                "have alternative names")
    if _match_identity(host.lower(), cn.lower()):
        return None
    return f"Certificate for <{host}> doesn't match common name of the certificate subject: {cn}"
