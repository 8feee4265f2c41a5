#!/usr/bin/env bash
# Install what the tests need on a fresh machine and run lint + the whole test suite.
# Apache ZooKeeper 3.8 (Debian packages) is the reference the compat tests compare against.
set -euo pipefail
cd "$(dirname "$0")/.."

# Debian packages the tests use: Apache ZooKeeper 3.8 (the oracle), a JDK for the
# small Java oracles, MIT Kerberos (the tests start their own KDC; libkrb5-dev
# builds python-gssapi and pykerberos), Curator (the Curator SASL test) and
# the shellcheck linter (the Docker entrypoint).
PACKAGES=(zookeeper zookeeper-bin krb5-kdc krb5-admin-server krb5-user
          libkrb5-dev libcurator-client-java libcurator-framework-java shellcheck)
missing=()
command -v javac >/dev/null 2>&1 || missing+=(default-jdk-headless)
for p in "${PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
    "${SUDO[@]}" apt-get update
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
fi

python -m pip install -q -e '.[test]'

ruff check .

# pytest exits 5 when it collected no tests: that is a failure here too.
python -m pytest -q "$@"

# The workers variant (pyzk.workers, issue 12): the differential client-protocol
# tests again, with every standalone pyzk server they start running one worker
# process beside it, so sessions, reads, watches and writes cross processes.
if [ "$#" -eq 0 ]; then
    PYZK_TEST_WORKERS=1 python -m pytest -q -p no:cacheprovider \
        compat_tests/test_differential_ops.py compat_tests/test_kazoo.py \
        compat_tests/test_differential_sessions.py compat_tests/test_differential_acl.py \
        compat_tests/test_zkcli.py tests/server/test_sessions.py tests/server/test_durability.py
fi
