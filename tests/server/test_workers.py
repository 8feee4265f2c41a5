"""pyzk.workers=N: one standalone server on several processes (pyzk.shell.workers).

* the zoo.cfg key (pure);
* a differential scenario, Apache against pyzk with 2 workers: sessions
  spread over the processes (checked by the process id each session id
  carries in its top byte) interleave writes, reads, syncs and watches, and
  every reply, zxid and per-session order of replies and events must be
  Apache's. A write of one session is read by a session on another process
  after ``sync``; a watch event arrives before the reply of the ``sync`` that
  follows the write;
* a worker killed with SIGKILL: its clients reconnect to the other
  processes with their sessions (and ephemerals), no acknowledged write is
  lost, and the server starts a new worker;
* the client port: a port taken by another socket still fails the start
  (SO_REUSEPORT does not let the server share it unnoticed).
"""

from __future__ import annotations

import os
import signal
import socket
import threading
import time
from pathlib import Path

import pytest
from kazoo.client import KazooClient, KazooState

from pyzk.config import ConfigError, parse_static
from pyzk.jute import records as R
from pyzk.jute.constants import CreateMode, OpCode
from pyzk.testing.scenario import (
    Outcome,
    ScenarioRunner,
    Step,
    assert_same,
    close,
    connect,
    create,
    op,
    send,
)
from pyzk.testing.servers import (
    ApacheServer,
    PyzkServer,
    ServerError,
    free_port,
    require_reference,
    wait_for,
)

SESSIONS = 8


def _worker_pids(srv: PyzkServer) -> dict[int, int]:
    """worker index -> pid, from the orderer's children's command lines."""
    assert srv.pid is not None
    out: dict[int, int] = {}
    for task in Path(f"/proc/{srv.pid}/task").iterdir():
        for pid in (task / "children").read_text().split():
            try:
                argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            except FileNotFoundError:
                continue
            if b"pyzk.shell.workerproc" in argv:
                out[int(argv[argv.index(b"--index") + 1])] = int(pid)
    return out


def _wait_all_listening(srv: PyzkServer, workers: int) -> None:
    """Until four-letter words (each a new connection, handed to a process by
    the kernel) have been answered by the orderer and every worker."""
    seen: set[str] = set()

    def all_seen() -> bool:
        mntr = dict(line.split("\t", 1) for line in srv.four_letter("mntr").splitlines())
        seen.add(mntr["zk_pyzk_worker_id"])
        return len(seen) == workers + 1

    wait_for(all_seen, 20, f"answers from the orderer and {workers} workers")


def _process_of(session_id: int) -> int:
    """The process that created a session: 0 for the orderer, else the worker's index."""
    return ((session_id >> 56) & 0xFF) - 1


# ------------------------------------------------------------------ config


@pytest.mark.pure
def test_workers_key() -> None:
    base = {"dataDir": "/tmp/x", "clientPort": "2181"}
    assert parse_static(dict(base), {}, "zoo.cfg").workers == 0
    cfg = parse_static({**base, "pyzk.workers": "3"}, {}, "zoo.cfg")
    assert cfg.workers == 3
    assert "zookeeper.pyzk.workers" not in cfg.system_properties
    for bad in ("-1", "255", "many"):
        with pytest.raises(ConfigError, match="pyzk.workers"):
            parse_static({**base, "pyzk.workers": bad}, {}, "zoo.cfg")


# ------------------------------------------------------------------ differential


def _scenario() -> tuple[list[Step], dict[int, bytes]]:
    """The steps, and the cross-session reads: step index -> the data it must see."""
    names = [f"s{i}" for i in range(SESSIONS)]
    steps: list[Step] = [connect(n) for n in names]
    steps.append(op("s0", OpCode.create, create("/w", b"0")))
    for n in names:  # everyone sees /w (sync first: it may be on another process)
        steps += [op(n, OpCode.sync, R.SyncRequest("/w")),
                  op(n, OpCode.getData, R.GetDataRequest("/w", True)),
                  op(n, OpCode.getChildren, R.GetChildrenRequest("/w", True))]
    reads: dict[int, bytes] = {}
    for i, n in enumerate(names):  # A writes, B (another session) syncs and reads it
        other = names[(i + 3) % SESSIONS]
        steps += [op(n, OpCode.create, create(f"/w/c{i}", str(i).encode())),
                  op(other, OpCode.sync, R.SyncRequest("/w"))]
        reads[len(steps)] = str(i).encode()
        steps.append(op(other, OpCode.getData, R.GetDataRequest(f"/w/c{i}", False)))
    steps.append(op("s5", OpCode.setData, R.SetDataRequest("/w", b"x", -1)))
    for n in names:  # the data watch fired before the sync's reply; the new data after it
        steps.append(op(n, OpCode.sync, R.SyncRequest("/w")))
        reads[len(steps)] = b"x"
        steps.append(op(n, OpCode.getData, R.GetDataRequest("/w", False)))
    for i, n in enumerate(names):  # pipelined: reads behind the session's own writes
        p = f"/p{i}"  # not under /w: its children's order would depend on the timing
        steps += [send(n, OpCode.create, create(p, b"a")),
                  send(n, OpCode.getData, R.GetDataRequest(p, False)),
                  send(n, OpCode.setData, R.SetDataRequest(p, b"b", 0)),
                  send(n, OpCode.getData, R.GetDataRequest(p, False)),
                  send(n, OpCode.exists, R.ExistsRequest(p, True)),
                  send(n, OpCode.delete, R.DeleteRequest(p, 1)),
                  send(n, OpCode.exists, R.ExistsRequest(p, False)),
                  # answered after the seven: no other session's write is in
                  # flight when the next session starts (zxids stay the same)
                  op(n, OpCode.sync, R.SyncRequest("/"))]
    steps += [op("s7", OpCode.create, create("/w/e", b"", CreateMode.EPHEMERAL)),
              op("s0", OpCode.sync, R.SyncRequest("/w")),
              op("s0", OpCode.exists, R.ExistsRequest("/w/e", True)),
              close("s7"),
              op("s0", OpCode.sync, R.SyncRequest("/w")),
              op("s0", OpCode.exists, R.ExistsRequest("/w/e", False))]
    # every process applies the close before the final reads and pings
    steps += [op(n, OpCode.sync, R.SyncRequest("/")) for n in names[:-1]]
    steps.append(op("s1", OpCode.getChildren, R.GetChildrenRequest("/w", False)))
    return steps, reads


def _check_apache(outcome: Outcome, reads: dict[int, bytes]) -> None:
    """What the scenario must exercise, pinned on Apache's run."""
    for i, data in reads.items():
        err, _zxid, body = outcome.steps[i][2]
        assert err == "OK" and body[1]["data"] == data, (i, outcome.steps[i])
    for i in range(SESSIONS - 1):
        trace = outcome.traces[f"s{i}"]
        kinds = [t[1][1]["type"] for t in trace if t[0] == "event"]
        # NodeChildrenChanged, NodeDataChanged, NodeDeleted of its own exists watch
        assert sorted(kinds) == sorted([2, 3, 4] + ([2] if i == 0 else [])), (i, trace)
        # each pipelined read came after its write: the only NONODE is the
        # exists after the delete (and s0's of the closed session's ephemeral)
        errs = [t[2] for t in trace if t[0] == "reply"]
        assert errs.count("NONODE") == (2 if i == 0 else 1), (i, trace)
        assert set(errs) == {"OK", "NONODE"}, (i, trace)
    last = next(s for s in reversed(outcome.steps) if s[0] == "getChildren")
    err, _zxid, body = last[2]
    assert err == "OK"
    assert sorted(body[1]["children"]) == sorted(f"c{i}" for i in range(SESSIONS))


@pytest.mark.reference
def test_ordering_and_sync_across_workers_match_apache(tmp_path: Path) -> None:
    require_reference()
    outcomes = []
    spread: set[int] = set()
    for kind, extra in (("apache", {}), ("pyzk", {"pyzk.workers": "2"})):
        cls = ApacheServer if kind == "apache" else PyzkServer
        with cls(tmp_path / kind, extra_cfg=extra) as srv:
            if kind == "pyzk":
                _wait_all_listening(srv, 2)  # type: ignore[arg-type]
            runner = ScenarioRunner(srv.host, srv.port)
            steps, reads = _scenario()
            outcome = runner.run(steps)
            if kind == "apache":
                _check_apache(outcome, reads)
            else:
                spread = {_process_of(sid) for sid, _pw in runner.creds.values()}
            outcomes.append(outcome)
    # 8 sessions over 3 processes all landing on the orderer: (1/3)^8
    assert len(spread) >= 2 and spread - {0}, f"sessions did not spread: {spread}"
    assert_same(outcomes[0], outcomes[1])


# ------------------------------------------------------------------ a worker dies


@pytest.mark.server
def test_worker_death_keeps_sessions_and_acknowledged_writes(tmp_path: Path) -> None:
    with PyzkServer(tmp_path / "pyzk", extra_cfg={"pyzk.workers": "2"}) as srv:
        _wait_all_listening(srv, 2)
        clients: list[KazooClient] = []
        lost: list[str] = []
        try:
            # enough clients that some are on workers (by their session ids)
            for _ in range(40):
                c = KazooClient(hosts=srv.address, timeout=10.0)
                c.start(timeout=10)
                clients.append(c)
                on = {_process_of(c.client_id[0]) for c in clients}
                if len(clients) >= 6 and on - {0}:
                    break
            by_proc: dict[int, list[KazooClient]] = {}
            for c in clients:
                by_proc.setdefault(_process_of(c.client_id[0]), []).append(c)
            victim = next(i for i in sorted(by_proc) if i > 0)
            pid = _worker_pids(srv)[victim]
            moved = by_proc[victim]
            ids = {id(c): c.client_id for c in clients}
            for i, c in enumerate(clients):
                c.create(f"/eph{i}", b"", ephemeral=True)
            states: dict[int, list[str]] = {}
            for i, c in enumerate(clients):
                def listen(st: str, i: int = i) -> None:
                    states.setdefault(i, []).append(st)
                    if st == KazooState.LOST:
                        lost.append(f"client {i}")
                c.add_listener(listen)

            acked: list[str] = []
            acked_lock = threading.Lock()
            stop = threading.Event()

            def writer(i: int, c: KazooClient) -> None:
                n = 0
                deadline = time.monotonic() + 30
                while not stop.is_set() and time.monotonic() < deadline:
                    path = f"/ack/c{i}-{n}"
                    try:
                        c.create(path, b"v", makepath=True)
                    except Exception:  # an unknown outcome: not acknowledged
                        time.sleep(0.05)
                        n += 1
                        continue
                    with acked_lock:
                        acked.append(path)
                    n += 1

            threads = [threading.Thread(target=writer, args=(i, c), daemon=True)
                       for i, c in enumerate(clients)]
            for t in threads:
                t.start()
            wait_for(lambda: len(acked) >= 20, 20, "writes before the kill")
            os.kill(pid, signal.SIGKILL)
            before = len(acked)
            # the moved clients reconnect elsewhere and write again
            wait_for(lambda: all(c.connected for c in clients) and len(acked) > before + 40,
                     30, "writes after the kill")
            stop.set()
            for t in threads:
                t.join(10)
            assert not lost, "a session was lost"
            changed = [(ids[id(c)], c.client_id) for c in clients if ids[id(c)] != c.client_id]
            assert not changed, f"sessions changed: {changed}; states {states}"
            for i, c in enumerate(clients):
                if c in moved:  # their connection dropped; a new one, the same session
                    assert KazooState.SUSPENDED in states.get(i, []), (i, states)
                    assert c.connected
            checker = KazooClient(hosts=srv.address)
            checker.start(timeout=10)
            try:
                checker.sync("/")
                missing = [p for p in acked if checker.exists(p) is None]
                assert not missing, f"{len(missing)} acknowledged writes lost: {missing[:5]}"
                assert all(checker.exists(f"/eph{i}") for i in range(len(clients)))
            finally:
                checker.stop()
            new = wait_for(lambda: _worker_pids(srv).get(victim) not in (None, pid)
                           and _worker_pids(srv)[victim], 20, "the worker restarted")
            assert new != pid
        finally:
            for c in clients:
                c.stop()
                c.close()


# ------------------------------------------------------------------ the client port


@pytest.mark.server
def test_a_taken_client_port_still_fails_the_start(tmp_path: Path) -> None:
    port = free_port()
    with socket.socket() as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", port))
        taken.listen()
        srv = PyzkServer(tmp_path / "pyzk", port=port, extra_cfg={"pyzk.workers": "1"})
        with pytest.raises(ServerError):
            srv.start(timeout=15)
        assert "address already in use" in srv.log_tail(80)
