"""The txn codec: every type round-trips, and Apache's decoding quirks hold."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyzk.jute.codec import Truncated
from pyzk.jute.constants import OpCode
from pyzk.jute.records import (
    ACL,
    CheckVersionTxn,
    CloseSessionTxn,
    CreateContainerTxn,
    CreateSessionTxn,
    CreateTTLTxn,
    CreateTxn,
    CreateTxnV0,
    DeleteTxn,
    ErrorTxn,
    Id,
    SetACLTxn,
    SetDataTxn,
    TxnDigest,
    TxnHeader,
)
from pyzk.txnlog.txn import (
    UnsupportedTxn,
    decode_multi,
    decode_txn,
    encode_multi,
    encode_txn,
)

pytestmark = pytest.mark.pure

i32 = st.integers(-(2**31), 2**31 - 1)
i64 = st.integers(-(2**63), 2**63 - 1)
text = st.text(max_size=20)
blob = st.none() | st.binary(max_size=40)
acls = st.lists(st.builds(ACL, i32, st.builds(Id, text, text)), max_size=3)
paths = st.text(min_size=1, max_size=12).map(lambda s: "/" + s)

RECORDS = {
    OpCode.createSession: st.builds(CreateSessionTxn, i32),
    OpCode.closeSession: st.builds(CloseSessionTxn, st.lists(paths, max_size=3)),
    OpCode.create: st.builds(CreateTxn, paths, blob, acls, st.booleans(), i32),
    OpCode.create2: st.builds(CreateTxn, paths, blob, acls, st.booleans(), i32),
    OpCode.createTTL: st.builds(CreateTTLTxn, paths, blob, acls, i32, i64),
    OpCode.createContainer: st.builds(CreateContainerTxn, paths, blob, acls, i32),
    OpCode.delete: st.builds(DeleteTxn, paths),
    OpCode.deleteContainer: st.builds(DeleteTxn, paths),
    OpCode.setData: st.builds(SetDataTxn, paths, blob, i32),
    OpCode.reconfig: st.builds(SetDataTxn, paths, blob, i32),
    OpCode.setACL: st.builds(SetACLTxn, paths, acls, i32),
    OpCode.error: st.builds(ErrorTxn, i32),
    OpCode.check: st.builds(CheckVersionTxn, paths, i32),
}
SUB = st.sampled_from([
    (OpCode.create, RECORDS[OpCode.create]), (OpCode.delete, RECORDS[OpCode.delete]),
    (OpCode.setData, RECORDS[OpCode.setData]), (OpCode.error, RECORDS[OpCode.error]),
    (OpCode.check, RECORDS[OpCode.check]), (OpCode.createTTL, RECORDS[OpCode.createTTL]),
    (OpCode.createContainer, RECORDS[OpCode.createContainer]),
]).flatmap(lambda tr: tr[1].map(lambda r: (int(tr[0]), r)))


@st.composite
def txns(draw):
    op = draw(st.sampled_from([*RECORDS, OpCode.multi]))
    hdr = TxnHeader(draw(i64), draw(i32), draw(i64), draw(i64), int(op))
    if op == OpCode.multi:
        ops = draw(st.lists(SUB, max_size=4))
        return hdr, encode_multi(ops), ops
    return hdr, draw(RECORDS[op]), None


# No deadline and no too_slow check: under a loaded CI machine drawing 400
# examples is slow without anything being wrong.
@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(txns(), st.none() | st.builds(TxnDigest, i32, i64))
def test_every_type_round_trips(t, digest) -> None:
    hdr, txn, ops = t
    raw = encode_txn(hdr, txn, digest)
    h2, t2, d2 = decode_txn(raw)
    assert (h2, t2, d2) == (hdr, txn, digest)
    assert encode_txn(h2, t2, d2) == raw
    if ops is not None:
        assert decode_multi(t2) == ops


def test_layout_is_header_record_digest() -> None:
    hdr = TxnHeader(5, 6, 7, 8, OpCode.delete)
    raw = encode_txn(hdr, DeleteTxn("/a"), TxnDigest(2, -1))
    assert raw == hdr.to_bytes() + b"\0\0\0\x02/a" + b"\0\0\0\x02" + b"\xff" * 8


def test_digest_ignored_when_disabled_and_partial_digest_is_none() -> None:
    hdr = TxnHeader(1, 1, 1, 1, OpCode.setData)
    raw = encode_txn(hdr, SetDataTxn("/a", b"x", 3), TxnDigest(2, 99))
    assert decode_txn(raw, digest_enabled=False)[2] is None
    assert decode_txn(raw[:-3])[2] is None
    assert decode_txn(raw[:-3])[1] == SetDataTxn("/a", b"x", 3)


def test_create_v0_fallback_gets_parent_cversion_minus_one() -> None:
    hdr = TxnHeader(1, 1, 9, 1, OpCode.create)
    raw = hdr.to_bytes() + CreateTxnV0("/old", b"d", [], True).to_bytes()
    _, txn, digest = decode_txn(raw)
    assert txn == CreateTxn("/old", b"d", [], True, -1)
    assert digest is None


def test_v0_fallback_only_for_create() -> None:
    hdr = TxnHeader(1, 1, 9, 1, OpCode.create2)
    with pytest.raises(Truncated):
        decode_txn(hdr.to_bytes() + CreateTxnV0("/old", b"d", [], True).to_bytes())


def test_close_session_without_record() -> None:
    hdr = TxnHeader(77, 0, 3, 1, OpCode.closeSession)
    assert decode_txn(hdr.to_bytes()) == (hdr, None, None)
    full = encode_txn(hdr, CloseSessionTxn(["/e"]))
    assert decode_txn(full)[1] == CloseSessionTxn(["/e"])
    # zookeeper.closeSessionTxn.enabled=false: the record is not even looked for
    assert decode_txn(full, close_session_txn_enabled=False, digest_enabled=False)[1] is None


def test_unsupported_type_and_truncated_header() -> None:
    with pytest.raises(UnsupportedTxn):
        decode_txn(TxnHeader(1, 1, 1, 1, OpCode.getData).to_bytes())
    with pytest.raises(Truncated):
        decode_txn(TxnHeader(1, 1, 1, 1, OpCode.delete).to_bytes()[:20])
    with pytest.raises(Truncated):  # a non-create record cut short is an error
        decode_txn(TxnHeader(1, 1, 1, 1, OpCode.setData).to_bytes() + b"\0\0\0\x05/a")
