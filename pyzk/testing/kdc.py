"""A throwaway MIT Kerberos KDC on loopback for the GSSAPI tests.

Debian's krb5-kdc and krb5-admin-server packages give ``kdb5_util``,
``kadmin.local`` and ``krb5kdc``; a :class:`TestKDC` makes a realm database in
a temporary directory (master password random, never written anywhere but the
stash file there), runs the KDC in the foreground on a free TCP/UDP port of
127.0.0.1, and makes principals with random keys and their keytabs. Its
``krb5.conf`` is what both the JDK (``-Djava.security.krb5.conf``) and MIT's
library (``KRB5_CONFIG``) read, so Apache, pyzk, the Java client and kazoo
all talk to the same KDC. Nothing here touches /etc.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Self

from pyzk.testing.servers import free_port

REALM = "EXAMPLE.TEST"

TOOLS = ("kdb5_util", "kadmin.local", "krb5kdc", "kinit")


def _tool(name: str) -> str | None:
    for d in ("/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        p = Path(d) / name
        if p.exists():
            return str(p)
    return shutil.which(name)


def kdc_available() -> bool:
    """True when MIT's KDC and its tools are installed."""
    return all(_tool(t) for t in TOOLS)


class TestKDC:
    """A realm ``REALM`` served by krb5kdc from ``base_dir``."""

    __test__ = False  # not a pytest class

    def __init__(self, base_dir: str | Path, realm: str = REALM) -> None:
        self.dir = Path(base_dir)
        self.realm = realm
        self.port = free_port()
        self.krb5_conf = self.dir / "krb5.conf"
        self.kdc_conf = self.dir / "kdc.conf"
        self.proc: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ setup

    def env(self) -> dict[str, str]:
        """The environment MIT's tools and library need to use this realm."""
        env = dict(os.environ)
        env["KRB5_CONFIG"] = str(self.krb5_conf)
        env["KRB5_KDC_PROFILE"] = str(self.kdc_conf)
        env["KRB5CCNAME"] = f"FILE:{self.dir / 'ccache'}"
        return env

    def _write_confs(self) -> None:
        d = self.dir
        self.krb5_conf.write_text(
            "[libdefaults]\n"
            f"  default_realm = {self.realm}\n"
            "  dns_lookup_realm = false\n  dns_lookup_kdc = false\n"
            "  dns_canonicalize_hostname = false\n  rdns = false\n"
            "  udp_preference_limit = 1\n  ticket_lifetime = 1h\n  forwardable = false\n"
            "[realms]\n"
            f"  {self.realm} = {{\n    kdc = 127.0.0.1:{self.port}\n  }}\n"
            "[domain_realm]\n"
            f"  localhost = {self.realm}\n  127.0.0.1 = {self.realm}\n"
            "[logging]\n"
            f"  kdc = FILE:{d / 'kdc.log'}\n  default = FILE:{d / 'krb5lib.log'}\n")
        self.kdc_conf.write_text(
            "[kdcdefaults]\n"
            f"  kdc_ports = {self.port}\n  kdc_tcp_ports = {self.port}\n"
            "[realms]\n"
            f"  {self.realm} = {{\n"
            f"    database_name = {d / 'principal'}\n"
            f"    key_stash_file = {d / 'stash'}\n"
            f"    acl_file = {d / 'kadm5.acl'}\n"
            "    max_life = 1h\n"
            "    supported_enctypes = aes256-cts-hmac-sha1-96:normal "
            "aes128-cts-hmac-sha1-96:normal\n"
            "  }\n"
            "[logging]\n"
            f"  kdc = FILE:{d / 'kdc.log'}\n")
        (d / "kadm5.acl").write_text("")

    def _run(self, *argv: str) -> str:
        got = subprocess.run(list(argv), env=self.env(), capture_output=True, timeout=60,
                             check=False)
        if got.returncode != 0:
            raise RuntimeError(f"{argv[0]} failed ({got.returncode}): "
                               f"{got.stderr.decode(errors='replace')[-2000:]}")
        return got.stdout.decode(errors="replace")

    def start(self) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._write_confs()
        master = secrets.token_urlsafe(24)
        self._run(_tool("kdb5_util") or "kdb5_util", "create", "-s", "-r", self.realm,
                  "-P", master)
        log = open(self.dir / "krb5kdc.out", "wb")  # noqa: SIM115 - owned by the child
        self.proc = subprocess.Popen(
            [_tool("krb5kdc") or "krb5kdc", "-n", "-r", self.realm], env=self.env(),
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()
        deadline = time.monotonic() + 20
        while True:
            with contextlib.suppress(OSError), socket.create_connection(
                    ("127.0.0.1", self.port), timeout=0.5):
                return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                out = (self.dir / "krb5kdc.out").read_text(errors="replace")
                self.stop()
                raise RuntimeError(f"krb5kdc did not start: {out[-2000:]}")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------------ principals

    def principal(self, name: str) -> str:
        """``name@REALM``, or ``name`` when it already names a realm."""
        return name if "@" in name else f"{name}@{self.realm}"

    def add_principal(self, name: str, keytab: str | Path | None = None) -> Path:
        """Create ``name`` with a random key and export it to a keytab (returned)."""
        princ = self.principal(name)
        kt = Path(keytab) if keytab else self.dir / (name.replace("/", "_") + ".keytab")
        kadmin = _tool("kadmin.local") or "kadmin.local"
        self._run(kadmin, "-r", self.realm, "-q", f"addprinc -randkey {princ}")
        self._run(kadmin, "-r", self.realm, "-q", f"ktadd -k {kt} {princ}")
        return kt

    def kinit(self, name: str, keytab: str | Path, ccache: str | Path) -> None:
        """Get a ticket for ``name`` from its keytab into ``ccache``."""
        env = self.env()
        env["KRB5CCNAME"] = f"FILE:{ccache}"
        got = subprocess.run([_tool("kinit") or "kinit", "-k", "-t", str(keytab),
                              self.principal(name)], env=env, capture_output=True,
                             timeout=30, check=False)
        if got.returncode != 0:
            raise RuntimeError(f"kinit {name} failed: {got.stderr.decode(errors='replace')}")
