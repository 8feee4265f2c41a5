"""Key and trust stores in Apache's formats, turned into an ssl.SSLContext.

X509Util reads JKS, PKCS12 and PEM stores (BCFKS needs BouncyCastle, which
pyzk does not have). PEM and PKCS12 are read with ``cryptography``, JKS with
``pyjks``; the stdlib ``ssl`` module does the TLS itself.

The stdlib can load a private key only from a file, so the key is written
to a private temporary directory *encrypted* under a one-time random
passphrase, loaded, and deleted at once: the plaintext key never touches
the disk and the passphrase never leaves this process.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import ssl
import tempfile
from collections.abc import Iterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from pyzk.config.errors import ConfigError
from pyzk.config.tls import StoreSpec, TlsSettings
from pyzk.javacompat import x500_rfc2253

log = logging.getLogger(__name__)

_VERSIONS = {
    "TLSv1": ssl.TLSVersion.TLSv1, "TLSv1.1": ssl.TLSVersion.TLSv1_1,
    "TLSv1.2": ssl.TLSVersion.TLSv1_2, "TLSv1.3": ssl.TLSVersion.TLSv1_3,
}  # fmt: skip

# Java names cipher suites by their IANA names, OpenSSL by its own; no
# maintained library maps one to the other, so the families Java offers for
# TLS 1.2 and below are translated here by rule.
_IANA = re.compile(
    r"TLS_(?:(ECDHE|DHE)_)?(RSA|ECDSA)_WITH_"
    r"(?:AES_(128|256)_(GCM|CBC)_(SHA|SHA256|SHA384)|(CHACHA20_POLY1305)_SHA256)"
)
#: TLS 1.3 suites: OpenSSL always enables them; the stdlib cannot narrow them.
_TLS13 = {"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}


def openssl_cipher_name(iana: str) -> str | None:
    """OpenSSL's name for a Java/IANA TLS 1.2 cipher suite name, or None."""
    m = _IANA.fullmatch(iana)
    if m is None:
        return None
    kx, auth, bits, mode, mac, chacha = m.groups()
    if kx == "ECDHE":
        prefix = f"ECDHE-{auth}-"
    elif kx == "DHE":
        if auth != "RSA":
            return None
        prefix = "DHE-RSA-"
    else:
        if auth != "RSA":
            return None
        prefix = ""
    if chacha:
        return None if not kx else prefix + "CHACHA20-POLY1305"
    if mode == "GCM":
        return f"{prefix}AES{bits}-GCM-{mac}"
    return f"{prefix}AES{bits}-{mac}"


def _password(spec: StoreSpec) -> str:
    if spec.password_path:
        try:
            return Path(spec.password_path).read_text().rstrip("\r\n")
        except OSError as e:
            raise ConfigError(f"cannot read the password file {spec.password_path}: "
                              f"{e.strerror}") from None
    return spec.password


def _read(spec: StoreSpec, what: str) -> bytes:
    if spec.type not in ("PEM", "PKCS12", "JKS"):
        raise ConfigError(f"{spec.type} {what}s are not supported by pyzk "
                          f"({spec.location}); use JKS, PKCS12 or PEM")
    try:
        return Path(spec.location).read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read the {what} {spec.location}: {e.strerror}") from None


def _pem_blocks(data: bytes, label: bytes) -> list[bytes]:
    return re.findall(rb"-----BEGIN " + label + rb"-----.*?-----END " + label + rb"-----",
                      data, re.S)


def _pkcs12(data: bytes, password: str) -> tuple[object, list[x509.Certificate]]:
    """(key or None, certificates) of a PKCS12 file, key's certificate first."""
    key, cert, extra = pkcs12.load_key_and_certificates(data, password.encode() or None)
    return key, ([cert] if cert is not None else []) + list(extra)


@contextlib.contextmanager
def _store_errors(spec: StoreSpec, what: str) -> Iterator[None]:
    """Each library raises its own kinds of error: all become one ConfigError
    naming the file and the error's type, never the password."""
    try:
        yield
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - see the docstring
        raise ConfigError(f"cannot load the {spec.type} {what} {spec.location}: "
                          f"{type(e).__name__} (wrong password or damaged file?)") from None


def load_keystore(spec: StoreSpec) -> tuple[object, list[x509.Certificate]]:
    """(private key, certificate chain) from a key store; ConfigError says why not.

    The error never carries the password, only the file and the reason.
    """
    data = _read(spec, "key store")
    password = _password(spec)
    with _store_errors(spec, "key store"):
        if spec.type == "PEM":
            certs = x509.load_pem_x509_certificates(data) if b"CERTIFICATE" in data else []
            blocks = [b for label in (rb"ENCRYPTED PRIVATE KEY", rb"PRIVATE KEY",
                                      rb"RSA PRIVATE KEY", rb"EC PRIVATE KEY")
                      for b in _pem_blocks(data, label)]
            if not blocks:
                raise ConfigError(f"key store {spec.location} holds no private key")
            encrypted = b"ENCRYPTED" in blocks[0] or b"Proc-Type: 4,ENCRYPTED" in blocks[0]
            key = serialization.load_pem_private_key(
                blocks[0], password.encode() if encrypted else None)
        elif spec.type == "PKCS12":
            key, certs = _pkcs12(data, password)
        elif spec.type == "JKS":
            import jks  # pyjks

            store = jks.KeyStore.loads(data, password)
            entries = list(store.private_keys.values())
            if not entries:
                raise ConfigError(f"key store {spec.location} holds no private key entry")
            entry = entries[0]
            if not entry.is_decrypted():
                entry.decrypt(password)
            key = serialization.load_der_private_key(entry.pkey_pkcs8, None)
            certs = [x509.load_der_x509_certificate(der) for _t, der in entry.cert_chain]
        else:  # pragma: no cover - _read refused it
            raise ConfigError(f"{spec.type} key stores are not supported")
    if key is None or not certs:
        raise ConfigError(f"key store {spec.location} needs a private key and its certificate")
    return key, certs


def load_truststore(spec: StoreSpec) -> list[x509.Certificate]:
    """The trusted certificates of a trust store; ConfigError says why not."""
    data = _read(spec, "trust store")
    password = _password(spec)
    with _store_errors(spec, "trust store"):
        if spec.type == "PEM":
            certs = x509.load_pem_x509_certificates(data)
        elif spec.type == "PKCS12":
            _key, certs = _pkcs12(data, password)
        elif spec.type == "JKS":
            import jks  # pyjks

            store = jks.KeyStore.loads(data, password)
            certs = [x509.load_der_x509_certificate(e.cert) for e in store.certs.values()]
            for entry in store.private_keys.values():
                certs += [x509.load_der_x509_certificate(der) for _t, der in entry.cert_chain]
        else:  # pragma: no cover - _read refused it
            raise ConfigError(f"{spec.type} trust stores are not supported")
    if not certs:
        raise ConfigError(f"trust store {spec.location} holds no certificate")
    return certs


def _load_chain(ctx: ssl.SSLContext, key: object, certs: list[x509.Certificate]) -> None:
    """ctx.load_cert_chain from objects in memory (see the module docstring)."""
    passphrase = secrets.token_hex(32).encode()
    key_pem = key.private_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(passphrase))
    chain_pem = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)
    with tempfile.TemporaryDirectory(prefix="pyzk-tls-") as tmp:
        os.chmod(tmp, 0o700)
        cert_path, key_path = Path(tmp) / "chain.pem", Path(tmp) / "key.pem"
        cert_path.write_bytes(chain_pem)
        fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key_pem)
        ctx.load_cert_chain(cert_path, key_path, password=passphrase)


def _versions_and_ciphers(ctx: ssl.SSLContext, tls: TlsSettings) -> None:
    """SSLContextAndOptions' enabled protocols and cipher suites, on either side."""
    unknown = [p for p in tls.enabled_protocols if p not in _VERSIONS]
    if unknown:
        raise ConfigError(f"{tls.prefix}enabledProtocols: unsupported protocol {unknown[0]}")
    chosen = {_VERSIONS[p] for p in tls.enabled_protocols}
    lo, hi = min(chosen), max(chosen)
    ctx.minimum_version, ctx.maximum_version = lo, hi
    if any(lo < v < hi and v not in chosen for v in _VERSIONS.values()):
        log.warning("%senabledProtocols=%s: pyzk enables every version from %s to %s",
                    tls.prefix, ",".join(tls.enabled_protocols), lo.name, hi.name)
    known: list[str] = []
    skipped: list[str] = []
    for suite in tls.ciphersuites:
        if suite in _TLS13:
            continue
        name = openssl_cipher_name(suite)
        if name is None:
            skipped.append(suite)
        else:
            known.append(name)
    if skipped:
        log.warning("%sciphersuites: pyzk does not know %s; skipped", tls.prefix,
                    ", ".join(skipped))
    if known:
        try:
            ctx.set_ciphers(":".join(known))
        except ssl.SSLError:
            raise ConfigError(f"{tls.prefix}ciphersuites: none of "
                              f"{','.join(tls.ciphersuites)} is available") from None
    elif hi < ssl.TLSVersion.TLSv1_3:
        raise ConfigError(f"{tls.prefix}ciphersuites: no usable cipher suite")
    if tls.context_supplier:
        log.warning("%scontext.supplier.class=%s: pyzk cannot run a Java SSLContext supplier; "
                    "the key and trust stores are used instead", tls.prefix, tls.context_supplier)


def _trust(ctx: ssl.SSLContext, tls: TlsSettings, purpose: ssl.Purpose, wanted: bool) -> None:
    """The trust store, or the system's CAs when none is set (a JVM's cacerts)."""
    if tls.truststore is not None:
        trusted = load_truststore(tls.truststore)
        try:
            ctx.load_verify_locations(cadata="".join(
                c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in trusted))
        except ssl.SSLError as e:
            raise ConfigError(f"trust store {tls.truststore.location}: OpenSSL refused its "
                              f"certificates ({e.reason or 'unknown reason'})") from None
    elif wanted:
        ctx.load_default_certs(purpose)
    if tls.crl or tls.ocsp:
        log.warning("%scrl/%socsp: revocation checking is not supported by pyzk; "
                    "certificates are not checked for revocation", tls.prefix, tls.prefix)


def _own_chain(ctx: ssl.SSLContext, spec: StoreSpec) -> None:
    key, certs = load_keystore(spec)
    try:
        _load_chain(ctx, key, certs)
    except ssl.SSLError as e:
        raise ConfigError(f"key store {spec.location}: OpenSSL refused its key and "
                          f"certificate ({e.reason or e.library or 'unknown reason'})") from None


def server_context(tls: TlsSettings) -> ssl.SSLContext:
    """The server-side SSLContext X509Util would build from ``tls``."""
    if tls.keystore is None:
        raise ConfigError(f"{tls.prefix}keyStore.location is not set: a TLS port needs a key store")
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    _versions_and_ciphers(ctx, tls)
    ctx.verify_mode = {"NEED": ssl.CERT_REQUIRED, "WANT": ssl.CERT_OPTIONAL,
                       "NONE": ssl.CERT_NONE}[tls.client_auth]
    _trust(ctx, tls, ssl.Purpose.CLIENT_AUTH, tls.client_auth != "NONE")
    _own_chain(ctx, tls.keystore)
    return ctx


def client_context(tls: TlsSettings) -> ssl.SSLContext:
    """The client-side SSLContext X509Util's createSSLSocket would use.

    The server's certificate must chain to the trust store; whether it names
    the address dialled is ZKTrustManager's hostname check, which the caller
    makes after the handshake (OpenSSL's check differs: it never tries an
    address and then a name, as Apache does), so ``check_hostname`` is off.
    Without a key store the client offers no certificate, as Java's does
    with no key manager.
    """
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    _versions_and_ciphers(ctx, tls)
    _trust(ctx, tls, ssl.Purpose.SERVER_AUTH, True)
    if tls.keystore is not None:
        _own_chain(ctx, tls.keystore)
    return ctx


def certificate_names(der: bytes) -> tuple[list[str], list[str], str | None]:
    """(IP subjectAltNames, DNS subjectAltNames, the most specific CN) of a
    certificate: what ZKHostnameVerifier matches a peer's address against."""
    cert = x509.load_der_x509_certificate(der)
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        ips = [str(ip) for ip in san.get_values_for_type(x509.IPAddress)]
        dns = list(san.get_values_for_type(x509.DNSName))
    except x509.ExtensionNotFound:
        ips, dns = [], []
    cns = cert.subject.get_attributes_for_oid(x509.NameOID.COMMON_NAME)
    cn = str(cns[-1].value) if cns else None
    return ips, dns, cn


def subject_id(der: bytes) -> str:
    """The x509 scheme's id for a client certificate: its subject as Java's
    X500Principal.getName() prints it."""
    cert = x509.load_der_x509_certificate(der)
    return x500_rfc2253(
        [(a.oid.dotted_string, getattr(getattr(a, "_type", None), "value", 12), str(a.value))
         for a in rdn] for rdn in cert.subject.rdns)
