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
    "clientAuth", "handshakeDetectionTimeoutMillis", "authProvider",
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
    )
