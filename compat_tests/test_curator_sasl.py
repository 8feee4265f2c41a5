"""Curator with SASL DIGEST-MD5, against Apache: the same JAAS files, the same
Java program, the same printed outcomes line for line.

Curator applications (Kafka, HBase, Solr tooling) authenticate by the JVM's
JAAS ``Client`` section, not by anything in Curator's own API: the ZooKeeper
client inside CuratorFramework runs the SASL handshake. The program below is
compiled at run time against Debian's Curator and Apache's client jars; each
run plays one client: the owner creating a node only ``sasl:bob`` may touch,
another authenticated user, an unauthenticated client, and bob with a wrong
password.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from pyzk.testing.servers import (
    APACHE_CLASSPATH,
    ApacheServer,
    PyzkServer,
    ServerProcess,
    require_reference,
)

pytestmark = [pytest.mark.server, pytest.mark.reference]

CURATOR_JARS = ("/usr/share/java/curator-framework.jar", "/usr/share/java/curator-client.jar")
SASL_PROVIDER = "org.apache.zookeeper.server.auth.SASLAuthenticationProvider"

SERVER_JAAS = """
Server {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_bob="bob-secret"
    user_alice="alice-secret";
};
"""

CLIENT_JAAS = """
Client {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    username="%s"
    password="%s";
};
"""

#: One client's run: connect through CuratorFramework, then each operation's
#: outcome on its own line ("ok ...", or the KeeperException code).
JAVA_SOURCE = r"""
import java.nio.charset.StandardCharsets;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.retry.RetryNTimes;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.data.ACL;
import org.apache.zookeeper.data.ClientInfo;
import org.apache.zookeeper.data.Id;

public class CuratorSaslProbe {
    interface Step { String run() throws Exception; }

    static byte[] bytes(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }

    static void step(String name, Step s) {
        String out;
        try {
            out = "ok " + s.run();
        } catch (KeeperException e) {
            out = e.code().name();
        } catch (Exception e) {
            out = e.getClass().getSimpleName();
        }
        System.out.println(name + ": " + out);
    }

    public static void main(String[] args) throws Exception {
        String connect = args[0];
        String role = args[1];
        String path = "/curator-sasl";
        // A client whose SASL login failed is never connected again: each
        // operation waits connectionTimeoutMs, then fails; the session timeout
        // is long enough that Curator does not declare it expired meanwhile.
        int connectionTimeout = role.equals("wrong-password") ? 1000 : 5000;
        CuratorFramework c = CuratorFrameworkFactory.builder()
            .connectString(connect)
            .sessionTimeoutMs(30000)
            .connectionTimeoutMs(connectionTimeout)
            .retryPolicy(new RetryNTimes(0, 100))
            .build();
        c.start();
        System.out.println("connected: " + c.blockUntilConnected(15, TimeUnit.SECONDS));
        if (role.equals("owner")) {
            List<ACL> acl = Collections.singletonList(
                new ACL(ZooDefs.Perms.ALL, new Id("sasl", "bob")));
            step("create", () -> c.create().withACL(acl).forPath(path, bytes("bob's")));
            step("acl", () -> {
                ACL a = c.getACL().forPath(path).get(0);
                return a.getId().getScheme() + ":" + a.getId().getId() + ":" + a.getPerms();
            });
        }
        step("whoami", () -> {
            StringBuilder sb = new StringBuilder();
            for (ClientInfo i : c.getZookeeperClient().getZooKeeper().whoAmI()) {
                if (!i.getAuthScheme().equals("ip")) {
                    sb.append(i.getAuthScheme()).append(':').append(i.getUser()).append(' ');
                }
            }
            return sb.toString().trim();
        });
        step("get", () -> new String(c.getData().forPath(path), StandardCharsets.UTF_8));
        step("set", () -> "version " + c.setData().forPath(path, bytes("x")).getVersion());
        step("child", () -> c.create().forPath(path + "/child"));
        step("exists", () -> String.valueOf(c.checkExists().forPath(path) != null));
        if (role.equals("owner")) {
            step("set again",
                 () -> "version " + c.setData().forPath(path, bytes("bob's 2")).getVersion());
        }
        c.close();
    }
}
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The probe, compiled once per module against Curator and Apache's client."""
    require_reference()
    if shutil.which("javac") is None or not all(os.path.exists(j) for j in CURATOR_JARS):
        # scripts/test.sh installs them; a missing one is a skip (a failure in CI)
        from pyzk.testing.servers import _reference_missing

        _reference_missing("javac or Debian's Curator jars (libcurator-framework-java) missing")
    d = tmp_path_factory.mktemp("curator-probe")
    (d / "CuratorSaslProbe.java").write_text(JAVA_SOURCE)
    p = subprocess.run(["javac", "-cp", _classpath(), "-d", str(d),
                        str(d / "CuratorSaslProbe.java")],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stdout + p.stderr
    return d


def _classpath(extra: Path | None = None) -> str:
    parts = [*CURATOR_JARS, APACHE_CLASSPATH]
    if extra is not None:
        parts.insert(0, str(extra))
    return ":".join(parts)


def _run_probe(probe: Path, srv: ServerProcess, tmp: Path, role: str,
               login: tuple[str, str] | None) -> list[str]:
    cmd = ["java", "-cp", _classpath(probe)]
    if login is not None:
        jaas = tmp / f"client-{role}.conf"
        jaas.write_text(CLIENT_JAAS % login)
        cmd.append(f"-Djava.security.auth.login.config={jaas}")
    cmd += ["CuratorSaslProbe", srv.address, role]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    lines = [ln for ln in p.stdout.splitlines() if ln.strip()]
    assert lines and lines[0].startswith("connected: "), p.stdout + p.stderr[-2000:]
    return [f"{role} {ln}" for ln in lines]


#: (role, JAAS login or None for no Client section)
ACL_ROLES: list[tuple[str, tuple[str, str] | None]] = [
    ("owner", ("bob", "bob-secret")),
    ("alice", ("alice", "alice-secret")),
    ("anonymous", None),
]
WRONG_PASSWORD = [("wrong-password", ("bob", "not-bobs"))]


def _view(cls: type, tmp: Path, probe: Path,
          roles: list[tuple[str, tuple[str, str] | None]]) -> list[str]:
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "jaas.conf").write_text(SERVER_JAAS)
    out: list[str] = []
    with cls(tmp / "data", extra_cfg={"authProvider.1": SASL_PROVIDER},
             jvm_flags=[f"-Djava.security.auth.login.config={tmp / 'jaas.conf'}"]) as srv:
        for role, login in roles:
            out += _run_probe(probe, srv, tmp, role, login)
    return out


def test_curator_sasl_acl_as_against_apache(tmp_path: Path, probe: Path) -> None:
    """The owner's sasl:bob node, and what another user and an anonymous client get."""
    apache = _view(ApacheServer, tmp_path / "apache", probe, ACL_ROLES)
    # not vacuous: the owner got in and wrote, the others were kept out
    assert "owner create: ok /curator-sasl" in apache, apache
    assert "owner whoami: ok sasl:bob" in apache, apache
    assert "alice get: NOAUTH" in apache and "anonymous get: NOAUTH" in apache, apache
    assert _view(PyzkServer, tmp_path / "pyzk", probe, ACL_ROLES) == apache


def test_curator_sasl_wrong_password_as_against_apache(tmp_path: Path, probe: Path) -> None:
    """A wrong password: the session is connected, then every operation is AuthFailed."""
    apache = _view(ApacheServer, tmp_path / "apache", probe, WRONG_PASSWORD)
    assert "wrong-password get: AUTHFAILED" in apache, apache
    assert _view(PyzkServer, tmp_path / "pyzk", probe, WRONG_PASSWORD) == apache
