#!/usr/bin/env bash
# Install what the tests need on a fresh machine and run lint + the whole test suite.
# Apache ZooKeeper 3.8 (Debian packages) is the reference the compat tests compare against.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -f /usr/share/java/zookeeper.jar ]; then
    if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
    "${SUDO[@]}" apt-get update
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y zookeeper zookeeper-bin
fi

# The data-tree tests compile a small Java oracle against Apache's jars.
if ! command -v javac >/dev/null 2>&1; then
    if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo); fi
    "${SUDO[@]}" apt-get update
    "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y default-jdk-headless
fi

python -m pip install -q -e '.[test]'

ruff check .

# pytest exits 5 when it collected no tests: that is a failure here too.
python -m pytest -q "$@"
