"""Jute codec: generated fast code agrees with a field-by-field reference
interpreter of SCHEMA, round-trips, and rejects malformed input cleanly."""

from __future__ import annotations

import contextlib
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyzk.jute import JuteError, NegativeLength, Oversized, Truncated
from pyzk.jute.records import RECORDS, SCHEMA, ConnectRequest, Stat

pytestmark = pytest.mark.pure

INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)


def _strategy(t: str, depth: int = 0) -> st.SearchStrategy:
    if t == "int":
        return INT32
    if t == "long":
        return INT64
    if t == "boolean":
        return st.booleans()
    if t == "buffer":
        return st.none() | st.binary(max_size=40)
    if t == "ustring":
        return st.none() | st.text(max_size=20)
    if t.startswith("vector<"):
        return st.none() | st.lists(_strategy(t[7:-1], depth + 1), max_size=4)
    cls = RECORDS[t]
    return st.builds(cls, *[_strategy(ft, depth + 1) for _, ft in SCHEMA[t]])


def _ref_encode(t: str, v, out: bytearray) -> None:
    """Reference encoder: a direct reading of Jute's BinaryOutputArchive."""
    if t == "int":
        out += struct.pack(">i", v)
    elif t == "long":
        out += struct.pack(">q", v)
    elif t == "boolean":
        out += b"\x01" if v else b"\x00"
    elif t == "buffer":
        if v is None:
            out += struct.pack(">i", -1)
        else:
            out += struct.pack(">i", len(v)) + v
    elif t == "ustring":
        if v is None:
            out += struct.pack(">i", -1)
        else:
            b = v.encode("utf-8")
            out += struct.pack(">i", len(b)) + b
    elif t.startswith("vector<"):
        if v is None:
            out += struct.pack(">i", -1)
        else:
            out += struct.pack(">i", len(v))
            for e in v:
                _ref_encode(t[7:-1], e, out)
    else:
        for fname, ftype in SCHEMA[t]:
            _ref_encode(ftype, getattr(v, fname), out)


@pytest.mark.parametrize("name", sorted(SCHEMA))
def test_every_record_matches_reference_and_round_trips(name: str) -> None:
    @settings(max_examples=25, deadline=None)
    @given(_strategy(name))
    def check(rec) -> None:
        ref = bytearray()
        _ref_encode(name, rec, ref)
        assert rec.to_bytes() == bytes(ref)
        back, pos = RECORDS[name].decode(bytes(ref), 0)
        assert pos == len(ref)
        assert back == rec

    check()


def test_stat_is_one_68_byte_struct() -> None:
    s = Stat(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
    b = s.to_bytes()
    assert len(b) == 68
    assert struct.unpack(">qqqqiiiqiiq", b) == (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)


def test_known_bytes_of_a_connect_request() -> None:
    b = ConnectRequest(0, 0, 30000, 0, bytes(16)).to_bytes()
    assert b == bytes.fromhex("00000000" "0000000000000000" "00007530" "0000000000000000"
                              "00000010") + bytes(16)


@pytest.mark.parametrize("name", sorted(SCHEMA))
def test_every_truncation_is_a_typed_error(name: str) -> None:
    fields = SCHEMA[name]
    rec = RECORDS[name](*[_sample(t) for _, t in fields])
    b = rec.to_bytes()
    for cut in range(len(b)):
        with pytest.raises(JuteError):
            RECORDS[name].decode(b[:cut], 0)


def _sample(t: str):
    return {"int": 7, "long": 9, "boolean": True, "buffer": b"abc", "ustring": "p"}.get(t) if (
        not t.startswith("vector<") and t in ("int", "long", "boolean", "buffer", "ustring")
    ) else ([] if t.startswith("vector<") else RECORDS[t](*[_sample(x) for _, x in SCHEMA[t]]))


def test_negative_and_oversized_lengths() -> None:
    with pytest.raises(NegativeLength):
        RECORDS["SyncRequest"].decode(struct.pack(">i", -2), 0)
    # -1 is null
    assert RECORDS["SyncRequest"].decode(struct.pack(">i", -1), 0)[0].path is None
    big = struct.pack(">i", 5000) + b"x" * 5000
    with pytest.raises(Oversized):
        RECORDS["SyncRequest"].decode(big, 0, 4096)
    assert RECORDS["SyncRequest"].decode(big, 0, 8192)[0].path == "x" * 5000
    with pytest.raises(Truncated):
        RECORDS["SyncRequest"].decode(struct.pack(">i", 10) + b"abc", 0)


def test_huge_vector_count_is_refused_without_allocating() -> None:
    b = struct.pack(">i", 2**31 - 1)
    with pytest.raises(Truncated):
        RECORDS["GetChildrenResponse"].decode(b, 0)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=64), st.sampled_from(sorted(SCHEMA)))
def test_fuzzed_bytes_decode_or_raise_jute_error(data: bytes, name: str) -> None:
    with contextlib.suppress(JuteError):
        RECORDS[name].decode(data, 0)
