"""The pytest plugin (pyzk.testing.plugin) as a user's project meets it: a
test directory of its own, run by pytest in a child process, with the plugin
found through its ``pytest11`` entry point."""

from __future__ import annotations

import os
from importlib.metadata import entry_points

import pytest


def _outcomes(result: pytest.RunResult) -> dict[str, int]:
    return {k: v for k, v in result.parseoutcomes().items() if k in ("passed", "failed",
                                                                      "skipped", "errors")}


@pytest.mark.server
def test_the_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    found = [e for e in entry_points(group="pytest11") if e.name == "pyzk"]
    assert [e.value for e in found] == ["pyzk.testing.plugin"]


@pytest.mark.server
def test_zk_client_gives_each_test_its_own_chroot(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user="""
        from kazoo.client import KazooClient

        SEEN = []

        def test_one(zk_client, zk_hosts):
            assert zk_client.get_children("/") == []
            zk_client.create("/lock", b"one")
            SEEN.append(zk_client.chroot)

        def test_two(zk_client, zk_hosts):
            # test_one's znode is not here, and its chroot is gone
            assert zk_client.get_children("/") == []
            assert zk_client.chroot != SEEN[0]
            raw = KazooClient(hosts=zk_hosts)
            raw.start()
            try:
                assert raw.exists(SEEN[0]) is None
                assert raw.exists(zk_client.chroot) is not None
            finally:
                raw.stop()

        def test_the_server_is_shared(zk_server, zk_hosts):
            assert zk_hosts == zk_server.address
            assert zk_server.four_letter("ruok") == "imok"
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert _outcomes(result) == {"passed": 3}, result.stdout.str()


@pytest.mark.server
def test_a_failing_test_gets_its_server_log_in_the_report(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user="""
        def test_fails(zk_client):
            zk_client.create("/x", b"1")
            assert False, "on purpose"
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert _outcomes(result) == {"failed": 1}
    out = result.stdout.str()
    assert "zk server 127.0.0.1:" in out and "log (tail)" in out
    assert "binding to port" in out  # a line of pyzk's own log


@pytest.mark.server
def test_zk_server_option_uses_a_running_server(pytester: pytest.Pytester,
                                                tmp_path_factory: pytest.TempPathFactory
                                                ) -> None:
    from pyzk.testing.servers import PyzkServer

    with PyzkServer(tmp_path_factory.mktemp("outside")) as srv:
        pytester.makepyfile(test_user=f"""
            def test_it(zk_hosts, zk_client):
                assert zk_hosts == "{srv.address}"
                zk_client.create("/from-plugin", b"x")

            def test_no_ensemble_then(zk_ensemble):
                zk_ensemble()
        """)
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider",
                                               f"--zk-server={srv.address}")
        assert _outcomes(result) == {"passed": 1, "skipped": 1}, result.stdout.str()


@pytest.mark.ensemble
@pytest.mark.timeout(240)
def test_zk_ensemble_controls(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_user="""
        import pytest
        from kazoo.client import KazooClient
        from kazoo.protocol.states import KazooState
        from pyzk.testing.servers import wait_for

        @pytest.mark.zk_ensemble(size=3, observers=1)
        def test_faults(zk_ensemble):
            ens = zk_ensemble(tickTime="200", initLimit="10", syncLimit="5")
            assert len(ens.servers) == 3
            assert ens.ensemble.mode(3) == "observer"
            leader = ens.leader()
            assert leader in (1, 2)
            follower = 3 - leader
            zk = KazooClient(hosts=ens.address(3), timeout=4)
            zk.start()
            zk.create("/a", b"1")
            first_session = zk.client_id[0]
            ens.expire_session(zk)
            assert zk.client_id[0] != first_session
            assert zk.state == KazooState.CONNECTED
            zk.stop(); zk.close()
            # the leader alone cannot serve: cut it off, then heal
            ens.partition(leader)
            wait_for(lambda: ens.ensemble.mode(leader) is None, 20, "the cut-off leader to stop")
            ens.heal()
            assert ens.leader() in (1, 2)
            ens.pause(follower)
            ens.resume(follower)
            ens.kill(follower)
            ens.restart(follower)
            assert ens.leader() in (1, 2)
            zk = KazooClient(hosts=ens.address(follower))
            zk.start()
            zk.sync("/")
            assert zk.get("/a")[0] == b"1"
            zk.stop(); zk.close()
    """)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", timeout=220)
    assert _outcomes(result) == {"passed": 1}, result.stdout.str()


@pytest.mark.pure
def test_java_command_lines_become_pyzk_ones() -> None:
    from pyzk.testing.plugin import java_to_pyzk

    got = java_to_pyzk(["java", "-cp", "x.jar", "-Dfile.encoding=UTF-8", "-Da.b=c",
                        "org.apache.zookeeper.server.quorum.QuorumPeerMain", "/w/zoo.cfg"])
    assert got is not None
    argv, env = got
    assert argv[1:] == ["-m", "pyzk", "start-foreground", "/w/zoo.cfg"]
    assert env["SERVER_JVMFLAGS"] == "-Dfile.encoding=UTF-8 -Da.b=c"
    assert env["PYZK_DIE_WITH_PARENT"] == str(os.getpid())
    assert java_to_pyzk(["java", "-jar", "other.jar"]) is None
    assert java_to_pyzk(["ls"]) is None


@pytest.mark.server
@pytest.mark.timeout(120)
def test_a_killed_test_run_leaves_no_server_behind(pytester: pytest.Pytester) -> None:
    import os
    import signal
    import time

    pidfile = pytester.path / "server.pid"
    pytester.makepyfile(test_user=f"""
        import os, signal
        from pathlib import Path

        def test_dies(zk_server):
            Path({str(pidfile)!r}).write_text(str(zk_server.pid))
            os.kill(os.getpid(), signal.SIGKILL)   # no teardown, no atexit
    """)
    pytester.runpytest_subprocess("-p", "no:cacheprovider")
    pid = int(pidfile.read_text())
    deadline = time.monotonic() + 30
    while True:
        try:
            with open(f"/proc/{pid}/stat") as f:
                state = f.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            break  # the server noticed its parent was gone and shut down
        if state == "Z":
            break  # exited; only its new parent has not reaped it yet
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            raise AssertionError("the server outlived the killed test run")
        time.sleep(0.1)
