"""ACLs: the reference-counted ACL cache, auth providers, checkACL and fixupACL.

Everything follows Apache 3.8: ReferenceCountedACLCache (ids are longs
counting up from 1; only a *null* ACL list maps to -1, which reads back as
OPEN_ACL_UNSAFE and is never counted), ZooKeeperServer.checkACL,
PrepRequestProcessor.fixupACL and the ip/digest/sasl providers. Note that
Apache 3.8's ``ip`` provider understands IPv4 only: an IPv6 ACL id is
invalid and an IPv6 client address never matches.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import re
from collections.abc import Iterable, Iterator, Mapping
from types import MappingProxyType

from pyzk.javacompat import java_parse_long, java_split
from pyzk.jute.constants import Err, Perms
from pyzk.jute.records import ACL, Id

log = logging.getLogger(__name__)

OPEN_UNSAFE_ACL_ID = -1
ANYONE_ID_UNSAFE = ("world", "anyone")


def open_acl_unsafe() -> list[ACL]:
    return [ACL(Perms.ALL, Id("world", "anyone"))]


def read_acl_unsafe() -> list[ACL]:
    return [ACL(Perms.READ, Id("world", "anyone"))]


def creator_all_acl() -> list[ACL]:
    return [ACL(Perms.ALL, Id("auth", ""))]


def _acl_key(acls: Iterable[ACL]) -> tuple[tuple[int, str | None, str | None], ...]:
    return tuple((a.perms, a.id.scheme, a.id.id) for a in acls)


class ACLCache:
    """Apache's ReferenceCountedACLCache: ACL lists interned as long ids with refcounts."""

    __slots__ = ("_by_id", "_by_key", "_refs", "acl_index", "_open")

    def __init__(self) -> None:
        self._by_id: dict[int, list[ACL]] = {}
        self._by_key: dict[tuple, int] = {}
        self._refs: dict[int, int] = {}
        self.acl_index = 0
        self._open = open_acl_unsafe()

    def convert_acls(self, acls: list[ACL] | None) -> int:
        """Intern ``acls`` and count one more use; None maps to -1 (not counted)."""
        if acls is None:
            return OPEN_UNSAFE_ACL_ID
        key = _acl_key(acls)
        ret = self._by_key.get(key)
        if ret is None:
            self.acl_index += 1
            ret = self.acl_index
            self._by_id[ret] = [ACL(a.perms, Id(a.id.scheme, a.id.id)) for a in acls]
            self._by_key[key] = ret
        self.add_usage(ret)
        return ret

    def get(self, acl_id: int | None) -> list[ACL] | None:
        """convertLong: the ACL list of an id (treat as read-only). KeyError if unknown."""
        if acl_id is None:
            return None
        if acl_id == OPEN_UNSAFE_ACL_ID:
            return self._open
        acls = self._by_id.get(acl_id)
        if acls is None:
            log.error("ERROR: ACL not available for long %d", acl_id)
            raise KeyError(f"Failed to fetch acls for {acl_id}")
        return acls

    def add_usage(self, acl_id: int) -> None:
        if acl_id == OPEN_UNSAFE_ACL_ID:
            return
        if acl_id not in self._by_id:
            log.info("Ignoring acl %d as it does not exist in the cache", acl_id)
            return
        self._refs[acl_id] = self._refs.get(acl_id, 0) + 1

    def remove_usage(self, acl_id: int) -> None:
        if acl_id == OPEN_UNSAFE_ACL_ID:
            return
        if acl_id not in self._by_id:
            log.info("Ignoring acl %d as it does not exist in the cache", acl_id)
            return
        n = self._refs.get(acl_id, 0) - 1
        if n <= 0:
            self._drop(acl_id)
        else:
            self._refs[acl_id] = n

    def _drop(self, acl_id: int) -> None:
        self._refs.pop(acl_id, None)
        acls = self._by_id.pop(acl_id)
        self._by_key.pop(_acl_key(acls), None)

    def purge_unused(self) -> None:
        """Forget every ACL whose refcount is 0 (after loading a snapshot)."""
        for acl_id in [i for i, n in self._refs.items() if n <= 0]:
            self._drop(acl_id)

    def load(self, entries: Iterable[tuple[int, list[ACL]]]) -> None:
        """ReferenceCountedACLCache.deserialize: replace the content, refcounts start at 0."""
        self._by_id.clear()
        self._by_key.clear()
        self._refs.clear()
        for acl_id, acls in entries:
            if self.acl_index < acl_id:
                self.acl_index = acl_id
            self._by_id[acl_id] = acls
            self._by_key[_acl_key(acls)] = acl_id
            self._refs[acl_id] = 0

    def __len__(self) -> int:
        return len(self._by_key)

    def refcount(self, acl_id: int) -> int:
        return self._refs.get(acl_id, 0)

    def __iter__(self) -> Iterator[tuple[int, list[ACL], int]]:
        """(id, acls, refcount) in the order Apache's snapshot writes them.

        Apache serializes a HashMap<Long, List<ACL>> copy: buckets of a table
        sized for the entry count, ascending id inside a bucket.
        """
        n = len(self._by_id)
        cap = 1
        while cap < int(n / 0.75 + 1.0):
            cap <<= 1
        mask = cap - 1

        def bucket(i: int) -> tuple[int, int]:
            h = (i ^ (i >> 32)) & 0xFFFFFFFF  # Long.hashCode
            return ((h ^ (h >> 16)) & mask, i)

        for acl_id in sorted(self._by_id, key=bucket):
            yield acl_id, self._by_id[acl_id], self._refs.get(acl_id, 0)


# ---------------------------------------------------------------- providers


class AuthProvider:
    """The server side of an auth scheme: id syntax, matching and authenticated-ness."""

    __slots__ = ()
    scheme = ""
    authenticated = False

    def is_valid(self, acl_id: str) -> bool:
        raise NotImplementedError

    def matches(self, auth_id: str, acl_expr: str) -> bool:
        raise NotImplementedError


class IPProvider(AuthProvider):
    """IPAuthenticationProvider: IPv4 with optional /bits; never authenticated."""

    __slots__ = ()
    scheme = "ip"

    def is_valid(self, acl_id: str) -> bool:
        return _ip_acl(acl_id) is not None

    def matches(self, auth_id: str, acl_expr: str) -> bool:
        return ip_matches(acl_expr, auth_id)


class DigestProvider(AuthProvider):
    """DigestAuthenticationProvider: ``user:base64(sha1(user:password))`` ids."""

    __slots__ = ()
    scheme = "digest"
    authenticated = True

    def is_valid(self, acl_id: str) -> bool:
        return len(java_split(acl_id, ":")) == 2

    def matches(self, auth_id: str, acl_expr: str) -> bool:
        return auth_id == acl_expr


_KERBEROS_NAME = re.compile(r"([^/@]*)(/([^/@]*))?@([^/@]*)")


class SASLProvider(AuthProvider):
    """SASLAuthenticationProvider (registered only via ``authProvider.N``)."""

    __slots__ = ("let_any_user_do",)
    scheme = "sasl"
    authenticated = True

    def __init__(self, let_any_user_do: str | None = None) -> None:
        self.let_any_user_do = let_any_user_do  # zookeeper.letAnySaslUserDoX

    def is_valid(self, acl_id: str) -> bool:
        # KerberosName(id) refuses a malformed name only when it contains '@'.
        return _KERBEROS_NAME.fullmatch(acl_id) is not None or "@" not in acl_id

    def matches(self, auth_id: str, acl_expr: str) -> bool:
        if auth_id == "super" or auth_id == acl_expr:
            return True
        return self.let_any_user_do is not None and acl_expr == self.let_any_user_do


# X500Principal's parser accepts these keywords (RFC 1779, 2253 and Java's own)
# or a dotted OID as an attribute type.
_X500_KEYWORDS = frozenset({
    "CN", "C", "L", "S", "ST", "O", "OU", "T", "IP", "STREET", "DC", "DNQUALIFIER", "DNQ",
    "SURNAME", "GIVENNAME", "INITIALS", "GENERATION", "EMAIL", "EMAILADDRESS", "UID",
    "SERIALNUMBER",
})  # fmt: skip
_X500_SPLIT = re.compile(r"(?<!\\)[,;+]")
_X500_OID = re.compile(r"(?:OID\.)?\d+(?:\.\d+)+")


class X509Provider(AuthProvider):
    """X509AuthenticationProvider: ids are subject DNs (X500Principal.getName()).

    A TLS client's certificate authenticates it (the shell adds the id after
    the handshake); ``super_user`` is zookeeper.X509AuthenticationProvider.superUser,
    which matches every x509 ACL.
    """

    __slots__ = ("super_user",)
    scheme = "x509"
    authenticated = True

    def __init__(self, super_user: str | None = None) -> None:
        self.super_user = super_user

    def is_valid(self, acl_id: str) -> bool:
        """new X500Principal(id) would accept it (a type=value list, known types)."""
        if not acl_id.strip():
            return True
        for ava in _X500_SPLIT.split(acl_id):
            kind, eq, _value = ava.partition("=")
            kind = kind.strip()
            if not eq or not (kind.upper() in _X500_KEYWORDS or _X500_OID.fullmatch(kind)):
                return False
        return True

    def matches(self, auth_id: str, acl_expr: str) -> bool:
        if self.super_user is not None:
            return auth_id == self.super_user or auth_id == acl_expr
        return auth_id == acl_expr


#: The provider classes ``authProvider.N`` / ``zookeeper.authProvider.N`` may name.
_PROVIDER_CLASSES = {
    "org.apache.zookeeper.server.auth.IPAuthenticationProvider": "ip",
    "org.apache.zookeeper.server.auth.DigestAuthenticationProvider": "digest",
    "org.apache.zookeeper.server.auth.SASLAuthenticationProvider": "sasl",
    "org.apache.zookeeper.server.auth.X509AuthenticationProvider": "x509",
}


def configured_providers(class_names: Iterable[str], *, digest_enabled: bool = True,
                         x509_super_user: str | None = None,
                         let_any_sasl_user_do: str | None = None) -> Mapping[str, AuthProvider]:
    """ProviderRegistry.initialize(): ip, digest unless disabled, then each
    ``zookeeper.authProvider.*`` class (an unknown class is logged and skipped,
    as Apache's "Problems loading")."""
    extra: list[AuthProvider] = []
    for name in class_names:
        scheme = _PROVIDER_CLASSES.get(name)
        if scheme == "ip":
            extra.append(IPProvider())
        elif scheme == "digest":
            extra.append(DigestProvider())
        elif scheme == "sasl":
            extra.append(SASLProvider(let_any_sasl_user_do))
        elif scheme == "x509":
            extra.append(X509Provider(x509_super_user))
        else:
            log.warning("Problems loading %s: pyzk has no such authentication provider", name)
    return providers_with(*extra, digest_enabled=digest_enabled)


DEFAULT_PROVIDERS: Mapping[str, AuthProvider] = MappingProxyType(
    {"ip": IPProvider(), "digest": DigestProvider()}
)


def providers_with(*extra: AuthProvider, digest_enabled: bool = True) -> Mapping[str, AuthProvider]:
    """A provider registry like ProviderRegistry.initialize() plus ``extra`` ones."""
    reg: dict[str, AuthProvider] = {"ip": IPProvider()}
    if digest_enabled:
        reg["digest"] = DigestProvider()
    for p in extra:
        reg[p.scheme] = p
    return MappingProxyType(reg)


# ---------------------------------------------------------------- ip / digest


def _v4(addr: str) -> bytes | None:
    parts = addr.split(".")
    if len(parts) != 4:
        return None
    out = bytearray(4)
    for i, p in enumerate(parts):
        try:
            v = java_parse_long(p, 32)
        except ValueError:
            return None
        if not 0 <= v <= 255:
            return None
        out[i] = v
    return bytes(out)


def _ip_acl(expr: str) -> tuple[int, int] | None:
    """Parse an ip ACL id into (address, prefix bits), or None if Apache rejects it."""
    addr, sep, bits_s = expr.partition("/")
    raw = _v4(addr)
    if raw is None:
        return None
    bits = 32
    if sep:
        try:
            bits = java_parse_long(bits_s, 32)
        except ValueError:
            return None
        if bits < 0 or bits > 32:
            return None
    return int.from_bytes(raw, "big"), bits


def ip_matches(acl_id: str, client_ip: str) -> bool:
    """Does client address ``client_ip`` fall in ACL id ``acl_id`` ("a.b.c.d[/bits]")?"""
    acl = _ip_acl(acl_id)
    if acl is None:
        return False
    remote = _v4(client_ip)
    if remote is None:
        return False
    addr, bits = acl
    mask = (0xFFFFFFFF << (32 - bits)) & 0xFFFFFFFF
    return (int.from_bytes(remote, "big") & mask) == (addr & mask)


def digest_id(user_password: str) -> str:
    """DigestAuthenticationProvider.generateDigest("user:password")."""
    user = user_password.split(":", 1)[0]
    sha = hashlib.sha1(user_password.encode("utf-8")).digest()  # noqa: S324 - Apache's format
    return user + ":" + base64.b64encode(sha).decode("ascii")


def is_valid_acl_id(
    scheme: str, acl_id: str, providers: Mapping[str, AuthProvider] = DEFAULT_PROVIDERS
) -> bool:
    """Would fixupACL accept an ACL with this id (world:anyone and auth aside)?"""
    if scheme == "world":
        return acl_id == "anyone"
    p = providers.get(scheme)
    return p is not None and acl_id is not None and p.is_valid(acl_id)


# ---------------------------------------------------------------- check / fixup


def check_acl(
    acls: list[ACL] | None,
    perm: int,
    auth_ids: Iterable[Id],
    *,
    super_user: bool = False,
    providers: Mapping[str, AuthProvider] = DEFAULT_PROVIDERS,
) -> bool:
    """ZooKeeperServer.checkACL: True if ``auth_ids`` may do ``perm`` on a node with ``acls``."""
    if super_user or not acls:
        return True
    auth_ids = list(auth_ids)
    for a in auth_ids:
        if a.scheme == "super":
            return True
    for acl in acls:
        if acl.perms & perm:
            scheme, expr = acl.id.scheme, acl.id.id
            if scheme == "world" and expr == "anyone":
                return True
            p = providers.get(scheme)
            if p is not None:
                for a in auth_ids:
                    if a.scheme == scheme and p.matches(a.id, expr):
                        return True
    return False


class InvalidACL(Exception):
    """fixupACL refused the ACL list; the request fails with INVALIDACL."""

    code = Err.INVALIDACL

    def __init__(self, path: str | None = None) -> None:
        super().__init__(path)
        self.path = path


def fixup_acl(
    acls: list[ACL] | None,
    auth_ids: Iterable[Id],
    path: str | None = None,
    *,
    providers: Mapping[str, AuthProvider] = DEFAULT_PROVIDERS,
) -> list[ACL]:
    """PrepRequestProcessor.fixupACL: dedup, validate and expand ``auth`` ACLs.

    Duplicates are removed first (keeping first occurrences); ``auth``
    expands to one ACL per authenticated id of the client, which may bring
    duplicates back, exactly as in Apache.
    """
    uniq: list[ACL] = []
    for a in acls or ():
        if a is None:
            raise InvalidACL(path)
        if a not in uniq:
            uniq.append(a)
    if not uniq:
        raise InvalidACL(path)
    auth_ids = list(auth_ids)
    out: list[ACL] = []
    for a in uniq:
        ident = a.id
        if ident is None or ident.scheme is None:
            raise InvalidACL(path)
        scheme = ident.scheme
        if scheme == "world" and ident.id == "anyone":
            out.append(a)
        elif scheme == "auth":
            valid = False
            for cid in auth_ids:
                p = providers.get(cid.scheme)
                if p is None:
                    log.error("Missing AuthenticationProvider for %s", cid.scheme)
                elif p.authenticated:
                    valid = True
                    out.append(ACL(a.perms, Id(cid.scheme, cid.id)))
            if not valid:
                raise InvalidACL(path)
        else:
            p = providers.get(scheme)
            if p is None or ident.id is None or not p.is_valid(ident.id):
                raise InvalidACL(path)
            out.append(a)
    return out
