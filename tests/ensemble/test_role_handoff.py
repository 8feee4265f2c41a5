"""A role change keeps the database in memory (Apache's fastForwardDataBase).

After a leader's death the survivors do not load their data directories
again: each hands its in-memory tree to the next election, brought up to
the end of its log. What they then serve must be exactly what a restart
would load from the same directories: the test compares the live view of
every member with a fresh recovery of its data directory once it stopped.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pyzk.shell.recovery import recover
from pyzk.shell.txnlogfiles import iter_txns
from pyzk.testing.servers import Ensemble, wait_for
from tests.ensemble.helpers import SESSION_CFG, client, rejoin
from tests.txnlog.helpers import kazoo_view, tree_view

pytestmark = pytest.mark.ensemble

KEPT = "Kept the database in memory"
WINDOW = re.compile(r"Committed log 0x(?P<lo>[0-9a-f]+)\.\.0x(?P<hi>[0-9a-f]+) \((?P<n>\d+) txns\) "
                    r"(?P<where>kept in memory|read from the log)")


def _comparable(view: dict[str, tuple]) -> dict[str, tuple]:
    """The user's znodes only: /zookeeper/config is rewritten at every election
    and the root is not a node of the tree's table."""
    return {p: v for p, v in view.items() if p != "/" and not p.startswith("/zookeeper")}


@pytest.mark.timeout(120)
def test_survivors_serve_what_a_reload_would(tmp_path: Path) -> None:
    ens = Ensemble(tmp_path, {1: "pyzk", 2: "pyzk", 3: "pyzk"}, extra_cfg=SESSION_CFG)
    with ens:
        old = ens.wait_leader()
        survivors = [s for s in ens.servers if s != old]
        with client(ens.hosts(survivors)) as zk:
            zk.ensure_path("/app")
            for i in range(50):
                zk.create(f"/app/n{i:02d}", str(i).encode())
            zk.set("/app/n07", b"changed")
            zk.delete("/app/n08")
            zk.create("/app/eph", b"mine", ephemeral=True)
            owner = zk.client_id[0]
            before = {s: len(ens[s].log_path.read_text()) for s in survivors}
            ens[old].kill()
            new = ens.wait_leader(among=survivors, timeout=30)
            for s in survivors:
                got = ens[s].log_path.read_text()[before[s]:]
                assert KEPT in got, f"member {s} reloaded its data directory"
            window = WINDOW.search(ens[new].log_path.read_text()[before[new]:])
            assert window is not None and window["where"] == "kept in memory"
            # the session lived through the failover, and so did its ephemeral
            wait_for(lambda: zk.connected, 20, "the client to reconnect")
            assert zk.get("/app/eph")[1].ephemeralOwner == owner
            zk.create("/app/after", b"new epoch")
        # the session closed: its ephemeral is gone everywhere
        rejoin(ens[old])
        live = {}
        for s in ens.servers:
            with client(ens[s].address) as member:
                member.sync("/")
                live[s] = _comparable(kazoo_view(member, "/"))
        assert "/app/eph" not in live[new]
        assert live[old] == live[new] == live[survivors[0]] == live[survivors[1]]
        assert live[new]["/app/n07"][0] == b"changed" and "/app/n08" not in live[new]
        assert "/app/after" in live[new]
    for s in ens.servers:
        disk = recover(ens[s].data_dir)
        assert _comparable(tree_view(disk.tree)) == live[s], f"member {s}"
    # the new leader's committed log is the one a read of its log would give
    lo, hi, n = int(window["lo"], 16), int(window["hi"], 16), int(window["n"])
    logged = [e.hdr.zxid for e in iter_txns(ens[new].data_dir) if e.hdr.zxid <= hi]
    assert n == min(len(logged), 501) and logged[-n:][0] == lo and logged[-1] == hi
