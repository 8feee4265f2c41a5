"""Zxid arithmetic (ZxidUtils): the high 32 bits are the epoch, the low 32 a counter."""

from __future__ import annotations

COUNTER_MASK = 0xFFFFFFFF


def make_zxid(epoch: int, counter: int) -> int:
    """ZxidUtils.makeZxid: ``(epoch << 32) | (counter & 0xffffffff)`` as a signed long."""
    z = ((epoch << 32) | (counter & COUNTER_MASK)) & 0xFFFFFFFFFFFFFFFF
    return z - (1 << 64) if z >= 1 << 63 else z


def epoch_of(zxid: int) -> int:
    """ZxidUtils.getEpochFromZxid (an arithmetic shift, so -1 stays -1)."""
    return zxid >> 32


def counter_of(zxid: int) -> int:
    """ZxidUtils.getCounterFromZxid."""
    return zxid & COUNTER_MASK


def is_epoch_start(zxid: int) -> bool:
    """A zxid with counter 0 names a new epoch and no transaction."""
    return zxid & COUNTER_MASK == 0


def hexz(zxid: int) -> str:
    """Long.toHexString, as Apache logs zxids."""
    return f"{zxid & 0xFFFFFFFFFFFFFFFF:x}"
