"""Four-letter words: the shape of every answer matches Apache's.

Values (counters, ports, ids, sizes, dates, paths) legitimately differ, so
each output is reduced to its shape: the keys of key/value lines in order
(plus the few values that must match, such as the mode), and every other line
with numbers, hex ids, addresses and dates replaced by placeholders.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from pyzk.jute import records as R
from pyzk.jute.constants import CreateMode, OpCode
from pyzk.testing.scenario import create
from pyzk.testing.servers import SERVER_CLASSES, ServerProcess, require_reference, second_kind
from pyzk.testing.wire import WireClient

pytestmark = [pytest.mark.server, pytest.mark.reference]

SECOND = second_kind()
_KV = re.compile(r"^([A-Za-z_][\w./ -]*?)(: |=|\t|:)(.*)$")
_DATE = re.compile(r"[A-Z][a-z]{2} [A-Z][a-z]{2} +\d+ [\d:]+ \w+ \d{4}")
_ADDR = re.compile(r"/?\d+\.\d+\.\d+\.\d+:\d+")
_HEX = re.compile(r"0x[0-9a-fA-F]+")
_NUM = re.compile(r"-?\d+(\.\d+)?")
# Values that carry meaning rather than measurements.
_KEEP_VALUE = {"Mode", "zk_server_state", "serverId", "Outstanding", "secureClientPort"}
# Outputs listing connections or expiry buckets in an order (and bucket
# count) that depends on timing: compared as sets of line shapes.
_UNORDERED = {"cons", "dump", "stat"}


def line_shape(line: str) -> str:
    m = _KV.match(line)
    if m and not line.startswith((" ", "\t")):
        key, sep, value = m.groups()
        if key in _KEEP_VALUE:
            return f"{key}{sep}{value}"
        return f"{key}{sep}<v>"
    line = _DATE.sub("<date>", line)
    line = _ADDR.sub("<addr>", line)
    line = _HEX.sub("0x<id>", line)
    return _NUM.sub("<n>", line)


def shape(cmd: str, out: str) -> list[str]:
    lines = [line_shape(x) for x in out.split("\n")]
    if cmd in _UNORDERED:
        return sorted(set(lines))
    return lines


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    """Apache and the second server, each with the same session, ephemeral
    and watches, so dump/wchc/wchp/cons have something to show."""
    require_reference()
    servers: list[ServerProcess] = []
    clients: list[WireClient] = []
    try:
        for kind in ("apache", SECOND):
            srv = SERVER_CLASSES[kind](Path(tmp_path_factory.mktemp(kind)))
            srv.start()
            servers.append(srv)
            c = WireClient()
            c.connect(srv.host, srv.port)
            c.call(OpCode.create, create("/a", b"x", CreateMode.EPHEMERAL))
            c.call(OpCode.getData, R.GetDataRequest("/a", True))
            c.call(OpCode.exists, R.ExistsRequest("/b", True))
            c.call(OpCode.getChildren, R.GetChildrenRequest("/", True))
            clients.append(c)
        yield servers
    finally:
        for c in clients:
            c.close()
        for srv in servers:
            srv.stop()


COMMANDS = "ruok srvr stat conf cons crst dump envi mntr wchs wchc wchp dirs isro srst gtmk hash"


@pytest.mark.parametrize("cmd", COMMANDS.split())
def test_shape_matches(pair: list[ServerProcess], cmd: str) -> None:
    a, b = (s.four_letter(cmd) for s in pair)
    if cmd == "ruok":
        assert a == "imok"
    elif cmd != "hash":
        assert a.strip(), f"Apache printed nothing for {cmd}"
    sa, sb = shape(cmd, a), shape(cmd, b)
    assert sa == sb, f"{cmd}: shapes differ\n--- apache ---\n{a}\n--- {SECOND} ---\n{b}"


def test_exact_answers(pair: list[ServerProcess]) -> None:
    for cmd in ("ruok", "isro", "crst", "srst", "wchs"):
        a, b = (s.four_letter(cmd) for s in pair)
        assert a == b, cmd


def test_set_and_get_trace_mask(pair: list[ServerProcess]) -> None:
    for mask in (0x102, 0):
        a, b = (s.four_letter(b"stmk" + struct.pack(">q", mask)) for s in pair)
        assert a == b == str(mask)
        a, b = (s.four_letter("gtmk") for s in pair)
        assert a == b == str(mask)


def test_unknown_word(pair: list[ServerProcess]) -> None:
    a, b = (s.four_letter("abcd") for s in pair)
    assert a == b


@pytest.fixture(scope="module")
def restricted(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[ServerProcess]]:
    require_reference()
    servers: list[ServerProcess] = []
    try:
        for kind in ("apache", SECOND):
            srv = SERVER_CLASSES[kind](
                Path(tmp_path_factory.mktemp(kind)),
                extra_cfg={"4lw.commands.whitelist": "srvr, ruok"},
            )
            srv.start()
            servers.append(srv)
        yield servers
    finally:
        for srv in servers:
            srv.stop()


@pytest.mark.parametrize("cmd", ["stat", "mntr", "conf", "ruok", "envi", "wchc"])
def test_whitelist(restricted: list[ServerProcess], cmd: str) -> None:
    a, b = (s.four_letter(cmd) for s in restricted)
    if cmd == "ruok":
        assert a == "imok"
    else:
        assert a == f"{cmd} is not executed because it is not in the whitelist.\n"
    assert a == b
