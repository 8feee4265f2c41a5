"""Java number and boolean parsing, with the JDK's edge cases.

QuorumPeerConfig parses its own settings strictly (Integer.parseInt,
Long.parseLong, "true"/"false" only): a bad value is a ConfigError naming
the key.  System properties are read with the lenient Integer.decode rules
(see pyzk.config.sysprops).
"""

from __future__ import annotations

import re

from pyzk.config.errors import ConfigError

INT_MIN = -(2**31)
INT_MAX = 2**31 - 1
LONG_MIN = -(2**63)
LONG_MAX = 2**63 - 1


DECIMAL = re.compile(r"[+-]?[0-9]+")
HEX = re.compile(r"[+-]?[0-9a-fA-F]+")


def parse_java_int(key: str, value: str, lo: int = INT_MIN, hi: int = INT_MAX) -> int:
    """Integer.parseInt / Long.parseLong, as a ConfigError naming ``key``."""
    if DECIMAL.fullmatch(value):
        n = int(value)
        if lo <= n <= hi:
            return n
    raise ConfigError(f"{key}: invalid number {value!r}")


def decode_java_int(value: str) -> int | None:
    """Integer.decode: optional sign, then 0x/0X/# hex, leading-0 octal or decimal."""
    m = re.fullmatch(r"([+-]?)(0[xX][0-9a-fA-F]+|#[0-9a-fA-F]+|0[0-7]*|[1-9][0-9]*)", value)
    if m is None:
        return None
    sign, digits = m.groups()
    if digits[:2] in ("0x", "0X"):
        n = int(digits[2:], 16)
    elif digits[0] == "#":
        n = int(digits[1:], 16)
    elif len(digits) > 1 and digits[0] == "0":
        n = int(digits[1:], 8)
    else:
        n = int(digits)
    return -n if sign == "-" else n


def parse_bool(key: str, value: str) -> bool:
    """QuorumPeerConfig.parseBoolean: exactly true/false, any case."""
    lowered = value.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise ConfigError(f"Invalid option {value} for {key}. Choose 'true' or 'false.'")

