"""Java String.hashCode / HashSet iteration order helpers."""

from __future__ import annotations

import pytest

from pyzk.javacompat import (
    JavaStringSet,
    java_parse_long,
    java_split,
    java_string_hash,
    java_trim,
)


def test_string_hash_known_values():
    assert java_string_hash("") == 0
    assert java_string_hash("hello") == 99162322
    # "polygenelubricants".hashCode() == Integer.MIN_VALUE
    assert java_string_hash("polygenelubricants") == 0x80000000
    # non-BMP chars hash as their surrogate pair
    assert java_string_hash("\U0001f600") == (0xD83D * 31 + 0xDE00)


def test_order_of_zookeeper_children_is_apaches():
    s = JavaStringSet(8)
    s.add("quota")
    s.add("config")
    assert s.java_order() == ["config", "quota"]  # as `ls /zookeeper` shows


def test_table_grows_with_load_factor_and_never_shrinks():
    s = JavaStringSet(8)
    for i in range(6):
        s.add(f"c{i}")
    assert s.capacity == 8
    s.add("c6")
    assert s.capacity == 16
    for i in range(7):
        s.discard(f"c{i}")
    assert s.capacity == 16 and len(s) == 0


def test_readd_moves_to_end_of_its_bucket():
    s = JavaStringSet(1)
    s.add("Aa")
    s.add("BB")  # same hashCode as "Aa"
    assert s.java_order() == ["Aa", "BB"]
    s.discard("Aa")
    s.add("Aa")
    assert s.java_order() == ["BB", "Aa"]


def test_clone_resizes_like_hashmap_clone():
    s = JavaStringSet(16, [f"/e{i}" for i in range(3)])
    c = s.clone()
    # tableSizeFor((int)(3 / 0.75f + 1)) == 8; two entries would give 4
    assert c.capacity == 8 and set(c.java_order()) == set(s.java_order())


def test_java_string_helpers():
    assert java_split("a:b:", ":") == ["a", "b"]
    assert java_split("", ":") == [""]
    assert java_split("::", ":") == []
    assert java_trim("\x01 a \x1f") == "a"
    assert java_parse_long("+5") == 5
    for bad in (" 5", "1_0", "", "+", "5 "):
        with pytest.raises(ValueError):
            java_parse_long(bad)
    with pytest.raises(ValueError):
        java_parse_long("2147483648", 32)


def test_clone_of_two_uses_a_table_of_four():
    assert JavaStringSet(16, ["/a", "/b"]).clone().capacity == 4
