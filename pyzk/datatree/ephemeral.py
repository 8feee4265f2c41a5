"""What a znode's ephemeralOwner means (Apache EphemeralType).

The 64-bit ephemeralOwner is overloaded: 0 = persistent, the session id for
ephemerals, Long.MIN_VALUE for containers and, only when the server runs
with ``zookeeper.extendedTypesEnabled``, a top byte of 0xff marks an
"extended" type whose next 16 bits select the feature (0 = TTL) and whose
low 40 bits carry the TTL in milliseconds.
"""

from __future__ import annotations

from enum import IntEnum


class EphemeralType(IntEnum):
    VOID = 0
    NORMAL = 1
    CONTAINER = 2
    TTL = 3


CONTAINER_EPHEMERAL_OWNER = -0x8000000000000000  # Long.MIN_VALUE
MAX_EXTENDED_SERVER_ID = 0xFE
_EXTENDED_MASK = 0xFF00000000000000
_RESERVED_BITS_MASK = 0x00FFFF0000000000
_RESERVED_BITS_SHIFT = 40
_EXTENDED_BIT_TTL = 0
TTL_MAX = 0xFFFFFFFFFFFFFFFF & ~(_EXTENDED_MASK | _RESERVED_BITS_MASK)  # 2**40 - 1 ms


class InvalidEphemeralOwner(ValueError):
    """An extended ephemeralOwner with an unknown feature bit (Apache throws)."""


def ephemeral_type(owner: int, extended_types: bool = False) -> EphemeralType:
    """EphemeralType.get(owner) for a server with or without extended types."""
    if extended_types and (owner & _EXTENDED_MASK) == _EXTENDED_MASK:
        feature = (owner & _RESERVED_BITS_MASK) >> _RESERVED_BITS_SHIFT
        if feature != _EXTENDED_BIT_TTL:
            raise InvalidEphemeralOwner(f"Invalid ephemeralOwner. [{owner & (2**64 - 1):x}]")
        return EphemeralType.TTL
    if owner == CONTAINER_EPHEMERAL_OWNER:
        return EphemeralType.CONTAINER
    return EphemeralType.VOID if owner == 0 else EphemeralType.NORMAL


def ttl_to_ephemeral_owner(ttl: int) -> int:
    """EphemeralType.TTL.toEphemeralOwner: ValueError unless 0 < ttl <= TTL_MAX."""
    if ttl > TTL_MAX or ttl <= 0:
        raise ValueError(f"ttl must be positive and cannot be larger than: {TTL_MAX}")
    # As a signed Java long: the top byte 0xff makes it negative.
    return (_EXTENDED_MASK | _EXTENDED_BIT_TTL | ttl) - (1 << 64)


def ttl_of(owner: int) -> int:
    """The TTL (ms) carried by a TTL node's ephemeralOwner."""
    return owner & TTL_MAX


def validate_ttl(create_mode_is_ttl: bool, ttl: int) -> None:
    """EphemeralType.validateTTL: ValueError where Apache throws IllegalArgumentException."""
    if create_mode_is_ttl:
        ttl_to_ephemeral_owner(ttl)
    elif ttl >= 0:
        raise ValueError("ttl not valid for mode")


def client_ephemeral_owner(owner: int, extended_types: bool = False) -> int:
    """What a Stat shows clients: 0 for containers and TTL nodes (DataNode.copyStat)."""
    if owner == 0:
        return 0
    try:
        kind = ephemeral_type(owner, extended_types)
    except InvalidEphemeralOwner:
        return owner
    return owner if kind is EphemeralType.NORMAL else 0
