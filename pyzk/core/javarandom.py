"""java.util.Random, bit-exact.

Apache derives a session's 16-byte password from ``new Random(id ^ 0xB3415C00)
.nextBytes(16)`` and checks a reconnecting client's password by regenerating
it. Doing the same lets a client move its session between pyzk and Apache
servers of one ensemble.
"""

from __future__ import annotations

_MULT = 0x5DEECE66D
_MASK = (1 << 48) - 1

SESSION_PASSWORD_SECRET = 0xB3415C00


class JavaRandom:
    __slots__ = ("_seed",)

    def __init__(self, seed: int) -> None:
        self._seed = (seed ^ _MULT) & _MASK

    def next_bits(self, bits: int) -> int:
        self._seed = (self._seed * _MULT + 0xB) & _MASK
        r = self._seed >> (48 - bits)
        # Java returns a signed 32-bit int.
        if r & 0x80000000:
            r -= 1 << 32
        return r

    def next_int(self) -> int:
        return self.next_bits(32)

    def next_bytes(self, n: int) -> bytes:
        out = bytearray()
        while len(out) < n:
            rnd = self.next_int()
            for _ in range(min(4, n - len(out))):
                out.append(rnd & 0xFF)
                rnd >>= 8
        return bytes(out)


def session_password(session_id: int) -> bytes:
    """The password Apache gives session ``session_id``."""
    return JavaRandom(session_id ^ SESSION_PASSWORD_SECRET).next_bytes(16)
