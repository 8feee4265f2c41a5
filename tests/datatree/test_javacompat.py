"""pyzk.javacompat: Java hash codes and iteration orders, Java string and number formatting.

Expected values were printed by a JDK (Long.hashCode, ConcurrentHashMap and
Properties iteration, Double.toString) for the same inputs.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from pyzk.javacompat import (
    JavaStringSet,
    chm_long_order,
    chm_spread,
    hex64,
    java_date,
    java_double,
    java_long_hash,
    java_parse_long,
    java_round4,
    java_socket_address,
    java_split,
    java_string_hash,
    java_string_order,
    java_trim,
    properties_order,
)

pytestmark = pytest.mark.pure


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


# --------------------------------------------------------------------------
# Java formatting


def test_java_double_matches_double_to_string() -> None:
    # pairs, not a dict: -0.0 == 0.0 would overwrite one key with the other
    cases = [(0.0, "0.0"), (0.7333, "0.7333"), (12.0, "12.0"), (1e-4, "1.0E-4"),
             (0.001, "0.001"), (1e7, "1.0E7"), (12345678.9, "1.23456789E7"),
             (1234567.0, "1234567.0"), (2.5e-5, "2.5E-5"), (-1.5, "-1.5"),
             (79.7391, "79.7391"), (123456789.0, "1.23456789E8"), (-0.0, "-0.0"),
             (float("nan"), "NaN"), (float("-inf"), "-Infinity")]
    for value, text in cases:
        assert java_double(value) == text


def test_average_is_rounded_half_up_to_four_places() -> None:
    assert java_round4(11 / 30) == 0.3667
    assert java_round4(1 / 8) == 0.125
    assert java_round4(0.00005) == 0.0001  # exactly representable half: up
    assert java_round4(2.00005) == 2.0  # the double is just below the half


def test_hex_and_socket_address_follow_java() -> None:
    assert hex64(-1) == "ffffffffffffffff"
    assert hex64(0x100000B2B4B0000) == "100000b2b4b0000"
    assert java_socket_address("127.0.0.1", 5) == "/127.0.0.1:5"
    assert java_socket_address("::1", 7) == "/0:0:0:0:0:0:0:1:7"
    assert java_socket_address("fe80::1:2%eth0", 9) == "/fe80:0:0:0:0:0:1:2:9"


def test_java_date_prints_date_to_string_in_the_given_zone() -> None:
    utc = datetime.fromtimestamp(1_700_000_000, UTC)
    assert java_date(utc) == "Tue Nov 14 22:13:20 UTC 2023"
    ist = utc.astimezone(timezone(timedelta(hours=5, minutes=30), "IST"))
    assert java_date(ist) == "Wed Nov 15 03:43:20 IST 2023"
    assert java_date(datetime(2024, 3, 5, 7, 8, 9, tzinfo=UTC)) == "Tue Mar 05 07:08:09 UTC 2024"
    with pytest.raises(ValueError):
        java_date(datetime(2024, 3, 5))  # naive: no zone to print


# --------------------------------------------------------------------------
# ConcurrentHashMap / HashSet / Properties orders


def test_long_hash_and_chm_spread() -> None:
    assert java_long_hash(-1) == 0  # Long.valueOf(-1L).hashCode()
    assert java_long_hash(0x100000B2B4B0001) == 709558282
    assert java_long_hash(5) == 5
    assert chm_spread(0xFFFF0000) == 0x7FFFFFFF  # the sign bit is cleared
    assert chm_spread(0x12345678) == 0x12345678 ^ 0x1234


def test_concurrent_hash_map_order_of_session_ids() -> None:
    # Long.hashCode folds the halves; small tables bin by the low bits.
    a, b, c = 0x100000B2B4B0001, 0x100000B2B4B0000, 0x100000B2B4B0002
    assert chm_long_order([a, b, c]) == [b, a, c]
    assert chm_long_order([17, 1]) == [17, 1]  # same bin: insertion order
    # As a ConcurrentHashMap<Long, ?> iterates these 11 (no resize yet).
    ids = [a, b, c, -1, 17, 1, (1 << 63) - 1, -(1 << 63), 33, 49, 12345678901]
    assert [hex64(k) for k in chm_long_order(ids)] == [
        "100000b2b4b0000", "ffffffffffffffff", "7fffffffffffffff", "8000000000000000",
        "100000b2b4b0001", "11", "1", "21", "31", "100000b2b4b0002", "2dfdc1c35"]


def test_string_order_is_a_hash_set_of_strings() -> None:
    names = ["zookeeper", "a", "b", "quota", "config", "longer-name-x", "\u00e9t\u00e9"]
    assert java_string_order(names) == [
        "a", "longer-name-x", "b", "zookeeper", "quota", "config", "\u00e9t\u00e9"]


def test_properties_order_is_a_loaded_properties_key_set() -> None:
    # Properties.load of these zoo.cfg keys (15: the table resizes once) iterates so.
    keys = ["tickTime", "initLimit", "syncLimit", "dataDir", "clientPort", "maxClientCnxns",
            "admin.enableServer", "4lw.commands.whitelist", "standaloneEnabled",
            "reconfigEnabled", "autopurge.snapRetainCount", "autopurge.purgeInterval",
            "metricsProvider.className", "quorumListenOnAllIPs", "snapCount"]
    assert properties_order(keys) == [
        "autopurge.purgeInterval", "dataDir", "4lw.commands.whitelist", "syncLimit",
        "reconfigEnabled", "standaloneEnabled", "admin.enableServer",
        "autopurge.snapRetainCount", "metricsProvider.className", "clientPort", "initLimit",
        "tickTime", "quorumListenOnAllIPs", "snapCount", "maxClientCnxns"]
    # a repeated key keeps its first place
    assert properties_order(["b", "a", "b"]) == properties_order(["b", "a"])
