"""Root conftest: every test in the repository runs under the kind guard.

pyzk.testing.markguard refuses unmarked tests at collection, fences ``pure``
tests off the network and child processes, and turns a skipped ``reference``
test into a failure under PYZK_REQUIRE_REFERENCE=1.
"""

pytest_plugins = ("pyzk.testing.markguard", "pytester")
