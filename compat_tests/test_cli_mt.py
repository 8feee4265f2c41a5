"""Apache's C client (cli_mt) against Apache and pyzk: same transcripts.

cli_mt answers asynchronously, so commands are fed one at a time with a
pause, and the output is compared as a multiset of normalised lines (dates,
elapsed times and session ids masked; zxids, versions and rc codes kept).
"""

from __future__ import annotations

import collections
import re
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyzk.testing.servers import (
    CLI_MT,
    SERVER_CLASSES,
    ServerProcess,
    require_reference_tool,
    second_kind,
)

pytestmark = [pytest.mark.server, pytest.mark.reference]

SECOND = second_kind()
_DATE = re.compile(r"[A-Z][a-z]{2} [A-Z][a-z]{2} +\d+ [\d:]+ \d{4}")
_MSEC = re.compile(r"time = \d+ msec")
_SESSION = re.compile(r"0x[0-9a-f]{9,16}")
PAUSE = 0.15


def run_cli_mt(srv: ServerProcess, script: str) -> collections.Counter[str]:
    p = subprocess.Popen(
        [CLI_MT, srv.address], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True,
    )
    assert p.stdin is not None
    try:
        time.sleep(0.3)  # let it connect
        for line in script.splitlines(True):
            p.stdin.write(line)
            p.stdin.flush()
            time.sleep(PAUSE)
        out, _ = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    counts: collections.Counter[str] = collections.Counter()
    for line in out.splitlines():
        if not line.strip():
            continue
        line = _MSEC.sub("time = <n> msec", _DATE.sub("<date>", line))
        counts[_SESSION.sub("0x<session>", line)] += 1
    return counts


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[list[ServerProcess]]:
    require_reference_tool(CLI_MT, "cli_mt")
    servers: list[ServerProcess] = []
    try:
        for kind in ("apache", SECOND):
            srv = SERVER_CLASSES[kind](tmp_path / kind)
            srv.start()
            servers.append(srv)
        yield servers
    finally:
        for srv in servers:
            srv.stop()


SCRIPT = """\
create /c
create +e /c/e
create +s /c/s-
create +s /c/s-
create +e /c/e/child
create /c
create /missing/x
get /c
set /c newdata
get /c
set /nope x
ls /c
ls2 /c
exists /c
exists /nope
delete /c/e
delete /c
sync /c
get /nope
ls /nope
create /c/x
delete /c/x
ls /c
quit
"""


def test_cli_mt_transcript(pair: list[ServerProcess]) -> None:
    a = run_cli_mt(pair[0], SCRIPT)
    b = run_cli_mt(pair[1], SCRIPT)
    assert a["Watcher SESSION_EVENT state = CONNECTED_STATE"] == 1
    assert a["[/c]: rc = -110"] == 1
    assert a["\tname = /c/s-0000000002"] == 1
    only_a, only_b = a - b, b - a
    assert not only_a and not only_b, (
        f"transcripts differ\nonly apache: {sorted(only_a.elements())}\n"
        f"only {SECOND}: {sorted(only_b.elements())}"
    )
