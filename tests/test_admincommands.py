"""pyzk.core.admincommands: the command table, Jackson's JSON layout, values."""

from __future__ import annotations

import json

import pytest

from pyzk.core.admincommands import (
    BY_NAME,
    COMMANDS,
    PRIMARY_NAMES,
    command_links,
    json_string,
    metric_value,
    multiple_addresses,
    parse_trace_mask,
    resolve,
    response_map,
    to_json,
    unknown_command,
    zxid_hex,
)

pytestmark = pytest.mark.pure

# Every 3.8 name and alias (the list), by primary name.
EXPECTED = {
    "ruok": (), "configuration": ("conf", "config"), "connection_stat_reset": ("crst",),
    "connections": ("cons",), "dirs": (), "dump": (), "environment": ("env", "envi"),
    "get_trace_mask": ("gtmk",), "hash": (), "initial_configuration": ("icfg",),
    "is_read_only": ("isro",), "last_snapshot": ("lsnp",), "leader": ("lead",),
    "monitor": ("mntr",), "observer_connection_stat_reset": ("orst",),
    "observers": ("obsr",), "server_stats": ("srvr",), "set_trace_mask": ("stmk",),
    "stat_reset": ("srst",), "stats": ("stat",), "system_properties": ("sysp",),
    "voting_view": (), "watch_summary": ("wchs",), "watches": ("wchc",),
    "watches_by_path": ("wchp",), "zabstate": (),
}
NOT_SERVER_REQUIRED = {"environment", "get_trace_mask", "monitor", "set_trace_mask",
                       "system_properties", "zabstate"}


def test_table_has_every_name_and_alias() -> None:
    assert {c.primary: c.names[1:] for c in COMMANDS} == EXPECTED
    for primary, aliases in EXPECTED.items():
        for name in (primary, *aliases):
            assert resolve(name) is BY_NAME[primary]
    assert resolve("RUOK") is None and resolve("") is None and resolve("ruok/") is None


def test_server_required_as_apache() -> None:
    assert {c.primary for c in COMMANDS if not c.server_required} == NOT_SERVER_REQUIRED


def test_listing_is_sorted_links() -> None:
    text = command_links("/commands")
    assert tuple(sorted(EXPECTED)) == PRIMARY_NAMES
    assert text.startswith('<a href="/commands/configuration">configuration</a>\n<br/>\n')
    assert text.count("<br/>") == len(EXPECTED)
    assert text.endswith('<a href="/commands/zabstate">zabstate</a>\n<br/>\n')


def test_response_map_order() -> None:
    assert list(response_map("x", None, {"a": 1})) == ["a", "command", "error"]
    # a command that set error itself keeps it first (LinkedHashMap semantics)
    m = response_map("leader", None, {"error": "server is not initialized"})
    assert list(m) == ["error", "command"] and m["error"] == "server is not initialized"
    assert unknown_command("nope") == {"command": "nope", "error": "Unknown command: nope"}


def test_jackson_layout() -> None:
    assert to_json({"command": "ruok", "error": None}) == (
        '{\n  "command" : "ruok",\n  "error" : null\n}')
    assert to_json({"a": [], "b": {}, "c": [1, 2], "d": True}) == (
        '{\n  "a" : [ ],\n  "b" : { },\n  "c" : [ 1, 2 ],\n  "d" : true\n}')
    nested = {"connections": [{"x": 1}, {"y": "z"}], "m": {"1": {"k": [0.5]}}}
    assert to_json(nested) == (
        '{\n  "connections" : [ {\n    "x" : 1\n  }, {\n    "y" : "z"\n  } ],\n'
        '  "m" : {\n    "1" : {\n      "k" : [ 0.5 ]\n    }\n  }\n}')
    assert json.loads(to_json(nested)) == nested


def test_java_doubles_and_strings() -> None:
    assert to_json([0.0, 6.9231, 1e-4, 1e7, 2.0]) == "[ 0.0, 6.9231, 1.0E-4, 1.0E7, 2.0 ]"
    assert to_json([float("nan")]) == '[ "NaN" ]'
    assert json_string('a"b\\c\nd\te\x01/é') == '"a\\"b\\\\c\\nd\\te\\u0001/é"'
    assert json.loads(json_string("\x1f\x7f\u2028")) == "\x1f\x7f\u2028"


@pytest.mark.parametrize(("text", "value"), [
    ("0", 0), ("-1", -1), ("72057682066538496", 72057682066538496), ("0.0", 0.0),
    ("6.9231", 6.9231), ("1.0E-4", 1e-4), ("standalone", "standalone"),
    ("3.8.0-x, built on 2024-12-29 17:54 UTC", "3.8.0-x, built on 2024-12-29 17:54 UTC"),
    ("leading - broadcast", "leading - broadcast"),
])
def test_metric_value_types(text: str, value: object) -> None:
    got = metric_value(text)
    assert got == value and type(got) is type(value)


def test_trace_mask_argument() -> None:
    assert parse_trace_mask({}) == (None, "setTraceMask requires long traceMask argument")
    assert parse_trace_mask({"traceMask": "306"}) == (306, None)
    assert parse_trace_mask({"traceMask": "-1"}) == (-1, None)
    assert parse_trace_mask({"traceMask": "+7"}) == (7, None)
    for bad in ("abc", "", "1.5", "9223372036854775808", " 1", "0x10"):
        assert parse_trace_mask({"traceMask": bad}) == (
            None, f"setTraceMask requires long traceMask argument, got {bad}")


def test_zxid_and_addresses() -> None:
    assert zxid_hex(0) == "0" and zxid_hex(0x100000003) == "100000003"
    assert zxid_hex(-1) == "ffffffffffffffff"
    m = multiple_addresses("127.0.0.1", 2888)
    assert m["one"] == "127.0.0.1:2888" and m["wildcard_addresses"] == ["0.0.0.0:2888"]
    assert m["all_ports"] == [2888] and m["empty"] is False
    assert multiple_addresses("::1", 1)["one"] == "[::1]:1"
