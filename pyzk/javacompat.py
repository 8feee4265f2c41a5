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

The four-letter words and the files a reconfiguration writes print Java
values and iterate Java maps, so these are here too: ``Long.toHexString``
(`hex64`), ``Double.toString`` (`java_double`), ``BigDecimal`` HALF_UP
rounding (`java_round4`), ``Date.toString`` (`java_date`),
``InetSocketAddress.toString`` (`java_socket_address`), and the iteration
orders of a ``ConcurrentHashMap<Long, ?>`` (`chm_long_order`), a
``HashSet<String>`` (`java_string_order`) and a ``java.util.Properties``
(`properties_order`).
"""

from __future__ import annotations

import ipaddress
import math
import re
import struct
from collections.abc import Iterable, Iterator
from datetime import datetime
from decimal import ROUND_HALF_UP, Decimal

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


# --------------------------------------------------------------------------
# Java formatting

_MASK64 = (1 << 64) - 1


def hex64(n: int) -> str:
    """Long.toHexString: two's complement for negative values."""
    return format(n & _MASK64, "x")


def java_double(x: float) -> str:
    """Double.toString: plain decimal in [1e-3, 1e7), else ``d.dddE[-]n``,
    with the shortest digits that round-trip (Python's repr finds the same)."""
    if x != x:
        return "NaN"
    if x in (float("inf"), float("-inf")):
        return "Infinity" if x > 0 else "-Infinity"
    if x == 0:
        return "-0.0" if math.copysign(1.0, x) < 0 else "0.0"
    sign = "-" if x < 0 else ""
    _, digit_tuple, exp = Decimal(repr(abs(x))).as_tuple()
    digits = "".join(map(str, digit_tuple)).rstrip("0") or "0"
    assert isinstance(exp, int)
    # value = 0.<digits> * 10**point
    point = exp + len("".join(map(str, digit_tuple)))
    if 1e-3 <= abs(x) < 1e7:
        if point <= 0:
            return f"{sign}0.{'0' * -point}{digits}"
        whole = digits[:point].ljust(point, "0")
        frac = digits[point:] or "0"
        return f"{sign}{whole}.{frac}"
    return f"{sign}{digits[0]}.{digits[1:] or '0'}E{point - 1}"


def java_round4(x: float) -> float:
    """BigDecimal(x).setScale(4, HALF_UP).doubleValue(), as AvgMinMaxCounter.getAvg."""
    return float(Decimal(x).quantize(Decimal("0.0001"), rounding=ROUND_HALF_UP))


_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def java_date(when: datetime) -> str:
    """Date.toString(): ``EEE MMM dd HH:mm:ss zzz yyyy``.

    ``when`` is an aware datetime in the zone to print (Java uses the JVM's
    default zone; the shell converts to the local zone, which is not pure).
    """
    zone = when.tzname()
    if zone is None:
        raise ValueError("java_date needs an aware datetime")
    return (f"{_DAYS[when.weekday()]} {_MONTHS[when.month - 1]} {when.day:02d} "
            f"{when.hour:02d}:{when.minute:02d}:{when.second:02d} {zone} {when.year}")


def java_socket_address(ip: str, port: int) -> str:
    """InetSocketAddress.toString() of an unresolved-name peer: ``/ip:port``.

    Java writes IPv6 addresses in full, without brackets or ``::`` compression.
    """
    if ":" in ip:
        addr = ipaddress.IPv6Address(ip.split("%", 1)[0])
        groups = addr.exploded.split(":")
        ip = ":".join(format(int(g, 16), "x") for g in groups)
    return f"/{ip}:{port}"


# --------------------------------------------------------------------------
# ConcurrentHashMap / HashSet / Properties iteration orders


def java_long_hash(v: int) -> int:
    """``Long.hashCode()`` as an unsigned 32-bit int (of the two's complement value)."""
    v &= _MASK64
    return (v ^ (v >> 32)) & 0xFFFFFFFF


def chm_spread(h: int) -> int:
    """ConcurrentHashMap.spread: HashMap's fold with the sign bit cleared."""
    return java_spread(h) & 0x7FFFFFFF


def chm_long_order(keys: Iterable[int]) -> list[int]:
    """Iteration order of a ConcurrentHashMap<Long, ?> holding ``keys``.

    Bins by the spread hash (CHM resizes when its count reaches 3/4 of the
    table); keys sharing a bin keep the given (insertion) order.
    """
    ks = list(keys)
    n = 16
    while len(ks) >= n * 3 // 4:
        n *= 2

    def bin_of(k: int) -> int:
        return chm_spread(java_long_hash(k)) & (n - 1)

    return sorted(ks, key=bin_of)


def java_string_order(items: Iterable[str]) -> list[str]:
    """Iteration order of a java.util.HashSet<String> built from ``items``."""
    return JavaStringSet(16, items).java_order()


def properties_order(keys: Iterable[str]) -> list[str]:
    """The iteration order of a java.util.Properties loaded with ``keys`` in this
    order: a ConcurrentHashMap of 16 bins, doubled when the count reaches 3/4 of
    them, each bin a list in insertion order that a resize splits as
    ConcurrentHashMap.transfer does (the tail run kept, the nodes before it
    prepended one by one)."""
    n = 16
    table: list[list[tuple[int, str]]] = [[] for _ in range(n)]
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            continue  # a repeated key keeps its place
        seen.add(key)
        h = chm_spread(java_string_hash(key))
        table[h & (n - 1)].append((h, key))
        if len(seen) >= n - (n >> 2):
            table = _chm_transfer(table, n)
            n <<= 1
    return [key for bin_ in table for _h, key in bin_]


def _chm_transfer(table: list[list[tuple[int, str]]], n: int) -> list[list[tuple[int, str]]]:
    """ConcurrentHashMap.transfer of an ``n``-bin table of (spread hash, key) lists."""
    out: list[list[tuple[int, str]]] = [[] for _ in range(2 * n)]
    for i, bin_ in enumerate(table):
        if not bin_:
            continue
        run_bit = bin_[0][0] & n
        last_run = 0
        for j in range(1, len(bin_)):
            b = bin_[j][0] & n
            if b != run_bit:
                run_bit, last_run = b, j
        low = list(bin_[last_run:]) if run_bit == 0 else []
        high = list(bin_[last_run:]) if run_bit != 0 else []
        for node in bin_[:last_run]:
            if node[0] & n == 0:
                low.insert(0, node)
            else:
                high.insert(0, node)
        out[i], out[i + n] = low, high
    return out


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
    """The shared, immutable children set of every leaf (Apache's EMPTY_SET).

    Shared by every leaf of every tree in the process, so it caches nothing
    either: an order or encoding cached here would be state that one tree
    (or one test) leaves behind for all others, and a caller that changed a
    returned list would change every leaf.
    """

    __slots__ = ()

    def add(self, name: str) -> bool:
        raise TypeError("the shared empty children set is immutable")

    def java_order(self) -> list[str]:
        return []

    def path_order(self) -> list[str]:
        return []

    def encoded(self) -> tuple[bytes, int]:
        return _EMPTY_ENCODED


EMPTY_CHILDREN: ChildSet = _EmptyChildren("", 8)
_EMPTY_ENCODED = _encode_names([], 0)


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

    return sorted(ids, key=lambda sid: java_spread(java_long_hash(sid)) & (capacity - 1))


# ---------------------------------------------------------------- X.500 names

#: The attribute types X500Principal.getName() writes by keyword (RFC 2253's
#: list); every other type is written as its dotted OID with a #hex value.
_RFC2253_KEYWORDS = {
    "2.5.4.3": "CN", "2.5.4.6": "C", "2.5.4.7": "L", "2.5.4.8": "ST", "2.5.4.10": "O",
    "2.5.4.11": "OU", "2.5.4.9": "STREET", "0.9.2342.19200300.100.1.25": "DC",
    "0.9.2342.19200300.100.1.1": "UID",
}  # fmt: skip
#: DER string tags Java prints as text: Printable, T61, IA5, General, BMP, UTF8.
_TEXT_TAGS = {19, 20, 22, 27, 30, 12}
_RFC2253_ESCAPES = frozenset(',=+<>#;"\\')


def _der_value(tag: int, value: str) -> bytes:
    if tag == 30:
        content = value.encode("utf-16-be")
    elif tag == 12:
        content = value.encode("utf-8")
    else:
        content = value.encode("latin-1", "replace")
    n = len(content)
    if n < 0x80:
        length = bytes([n])
    else:
        raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
        length = bytes([0x80 | len(raw)]) + raw
    return bytes([tag]) + length + content


def _rfc2253_value(value: str) -> str:
    out = "".join("\\" + c if c in _RFC2253_ESCAPES else ("\\00" if c == "\0" else c)
                  for c in value)
    lead = len(out) - len(out.lstrip(" \r"))
    trail = len(out) - len(out.rstrip(" \r"))
    if lead == len(out):
        return "".join("\\" + c for c in out)
    body = out[lead:len(out) - trail]
    return "".join("\\" + c for c in out[:lead]) + body + "".join(
        "\\" + c for c in out[len(out) - trail:])


def x500_rfc2253(rdns: Iterable[Iterable[tuple[str, int, str]]]) -> str:
    """X500Principal.getName(): RFC 2253 with Java's keyword list and escaping.

    ``rdns`` are the name's RDNs in certificate (ASN.1) order, each a list of
    (dotted OID, DER string tag, value); Java prints them last RDN first.
    This is the id the x509 auth scheme gives a client, so ACLs written for
    Apache match here byte for byte.
    """
    parts = []
    for rdn in rdns:
        avas = []
        for oid, tag, value in rdn:
            keyword = _RFC2253_KEYWORDS.get(oid)
            if keyword is None or tag not in _TEXT_TAGS:
                avas.append(f"{keyword or oid}=#{_der_value(tag, value).hex()}")
            else:
                avas.append(f"{keyword}={_rfc2253_value(value)}")
        parts.append("+".join(avas))
    return ",".join(reversed(parts))
