"""The AdminServer: every command's JSON against Apache 3.8's Jetty AdminServer.

Apache (with Debian's Jetty and Jackson jars on its classpath) and pyzk get
the same config and the same workload (znodes, an ephemeral, data and child
watches, two sessions), then every command is fetched by every name, in the
same order on both. What must match:

- the structure of every answer: keys, nesting and JSON value types
  (Apache's ServerStats bean comes out in a JVM-dependent key order, so the
  key *order* is compared only where Apache's is fixed);
- ``command`` and ``error`` and the HTTP status of every request, including
  unknown commands, bad arguments, other methods and other paths;
- every value that does not differ by nature, after normalising ports,
  directories, session ids, times, sizes, the version string and the metrics
  pyzk does not measure (see :data:`VOLATILE`).

The ensemble case runs three Apache or pyzk members with one observer and
compares leader, voting_view, zabstate and observers member by member.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pyzk.core.admincommands import BY_NAME, COMMANDS
from pyzk.testing.servers import (
    SERVER_CLASSES,
    Ensemble,
    ServerProcess,
    free_port,
    require_reference,
    second_kind,
)

SECOND = second_kind()
ALL_NAMES = [n for c in COMMANDS for n in c.names]
#: Edge requests: (method, path after the command URL's host).
EDGES = [
    ("GET", "/commands"), ("GET", "/commands/"), ("GET", "/commands/nope"),
    ("GET", "/commands/ruok/x"), ("GET", "/commands/RUOK"), ("GET", "/"),
    ("GET", "/commandsx"), ("POST", "/commands/ruok"), ("PUT", "/commands/ruok"),
    ("DELETE", "/commands/monitor"), ("GET", "/commands/set_trace_mask?traceMask=abc"),
    ("GET", "/commands/stmk?traceMask=99999999999999999999"),
    ("GET", "/commands/stmk?traceMask=306&traceMask=7"),
    ("GET", "/commands/stmk?traceMask=-1"), ("GET", "/commands/gtmk"),
    ("GET", "/commands/stmk?traceMask=306"), ("GET", "/commands/ruok?x=1&x=2&y"),
]

#: Leaves whose values differ by nature, by key name (anywhere in an answer).
VOLATILE = {
    "client_port", "data_dir", "data_log_dir", "remote_socket_address", "established",
    "uptime", "datadir_size", "logdir_size", "data_dir_size", "log_dir_size", "timestamp",
    "version", "last_response_time", "initial_configuration", "session_timeout",
    # latencies and response sizes are measurements
    "avg_latency", "min_latency", "max_latency", "last_latency", "last_buffer_size",
    "min_buffer_size", "max_buffer_size", "packets_sent", "last_client_response_size",
    "max_client_response_size", "min_client_response_size", "open_file_descriptor_count",
    "max_file_descriptor_count", "last_zxid", "last_operation", "last_cxid",
}
#: monitor keys whose values both servers know the same way (the rest are
#: metrics of Apache's processors, measured or not by pyzk).
MONITOR_EXACT = (
    "server_state", "ephemerals_count", "num_alive_connections", "outstanding_requests",
    "znode_count", "global_sessions", "non_mtls_remote_conn_count", "packets_received",
    "connection_drop_probability", "watch_count", "auth_failed_count",
    "approximate_data_size", "local_sessions", "outstanding_tls_handshake",
    "non_mtls_local_conn_count",
)


def http(port: int, path: str, method: str = "GET") -> tuple[int, str]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode("utf-8", "replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode("utf-8", "replace")


def workload(srv: ServerProcess) -> tuple[Any, Any]:
    from kazoo.client import KazooClient

    # 30 s sessions: kazoo pings every 10 s, so no ping lands between the
    # workload and the answers (packet counters are compared exactly)
    a = KazooClient(hosts=srv.address, timeout=30)
    a.start(timeout=30)
    b = KazooClient(hosts=srv.address, timeout=30)
    b.start(timeout=30)
    a.create("/app", b"x")
    a.create("/app/one", b"1")
    a.create("/eph", b"e", ephemeral=True)
    b.create("/b", b"b")
    a.get("/app", watch=lambda e: None)
    a.exists("/nope", watch=lambda e: None)
    b.get("/app", watch=lambda e: None)
    b.get_children("/app", watch=lambda e: None)
    a.set("/app", b"y")
    a.get("/app", watch=lambda e: None)
    a.get("/b", watch=lambda e: None)
    return a, b


def collect(kind: str, data_dir: Path) -> dict[str, Any]:
    """Run the workload on a fresh ``kind`` server and fetch everything."""
    if kind == "apache":
        require_reference()
    srv = SERVER_CLASSES[kind](data_dir, admin_port=free_port())
    srv.start()
    try:
        a, b = workload(srv)
        try:
            out: dict[str, Any] = {
                "sessions": {a.client_id[0]: "S1", b.client_id[0]: "S2"},
                "names": {n: http(srv.admin_port, f"/commands/{n}") for n in ALL_NAMES},
                "edges": [http(srv.admin_port, p, m) for m, p in EDGES],
                "config": (srv.port, str(srv.data_dir)),
            }
        finally:
            a.stop()
            b.stop()
        return out
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def answers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    base = tmp_path_factory.mktemp("admin")
    yield {"apache": collect("apache", base / "apache"), SECOND: collect(SECOND, base / "second")}


def shape(v: Any) -> Any:
    """Keys, nesting and JSON types (a list by the shape of its first item)."""
    if isinstance(v, dict):
        return {k: shape(x) for k, x in v.items()}
    if isinstance(v, list):
        return [shape(v[0])] if v else []
    return type(v).__name__


def normalise(v: Any, sessions: dict[int, str], key: str = "") -> Any:
    """Session ids to S1/S2 (in keys and values), volatile leaves to their type."""
    if isinstance(v, dict):
        out = {}
        if key == "expiry_time_to_session_ids":
            # which tick bucket a session falls in is timing: all in one
            return {"<time>": sorted(sessions.get(s, s) for ids in v.values() for s in ids)}
        for k, x in v.items():
            nk = sessions.get(int(k), k) if k.isdigit() else k
            out[nk] = normalise(x, sessions, k)
        return out
    if isinstance(v, list):
        items = [normalise(x, sessions, key) for x in v]
        return sorted(items, key=repr) if all(not isinstance(x, dict) for x in items) else items
    if key in VOLATILE:
        return f"<{type(v).__name__}>"
    if isinstance(v, int) and not isinstance(v, bool) and v in sessions:
        return sessions[v]
    return v


def pair(answers: dict[str, dict[str, Any]], name: str) -> tuple[Any, Any, dict[str, Any]]:
    got = {}
    for kind in ("apache", SECOND):
        status, body = answers[kind]["names"][name]
        assert status == 200, (kind, name, status, body)
        got[kind] = json.loads(body)
    return got["apache"], got[SECOND], answers


@pytest.mark.server
@pytest.mark.reference
@pytest.mark.parametrize("name", ALL_NAMES)
def test_command_structure(answers: dict[str, dict[str, Any]], name: str) -> None:
    """Every name answers with Apache's keys, nesting, types, command and error."""
    ours, theirs, _ = pair(answers, name)
    assert theirs["command"] == ours["command"] == BY_NAME[name].primary
    assert theirs["error"] == ours["error"]
    if BY_NAME[name].primary in ("environment", "system_properties"):
        # the JVM's own properties have no Python counterpart; every key
        # pyzk gives is one Apache gives, and every value is a string
        assert set(theirs) <= set(ours) | {"java.class.path"}
        assert all(isinstance(v, str) or v is None for v in theirs.values())
        if BY_NAME[name].primary == "environment":
            assert list(theirs) == list(ours)
        else:
            zk = {k: v for k, v in ours.items() if k.startswith("zookeeper.")}
            assert {k: theirs.get(k) for k in zk} | {"zookeeper.admin.serverPort": "*"} \
                == zk | {"zookeeper.admin.serverPort": "*"}
            assert list(theirs) == sorted(theirs, key=lambda k: (k in ("command", "error"), k))
        return
    sessions_a = answers["apache"]["sessions"]
    sessions_b = answers[SECOND]["sessions"]
    na = normalise(ours, {int(k): v for k, v in sessions_a.items()})
    nb = normalise(theirs, {int(k): v for k, v in sessions_b.items()})
    assert shape(nb) == shape(na)
    if BY_NAME[name].primary not in ("server_stats", "stats"):  # bean order is the JVM's
        assert list(theirs) == list(ours)


@pytest.mark.server
@pytest.mark.reference
@pytest.mark.parametrize("name", [n for n in ALL_NAMES if BY_NAME[n].primary not in (
    "environment", "system_properties", "monitor", "server_stats", "stats", "connections")])
def test_command_values(answers: dict[str, dict[str, Any]], name: str) -> None:
    """Deterministic values are Apache's (ids, times, sizes, paths normalised)."""
    ours, theirs, _ = pair(answers, name)
    sa = {int(k): v for k, v in answers["apache"]["sessions"].items()}
    sb = {int(k): v for k, v in answers[SECOND]["sessions"].items()}
    assert normalise(theirs, sb) == normalise(ours, sa)


@pytest.mark.server
@pytest.mark.reference
@pytest.mark.parametrize("name", ["monitor", "server_stats", "stats", "connections"])
def test_counter_values(answers: dict[str, dict[str, Any]], name: str) -> None:
    """The counters both servers keep alike: mntr's gauges, srvr's bean, cons'
    per-connection counters (as sets: Apache's connection order is a hash's)."""
    ours, theirs, _ = pair(answers, name)
    if name == "monitor":
        assert {k: theirs[k] for k in MONITOR_EXACT} == {k: ours[k] for k in MONITOR_EXACT}
        assert list(theirs) == list(ours)
        return
    sa = {int(k): v for k, v in answers["apache"]["sessions"].items()}
    sb = {int(k): v for k, v in answers[SECOND]["sessions"].items()}
    na, nb = normalise(ours, sa), normalise(theirs, sb)
    for key in ("connections", "secure_connections"):
        if key in na:
            assert sorted(map(repr, nb.pop(key))) == sorted(map(repr, na.pop(key)))
    assert nb == na


@pytest.mark.server
@pytest.mark.reference
def test_edges(answers: dict[str, dict[str, Any]]) -> None:
    """Statuses of every edge request, and the JSON of those that are JSON."""
    for (method, path), (sa, ba), (sb, bb) in zip(
            EDGES, answers["apache"]["edges"], answers[SECOND]["edges"], strict=True):
        assert sb == sa, (method, path, ba, bb)
        if sa == 200 and path.rstrip("/") != "/commands":
            assert json.loads(bb) == json.loads(ba), (method, path)
        elif sa == 200:
            assert bb == ba  # the listing, byte for byte


@pytest.mark.server
@pytest.mark.reference
def test_bytes_of_simple_answers(answers: dict[str, dict[str, Any]]) -> None:
    """Jackson's layout, byte for byte, where the values are the same."""
    for name in ("ruok", "hash", "is_read_only", "leader", "observers", "voting_view",
                 "zabstate", "watch_summary", "get_trace_mask", "stat_reset", "crst",
                 "observer_connection_stat_reset", "set_trace_mask"):
        assert answers[SECOND]["names"][name][1] == answers["apache"]["names"][name][1], name


# --------------------------------------------------------------------------- ensemble

ENSEMBLE_COMMANDS = ("leader", "voting_view", "zabstate", "observers", "server_stats",
                     "configuration", "monitor")


def ensemble_answers(base: Path, kind: str) -> dict[str, Any]:
    if kind == "apache":
        require_reference()
    ens = Ensemble(base / kind, dict.fromkeys((1, 2, 3, 4), kind), observers=(4,), admin=True)
    ens.start()
    try:
        leader = ens.wait_leader()
        from kazoo.client import KazooClient

        k = KazooClient(hosts=ens.hosts(), timeout=10)
        k.start(timeout=30)
        k.create("/x", b"1")
        k.sync("/x")
        k.stop()
        # every member has applied the create before we ask
        for s in ens.servers.values():
            k = KazooClient(hosts=s.address, timeout=10)
            k.start(timeout=30)
            k.sync("/")
            k.stop()
        out: dict[str, Any] = {"leader": leader, "ports": {}}
        for sid, s in ens.servers.items():
            out["ports"][sid] = (s.port, ens.quorum_ports[sid], ens.election_ports[sid])
            for n in ENSEMBLE_COMMANDS:
                status, body = http(s.admin_port, f"/commands/{n}")
                assert status == 200
                out[(sid, n)] = json.loads(body)
        return out
    finally:
        ens.stop()


def ens_normalise(v: Any, ports: dict[int, tuple[int, int, int]], leader: int, me: int,
                  key: str = "") -> Any:
    """Ports to role names: the leader's (L), the asked member's (me), another's (F)."""
    names = {}
    for sid, (c, q, e) in ports.items():
        who = "L" if sid == leader else "me" if sid == me else "F"
        names.update({c: f"{who}.client", q: f"{who}.quorum", e: f"{who}.election"})
    if isinstance(v, dict):
        return {k: ens_normalise(x, ports, leader, me, k) for k, x in v.items()}
    if isinstance(v, list):
        return [ens_normalise(x, ports, leader, me, key) for x in v]
    if isinstance(v, str):
        for port, name in names.items():
            v = v.replace(f":{port}", f":{name}")
        return v
    if isinstance(v, int) and not isinstance(v, bool) and key == "all_ports":
        return names.get(v, v)
    return v


@pytest.mark.ensemble
@pytest.mark.reference
@pytest.mark.timeout(240)
def test_ensemble_commands(tmp_path: Path) -> None:
    """Leader, follower and observer answer leader/voting_view/zabstate/observers
    as Apache's members do (members compared by role: leader, a follower, the
    observer)."""
    if os.environ.get("PYZK_COMPAT_SECOND", "pyzk") not in ("pyzk", "apache"):
        pytest.skip("unknown second kind")
    a = ensemble_answers(tmp_path, "apache")
    b = ensemble_answers(tmp_path, SECOND)

    def roles(r: dict[str, Any]) -> dict[str, int]:
        follower = min(s for s in (1, 2, 3) if s != r["leader"])
        return {"leader": r["leader"], "follower": follower, "observer": 4}

    ra, rb = roles(a), roles(b)
    for role in ("leader", "follower", "observer"):
        for n in ENSEMBLE_COMMANDS:
            ja, jb = a[(ra[role], n)], b[(rb[role], n)]
            assert shape(jb) == shape(ja) or n in ("observers", "monitor"), (role, n)
            if n == "monitor":
                # the leader's per-learner queue metric sets (<sid>_learner_handler_qp_*)
                # and per-namespace summaries are the 4lw mntr's gaps, not the admin's
                def kept(keys: Any) -> set[str]:
                    return {k for k in keys
                            if "_learner_handler_qp_" not in k and "_per_namespace" not in k}
                assert kept(jb) == kept(ja), (role, n, kept(jb) ^ kept(ja))
                assert jb["server_state"] == ja["server_state"]
                continue
            if n in ("server_stats", "configuration"):
                assert set(jb) == set(ja), (role, n, set(jb) ^ set(ja))
                continue
            na = ens_normalise(ja, a["ports"], a["leader"], ra[role])
            nb = ens_normalise(jb, b["ports"], b["leader"], rb[role])
            if n == "leader":
                na["leader_id"] = na["leader_id"] == a["leader"]
                nb["leader_id"] = nb["leader_id"] == b["leader"]
            if n == "zabstate":
                na["myid"] = role
                nb["myid"] = role
            if n == "voting_view":
                na = {k: v for k, v in na.items() if k != "current_config"} | {
                    "current_config": sorted(map(repr, na["current_config"].values()))}
                nb = {k: v for k, v in nb.items() if k != "current_config"} | {
                    "current_config": sorted(map(repr, nb["current_config"].values()))}
            if n == "observers":
                for obs in na["observers"] + nb["observers"]:
                    for k in ("remote_socket_address", "established", "queued_packets",
                              "queued_packets_size", "packets_received", "packets_sent",
                              "requests"):
                        obs[k] = type(obs[k]).__name__
            assert nb == na, (role, n, nb, na)
