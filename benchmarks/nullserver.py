"""A server that answers every request with a canned getData reply, as fast as it can.

It exists to measure the load generator's own ceiling: it does no ZooKeeper
work at all (no tree, no log), so when the load generator drives it, the
rate reached is bounded by the generator plus this loop, never by a real
server. It is never used to compare servers.

Every request frame, whatever its opcode, is answered in order with a
ReplyHeader (its xid, a zxid, err 0) and a GetDataResponse of ``data_size``
bytes; a closeSession is answered and the connection closed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import multiprocessing
import struct
from multiprocessing.connection import Connection
from typing import cast

from benchmarks.frames import FRAME_LEN
from pyzk.jute.constants import OpCode
from pyzk.jute.records import ConnectResponse, GetDataResponse, Stat

log = logging.getLogger(__name__)

_REQ_HEAD = struct.Struct(">iii")  # length, xid, type
_REPLY_HEAD = struct.Struct(">iiqi")  # length, xid, zxid, err


class _NullProtocol(asyncio.Protocol):
    def __init__(self, body: bytes) -> None:
        self.body = body
        self.buf = bytearray()
        self.handshaken = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)

    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        out = bytearray()
        pos = 0
        end = len(buf)
        body = self.body
        size = 16 + len(body)
        pack = _REPLY_HEAD.pack
        close = False
        if not self.handshaken:
            if end < 4:
                return
            (n,) = FRAME_LEN.unpack_from(buf, 0)
            if end < 4 + n:
                return
            resp = ConnectResponse(0, 30000, 0x100000000 + id(self) % 0xFFFF, b"\0" * 16)
            payload = resp.to_bytes() + b"\0"
            out += FRAME_LEN.pack(len(payload)) + payload
            pos = 4 + n
            self.handshaken = True
        while end - pos >= 12:
            n, xid, op = _REQ_HEAD.unpack_from(buf, pos)
            if pos + 4 + n > end:
                break
            pos += 4 + n
            if op == OpCode.closeSession:
                out += pack(16, xid, 1, 0)
                close = True
                break
            out += pack(size, xid, 1, 0)
            out += body
        del buf[:pos]
        assert self.transport is not None
        if out:
            self.transport.write(out)
        if close:
            self.transport.close()


def _serve(port: int, data_size: int, ready: Connection) -> None:
    try:
        import uvloop

        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    stat = Stat(1, 1, 0, 0, 0, 0, 0, 0, data_size, 0, 1)
    body = GetDataResponse(b"x" * data_size, stat).to_bytes()
    server = loop.run_until_complete(
        loop.create_server(lambda: _NullProtocol(body), "127.0.0.1", port, backlog=1024))
    ready.send(server.sockets[0].getsockname()[1])
    ready.close()
    loop.run_forever()


class NullServer:
    """Runs the null server in a child process: ``with NullServer() as s: s.port``."""

    def __init__(self, data_size: int = 100) -> None:
        self.data_size = data_size
        self.port = 0
        self._proc: multiprocessing.process.BaseProcess | None = None

    def __enter__(self) -> NullServer:
        ctx = multiprocessing.get_context("fork")
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(0, self.data_size, child), daemon=True)
        self._proc.start()
        child.close()
        if not parent.poll(10):
            raise RuntimeError("null server did not start")
        self.port = parent.recv()
        return self

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.join(5)


def main(argv: list[str] | None = None) -> int:
    """Measure the load generator against the null server and print the result."""
    from benchmarks.loadgen import run_workload

    ap = argparse.ArgumentParser(description="load generator ceiling against a null server")
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--window", type=int, default=64)
    ap.add_argument("--processes", type=int, default=2)
    ap.add_argument("--duration", type=float, default=5.0)
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    with NullServer() as srv:
        res = run_workload("127.0.0.1", srv.port, "get", connections=args.connections,
                           window=args.window, processes=args.processes,
                           duration=args.duration, warmup=1.0, skip_setup=True)
    print("null server " + res.summary())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
