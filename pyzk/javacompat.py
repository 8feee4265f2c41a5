"""Java behaviours that leak onto the wire, re-created where Apache depends on them.

Apache returns a znode's children (and a session's ephemerals) in the
iteration order of a ``java.util.HashSet<String>``; clients see that order
in getChildren replies, so `JavaStringSet` reproduces it: String.hashCode,
HashMap's bit spreading, the bucket table growing (never shrinking) with the
0.75 load factor, insertion order inside a bucket, and the resize a HashMap
makes instead of treeifying a crowded bucket while its table is small.
Treeified buckets (9+ colliding names in a table of 64+) are not modelled.

Also here: Java's ``String.split`` (drops trailing empty strings),
``String.trim`` and ``Integer/Long.parseInt`` (no spaces, no underscores),
whose edge cases decide whether an ACL id or a quota string is valid.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterable, Iterator

_JAVA_INT = re.compile(r"[+-]?\d+")


def java_string_hash(s: str) -> int:
    """``String.hashCode()`` as an unsigned 32-bit int (over UTF-16 code units)."""
    h = 0
    if s.isascii():
        # bytes iterate as ints; short names need no masking until the end
        b = s.encode("ascii")
        if len(b) <= 24:
            for c in b:
                h = 31 * h + c
            return h & 0xFFFFFFFF
        for c in b:
            h = (31 * h + c) & 0xFFFFFFFF
        return h
    if max(s) <= "\uffff":
        for ch in s:
            h = (31 * h + ord(ch)) & 0xFFFFFFFF
        return h
    b = s.encode("utf-16-be", "surrogatepass")
    for i in range(0, len(b), 2):
        h = (31 * h + ((b[i] << 8) | b[i + 1])) & 0xFFFFFFFF
    return h


def java_spread(h: int) -> int:
    """HashMap.hash(): fold the high half into the low half."""
    return h ^ (h >> 16)


def _spread_of(name: str) -> int:
    return java_spread(java_string_hash(name))


def java_split(s: str, sep: str) -> list[str]:
    """``s.split(sep)`` for a literal one-character separator (limit 0)."""
    parts = s.split(sep)
    if s == "":
        return [""]
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def java_trim(s: str) -> str:
    """``String.trim()``: strips every char <= U+0020 from both ends."""
    start, end = 0, len(s)
    while start < end and s[start] <= " ":
        start += 1
    while end > start and s[end - 1] <= " ":
        end -= 1
    return s[start:end]


def java_parse_long(s: str, bits: int = 64) -> int:
    """``Long.parseLong`` / ``Integer.parseInt`` (bits=32); ValueError where Java throws."""
    if not _JAVA_INT.fullmatch(s):
        raise ValueError(f'For input string: "{s}"')
    v = int(s)
    lim = 1 << (bits - 1)
    if v < -lim or v >= lim:
        raise ValueError(f'For input string: "{s}"')
    return v


def table_size_for(n: int) -> int:
    """HashMap.tableSizeFor: the power of two >= n (at least 1)."""
    cap = 1
    while cap < n:
        cap <<= 1
    return cap


_INT = struct.Struct(">i")


def _encode_names(order: list[str], cut: int) -> tuple[bytes, int]:
    """A Jute vector<ustring> of ``name[cut:]`` for each entry, and the sum of
    the names' lengths (what a getChildren reply carries and Apache counts)."""
    parts = [_INT.pack(len(order))]
    total = 0
    for entry in order:
        name = entry[cut:] if cut else entry
        b = name.encode("utf-8")
        parts.append(_INT.pack(len(b)))
        parts.append(b)
        total += len(name)
    return b"".join(parts), total


class JavaStringSet:
    """A set of strings that iterates in ``java.util.HashSet<String>`` order.

    Membership and mutation are dict operations; the Java order is computed
    on demand (a stable sort by bucket, insertion order within a bucket) and
    cached until the next mutation.
    """

    __slots__ = ("_h", "_cap", "_order", "_encoded")

    def __init__(self, initial_capacity: int = 16, items: Iterable[str] = ()) -> None:
        self._h: dict[str, int] = {}
        self._cap = table_size_for(initial_capacity)
        self._order: list[str] | None = None
        # (jute vector<ustring> bytes in Java order, total name length): what a
        # getChildren reply carries, cached like the order.
        self._encoded: tuple[bytes, int] | None = None
        for item in items:
            self.add(item)

    def add(self, name: str) -> bool:
        h = self._h
        if name in h:
            return False
        cap = self._cap
        if cap < 64 and len(h) >= 8:
            # a bucket that already holds 8 names makes a small table resize
            mask = cap - 1
            b = self._spread_new(name) & mask
            if sum(1 for n in h if self._spread(n) & mask == b) >= 8:
                cap <<= 1
        h[name] = -1  # hash computed lazily, when the order is asked for
        if len(h) > (cap * 3) >> 2:
            cap <<= 1
        self._cap = cap
        self._order = None
        self._encoded = None
        return True

    def _spread_new(self, key: str) -> int:
        """The spread hash of a key not yet in the set."""
        return _spread_of(key)

    def _spread(self, name: str) -> int:
        sp = self._h[name]
        if sp < 0:
            sp = self._h[name] = _spread_of(name)
        return sp

    def discard(self, name: str) -> bool:
        if name not in self._h:
            return False
        del self._h[name]
        self._order = None
        self._encoded = None
        return True

    def remove(self, name: str) -> None:
        if not self.discard(name):
            raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return name in self._h

    def __len__(self) -> int:
        return len(self._h)

    def __bool__(self) -> bool:
        return bool(self._h)

    def __iter__(self) -> Iterator[str]:
        return iter(self.java_order())

    def __eq__(self, other: object) -> bool:
        if type(other) is JavaStringSet and type(self) is JavaStringSet:
            return self._h.keys() == other._h.keys()
        if isinstance(other, (set, frozenset)):
            return self._h.keys() == other
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"JavaStringSet({self.java_order()!r})"

    @property
    def capacity(self) -> int:
        return self._cap

    def java_order(self) -> list[str]:
        """Members in the order a Java HashSet with this history iterates them."""
        order = self._order
        if order is None:
            spread = self._spread
            mask = self._cap - 1
            order = sorted(self._h, key=lambda n: spread(n) & mask)
            self._order = order
        return order

    def encoded(self) -> tuple[bytes, int]:
        """The members as a Jute vector<ustring> in Java order, and the sum of
        their lengths (what Apache's read statistics count)."""
        enc = self._encoded
        if enc is None:
            enc = self._encoded = _encode_names(self.java_order(), 0)
        return enc

    def clone(self) -> JavaStringSet:
        """``HashSet.clone()``: re-inserted in iteration order into a right-sized table."""
        out = JavaStringSet.__new__(JavaStringSet)
        n = len(self._h)
        out._cap = table_size_for(int(n / 0.75 + 1.0)) if n else 1
        out._h = {name: self._spread(name) for name in self.java_order()}
        out._order = None
        out._encoded = None
        return out


class ChildSet(JavaStringSet):
    """A znode's children: a ``HashSet<String>`` of child *names* whose keys are
    the children's full paths.

    Every child path is already a key of ``DataTree.nodes``; keeping that very
    string object here instead of a separate name string saves one str per
    znode (about 50 bytes). Names are the keys with ``prefix`` (the parent's
    path plus "/") cut off, and hashes and Java order are computed over names,
    so the order is exactly a HashSet of names. `add`/`discard` take full
    paths; membership (``in``), iteration, `java_order` and `encoded` speak
    names, as the rest of the server expects.

    Name hashes are not kept (an int is ~32 bytes, as much as the dict slot):
    they are computed when an order is needed, and the order itself is cached
    only when a client asks for it (`java_order`, `encoded`), not when a
    snapshot walks the tree (`ordered_paths`). The one place Java needs
    hashes on every add, the resize of a small table with a crowded bucket,
    is served by per-bucket counts kept while the table is small.
    """

    __slots__ = ("_prefix", "_counts")

    def __init__(self, prefix: str, initial_capacity: int = 8) -> None:
        super().__init__(initial_capacity)
        self._prefix = prefix
        # names per bucket while the table is below 64 and holds 8+ names
        self._counts: bytearray | None = None

    @property
    def prefix(self) -> str:
        return self._prefix

    def _spread_new(self, key: str) -> int:
        return _spread_of(key[len(self._prefix) :])

    def _spread(self, name: str) -> int:
        return _spread_of(name[len(self._prefix) :])

    def add(self, name: str) -> bool:
        """Add a child by its full path (see `JavaStringSet.add` for the Java rules)."""
        h = self._h
        if name in h:
            return False
        cap = self._cap
        counts = None
        if cap < 64 and len(h) >= 8:
            # a bucket that already holds 8 names makes a small table resize
            mask = cap - 1
            counts = self._counts
            if counts is None:
                counts = bytearray(cap)
                for p in h:
                    counts[_spread_of(p[len(self._prefix) :]) & mask] += 1
            b = self._spread(name) & mask
            if counts[b] >= 8:
                cap <<= 1
                counts = None
            else:
                counts[b] += 1
        h[name] = -1
        if len(h) > (cap * 3) >> 2:
            cap <<= 1
            counts = None
        self._cap = cap
        self._counts = counts
        self._order = None
        self._encoded = None
        return True

    def discard(self, name: str) -> bool:
        """Remove a child by its full path."""
        h = self._h
        if name not in h:
            return False
        del h[name]
        counts = self._counts
        if counts is not None:
            counts[self._spread(name) & (self._cap - 1)] -= 1
        self._order = None
        self._encoded = None
        return True

    def ordered_paths(self) -> list[str]:
        """Child paths in Java order, without caching it (a snapshot walks every
        node once: caching would keep a list per parent for nothing)."""
        order = self._order
        if order is not None:
            return order
        mask = self._cap - 1
        spread = self._spread
        return sorted(self._h, key=lambda p: spread(p) & mask)

    def adopt_bulk(self) -> None:
        """Settle the table capacity after paths were stored straight into the
        key dict (the snapshot loader does so to skip a method call per znode):
        the capacity becomes what adding them one by one would have grown."""
        h = self._h
        n = len(h)
        self._order = None
        self._encoded = None
        if n <= 48:  # small tables may have grown early for a crowded bucket
            keys = list(h)
            h.clear()
            self._cap = 8
            self._counts = None
            for k in keys:
                self.add(k)
            return
        # Past 48 names the load factor alone decides (crowding stops at 64).
        cap = 8
        while n > (cap * 3) >> 2:
            cap <<= 1
        self._cap = cap

    def has_path(self, path: str) -> bool:
        return path in self._h

    def paths(self) -> Iterable[str]:
        """Child paths in no particular order (cheapest to walk)."""
        return self._h.keys()

    def path_order(self) -> list[str]:
        """Child paths in the Java order of their names."""
        return JavaStringSet.java_order(self)

    def java_order(self) -> list[str]:
        cut = len(self._prefix)
        return [p[cut:] for p in JavaStringSet.java_order(self)]

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self._prefix + name in self._h

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (JavaStringSet, set, frozenset)):
            return set(self) == set(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ChildSet({self._prefix!r}, {self.java_order()!r})"

    def encoded(self) -> tuple[bytes, int]:
        enc = self._encoded
        if enc is None:
            enc = self._encoded = _encode_names(JavaStringSet.java_order(self),
                                                len(self._prefix))
        return enc

    def clone(self) -> JavaStringSet:
        """``HashSet.clone()`` of the names, as a plain JavaStringSet."""
        out = JavaStringSet.__new__(JavaStringSet)
        n = len(self._h)
        out._cap = table_size_for(int(n / 0.75 + 1.0)) if n else 1
        cut = len(self._prefix)
        out._h = {p[cut:]: self._spread(p) for p in JavaStringSet.java_order(self)}
        out._order = None
        out._encoded = None
        return out


class _EmptyChildren(ChildSet):
    """The shared, immutable children set of every leaf (Apache's EMPTY_SET)."""

    __slots__ = ()

    def add(self, name: str) -> bool:
        raise TypeError("the shared empty children set is immutable")


EMPTY_CHILDREN: ChildSet = _EmptyChildren("", 8)


def java_hashmap_order(keys: Iterable[int]) -> list[int]:
    """Iteration order of a java.util.HashMap<Long, ?> holding ``keys``.

    Apache prints ensemble members in HashMap order; for small ids that is
    ascending order.  Ties in one bucket are broken by id, which matches
    HashMap when ids were inserted in ascending order.
    """
    ids = sorted(keys)
    capacity = 16
    while len(ids) > capacity * 3 // 4:
        capacity *= 2

    def bucket(sid: int) -> int:
        v = sid & 0xFFFFFFFFFFFFFFFF
        h = (v ^ (v >> 32)) & 0xFFFFFFFF
        return (h ^ (h >> 16)) & (capacity - 1)

    return sorted(ids, key=bucket)
