"""PathUtils.validatePath rules (cases after Apache's PathUtilsTest) and path helpers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pyzk.datatree.paths import (
    BadPath,
    _slow_reason,
    basename,
    parent_key,
    parent_of,
    top_namespace,
    validate_path,
)

pytestmark = pytest.mark.pure

VALID = [
    "/", "/this is / a valid/path", "/name/with.period.", "/test\u0020", "/test\u007e",
    "/test\uffef", "/...", "/a..", "/..a", "/.a", "/a/.b/c.", "/\u00a0", "/\ud7ff", "/\uf900",
]
INVALID = [
    (None, "Path cannot be null"),
    ("", "Path length must be > 0"),
    ("not/valid", "Path must start with / character"),
    ("/ends/with/slash/", "Path must not end with / character"),
    ("/test\u0000", "null character not allowed @5"),
    ("/double//slash", "empty node name specified @8"),
    ("/single/./period", "relative paths not allowed @8"),
    ("/double/../period", "relative paths not allowed @9"),
    ("/.", "relative paths not allowed @1"),
    ("/..", "relative paths not allowed @2"),
    ("/a/..", "relative paths not allowed @4"),
    ("/test\u0001", "invalid character @5"),
    ("/test\u001f", "invalid character @5"),
    ("/test\u007f", "invalid character @5"),
    ("/test\u009f", "invalid character @5"),
    ("/test\ud800", "invalid character @5"),
    ("/test\uf8ff", "invalid character @5"),
    ("/test\ufff0", "invalid character @5"),
    ("/test\ufffd", "invalid character @5"),
    ("/\U0001f600x", "invalid character @1"),  # a surrogate pair in Java
    ("/\U0001f600\x01", "invalid character @1"),
    ("//", "Path must not end with / character"),
]


@pytest.mark.parametrize("path", VALID)
def test_valid_paths(path):
    validate_path(path)


@pytest.mark.parametrize(("path", "reason"), INVALID)
def test_invalid_paths_give_apaches_reason(path, reason):
    with pytest.raises(BadPath) as e:
        validate_path(path)
    assert str(e.value).endswith(reason)


def test_sequential_appends_a_digit_first():
    validate_path("/a/", sequential=True)  # "/a/1"
    validate_path("/a/b-", sequential=True)
    with pytest.raises(BadPath, match="relative"):
        validate_path("/a/.", sequential=False)
    validate_path("/a/.", sequential=True)  # "/a/.1" is fine
    with pytest.raises(BadPath, match="start with /"):
        validate_path(None, sequential=True)  # Java makes it "null1"


@given(st.text(alphabet=st.sampled_from(list("/.a\x00\x05\x7f\ud800\ufff5\U00010000")),
               max_size=10))
def test_fast_check_agrees_with_the_exact_scan(body):
    path = "/" + body
    if path.endswith("/") and len(path) > 1:
        return
    try:
        validate_path(path)
        ok = True
    except BadPath:
        ok = False
    assert ok == (_slow_reason(path) is None)


def test_helpers():
    assert parent_of("/a/b") == "/a"
    assert parent_of("/a") == "/"
    assert parent_key("/a") == ""
    assert parent_key("/a/b") == "/a"
    assert basename("/a/b") == "b"
    assert top_namespace("/a/b") == "a"
    assert top_namespace("/") is None
