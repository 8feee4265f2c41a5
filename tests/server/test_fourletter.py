"""Four-letter words: exact output formats (unit) and over a socket (a real pyzk).

The expected texts were taken from Apache ZooKeeper 3.8.0 answering the same
commands (see pyzk/shell/fourletter.py for where pyzk's facts differ).
"""

from __future__ import annotations

import os
import platform
import re
import socket
import struct
import time
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from pyzk.config import FOUR_LETTER_WORDS as ALL_WORDS
from pyzk.config import ServerConfig
from pyzk.core import metrics
from pyzk.core.metrics import (
    MNTR_COUNTERS,
    MNTR_GAUGES,
    MNTR_PERCENTILE_SUMMARIES,
    MNTR_SUMMARIES,
    ConnectionStats,
)
from pyzk.core.zkserver import ZooKeeperServer
from pyzk.datatree.acl import open_acl_unsafe
from pyzk.javacompat import chm_long_order, hex64
from pyzk.jute.constants import CreateMode, OpCode
from pyzk.jute.records import (
    ConnectRequest,
    CreateRequest,
    ExistsRequest,
    GetChildrenRequest,
    GetDataRequest,
)
from pyzk.shell import fourletter as fl
from pyzk.shell.fourletter import FOUR_LETTER_WORD_BYTES, FourLetterWords
from pyzk.shell.probes import full_version
from pyzk.testing.servers import PyzkServer
from tests.server.helpers import time_zone

VERSION = full_version()
WALL0 = 1_700_000_000_000  # wall-clock ms at server start in unit tests


# --------------------------------------------------------------------------
# fixtures: a server core with a fake clock and fake connections


class Clock:
    def __init__(self) -> None:
        self.mono = 1_000_000.0
        self.wall = WALL0

    def advance(self, ms: int) -> None:
        self.mono += ms
        self.wall += ms


class FakeConn:
    """The attributes of ClientConnection that the server core and 4lw read."""

    def __init__(self, server: ZooKeeperServer, port: int, clock: Clock) -> None:
        self.server = server
        self.remote_ip = "127.0.0.1"
        self.remote_port = port
        self.remote = f"/127.0.0.1:{port}"
        self.session_id = 0
        self.timeout = 0
        self.auth: list[Any] = []
        self.inflight: deque[Any] = deque()
        self.closed = False
        self.established = False
        self.old_client = False
        self.packets_received = 0
        self.packets_sent = 0
        self.connected_at = clock.wall
        self.last_zxid = 0
        self.buf = bytearray()
        self.sent: list[bytes] = []
        self.events: list[tuple[int, str]] = []
        self.cnxn_stats = ConnectionStats(clock.mono)
        server.connections.add(self)

    def send(self, data: bytes) -> None:
        self.sent.append(data)
        self.packets_sent += 1

    def send_event(self, etype: int, path: str) -> None:
        self.events.append((etype, path))

    def close(self) -> None:
        self.closed = True

    def __hash__(self) -> int:
        return id(self)


class Env:
    def __init__(self, tmp: Path, whitelist: frozenset[str] = ALL_WORDS) -> None:
        self.clock = Clock()
        self.cfg = ServerConfig(
            data_dir=str(tmp / "data"), data_log_dir=str(tmp / "log"), client_port=2181,
            tick_time=2000, min_session_timeout=4000, max_session_timeout=40000,
            four_letter_whitelist=whitelist,
        )
        self.server = ZooKeeperServer(self.cfg, now_ms=lambda: self.clock.mono,
                                      wall_ms=lambda: self.clock.wall)
        self.shell = SimpleNamespace(cfg=self.cfg, server=self.server)
        self.words = FourLetterWords(self.shell)
        self._port = 40000

    def conn(self) -> FakeConn:
        self._port += 1
        return FakeConn(self.server, self._port, self.clock)

    def session(self, timeout: int = 10000) -> FakeConn:
        c = self.conn()
        c.packets_received += 1
        req = ConnectRequest(0, 0, timeout, 0, b"\0" * 16).to_bytes() + b"\0"
        self.server.connect(c, req)
        assert c.session_id
        return c

    def call(self, c: FakeConn, xid: int, op: int, rec: Any) -> None:
        c.packets_received += 1
        self.server.request(c, struct.pack(">ii", xid, op) + rec.to_bytes())

    def ask(self, cmd: str, payload: bytes = b"") -> str:
        """Send ``cmd`` on a fresh connection; the connection goes away after."""
        c = self.conn()
        c.buf = bytearray(cmd.encode() + payload)
        try:
            return self.words.run(cmd, c)
        finally:
            self.server.connections.discard(c)


@pytest.fixture
def env(tmp_path: Path) -> Env:
    return Env(tmp_path)


@pytest.fixture
def utc() -> Iterator[None]:
    with time_zone("UTC"):
        yield


def _create(env: Env, c: FakeConn, xid: int, path: str, data: bytes = b"",
            mode: int = CreateMode.PERSISTENT) -> None:
    env.call(c, xid, OpCode.create, CreateRequest(path, data, open_acl_unsafe(), int(mode)))


# --------------------------------------------------------------------------
# the words themselves


@pytest.mark.pure
def test_every_known_word_has_a_handler(env: Env) -> None:
    # pyzk.config's list is the one list of words: the whitelist's "*" and the
    # client port's detection both use it, so each must be answered here.
    assert set(env.words._handlers) == ALL_WORDS
    assert {w.decode() for w in FOUR_LETTER_WORD_BYTES} == ALL_WORDS
    assert all(len(w) == 4 for w in FOUR_LETTER_WORD_BYTES)


# --------------------------------------------------------------------------
# whitelist and the simple words


@pytest.mark.pure
def test_words_outside_the_whitelist_get_apaches_refusal(tmp_path: Path) -> None:
    env = Env(tmp_path, whitelist=frozenset({"srvr"}))
    for cmd in ("ruok", "mntr", "stat", "envi", "stmk"):
        assert env.ask(cmd) == f"{cmd} is not executed because it is not in the whitelist.\n"
    assert env.ask("srvr").startswith("Zookeeper version: ")
    # Refused words still count as received packets, as in Apache.
    assert env.server.stats.packets_received == 6
    assert env.server.stats.bytes_received == 24


@pytest.mark.pure
def test_ruok_isro_and_trace_mask(env: Env) -> None:
    assert env.ask("ruok") == "imok"
    assert env.ask("isro") == "rw"
    assert env.ask("gtmk") == "306"
    assert env.ask("stmk", struct.pack(">q", 123)) == "123"
    assert env.ask("gtmk") == "123"
    assert env.ask("stmk", struct.pack(">q", -2)) == "-2"
    assert env.ask("stmk", b"\0\0") == ""  # short mask: nothing, as Apache's failed read
    assert env.ask("gtmk") == "-2"


@pytest.mark.pure
def test_server_not_serving(env: Env) -> None:
    env.server.running = False  # type: ignore[attr-defined]
    assert env.ask("srvr") == fl.ZK_NOT_SERVING + "\n"
    assert env.ask("hash") == fl.ZK_NOT_SERVING
    assert env.ask("isro") == "null"
    assert env.ask("ruok") == "imok"


# --------------------------------------------------------------------------
# srvr / stat / cons / crst / srst


@pytest.mark.pure
def test_srvr_on_a_fresh_server(env: Env) -> None:
    assert env.ask("srvr") == (
        f"Zookeeper version: {VERSION}\n"
        "Latency min/avg/max: 0/0.0/0\n"
        "Received: 1\n"
        "Sent: 0\n"
        "Connections: 1\n"
        "Outstanding: 0\n"
        "Zxid: 0x0\n"
        "Mode: standalone\n"
        "Node count: 5\n"
    )


@pytest.mark.pure
def test_stat_lists_clients_and_counts(env: Env) -> None:
    a = env.session()
    _create(env, a, 1, "/a", b"x" * 10)
    env.clock.advance(3)
    env.call(a, 2, OpCode.getData, GetDataRequest("/a", False))
    stats = env.server.stats
    text = env.ask("stat")
    lines = text.split("\n")
    assert lines[0] == f"Zookeeper version: {VERSION}"
    assert lines[1] == "Clients:"
    assert lines[2] == f" /127.0.0.1:{a.remote_port}[1](queued=0,recved=3,sent=3)"
    assert lines[3] == " /127.0.0.1:40002[0](queued=0,recved=1,sent=0)"
    assert lines[4] == ""
    assert lines[5] == "Latency min/avg/max: 0/0.0/0"
    assert lines[6:] == [
        f"Received: {stats.packets_received}", f"Sent: {stats.packets_sent}",
        "Connections: 2", "Outstanding: 0", "Zxid: 0x2", "Mode: standalone",
        "Node count: 6", "",
    ]


@pytest.mark.pure
def test_latency_line_uses_integer_min_max_and_rounded_average(env: Env) -> None:
    for ms in (0.2, 12.7, 1.0):
        env.server.stats.latency(ms)
    text = env.ask("srvr")
    assert "Latency min/avg/max: 0/4.6333/12\n" in text


@pytest.mark.pure
def test_cons_full_connection_info(env: Env) -> None:
    a = env.session()
    a.cnxn_stats = ConnectionStats(env.clock.mono)  # type: ignore[attr-defined]
    a.cnxn_stats.update(0, 1, "SESS", 100, 101)  # type: ignore[attr-defined]
    a.cnxn_stats.update(5, 7, "GETD", 200, 212)  # type: ignore[attr-defined]
    a.cnxn_stats.update(-2, 7, "PING", 300, 300)  # type: ignore[attr-defined]
    b = env.session()  # no statistics attached: Java's field defaults
    out = env.ask("cons")
    sa, sb = hex64(a.session_id), hex64(b.session_id)
    assert out == (
        f" /127.0.0.1:{a.remote_port}[1](queued=0,recved=1,sent=1,sid=0x{sa},lop=PING,"
        f"est={WALL0},to=10000,lcxid=0x5,lzxid=0x7,lresp=300,llat=0,minlat=0,avglat=4,"
        "maxlat=12)\n"
        f" /127.0.0.1:{b.remote_port}[1](queued=0,recved=1,sent=1,sid=0x{sb},lop=null,"
        f"est={WALL0},to=10000,lcxid=0x0,lzxid=0x0,lresp=0,llat=0,minlat=0,avglat=0,"
        "maxlat=0)\n"
        f" /127.0.0.1:{b.remote_port + 1}[0](queued=0,recved=1,sent=0)\n"
        "\n"
    )


@pytest.mark.pure
def test_crst_resets_every_connection(env: Env) -> None:
    a = env.session()
    a.cnxn_stats = ConnectionStats()  # type: ignore[attr-defined]
    a.cnxn_stats.update(4, 9, "GETD", 10, 15)  # type: ignore[attr-defined]
    assert env.ask("crst") == "Connection stats reset.\n"
    assert (a.packets_received, a.packets_sent) == (0, 0)
    line = env.ask("cons").split("\n")[0]
    assert line == (
        f" /127.0.0.1:{a.remote_port}[1](queued=0,recved=0,sent=0,sid=0x{hex64(a.session_id)},"
        f"lop=NA,est={WALL0},to=10000,lzxid=0xffffffffffffffff,lresp=0,llat=0,minlat=0,"
        "avglat=0,maxlat=0)"
    )
    # After a reset the minimum latency is tracked for real.
    a.cnxn_stats.update(5, 10, "GETD", 20, 23)  # type: ignore[attr-defined]
    assert ",llat=3,minlat=3,avglat=3,maxlat=3)" in env.ask("cons")


@pytest.mark.pure
def test_srst_resets_server_stats_but_not_live_gauges(env: Env) -> None:
    s = env.server.stats
    s.latency(5.0)
    s.outstanding = 2
    s.auth_failed = 1
    metrics.count(s, "connection_request_count", 3)
    metrics.observe(s, "readlatency", 4)
    assert env.ask("srst") == "Server stats reset.\n"
    assert (s.packets_received, s.packets_sent, s.count) == (0, 0, 0)
    assert (s.outstanding, s.auth_failed) == (2, 1)
    mntr = dict(line.split("\t") for line in env.ask("mntr").splitlines())
    assert mntr["zk_connection_request_count"] == "0"
    assert mntr["zk_cnt_readlatency"] == "0"
    assert mntr["zk_packets_received"] == "1"  # the mntr itself
    assert mntr["zk_auth_failed_count"] == "1"


# --------------------------------------------------------------------------
# dump / wchs / wchc / wchp / hash


@pytest.mark.pure
def test_dump_sessions_ephemerals_and_connections(env: Env, utc: None) -> None:
    a = env.session(10000)
    b = env.session(10000)
    _create(env, a, 1, "/a")
    _create(env, a, 2, "/a/e1", mode=CreateMode.EPHEMERAL)
    _create(env, a, 3, "/a/e2", b"yy", mode=CreateMode.EPHEMERAL)
    _create(env, b, 1, "/b", mode=CreateMode.EPHEMERAL)
    out = env.ask("dump")
    sa, sb = hex64(a.session_id), hex64(b.session_id)
    first, second = chm_long_order([a.session_id, b.session_id])
    # Apache's HashSet<String> order for these names is /a/e2 before /a/e1.
    eph = {a.session_id: f"0x{sa}:\n\t/a/e2\n\t/a/e1\n", b.session_id: f"0x{sb}:\n\t/b\n"}
    # Sessions touched at mono 1_000_000 with 10 s expire in the 1_012_000 bucket.
    expire = time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime((WALL0 + 12000) / 1000))
    cnx_expire = time.strftime("%a %b %d %H:%M:%S UTC %Y",
                               time.gmtime((WALL0 + 20000 - 1_000_000 % 10000) / 1000))
    assert out == (
        "SessionTracker dump:\n"
        "Session Sets (1)/(2):\n"
        f"2 expire at {expire}:\n"
        f"\t0x{hex64(first)}\n"
        f"\t0x{hex64(second)}\n"
        "ephemeral nodes dump:\n"
        "Sessions with Ephemerals (2):\n"
        + "".join(eph[sid] for sid in (first, second)) +
        "Connections dump:\n"
        "Connections Sets (1)/(3):\n"
        f"3 expire at {cnx_expire}:\n"
        f"\tip: /127.0.0.1:{a.remote_port} sessionId: 0x{sa}\n"
        f"\tip: /127.0.0.1:{b.remote_port} sessionId: 0x{sb}\n"
        f"\tip: /127.0.0.1:{b.remote_port + 1} sessionId: 0x0\n"
    )


@pytest.mark.pure
def test_watch_dumps_cover_data_watches_only(env: Env) -> None:
    a = env.session()
    b = env.session()
    _create(env, a, 1, "/a", b"x")
    assert env.ask("wchs") == "0 connections watching 0 paths\nTotal watches:0\n"
    assert env.ask("wchc") == "\n"
    assert env.ask("wchp") == "\n"
    env.call(a, 2, OpCode.getData, GetDataRequest("/a", True))
    env.call(a, 3, OpCode.getChildren, GetChildrenRequest("/a", True))
    env.call(b, 1, OpCode.exists, ExistsRequest("/nope", True))
    env.call(b, 2, OpCode.getData, GetDataRequest("/a", True))
    sa, sb = hex64(a.session_id), hex64(b.session_id)
    assert env.ask("wchs") == "2 connections watching 2 paths\nTotal watches:3\n"
    # HashSet<String> order, as Apache printed for the same paths: /a before /nope.
    assert env.ask("wchc") == f"0x{sa}\n\t/a\n0x{sb}\n\t/a\n\t/nope\n\n"
    assert env.ask("wchp") == f"/a\n\t0x{sa}\n\t0x{sb}\n/nope\n\t0x{sb}\n\n"
    # mntr's watch_count counts child watches too.
    mntr = dict(line.split("\t") for line in env.ask("mntr").splitlines())
    assert mntr["zk_watch_count"] == "4"


@pytest.mark.pure
def test_hash_prints_the_digest_log(env: Env) -> None:
    assert env.ask("hash") == ""
    env.server.tree.digest_log.extend([(0x80, 2, -123), (0x100, 2, 456)])
    assert env.ask("hash") == "80: -123\n100: 456\n"


# --------------------------------------------------------------------------
# conf / dirs / envi


@pytest.mark.pure
def test_conf_and_dirs_report_apaches_swapped_sizes(env: Env, tmp_path: Path) -> None:
    snap = tmp_path / "data" / "version-2"
    logd = tmp_path / "log" / "version-2"
    snap.mkdir(parents=True)
    logd.mkdir(parents=True)
    (snap / "snapshot.0").write_bytes(b"s" * 457)
    (logd / "log.1").write_bytes(b"l" * 1000)
    assert env.ask("dirs") == "datadir_size: 1000\nlogdir_size: 457\n"
    assert env.ask("conf") == (
        "clientPort=2181\n"
        "secureClientPort=-1\n"
        f"dataDir={snap}\n"
        "dataDirSize=1000\n"
        f"dataLogDir={logd}\n"
        "dataLogSize=457\n"
        "tickTime=2000\n"
        "maxClientCnxns=60\n"
        "minSessionTimeout=4000\n"
        "maxSessionTimeout=40000\n"
        "clientPortListenBacklog=-1\n"
        "serverId=0\n"
    )


@pytest.mark.pure
def test_dirs_of_missing_directories_are_zero(env: Env) -> None:
    assert env.ask("dirs") == "datadir_size: 0\nlogdir_size: 0\n"


@pytest.mark.pure
def test_envi_keeps_apaches_keys_with_python_facts(env: Env) -> None:
    lines = env.ask("envi").split("\n")
    assert lines[0] == "Environment:"
    assert lines[-1] == ""
    pairs = [line.split("=", 1) for line in lines[1:-1]]
    assert [k for k, _ in pairs] == [
        "zookeeper.version", "host.name", "java.version", "java.vendor", "java.home",
        "java.class.path", "java.library.path", "java.io.tmpdir", "java.compiler", "os.name",
        "os.arch", "os.version", "user.name", "user.home", "user.dir", "os.memory.free",
        "os.memory.max", "os.memory.total",
    ]
    values = dict(pairs)
    assert values["zookeeper.version"] == VERSION
    assert values["java.version"] == platform.python_version()
    assert values["user.dir"] == os.getcwd()
    for key in ("os.memory.free", "os.memory.max", "os.memory.total"):
        assert re.fullmatch(r"\d+MB", values[key])


# --------------------------------------------------------------------------
# mntr


@pytest.mark.pure
def test_mntr_prints_every_apache_metric_in_order(env: Env) -> None:
    a = env.session()
    _create(env, a, 1, "/a", b"12345")
    _create(env, a, 2, "/a/e", mode=CreateMode.EPHEMERAL)
    s = env.server.stats
    s.last_response_size, s.min_response_size, s.max_response_size = 98, 16, 98
    metrics.observe(s, "fsynctime", 3)
    metrics.observe(s, "readlatency", 2)
    # The two creates under /a recorded a_write_per_namespace (DataTree.updateWriteStat).
    env.clock.advance(285)
    text = env.ask("mntr")
    assert text.endswith("\n")
    rows = [line.split("\t") for line in text[:-1].split("\n")]
    assert all(len(r) == 2 for r in rows)
    keys = [k for k, _ in rows]
    expected = ["zk_version", "zk_server_state"] + [f"zk_{g}" for g in MNTR_GAUGES]
    expected += [f"zk_{c}" for c in MNTR_COUNTERS]
    for name in MNTR_SUMMARIES:
        expected += [f"zk_{p}_{name}" for p in ("avg", "min", "max", "cnt", "sum")]
    for name in MNTR_PERCENTILE_SUMMARIES:
        expected += [f"zk_{p}_{name}" for p in
                     ("avg", "min", "max", "cnt", "sum", "p50", "p95", "p99", "p999")]
    for ns_set in ("a_write_per_namespace",):
        expected += [f"zk_{p}_{ns_set}" for p in ("avg", "min", "max", "cnt", "sum")]
    assert keys == expected
    assert len(keys) == 485 + 5  # Apache 3.8.0 prints 485 lines before namespaces
    v = dict(rows)
    assert v["zk_version"] == VERSION
    assert v["zk_server_state"] == "standalone"
    assert v["zk_znode_count"] == "7"
    assert v["zk_ephemerals_count"] == "1"
    assert v["zk_global_sessions"] == "1"
    assert v["zk_num_alive_connections"] == "2"
    assert v["zk_approximate_data_size"] == str(env.server.tree.cached_approximate_data_size())
    assert v["zk_uptime"] == "285"
    assert (v["zk_last_client_response_size"], v["zk_min_client_response_size"]) == ("98", "16")
    assert v["zk_connection_request_count"] == "1"
    assert v["zk_bytes_received_count"] == "4"
    assert (v["zk_cnt_fsynctime"], v["zk_sum_fsynctime"]) == ("1", "3")
    assert v["zk_p50_readlatency"] == "2"
    assert v["zk_avg_a_write_per_namespace"] == "5.5"  # "/a"+5 bytes, "/a/e"+0
    assert v["zk_connection_drop_probability"] == "0.0"
    assert int(v["zk_open_file_descriptor_count"]) > 0


@pytest.mark.pure
def test_mntr_quota_gauges(env: Env) -> None:
    a = env.session()
    for i, (path, data) in enumerate([
        ("/q", b""), ("/zookeeper/quota/q", b""),
        ("/zookeeper/quota/q/zookeeper_limits", b"count=-1,bytes=-1,countHardLimit=10"),
        ("/zookeeper/quota/q/zookeeper_stats", b"count=3,bytes=42"),
    ], start=1):
        _create(env, a, i, path, data)
    v = dict(line.split("\t") for line in env.ask("mntr").splitlines())
    assert v["zk_q_quota_count_limit_per_namespace"] == "10"
    assert v["zk_q_quota_bytes_limit_per_namespace"] == "-1"
    # Creating the stats node makes the tree recount the subtree (/q: 1 node, 0 bytes).
    assert v["zk_q_quota_count_usage_per_namespace"] == "1"
    assert v["zk_q_quota_bytes_usage_per_namespace"] == "0"
    _create(env, a, 9, "/q/child", b"12345")
    v = dict(line.split("\t") for line in env.ask("mntr").splitlines())
    assert v["zk_q_quota_count_usage_per_namespace"] == "2"
    assert v["zk_q_quota_bytes_usage_per_namespace"] == "5"


# --------------------------------------------------------------------------
# a real pyzk server, over sockets


def _word(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        chunks = []
        while chunk := s.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


@pytest.mark.server
def test_every_word_over_a_socket(pyzk_server: PyzkServer) -> None:
    from kazoo.client import KazooClient

    zk = KazooClient(hosts=pyzk_server.address)
    zk.start(timeout=15)
    try:
        zk.create("/fourletter", b"abc")
        zk.create("/fourletter/e", b"", ephemeral=True)
        zk.get("/fourletter", watch=lambda event: None)
        sid = hex64(zk.client_id[0])
        port = pyzk_server.port
        answers = {cmd: _word(port, cmd.encode()).decode() for cmd in sorted(ALL_WORDS)
                   if cmd != "stmk"}
    finally:
        zk.stop()
        zk.close()
    assert answers["ruok"] == "imok"
    assert answers["isro"] == "rw"
    assert answers["gtmk"] == "306"
    assert re.fullmatch(
        r"Zookeeper version: 3\.8\.0-pyzk-.*\nLatency min/avg/max: \d+/[\d.E-]+/\d+\n"
        r"Received: \d+\nSent: \d+\nConnections: \d+\nOutstanding: 0\nZxid: 0x[0-9a-f]+\n"
        r"Mode: standalone\nNode count: \d+\n", answers["srvr"])
    client = r" /127\.0\.0\.1:\d+\[[01]\]\(queued=\d+,recved=\d+,sent=\d+\)\n"
    assert re.search(rf"^Clients:\n({client})+\n", answers["stat"], re.M)
    assert re.search(rf",sid=0x{sid},lop=\w+,est=\d+,to=\d+", answers["cons"])
    assert answers["cons"].endswith(")\n\n")
    assert answers["crst"] == "Connection stats reset.\n"
    assert answers["srst"] == "Server stats reset.\n"
    assert f"0x{sid}:\n\t/fourletter/e\n" in answers["dump"]
    assert answers["dump"].startswith("SessionTracker dump:\nSession Sets (")
    assert answers["wchs"] == "1 connections watching 1 paths\nTotal watches:1\n"
    assert answers["wchc"] == f"0x{sid}\n\t/fourletter\n\n"
    assert answers["wchp"] == f"/fourletter\n\t0x{sid}\n\n"
    assert re.fullmatch(r"datadir_size: \d+\nlogdir_size: \d+\n", answers["dirs"])
    assert f"clientPort={port}\n" in answers["conf"]
    assert answers["envi"].startswith("Environment:\nzookeeper.version=3.8.0-pyzk-")
    mntr = [line.split("\t") for line in answers["mntr"].splitlines()]
    assert [k for k, _ in mntr[:3]] == ["zk_version", "zk_server_state", "zk_ephemerals_count"]
    assert len(mntr) >= 485
    assert re.fullmatch(r"([0-9a-f]+: -?\d+\n)*", answers["hash"])
    # stmk takes the mask from the 8 bytes after the word.
    assert _word(port, b"stmk" + struct.pack(">q", 99)) == b"99"
    assert _word(port, b"gtmk") == b"99"
