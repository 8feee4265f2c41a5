"""snappy-java's SnappyOutputStream framing: round trips, its own bytes, malformed streams."""

from __future__ import annotations

import io
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from pyzk.txnlog import snappyjava
from pyzk.txnlog.snappyjava import HEADER, SnappyJavaError, SnappyJavaWriter, decode, encode

SNAPPY_JAR = Path("/usr/share/java/snappy-java.jar")

# snappy-java 1.1.8.3 (Debian's): SnappyOutputStream, write(b"hello snappy-java " * 4), close()
JAVA_HELLO = bytes.fromhex(
    "82534e41505059000000000100000001"  # magic, version 1, compatible version 1
    "00000017"  # one 23-byte block: length 72, an 18-byte literal, a copy of 54 at offset 18
    "4844" "68656c6c6f20736e617070792d6a61766120" "d61200"
)
HELLO = b"hello snappy-java " * 4


def _data(n: int) -> bytes:
    return bytes((i * 7 + i // 13) % 251 for i in range(n))


@pytest.mark.pure
def test_decodes_snappy_java_bytes() -> None:
    assert decode(JAVA_HELLO) == HELLO


@pytest.mark.pure
@pytest.mark.parametrize("n", [0, 1, 1000, 32 * 1024, 32 * 1024 + 1, 200_000])
def test_round_trip_and_block_layout(n: int) -> None:
    data = _data(n)
    enc = encode(data)
    assert enc[:16] == HEADER
    assert decode(enc) == data
    # blocks: 32 KiB of input each, big-endian lengths, nothing after the last
    pos, blocks = 16, 0
    while pos < len(enc):
        (size,) = struct.unpack_from(">i", enc, pos)
        pos += 4 + size
        blocks += 1
    assert pos == len(enc) and blocks == -(-n // (32 * 1024))


@pytest.mark.pure
def test_writer_matches_encode_whatever_the_write_sizes() -> None:
    data = _data(100_000)
    sink = io.BytesIO()
    with SnappyJavaWriter(sink) as w:
        for i in range(0, len(data), 777):
            w.write(data[i : i + 777])
    assert sink.getvalue() == encode(data)
    empty = io.BytesIO()
    SnappyJavaWriter(empty).close()
    assert empty.getvalue() == HEADER  # as SnappyOutputStream closed unwritten


@pytest.mark.pure
def test_flush_cuts_a_short_block_and_concatenation_reads() -> None:
    sink = io.BytesIO()
    w = SnappyJavaWriter(sink)
    w.write(b"abc")
    w.flush()
    w.write(b"def")
    w.close()
    assert decode(sink.getvalue()) == b"abcdef"
    assert decode(encode(b"one") + encode(b"two")) == b"onetwo"  # hasNextChunk's second header


@pytest.mark.pure
@pytest.mark.parametrize(
    ("stream", "match"),
    [
        (b"", "empty"),
        (b"\x83SNAPPY\x00" + bytes(8) + encode(b"x")[16:], "magic"),
        (HEADER[:10], "truncated snappy-java header"),
        (JAVA_HELLO[:-1], "truncated block"),
        (JAVA_HELLO + b"\x00\x00", "truncated block length"),
        (HEADER + struct.pack(">i", -5) + b"xxxxx", "negative block length"),
        (HEADER + struct.pack(">i", 1 << 30) + b"xx", "truncated block"),
        (HEADER + struct.pack(">i", 3) + b"\xff\xff\xff", "bad snappy block"),
        (HEADER + struct.pack(">i", 0), "bad snappy block"),
        (b"\x82SNAPPY\x00" + struct.pack(">ii", 0, 1), "incompatible codec version"),
        (JAVA_HELLO + HEADER[:12], "truncated snappy-java header"),
        (JAVA_HELLO + b"\x82SNAPPY\x01" + bytes(8), "magic"),
    ],
)
def test_malformed_streams_are_refused(stream: bytes, match: str) -> None:
    with pytest.raises(SnappyJavaError, match=match):
        decode(stream)


@pytest.mark.pure
def test_closed_writer_refuses_writes() -> None:
    w = SnappyJavaWriter(io.BytesIO())
    w.close()
    with pytest.raises(ValueError):
        w.write(b"x")


_JAVA = """
import java.io.*;
import java.nio.file.*;
import org.xerial.snappy.*;

public class SnappyTool {
    public static void main(String[] a) throws Exception {
        if (a[0].equals("compress1")) {
            byte[] in = Files.readAllBytes(Paths.get(a[1]));
            try (OutputStream o = new SnappyOutputStream(new FileOutputStream(a[2]))) {
                o.write(in);
            }
        } else if (a[0].equals("compress")) {
            byte[] in = Files.readAllBytes(Paths.get(a[1]));
            try (OutputStream o = new SnappyOutputStream(new FileOutputStream(a[2]))) {
                // several writes and a flush, as a snapshot's archive does
                int half = in.length / 2;
                o.write(in, 0, half);
                o.flush();
                o.write(in, half, in.length - half);
            }
        } else {
            try (InputStream i = new SnappyInputStream(new FileInputStream(a[1]));
                 OutputStream o = new FileOutputStream(a[2])) {
                byte[] buf = new byte[8192];
                for (int n; (n = i.read(buf)) != -1; ) o.write(buf, 0, n);
            }
        }
    }
}
"""


@pytest.fixture(scope="module")
def snappy_tool(tmp_path_factory: pytest.TempPathFactory):
    """A tiny Java program over snappy-java's streams, compiled at run time."""
    from pyzk.testing.servers import require_reference

    require_reference()
    if not SNAPPY_JAR.exists() or shutil.which("javac") is None:
        pytest.skip("snappy-java.jar or javac missing")
    d = tmp_path_factory.mktemp("snappytool")
    (d / "SnappyTool.java").write_text(_JAVA)
    subprocess.run(["javac", "-cp", str(SNAPPY_JAR), "SnappyTool.java"], cwd=d, check=True,
                   capture_output=True, timeout=120)

    def run(mode: str, src: Path, dst: Path) -> bytes:
        subprocess.run(["java", "-cp", f"{SNAPPY_JAR}:{d}", "SnappyTool", mode, str(src),
                        str(dst)], check=True, capture_output=True, timeout=60)
        return dst.read_bytes()

    return run


@pytest.mark.reference
@pytest.mark.parametrize("n", [1, 40_000, 300_000])
def test_interchange_with_snappy_java(snappy_tool, tmp_path: Path, n: int) -> None:
    data = _data(n)
    (tmp_path / "plain").write_bytes(data)
    theirs = snappy_tool("compress", tmp_path / "plain", tmp_path / "theirs.snappy")
    assert theirs[:16] == snappyjava.HEADER
    assert decode(theirs) == data
    (tmp_path / "ours.snappy").write_bytes(encode(data))
    assert snappy_tool("decompress", tmp_path / "ours.snappy", tmp_path / "back") == data


@pytest.mark.reference
def test_java_hello_constant_is_what_snappy_java_writes(snappy_tool, tmp_path: Path) -> None:
    (tmp_path / "hello").write_bytes(HELLO)
    out = snappy_tool("compress1", tmp_path / "hello", tmp_path / "hello.snappy")
    assert out == JAVA_HELLO
    # cramjam's block compressor happens to emit the same bytes as the C++
    # snappy snappy-java bundles (not required: only decoding must agree)
    assert encode(HELLO) == JAVA_HELLO
