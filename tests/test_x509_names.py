"""A client certificate's x509 id is its subject as Java prints it.

Differential: the same certificates go through Java's
X509Certificate.getSubjectX500Principal().getName() and through
pyzk.shell.tlscontext.subject_id; every string must be equal, since ACLs
written for Apache (``x509:CN=...``) must match on pyzk.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID, ObjectIdentifier

from pyzk.shell.tlscontext import subject_id
from pyzk.testing.certs import TestPKI

pytestmark = pytest.mark.reference

A = x509.NameAttribute
R = x509.RelativeDistinguishedName
_ASN1 = x509.name._ASN1Type  # the string types a certificate may use

SUBJECTS = [
    x509.Name([A(NameOID.COMMON_NAME, "client")]),
    x509.Name([A(NameOID.COUNTRY_NAME, "US"), A(NameOID.STATE_OR_PROVINCE_NAME, "CA"),
               A(NameOID.LOCALITY_NAME, "Palo Alto"), A(NameOID.ORGANIZATION_NAME, "Acme, Inc."),
               A(NameOID.ORGANIZATIONAL_UNIT_NAME, "R&D"), A(NameOID.COMMON_NAME, "zk client")]),
    x509.Name([A(NameOID.COMMON_NAME, 'we=ird+chars<>#;"\\ here')]),
    x509.Name([A(NameOID.COMMON_NAME, " leading and trailing ")]),
    x509.Name([A(NameOID.COMMON_NAME, "#hash first")]),
    x509.Name([A(NameOID.EMAIL_ADDRESS, "ops@example.com"), A(NameOID.COMMON_NAME, "mail")]),
    x509.Name([A(NameOID.DOMAIN_COMPONENT, "org"), A(NameOID.DOMAIN_COMPONENT, "example"),
               A(NameOID.USER_ID, "u42"), A(NameOID.COMMON_NAME, "dc user")]),
    x509.Name([R([A(NameOID.COMMON_NAME, "multi"),
                  A(NameOID.ORGANIZATIONAL_UNIT_NAME, "valued")])]),
    x509.Name([A(NameOID.COMMON_NAME, "h\u00e9llo w\u00f6rld \u4e2d")]),
    x509.Name([A(NameOID.COMMON_NAME, "printable", _ASN1.PrintableString)]),
    x509.Name([A(NameOID.SERIAL_NUMBER, "12345"), A(NameOID.TITLE, "boss"),
               A(NameOID.STREET_ADDRESS, "1 Main St")]),
    x509.Name([A(ObjectIdentifier("1.2.3.4.5"), "private oid"), A(NameOID.COMMON_NAME, "x")]),
]

DUMPER = r"""
import java.io.*;
import java.nio.file.*;
import java.security.cert.*;

public class SubjectDump {
    public static void main(String[] args) throws Exception {
        CertificateFactory cf = CertificateFactory.getInstance("X.509");
        PrintStream out = new PrintStream(System.out, true, "UTF-8");
        for (String path : args) {
            try (InputStream in = Files.newInputStream(Paths.get(path))) {
                X509Certificate c = (X509Certificate) cf.generateCertificate(in);
                out.println(c.getSubjectX500Principal().getName());
            }
        }
    }
}
"""


def test_subject_ids_match_java(tmp_path: Path) -> None:
    if shutil.which("java") is None:
        pytest.skip("java is not installed")
    pki = TestPKI()
    files, mine = [], []
    for i, subject in enumerate(SUBJECTS):
        der = pki.issue(subject).cert.public_bytes(serialization.Encoding.DER)
        path = tmp_path / f"c{i}.der"
        path.write_bytes(der)
        files.append(str(path))
        mine.append(subject_id(der))
    src = tmp_path / "SubjectDump.java"
    src.write_text(DUMPER)
    out = subprocess.run(["java", str(src), *files], capture_output=True, check=True,
                         timeout=120).stdout.decode("utf-8").splitlines()
    assert list(zip(mine, out, strict=True)) == [(j, j) for j in out]
