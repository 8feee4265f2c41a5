"""The kind guard (pyzk.testing.markguard) run on small made-up suites.

These run pytest inside pytest (pytester, in process). They are ``server``
tests, not ``pure``: the inner suites open sockets and spawn processes on
purpose, and an outer fence would count that against this file.
"""

from __future__ import annotations

import socket
import tomllib
from pathlib import Path

import pytest

from pyzk.testing.markguard import KINDS, REQUIRE_ENV

pytestmark = pytest.mark.server

INI = """
[pytest]
addopts = --strict-markers -p pyzk.testing.markguard -p no:cacheprovider
markers =
    pure: p
    server: s
    ensemble: e
    reference: r
"""


@pytest.fixture
def suite(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> pytest.Pytester:
    monkeypatch.delenv(REQUIRE_ENV, raising=False)
    pytester.makeini(INI)
    return pytester


def test_unmarked_and_mixed_tests_stop_the_run_at_collection(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_a="""
        import pytest

        def test_nothing_said():
            pass

        @pytest.mark.pure
        @pytest.mark.server
        def test_both():
            pass

        @pytest.mark.server
        @pytest.mark.reference
        def test_fine():
            pass
    """)
    result = suite.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    err = result.stderr.str()
    assert "test_a.py::test_nothing_said" in err
    assert "test_a.py::test_both (pure, server)" in err
    assert "test_fine" not in err


def test_a_module_mark_covers_every_test(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_b="""
        import pytest
        pytestmark = pytest.mark.pure

        def test_one():
            pass

        @pytest.mark.parametrize("x", [1, 2])
        def test_two(x):
            pass
    """)
    suite.runpytest().assert_outcomes(passed=3)


def test_pure_tests_may_not_open_network_sockets_or_spawn(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_c="""
        import os
        import socket
        import subprocess
        import sys

        import pytest

        @pytest.mark.pure
        def test_inet():
            socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()

        @pytest.mark.pure
        def test_inet6_swallowed():
            try:
                socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
            except Exception:
                pass

        @pytest.mark.pure
        def test_default_family():
            socket.socket().close()

        @pytest.mark.pure
        def test_subprocess():
            subprocess.run([sys.executable, "-c", "pass"])

        @pytest.mark.pure
        def test_fork():
            os.fork()

        @pytest.fixture
        def listener():
            s = socket.socket()
            yield s
            s.close()

        @pytest.mark.pure
        def test_in_a_fixture(listener):
            pass

        @pytest.mark.pure
        def test_unix_sockets_are_fine():
            a, b = socket.socketpair()
            a.close(); b.close()

        @pytest.mark.server
        def test_server_tests_may():
            socket.socket().close()
            subprocess.run([sys.executable, "-c", "pass"], check=True)
    """)
    result = suite.runpytest()
    result.assert_outcomes(passed=2, failed=5, errors=1)
    out = result.stdout.str()
    # counted in the tracebacks ("E   ..." lines): the summary repeats them
    # when pytest runs under CI=true
    errors = [ln for ln in out.splitlines() if ln.startswith("E ")]
    assert sum("PurityError: a pure test must not open a network socket" in ln
               for ln in errors) == 3
    assert "FAILED test_c.py::test_inet6_swallowed - pure test left the process: open a" in out
    assert sum("PurityError: a pure test must not spawn a process" in ln for ln in errors) == 2


def test_the_fence_comes_down_after_a_pure_test(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_d="""
        import socket
        import pytest

        @pytest.mark.pure
        def test_pure():
            with pytest.raises(Exception):
                socket.socket()

        @pytest.mark.server
        def test_after():
            socket.socket().close()
    """)
    # the pure test fails (a caught refusal still counts); the next one is free
    suite.runpytest().assert_outcomes(passed=1, failed=1)
    socket.socket().close()  # and this process's socket module is itself again


def test_threads_from_before_the_test_are_not_its_doing(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_e="""
        import socket
        import threading
        import pytest

        go = threading.Event()
        done = threading.Event()
        errors = []

        def leftover():
            go.wait()
            try:
                socket.socket().close()
            except Exception as e:
                errors.append(e)
            done.set()

        threading.Thread(target=leftover, daemon=True).start()

        @pytest.mark.pure
        def test_pure_while_an_old_thread_dials():
            go.set()
            assert done.wait(10)
            assert errors == []

        @pytest.mark.pure
        def test_a_thread_started_by_the_test_is_fenced():
            caught = []
            t = threading.Thread(target=lambda: caught.append(socket.socket()))
            t.start(); t.join()
    """)
    result = suite.runpytest()
    result.assert_outcomes(passed=1, failed=1)
    assert "FAILED test_e.py::test_a_thread_started_by_the_test_is_fenced" in result.stdout.str()


REFERENCE_SUITE = """
    import pytest

    @pytest.mark.reference
    def test_skips():
        pytest.skip("no java here")

    @pytest.mark.reference
    @pytest.mark.skipif(True, reason="no jars here")
    def test_skipif():
        pass

    @pytest.mark.reference
    @pytest.mark.xfail(reason="known")
    def test_xfail():
        assert False

    @pytest.mark.server
    def test_plain_skip():
        pytest.skip("not applicable")
"""


def test_reference_skips_are_skips_on_a_laptop(suite: pytest.Pytester) -> None:
    suite.makepyfile(test_f=REFERENCE_SUITE)
    suite.runpytest().assert_outcomes(skipped=3, xfailed=1)


def test_reference_skips_fail_when_the_reference_is_required(
        suite: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(REQUIRE_ENV, "1")
    suite.makepyfile(test_f=REFERENCE_SUITE)
    result = suite.runpytest("-rA")
    result.assert_outcomes(failed=1, errors=1, skipped=1, xfailed=1)
    out = result.stdout.str()
    assert f"reference test skipped under {REQUIRE_ENV}=1: Skipped: no java here" in out
    assert f"reference test skipped under {REQUIRE_ENV}=1: Skipped: no jars here" in out


def test_pyproject_registers_exactly_the_guarded_kinds() -> None:
    root = Path(__file__).resolve().parent.parent
    opts = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "--strict-markers" in opts["addopts"]
    names = tuple(m.split(":", 1)[0] for m in opts["markers"])
    assert names == KINDS
    assert "pyzk.testing.markguard" in (root / "conftest.py").read_text()
