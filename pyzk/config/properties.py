"""``java.util.Properties`` text and the system properties of JVM flags.

zoo.cfg and the dynamic config file are Properties files (ISO-8859-1,
``#``/``!`` comments, ``key=value``/``key: value``/``key value``, backslash
continuations and escapes); QuorumPeerConfig then trims keys and values
like ``String.trim()``.  System properties given as ``-Dname=value`` in
SERVER_JVMFLAGS/JVMFLAGS are parsed here too.  Reading the files is
pyzk.shell.configfile's job; this module only parses their text.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

from pyzk.config.errors import ConfigError
from pyzk.javacompat import java_trim

_PROP_WS = " \t\f"


def _logical_lines(text: str) -> Iterable[str]:
    """Yield Properties' logical lines, as java.util.Properties.LineReader does.

    Comment and blank lines are dropped; a line ending in an odd number of
    backslashes continues on the next one, whose leading blanks are dropped.
    A ``#``/``!`` starts a comment whenever the logical line is still empty
    (even right after a continuation), and a trailing backslash at the end of
    the input is dropped.  tests/test_config.py checks this against a JVM.
    """
    buf: list[str] = []
    n = len(text)
    i = 0
    skip_ws = True
    after_continuation = False
    backslash = False
    while i < n:
        c = text[i]
        i += 1
        if skip_ws:
            if c in _PROP_WS or (not after_continuation and c in "\r\n"):
                continue
            skip_ws = False
            after_continuation = False
        if not buf and c in "#!":
            while i < n and text[i] not in "\r\n":
                i += 1
            i += 1
            skip_ws = True
            continue
        if c not in "\r\n":
            buf.append(c)
            backslash = not backslash if c == "\\" else False
            continue
        if not buf:
            skip_ws = True
            continue
        if i >= n:
            break
        if backslash:
            buf.pop()
            skip_ws = True
            after_continuation = True
            backslash = False
            if c == "\r" and text[i] == "\n":
                i += 1
        else:
            yield "".join(buf)
            buf = []
            skip_ws = True
    if buf:
        yield "".join(buf[:-1] if backslash else buf)


_ESCAPES = {"t": "\t", "r": "\r", "n": "\n", "f": "\f"}


def _unescape(s: str) -> str:
    """Properties.loadConvert: \\t \\r \\n \\f \\uXXXX, any other \\c is c."""
    if "\\" not in s:
        return s
    out: list[str] = []
    i, n = 0, len(s)
    while i < n:
        c = s[i]
        i += 1
        if c != "\\":
            out.append(c)
            continue
        if i >= n:
            break
        c = s[i]
        i += 1
        if c == "u":
            digits = s[i : i + 4]
            if len(digits) < 4 or not re.fullmatch(r"[0-9a-fA-F]{4}", digits):
                raise ConfigError("Malformed \\uxxxx encoding.")
            out.append(chr(int(digits, 16)))
            i += 4
        else:
            out.append(_ESCAPES.get(c, c))
    return "".join(out)


def _split_key_value(line: str) -> tuple[str, str]:
    """Split one logical line where Properties.load0 does."""
    limit = len(line)
    key_len = 0
    value_start = limit
    has_sep = False
    backslash = False
    while key_len < limit:
        c = line[key_len]
        if c in "=:" and not backslash:
            value_start = key_len + 1
            has_sep = True
            break
        if c in _PROP_WS and not backslash:
            value_start = key_len + 1
            break
        backslash = (not backslash) if c == "\\" else False
        key_len += 1
    while value_start < limit:
        c = line[value_start]
        if c not in _PROP_WS:
            if not has_sep and c in "=:":
                has_sep = True
            else:
                break
        value_start += 1
    return _unescape(line[:key_len]), _unescape(line[value_start:])


def parse_properties(text: str) -> dict[str, str]:
    """Parse Java properties text; a repeated key keeps its last value."""
    props: dict[str, str] = {}
    for line in _logical_lines(text):
        key, value = _split_key_value(line)
        props[key] = value
    return props


def trim_properties(props: Mapping[str, str]) -> dict[str, str]:
    """Keys and values trimmed like String.trim(), as QuorumPeerConfig reads them."""
    return {java_trim(k): java_trim(v) for k, v in props.items()}


def parse_jvm_flags(flags: str | None) -> dict[str, str]:
    """System properties from a JVMFLAGS string.

    The shell splits ``$JVMFLAGS`` on whitespace without honouring quotes, so
    this does too.  ``-Dname`` alone sets the property to the empty string.
    """
    props: dict[str, str] = {}
    if not flags:
        return props
    for word in flags.split():
        if not word.startswith("-D") or len(word) == 2:
            continue
        name, _, value = word[2:].partition("=")
        props[name] = value
    return props
