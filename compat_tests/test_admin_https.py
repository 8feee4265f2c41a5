"""TLS on the admin port (3.8's ``admin.portUnification`` / ``admin.forceHttps``,
the ``ssl.quorum.*`` stores): HTTPS with Python's ssl and plain HTTP, on pyzk
and, where its Jetty runs here, on Apache, with the same outcomes."""

from __future__ import annotations

import http.client
import ssl
from pathlib import Path

import pytest

from pyzk.testing.certs import TestPKI, write_keystore
from pyzk.testing.servers import SERVER_CLASSES, free_port, require_reference, wait_for

KINDS = [pytest.param("pyzk", marks=pytest.mark.server),
         pytest.param("apache", marks=pytest.mark.reference)]
MODES = {"unified": {"admin.portUnification": "true"},
         "force": {"admin.forceHttps": "true"},
         "both": {"admin.portUnification": "true", "admin.forceHttps": "true"}}


def _stores(tmp: Path) -> tuple[dict[str, str], ssl.SSLContext]:
    pki = TestPKI()
    ident = pki.issue("CN=localhost")
    ks = write_keystore(ident, tmp / "ks.p12", "PKCS12", "kspass")
    ts = pki.write_truststore(tmp / "ts.p12", "PKCS12", "tspass")
    cfg = {"ssl.quorum.keyStore.location": str(ks), "ssl.quorum.keyStore.password": "kspass",
           "ssl.quorum.keyStore.type": "PKCS12",
           "ssl.quorum.trustStore.location": str(ts), "ssl.quorum.trustStore.password": "tspass",
           "ssl.quorum.trustStore.type": "PKCS12"}
    (tmp / "ca.pem").write_bytes(pki.ca_pem())
    client = ssl.create_default_context(cafile=str(tmp / "ca.pem"))
    return cfg, client


def _get(port: int, ctx: ssl.SSLContext | None) -> tuple[int | str, str | None]:
    """(status or the kind of failure, the Strict-Transport-Security header)."""
    if ctx is None:
        conn: http.client.HTTPConnection = http.client.HTTPConnection("127.0.0.1", port,
                                                                      timeout=10)
    else:
        conn = http.client.HTTPSConnection("localhost", port, timeout=10, context=ctx)
    try:
        conn.request("GET", "/commands/ruok")
        r = conn.getresponse()
        r.read()
        return r.status, r.getheader("Strict-Transport-Security")
    except (ssl.SSLError, ConnectionError, http.client.HTTPException, OSError):
        return "failed", None
    finally:
        conn.close()


OUTCOMES = {
    "unified": {"https": (200, "max-age=86400; includeSubDomains"), "http": (200, None)},
    "force": {"https": (200, "max-age=86400; includeSubDomains"), "http": ("failed", None)},
    "both": {"https": (200, "max-age=86400; includeSubDomains"), "http": ("failed", None)},
}


@pytest.mark.parametrize("mode", sorted(MODES))
@pytest.mark.parametrize("kind", KINDS)
def test_admin_tls(tmp_path: Path, kind: str, mode: str) -> None:
    if kind == "apache":
        require_reference()
        for jar in ("/usr/share/java/jetty9-server.jar", "/usr/share/java/servlet-api.jar"):
            if not Path(jar).exists():
                pytest.skip(f"Apache's AdminServer needs {jar}")
    stores, client = _stores(tmp_path)
    cfg = {"admin.enableServer": "true", **stores, **MODES[mode]}
    srv = SERVER_CLASSES[kind](tmp_path / "d", admin_port=free_port(), extra_cfg=cfg)
    with srv:
        wait_for(lambda: _get(srv.admin_port, client)[0] == 200, what="the HTTPS admin port")
        got = {"https": _get(srv.admin_port, client), "http": _get(srv.admin_port, None)}
    assert got == OUTCOMES[mode]
