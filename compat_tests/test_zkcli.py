"""Apache's own zkCli.sh against Apache and pyzk: same transcripts.

Watch notifications print asynchronously, so a transcript (stdout and
stderr) is compared as a multiset of normalised lines: dates, session ids
and the server address are masked; zxids, versions, data and errors are not.
"""

from __future__ import annotations

import collections
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyzk.testing.servers import (
    SERVER_CLASSES,
    ZKCLI,
    ServerProcess,
    require_reference_tool,
    second_kind,
)

pytestmark = [pytest.mark.server, pytest.mark.reference]

SECOND = second_kind()
_DATE = re.compile(r"[A-Z][a-z]{2} [A-Z][a-z]{2} +\d+ [\d:]+ \w+ \d{4}")
_SESSION = re.compile(r"0x[0-9a-f]{9,16}")
_NOISE = ("SLF4J:", "Connecting to ")


def normalise(text: str, port: int) -> collections.Counter[str]:
    out: collections.Counter[str] = collections.Counter()
    for line in text.splitlines():
        if not line.strip() or line.startswith(_NOISE):
            continue
        line = _DATE.sub("<date>", line)
        line = _SESSION.sub("0x<session>", line)
        out[line.replace(str(port), "<port>")] += 1
    return out


def run_cli(srv: ServerProcess, script: str) -> collections.Counter[str]:
    env = dict(os.environ, CLIENT_JVMFLAGS="-Dzookeeper.jline=false")
    p = subprocess.run(
        [ZKCLI, "-server", srv.address], input=script, capture_output=True, text=True,
        timeout=120, env=env,
    )
    return normalise(p.stdout + "\n" + p.stderr, srv.port)


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    require_reference_tool(ZKCLI, "zkCli.sh")
    servers: list[ServerProcess] = []
    try:
        for kind in ("apache", SECOND):
            srv = SERVER_CLASSES[kind](tmp_path / kind, extra_cfg={"extendedTypesEnabled": "true"})
            srv.start()
            servers.append(srv)
        yield servers
    finally:
        for srv in servers:
            srv.stop()


def compare(pair: list[ServerProcess], script: str) -> collections.Counter[str]:
    a = run_cli(pair[0], script)
    b = run_cli(pair[1], script)
    only_a, only_b = a - b, b - a
    assert not only_a and not only_b, (
        f"transcripts differ\nonly apache: {sorted(only_a.elements())}\n"
        f"only {SECOND}: {sorted(only_b.elements())}"
    )
    return a


BASIC = """\
version
create /t data1
create /t/c1 c1
create -e /t/eph e
create -s /t/seq- s
create -e -s /t/es- s
create -c /t/cont
create -t 5000 /t/ttl x
get -s /t
get -w /t/c1
set /t data2
set -s /t/c1 c1b
set -v 0 /t data3
ls -s /t
ls -R /t
ls -w /t
stat /t
stat -w /t/c1
getAcl /t
getAcl -s /t
setAcl /t world:anyone:cdrwa
setAcl -s /t world:anyone:cdrwa
getEphemerals /t
getEphemerals
getAllChildrenNumber /t
getAllChildrenNumber /
sync /t
addWatch -m PERSISTENT /t
addWatch /t/c1
set /t data4
delete /t/c1
delete -v 7 /t/cont
deleteall /t
get /t
quit
"""


def test_basic_commands(pair: list[ServerProcess]) -> None:
    t = compare(pair, BASIC)
    assert t["Created /t"] == 1 and t["cZxid = 0x2"] >= 1
    assert t["version No is not valid : /t"] == 1


ERRORS = """\
create /e
create /e
create /missing/child
create noslash
create /e/
set -v 5 /e x
create /e/c
delete /e
ls /nope
get /nope
stat /nope
getAcl /nope
setAcl /e world:anyone:xyz
setAcl /e foo:bar:cdrwa
create -e /eph
create /eph/child
addWatch -m BOGUS /e
removewatches /e
rmr /e
deleteall /e
quit
"""


def test_error_messages(pair: list[ServerProcess]) -> None:
    t = compare(pair, ERRORS)
    assert t["Node already exists: /e"] == 1
    assert t["Node does not exist: /nope"] >= 1


AUTH = """\
create /a
addauth digest alice:pw
whoami
create /a/mine secret
setAcl /a/mine auth:alice:pw:cdrwa
getAcl /a/mine
setAcl /a digest:bob:Jq7wMyA/w2Vd5WIDAKdu4OIIFEQ=:r,world:anyone:c
getAcl /a
create /a/ip
setAcl /a/ip ip:10.0.0.0/8:r
get /a/ip
quit
"""


def test_acls_and_auth(pair: list[ServerProcess]) -> None:
    t = compare(pair, AUTH)
    assert t["digest: alice"] == 1
    assert t["Insufficient permission : /a/ip"] == 1


QUOTA = """\
create /q
create /q/a 12345
setquota -n 3 /q
setquota -b 100 /q
listquota /q
create /q/b x
create /q/c y
create /q/d z
listquota /q
delquota -n /q
listquota /q
delquota /q
listquota /q
setquota -N 2 /q
setquota -N 2 -B 10 /q/a
listquota /nope
setquota -n 1 /nope
quit
"""


def test_quota_commands(pair: list[ServerProcess]) -> None:
    t = compare(pair, QUOTA)
    assert t["absolute path is /zookeeper/quota/q/zookeeper_limits"] >= 1
