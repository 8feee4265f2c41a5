"""PacketLink: what is sent in one loop iteration goes out in one write, in
order, and a close writes what is queued before it closes."""

from __future__ import annotations

import asyncio

import pytest

from pyzk.shell.packetlink import DIRECT_WRITE, PacketLink

pytestmark = pytest.mark.server


class _Transport:
    """The part of asyncio.Transport a link uses, recording its calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []

    def write(self, data: bytes) -> None:
        self.calls.append(("write", bytes(data)))

    def close(self) -> None:
        self.calls.append(("close", b""))


def _link() -> tuple[PacketLink, _Transport]:
    link = PacketLink()
    t = _Transport()
    link.transport = t  # type: ignore[assignment]
    return link, t


def test_sends_of_one_iteration_go_out_in_one_write_in_order() -> None:
    async def scenario() -> list[list[tuple[str, bytes]]]:
        link, t = _link()
        link.send(b"PROPOSAL1")
        link.send(b"COMMIT0")
        link.send(b"PROPOSAL2")
        seen = [list(t.calls)]  # nothing written inside the iteration
        await asyncio.sleep(0)
        seen.append(list(t.calls))
        link.send(b"COMMIT1")
        await asyncio.sleep(0)
        seen.append(list(t.calls))
        return seen

    before, first, second = asyncio.run(scenario())
    assert before == []
    assert first == [("write", b"PROPOSAL1COMMIT0PROPOSAL2")]
    assert second == [("write", b"PROPOSAL1COMMIT0PROPOSAL2"), ("write", b"COMMIT1")]


def test_close_writes_what_is_queued_first_and_nothing_after() -> None:
    async def scenario() -> list[tuple[str, bytes]]:
        link, t = _link()
        link.send(b"ACK")
        link.close()
        link.send(b"late")
        link.close()
        await asyncio.sleep(0)
        assert link.closed
        return t.calls

    assert asyncio.run(scenario()) == [("write", b"ACK"), ("close", b"")]


def test_flush_writes_at_once_and_the_loop_then_has_nothing_left() -> None:
    async def scenario() -> list[tuple[str, bytes]]:
        link, t = _link()
        link.send(b"a")
        link.send(b"b")
        link.flush()
        link.send(b"c")
        await asyncio.sleep(0)
        return t.calls

    assert asyncio.run(scenario()) == [("write", b"ab"), ("write", b"c")]


def test_a_large_send_is_written_at_once_after_what_is_queued() -> None:
    big = b"S" * DIRECT_WRITE

    async def scenario() -> list[tuple[str, bytes]]:
        link, t = _link()
        link.send(b"SNAP-header")
        link.send(big)
        link.send(b"NEWLEADER")
        await asyncio.sleep(0)
        return t.calls

    calls = asyncio.run(scenario())
    assert calls == [("write", b"SNAP-header"), ("write", big), ("write", b"NEWLEADER")]


def test_a_link_that_does_not_gather_writes_at_every_send() -> None:
    class Immediate(PacketLink):
        gather = False

    async def scenario() -> list[tuple[str, bytes]]:
        link = Immediate()
        t = _Transport()
        link.transport = t  # type: ignore[assignment]
        link.send(b"INFORM1")
        link.send(b"INFORM2")
        assert t.calls == [("write", b"INFORM1"), ("write", b"INFORM2")]
        await asyncio.sleep(0)
        return t.calls

    assert asyncio.run(scenario()) == [("write", b"INFORM1"), ("write", b"INFORM2")]
