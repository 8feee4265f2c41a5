"""A throwaway PKI for tests: a CA, server and client certificates, and the
key and trust stores Apache's X509Util reads (PEM, PKCS12, JKS).

Everything is generated at run time with ``cryptography`` (JKS through
``pyjks``); nothing secret is ever written outside the caller's directory,
and the passwords are chosen by the caller.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass
class Identity:
    """A certificate, its key, and the chain above it (CA last)."""

    cert: x509.Certificate
    key: PrivateKey
    chain: list[x509.Certificate] = field(default_factory=list)

    def cert_pem(self) -> bytes:
        pem = serialization.Encoding.PEM
        return b"".join(c.public_bytes(pem) for c in [self.cert, *self.chain])

    def key_pem(self, password: str | None = None) -> bytes:
        enc: serialization.KeySerializationEncryption = (
            serialization.BestAvailableEncryption(password.encode()) if password
            else serialization.NoEncryption())
        return self.key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8, enc)


def _name(subject: str | x509.Name) -> x509.Name:
    if isinstance(subject, x509.Name):
        return subject
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])


def _key(kind: str) -> PrivateKey:
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class TestPKI:
    """One self-signed CA that issues certificates on demand."""

    __test__ = False  # not a pytest test class

    def __init__(self, subject: str | x509.Name = "pyzk test CA", key_kind: str = "rsa") -> None:
        now = datetime.datetime.now(datetime.UTC)
        self.ca_key = _key(key_kind)
        name = _name(subject)
        self.ca_cert = (
            x509.CertificateBuilder()
            .subject_name(name).issuer_name(name)
            .public_key(self.ca_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
            .sign(self.ca_key, hashes.SHA256())
        )

    def issue(self, subject: str | x509.Name, *, dns: tuple[str, ...] = ("localhost",),
              ips: tuple[str, ...] = ("127.0.0.1",), key_kind: str = "rsa",
              valid_days: float = 1.0, expired: bool = False) -> Identity:
        """A certificate for ``subject`` good for TLS server and client use."""
        now = datetime.datetime.now(datetime.UTC)
        if expired:
            start, end = now - datetime.timedelta(days=3), now - datetime.timedelta(days=1)
        else:
            start = now - datetime.timedelta(minutes=5)
            end = now + datetime.timedelta(days=valid_days)
        key = _key(key_kind)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(subject)).issuer_name(self.ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        )
        alt: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        alt += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        if alt:
            builder = builder.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        cert = builder.sign(self.ca_key, hashes.SHA256())
        return Identity(cert, key, [self.ca_cert])

    def ca_pem(self) -> bytes:
        return self.ca_cert.public_bytes(serialization.Encoding.PEM)

    # -- stores -----------------------------------------------------------------

    def write_truststore(self, path: Path, kind: str, password: str = "") -> Path:
        """The CA as a trust store of ``kind`` (PEM, PKCS12 or JKS)."""
        kind = kind.upper()
        if kind == "PEM":
            path.write_bytes(self.ca_pem())
        elif kind == "PKCS12":
            enc = (serialization.BestAvailableEncryption(password.encode()) if password
                   else serialization.NoEncryption())
            path.write_bytes(pkcs12.serialize_key_and_certificates(
                b"ca", None, None, [self.ca_cert], enc))
        elif kind == "JKS":
            import jks  # pyjks

            der = self.ca_cert.public_bytes(serialization.Encoding.DER)
            store = jks.KeyStore.new("jks", [jks.TrustedCertEntry.new("ca", der)])
            store.save(str(path), password)
        else:
            raise ValueError(f"unknown store kind {kind}")
        return path


def write_keystore(identity: Identity, path: Path, kind: str, password: str = "") -> Path:
    """``identity``'s key and chain as a key store of ``kind`` (PEM, PKCS12 or JKS)."""
    kind = kind.upper()
    if kind == "PEM":
        path.write_bytes(identity.key_pem(password or None) + identity.cert_pem())
    elif kind == "PKCS12":
        enc = (serialization.BestAvailableEncryption(password.encode()) if password
               else serialization.NoEncryption())
        path.write_bytes(pkcs12.serialize_key_and_certificates(
            b"key", identity.key, identity.cert, identity.chain, enc))
    elif kind == "JKS":
        import jks  # pyjks

        der = serialization.Encoding.DER
        certs = [c.public_bytes(der) for c in [identity.cert, *identity.chain]]
        key_der = identity.key.private_bytes(serialization.Encoding.DER,
                                             serialization.PrivateFormat.PKCS8,
                                             serialization.NoEncryption())
        entry = jks.PrivateKeyEntry.new("key", certs, key_der, "pkcs8")
        jks.KeyStore.new("jks", [entry]).save(str(path), password)
    else:
        raise ValueError(f"unknown store kind {kind}")
    return path
