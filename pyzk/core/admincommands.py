"""The AdminServer's commands and their JSON, as Apache 3.8's, sans-IO.

Operators' probes and dashboards read ``GET /commands/<name>`` answers with
JSON parsers, and some with plain string matching (``"error" : null``), so
this module reproduces Apache's contract byte for byte where it can:

- the command table of ``org.apache.zookeeper.server.admin.Commands``: every
  primary name and alias, and whether the command needs a running server
  (``CommandBase.serverRequired``);
- ``CommandResponse.toMap``: the command's own keys first, then ``command``
  and ``error`` (a command that put ``error`` itself, such as ``leader`` on a
  standalone server, keeps it first, as Java's LinkedHashMap does);
- ``JsonOutputter``: Jackson's DefaultPrettyPrinter (``"key" : value``,
  two-space indent, arrays inline as ``[ a, b ]``, ``{ }`` and ``[ ]`` when
  empty), Java's ``Double.toString`` for doubles, and Jackson's string
  escapes;
- ``JettyAdminServer.commandLinks``: the HTML listing of ``GET /commands``.

The shell (pyzk.shell.admin) gathers the facts and serves HTTP; nothing here
does I/O.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pyzk.javacompat import java_double, java_parse_long

NOT_SERVING = "This ZooKeeper instance is not currently serving requests"


@dataclass(frozen=True, slots=True)
class AdminCommand:
    """One Command: its names (the primary one first) and whether it answers
    only while the server is running."""

    names: tuple[str, ...]
    server_required: bool = True

    @property
    def primary(self) -> str:
        return self.names[0]


#: Commands.java's registrations (3.8): names, then serverRequired.
COMMANDS: tuple[AdminCommand, ...] = (
    AdminCommand(("connection_stat_reset", "crst")),
    AdminCommand(("configuration", "conf", "config")),
    AdminCommand(("connections", "cons")),
    AdminCommand(("hash",)),
    AdminCommand(("dirs",)),
    AdminCommand(("dump",)),
    AdminCommand(("environment", "env", "envi"), server_required=False),
    AdminCommand(("get_trace_mask", "gtmk"), server_required=False),
    AdminCommand(("initial_configuration", "icfg")),
    AdminCommand(("is_read_only", "isro")),
    AdminCommand(("last_snapshot", "lsnp")),
    AdminCommand(("leader", "lead")),
    AdminCommand(("monitor", "mntr"), server_required=False),
    AdminCommand(("observer_connection_stat_reset", "orst")),
    AdminCommand(("ruok",)),
    AdminCommand(("set_trace_mask", "stmk"), server_required=False),
    AdminCommand(("server_stats", "srvr")),
    AdminCommand(("stats", "stat")),
    AdminCommand(("stat_reset", "srst")),
    AdminCommand(("observers", "obsr")),
    AdminCommand(("system_properties", "sysp"), server_required=False),
    AdminCommand(("voting_view",)),
    AdminCommand(("watches", "wchc")),
    AdminCommand(("watches_by_path", "wchp")),
    AdminCommand(("watch_summary", "wchs")),
    AdminCommand(("zabstate",), server_required=False),
)

#: Every name and alias -> its command (Commands.getCommand).
BY_NAME: dict[str, AdminCommand] = {n: c for c in COMMANDS for n in c.names}
#: The primary names, as commandLinks lists them (sorted).
PRIMARY_NAMES: tuple[str, ...] = tuple(sorted(c.primary for c in COMMANDS))


def resolve(name: str) -> AdminCommand | None:
    """The command ``name`` (a primary name or an alias; case matters)."""
    return BY_NAME.get(name)


def command_links(command_url: str) -> str:
    """The body of ``GET <commandURL>``: one link per primary name, each
    followed by ``<br/>`` (PrintWriter.println: ``\\n``)."""
    return "".join(f'<a href="{command_url}/{n}">{n}</a>\n<br/>\n' for n in PRIMARY_NAMES)


def response_map(command: str, error: str | None, data: Mapping[str, Any]) -> dict[str, Any]:
    """CommandResponse.toMap: data, then command and error, then data again
    (so a key of the data named ``error`` keeps its place and its value)."""
    m = dict(data)
    m["command"] = command
    m["error"] = error
    m.update(data)
    return m


def unknown_command(name: str) -> dict[str, Any]:
    """Commands.runCommand for a name nobody registered (HTTP 200 all the same)."""
    return response_map(name, f"Unknown command: {name}", {})


# ------------------------------------------------------------------ JSON (Jackson)

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\r": "\\r", "\t": "\\t",
            "\b": "\\b", "\f": "\\f"}
_NEEDS_ESCAPE = re.compile(r'["\\\x00-\x1f]')


def _escape_char(m: re.Match[str]) -> str:
    c = m.group(0)
    return _ESCAPES.get(c) or f"\\u{ord(c):04X}"


def json_string(s: str) -> str:
    """Jackson's quoting: ``"`` and ``\\`` and control characters escaped
    (short forms where JSON has them, else ``\\u00XX`` in upper case); every
    other character as itself."""
    return '"' + _NEEDS_ESCAPE.sub(_escape_char, s) + '"'


def _scalar(v: Any) -> str:
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return '"NaN"'
        if math.isinf(v):
            return '"Infinity"' if v > 0 else '"-Infinity"'
        return java_double(v)
    return json_string(str(v))


def _write(v: Any, level: int, out: list[str]) -> None:
    if isinstance(v, Mapping):
        if not v:
            out.append("{ }")
            return
        inner = "\n" + "  " * (level + 1)
        out.append("{")
        first = True
        for k, item in v.items():
            out.append(inner if first else "," + inner)
            first = False
            out.append(json_string(str(k)))
            out.append(" : ")
            _write(item, level + 1, out)
        out.append("\n" + "  " * level + "}")
    elif isinstance(v, (list, tuple, set, frozenset)):
        if not v:
            out.append("[ ]")
            return
        out.append("[ ")
        for i, item in enumerate(v):
            if i:
                out.append(", ")
            _write(item, level, out)  # arrays are inline: no new indent level
        out.append(" ]")
    else:
        out.append(_scalar(v))


def to_json(value: Any) -> str:
    """``value`` as JsonOutputter writes it (INDENT_OUTPUT, no final newline).

    Java's ``Map<Long, ...>`` keys are strings in JSON; Python ints as keys
    come out the same way.
    """
    out: list[str] = []
    _write(value, 0, out)
    return "".join(out)


# ------------------------------------------------------------------ values

_INT = re.compile(r"-?\d+\Z")
_FLOAT = re.compile(r"-?(\d+\.\d+(E-?\d+)?|NaN|Infinity)\Z")


def metric_value(text: str) -> int | float | str:
    """A value mntr printed, typed as the Java value behind it: a long or
    int prints digits, a double always has a ``.`` (Double.toString), and
    anything else (the version, the server state) is a string."""
    if _INT.match(text):
        return int(text)
    if _FLOAT.match(text):
        return float(text)
    return text


def parse_trace_mask(kwargs: Mapping[str, str]) -> tuple[int | None, str | None]:
    """SetTraceMaskCommand's argument: (mask, None) or (None, its error)."""
    if "traceMask" not in kwargs:
        return None, "setTraceMask requires long traceMask argument"
    raw = kwargs["traceMask"]
    try:
        return java_parse_long(raw), None
    except ValueError:
        return None, f"setTraceMask requires long traceMask argument, got {raw}"


def zxid_hex(zxid: int) -> str:
    """Long.toHexString (ZxidUtils.zxidToString): two's complement, no padding."""
    return format(zxid & 0xFFFF_FFFF_FFFF_FFFF, "x")


def multiple_addresses(host: str, port: int) -> dict[str, Any]:
    """Jackson's bean view of a one-address MultipleAddresses (zabstate's
    quorum_address and election_address): its getters, snake_cased."""
    addr = f"{_delimited(host)}:{port}"
    return {
        "empty": False,
        "all_addresses": [addr],
        "all_reachable_addresses": [addr],
        "one": addr,
        "reachable_address": addr,
        "wildcard_addresses": [f"0.0.0.0:{port}"],
        "all_ports": [port],
        "all_host_strings": [host],
        "all_reachable_addresses_or_all": [addr],
        "reachable_or_one": addr,
    }


def _delimited(host: str) -> str:
    """QuorumServer.delimitedHostString: IPv6 literals in brackets."""
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def host_port(host: str, port: int) -> str:
    """Jackson's InetSocketAddress (and voting_view's ``%s:%d``): host, colon, port."""
    return f"{_delimited(host)}:{port}"


__all__ = [
    "BY_NAME", "COMMANDS", "NOT_SERVING", "PRIMARY_NAMES", "AdminCommand", "command_links",
    "host_port", "json_string", "metric_value", "multiple_addresses", "parse_trace_mask",
    "resolve", "response_map", "to_json", "unknown_command", "zxid_hex",
]
