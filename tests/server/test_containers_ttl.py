"""Containers and TTL nodes are reaped by the server through the pipeline,
like Apache's ContainerManager; checked on pyzk and, when present, Apache."""

from __future__ import annotations

import time

import pytest

from pyzk.jute import records as R
from pyzk.jute.constants import CreateMode, OpCode
from pyzk.testing.servers import ApacheServer, PyzkServer, require_reference
from pyzk.testing.wire import connect

OPEN = [R.ACL(31, R.Id("world", "anyone"))]
FLAGS = ["-Dznode.container.checkIntervalMs=200"]


def _scenario(server) -> dict[str, bool]:
    c = connect(server.host, server.port)

    def create(path: str, mode: int = 0) -> None:
        # Clients send containers with the createContainer opcode.
        op = OpCode.createContainer if mode == CreateMode.CONTAINER else OpCode.create
        r = c.call_reply(op, R.CreateRequest(path, b"", OPEN, mode))
        assert r.err == 0, (path, r.err)

    def ttl(path: str, ms: int) -> None:
        r = c.call_reply(OpCode.createTTL, R.CreateTTLRequest(
            path, b"", OPEN, CreateMode.PERSISTENT_WITH_TTL, ms))
        assert r.err == 0, (path, r.err)

    create("/used", CreateMode.CONTAINER)
    create("/used/x")
    c.call_reply(OpCode.delete, R.DeleteRequest("/used/x", -1))
    create("/never", CreateMode.CONTAINER)
    create("/busy", CreateMode.CONTAINER)
    create("/busy/x")
    ttl("/short", 300)
    ttl("/long", 600_000)
    ttl("/parent", 300)
    create("/parent/kid")
    paths = ["/used", "/never", "/busy", "/short", "/long", "/parent"]
    deadline = time.monotonic() + 8
    seen: dict[str, bool] = {}
    while time.monotonic() < deadline:
        seen = {p: c.call_reply(OpCode.exists, R.ExistsRequest(p, False)).err == 0
                for p in paths}
        if not seen["/used"] and not seen["/short"]:
            break
        time.sleep(0.1)
    c.close()
    return seen


EXPECTED = {"/used": False, "/never": True, "/busy": True, "/short": False, "/long": True,
            "/parent": True}


@pytest.mark.server
def test_pyzk_reaps_empty_used_containers_and_expired_ttl_nodes(tmp_path) -> None:
    with PyzkServer(tmp_path, extra_cfg={"extendedTypesEnabled": "true"},
                    jvm_flags=FLAGS) as s:
        assert _scenario(s) == EXPECTED


@pytest.mark.reference
def test_apache_agrees(tmp_path) -> None:
    require_reference()
    with ApacheServer(tmp_path, extra_cfg={"extendedTypesEnabled": "true"},
                      jvm_flags=FLAGS) as s:
        assert _scenario(s) == EXPECTED
