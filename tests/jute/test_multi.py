"""MultiOperationRecord / MultiResponse codecs."""

from __future__ import annotations

import pytest

from pyzk.jute import records as R
from pyzk.jute.codec import JuteError
from pyzk.jute.constants import OpCode
from pyzk.jute.multi import (
    BadMultiOp,
    decode_multi_request,
    decode_multi_response,
    encode_multi_request,
    encode_multi_response,
    is_read_multi,
)

pytestmark = pytest.mark.pure

OPEN = [R.ACL(31, R.Id("world", "anyone"))]


def test_request_round_trip_and_end_marker() -> None:
    ops = [
        (OpCode.create, R.CreateRequest("/a", b"x", OPEN, 0)),
        (OpCode.createTTL, R.CreateTTLRequest("/t", b"", OPEN, 5, 100)),
        (OpCode.setData, R.SetDataRequest("/a", b"y", 3)),
        (OpCode.check, R.CheckVersionRequest("/a", 4)),
        (OpCode.delete, R.DeleteRequest("/a", -1)),
    ]
    b = encode_multi_request(ops)
    assert b.endswith(R.MultiHeader(-1, True, -1).to_bytes())
    assert decode_multi_request(b) == ops
    assert not is_read_multi(ops)
    reads = [(OpCode.getData, R.GetDataRequest("/a", False))]
    assert is_read_multi(decode_multi_request(encode_multi_request(reads)))


def test_mixing_reads_and_writes_or_unknown_types_is_refused() -> None:
    with pytest.raises(BadMultiOp):
        decode_multi_request(encode_multi_request([
            (OpCode.create, R.CreateRequest("/a", b"", OPEN, 0)),
            (OpCode.getData, R.GetDataRequest("/a", False)),
        ]))
    with pytest.raises(BadMultiOp):
        set_acl = (OpCode.setACL, R.SetACLRequest("/a", OPEN, -1))
        decode_multi_request(encode_multi_request([set_acl]))
    with pytest.raises(JuteError):
        decode_multi_request(encode_multi_request([(OpCode.delete, R.DeleteRequest("/a", 1))])[:-3])


def test_response_round_trip_with_errors() -> None:
    stat = R.Stat(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
    results = [
        (OpCode.create, 0, R.CreateResponse("/a")),
        (OpCode.create2, 0, R.Create2Response("/b", stat)),
        (OpCode.setData, 0, R.SetDataResponse(stat)),
        (OpCode.delete, 0, None),
        (OpCode.check, 0, None),
        (OpCode.error, -101, R.ErrorResponse(-101)),
    ]
    out = bytearray()
    encode_multi_response(results, out)
    assert decode_multi_response(bytes(out)) == results
    # Only error entries carry their code in the MultiHeader.
    first = R.MultiHeader.decode(bytes(out), 0)[0]
    assert (first.type, first.done, first.err) == (OpCode.create, False, 0)
