"""Jute: ZooKeeper's record serialization, as bytes <-> Python objects.

`codec` holds the primitives and errors, `records` the table of every record
of Apache 3.8's zookeeper.jute and the classes generated from it, and
`constants` the protocol numbers (opcodes, error codes, events, perms).
"""

from pyzk.jute.codec import (
    DEFAULT_MAX_BUFFER,
    JuteError,
    NegativeLength,
    Oversized,
    Truncated,
)

__all__ = ["DEFAULT_MAX_BUFFER", "JuteError", "NegativeLength", "Oversized", "Truncated"]
