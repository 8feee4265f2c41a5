"""zoo.cfg, read the way Apache ZooKeeper 3.8 reads it.

pyzk must start from any configuration Apache starts from and refuse the
ones Apache refuses, so this module follows QuorumPeerConfig closely:

* the file is a ``java.util.Properties`` file (ISO-8859-1, ``#``/``!``
  comments, ``key=value``/``key: value``/``key value``, backslash
  continuations and escapes), keys and values then trimmed like
  ``String.trim()``;
* keys QuorumPeerConfig does not know become the system property
  ``zookeeper.<key>``, which is how ``skipACL=yes`` or
  ``4lw.commands.whitelist=*`` in zoo.cfg take effect; system properties
  given as ``-Dname=value`` in SERVER_JVMFLAGS/JVMFLAGS come first and are
  overridden by zoo.cfg, as ``System.setProperty`` does in Apache;
* ensemble membership comes from ``server.N``/``group.N``/``weight.N`` lines,
  either in zoo.cfg or in the ``dynamicConfigFile``, and ``dataDir/myid``.

Settings Apache reads from system properties are parsed with the JDK's
lenient rules (``Integer.getInteger`` falls back to the default on garbage,
``Boolean.getBoolean`` is true only for "true"): a config that Apache starts
with must start pyzk too; pyzk adds a warning where Apache is silent.
Settings of QuorumPeerConfig itself are strict: a bad value is a
:class:`ConfigError` naming the key.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

INT_MIN = -(2**31)
INT_MAX = 2**31 - 1
LONG_MIN = -(2**63)
LONG_MAX = 2**63 - 1

#: ZooKeeperServer.DEFAULT_TICK_TIME in 3.8 (the sample zoo.cfg says 2000,
#: but a zoo.cfg without tickTime gets 3000).
DEFAULT_TICK_TIME = 3000
#: BinaryInputArchive's default for the ``jute.maxbuffer`` system property.
DEFAULT_JUTE_MAXBUFFER = 0xFFFFF

#: Every command FourLetterCommands knows ("telnet close" is not a command a
#: whitelist can name).  ``4lw.commands.whitelist=*`` enables all of these.
FOUR_LETTER_WORDS = frozenset(
    {
        "conf", "cons", "crst", "dirs", "dump", "envi", "gtmk", "ruok", "stmk",
        "srst", "srvr", "stat", "wchc", "wchp", "wchs", "mntr", "isro", "hash",
    }
)  # fmt: skip

#: Values StreamMode.fromString recognises for snapshot compression.
SNAPSHOT_COMPRESSION_METHODS = frozenset({"", "gz", "snappy"})

# QuorumPeerConfig keys that pyzk reads but does not act on (yet): accepted,
# logged once, never an error.  Keys it acts on are handled in _parse_static.
_QPC_UNUSED_KEYS = frozenset(
    {
        "secureClientPortAddress", "observerMasterPort", "clientPortListenBacklog",
        "connectToLearnerMasterLimit", "quorumListenOnAllIPs", "syncEnabled",
        "sslQuorum", "portUnification", "sslQuorumReloadCertFiles",
        "quorum.auth.learner.saslLoginContext", "quorum.auth.server.saslLoginContext",
        "quorum.auth.kerberos.servicePrincipal", "quorum.cnxn.threads.size",
        "jvm.pause.info-threshold.ms", "jvm.pause.warn-threshold.ms",
        "jvm.pause.sleep.time.ms", "jvm.pause.monitor", "metricsProvider.className",
        "multiAddress.reachabilityCheckTimeoutMs", "multiAddress.reachabilityCheckEnabled",
        "oraclePath",
    }
)  # fmt: skip

# System properties pyzk honours (whether set by -D or by a zoo.cfg key that
# Apache turns into ``zookeeper.<key>``).
_USED_SYSTEM_PROPERTIES = frozenset(
    {
        "zookeeper.skipACL", "zookeeper.extendedTypesEnabled", "zookeeper.emulate353TTLNodes",
        "zookeeper.enforceQuota", "zookeeper.digest.enabled",
        "zookeeper.closeSessionTxn.enabled",
        "zookeeper.DigestAuthenticationProvider.superDigest",
        "zookeeper.DigestAuthenticationProvider.enabled",
        "zookeeper.4lw.commands.whitelist", "readonlymode.enabled", "jute.maxbuffer",
        "zookeeper.jute.maxbuffer.extrasize", "zookeeper.forceSync", "zookeeper.snapCount",
        "zookeeper.snapSizeLimitInKb", "zookeeper.preAllocSize",
        "zookeeper.globalOutstandingLimit", "zookeeper.maxCnxns",
        "zookeeper.snapshot.compression.method", "zookeeper.admin.enableServer",
        "zookeeper.admin.serverAddress", "zookeeper.admin.serverPort",
        "zookeeper.admin.commandURL", "zookeeper.admin.idleTimeout",
        "znode.container.checkIntervalMs", "znode.container.maxPerMinute",
        "znode.container.maxNeverUsedIntervalMs", "zookeeper.flushDelay",
        "zookeeper.maxBatchSize", "zookeeper.multiAddress.enabled",
    }
)  # fmt: skip


class ConfigError(ValueError):
    """A zoo.cfg that Apache would refuse; the message names the key and value."""


# --------------------------------------------------------------------------
# java.util.Properties


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


def read_properties(path: str) -> dict[str, str]:
    """Read a properties file as ``Properties.load(InputStream)`` does (ISO-8859-1)."""
    with open(path, "rb") as f:
        return parse_properties(f.read().decode("latin-1"))


def java_trim(s: str) -> str:
    """String.trim(): drop leading and trailing characters <= U+0020."""
    start, end = 0, len(s)
    while start < end and s[start] <= " ":
        start += 1
    while end > start and s[end - 1] <= " ":
        end -= 1
    return s[start:end]


# --------------------------------------------------------------------------
# Java number and boolean parsing

_DEC = re.compile(r"[+-]?[0-9]+")
_HEX = re.compile(r"[+-]?[0-9a-fA-F]+")


def _parse_java_int(key: str, value: str, lo: int = INT_MIN, hi: int = INT_MAX) -> int:
    """Integer.parseInt / Long.parseLong, as a ConfigError naming ``key``."""
    if _DEC.fullmatch(value):
        n = int(value)
        if lo <= n <= hi:
            return n
    raise ConfigError(f"{key}: invalid number {value!r}")


def _decode_java_int(value: str) -> int | None:
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


def _parse_bool(key: str, value: str) -> bool:
    """QuorumPeerConfig.parseBoolean: exactly true/false, any case."""
    lowered = value.lower()
    if lowered == "true":
        return True
    if lowered == "false":
        return False
    raise ConfigError(f"Invalid option {value} for {key}. Choose 'true' or 'false.'")


class _SystemProperties:
    """The JVM system properties a ZooKeeper process would see, with the JDK's
    lenient getters (Integer.getInteger, Boolean.getBoolean, ...)."""

    __slots__ = ("props",)

    def __init__(self, props: dict[str, str]) -> None:
        self.props = props

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.props.get(name, default)

    def get_boolean(self, name: str) -> bool:
        """Boolean.getBoolean: true only when the property equals "true" (any case)."""
        return self.props.get(name, "").lower() == "true"

    def parse_boolean(self, name: str, default: bool) -> bool:
        """Boolean.parseBoolean(System.getProperty(name, default))."""
        value = self.props.get(name)
        return default if value is None else value.lower() == "true"

    def get_integer(self, name: str, default: int, lo: int = INT_MIN, hi: int = INT_MAX) -> int:
        """Integer.getInteger / Long.getLong: the default when absent or not a number."""
        value = self.props.get(name)
        if value is None:
            return default
        n = _decode_java_int(value)
        if n is None or not lo <= n <= hi:
            log.warning("%s=%r is not a valid number; using the default %d", name, value, default)
            return default
        return n


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


# --------------------------------------------------------------------------
# server.N lines


@dataclass(slots=True)
class ServerSpec:
    """One ``server.N`` line: a member of the ensemble.

    ``client_host``/``client_port`` come from the ``;[host:]port`` suffix
    (host ``0.0.0.0`` when only a port is given); ``client_from_static`` marks
    a client address copied from clientPort/clientPortAddress for this server
    (Apache then leaves it out when it writes the dynamic config).
    """

    sid: int
    host: str
    quorum_port: int
    election_port: int
    role: str = "participant"
    client_host: str | None = None
    client_port: int | None = None
    client_from_static: bool = False

    def to_config_value(self) -> str:
        """The value Apache writes after ``server.N=`` (QuorumServer.toString)."""
        text = f"{_bracket(self.host)}:{self.quorum_port}:{self.election_port}:{self.role}"
        if self.client_port is not None and not self.client_from_static:
            text += f";{_bracket(self.client_host or '0.0.0.0')}:{self.client_port}"
        return text


def _bracket(host: str) -> str:
    return f"[{host}]" if ":" in host else host


_WRONG_FORMAT = (
    " does not have the form server_config or server_config;client_config"
    " where server_config is the pipe separated list of host:port:port or host:port:port:type"
    " and client_config is port or host:port"
)


def _java_split(s: str, sep: str) -> list[str]:
    """String.split: like str.split, but trailing empty strings are removed."""
    parts = s.split(sep)
    while len(parts) > 1 and parts[-1] == "":
        parts.pop()
    if parts == [""] and s:
        return []
    return parts


def _host_and_port(s: str) -> list[str]:
    """ConfigUtils.getHostAndPort: split on ':' with [IPv6] literals."""
    if s.startswith("["):
        i = s.find("]")
        if i < 0:
            raise ConfigError(f"{s} starts with '[' but has no matching ']:'")
        if i + 2 == len(s):
            raise ConfigError(f"{s} doesn't have a port after colon")
        if i + 2 < len(s):
            return [s[1:i], *_java_split(s[i + 2 :], ":")]
        return [s.replace("[", "").replace("]", "")]
    return _java_split(s, ":")


def _port(text: str, what: str) -> int:
    """A port number as InetSocketAddress accepts it."""
    if not _DEC.fullmatch(text) or not INT_MIN <= int(text) <= INT_MAX:
        raise ConfigError(f"Address unresolved: {what}")
    n = int(text)
    if not 0 <= n <= 0xFFFF:
        raise ConfigError(f"port out of range:{n}")
    return n


def parse_server_line(sid: int, value: str, *, multi_address: bool = False) -> ServerSpec:
    """Parse the value of ``server.<sid>`` (QuorumServer's address string).

    Errors carry Apache's wording; the caller prefixes the key.
    """
    server_client = _java_split(value, ";")
    if not server_client:
        raise ConfigError(value + _WRONG_FORMAT)
    addresses = _java_split(server_client[0], "|")
    client_host: str | None = None
    client_port: int | None = None
    if len(server_client) == 2:
        client_parts = _host_and_port(server_client[1])
        if len(client_parts) > 2 or not client_parts:
            raise ConfigError(value + _WRONG_FORMAT)
        client_host = client_parts[0] if len(client_parts) == 2 else "0.0.0.0"
        client_port = _port(client_parts[-1], f"null:{client_parts[-1]}")
    if len(addresses) > 1:
        if not multi_address:
            raise ConfigError(
                "Multiple address feature is disabled, but multiple addresses were "
                f"specified for sid {sid}"
            )
        raise ConfigError(f"server.{sid}: multiple addresses per server are not supported by pyzk")
    parts = _host_and_port(addresses[0]) if addresses else []
    if len(server_client) > 2 or not 3 <= len(parts) <= 4:
        raise ConfigError(value + _WRONG_FORMAT)
    host = parts[0]
    quorum_port = _port(parts[1], f"{host}:{parts[1]}")
    election_port = _port(parts[2], f"{host}:{parts[2]}")
    if quorum_port == election_port:
        raise ConfigError(
            "Client and election port must be different! Please update the "
            f"configuration file on server.{sid}"
        )
    role = "participant"
    if len(parts) == 4:
        role = java_trim(parts[3]).lower()
        if role not in ("participant", "observer"):
            raise ConfigError(f"Unrecognised peertype: {parts[3]}")
    return ServerSpec(sid, host, quorum_port, election_port, role, client_host, client_port)


@dataclass(slots=True)
class _Quorum:
    """What a QuorumVerifier holds: members, optional groups/weights, version."""

    servers: dict[int, ServerSpec]
    groups: dict[int, tuple[int, ...]]
    weights: dict[int, int]
    version: int


def _parse_key_id(key: str) -> int:
    """The number after the first dot of server.N / group.N / weight.N (a Java long)."""
    dot = key.find(".")
    return _parse_java_int(key, key[dot + 1 :], LONG_MIN, LONG_MAX)


def _parse_quorum(props: Mapping[str, str], *, multi_address: bool) -> _Quorum:
    """QuorumMaj / QuorumHierarchical construction from properties."""
    hierarchical = any(k.startswith(("group", "weight")) for k in props)
    servers: dict[int, ServerSpec] = {}
    groups: dict[int, tuple[int, ...]] = {}
    server_group: dict[int, int] = {}
    weights: dict[int, int] = {}
    version = 0
    for key, value in props.items():
        if key.startswith("server."):
            sid = _parse_key_id(key)
            try:
                servers[sid] = parse_server_line(sid, value, multi_address=multi_address)
            except ConfigError as e:
                raise ConfigError(f"{key}={value}: {e}") from None
        elif key == "version":
            if not _HEX.fullmatch(value):
                raise ConfigError(f"version: invalid hex number {value!r}")
            version = int(value, 16)
        elif hierarchical and key.startswith("group"):
            gid = _parse_key_id(key)
            members = []
            for s in value.split(":"):
                sid = _parse_java_int(key, s, LONG_MIN, LONG_MAX)
                if sid in server_group:
                    raise ConfigError(f"{key}: Server {sid}is in multiple groups")
                server_group[sid] = gid
                members.append(sid)
            groups[gid] = tuple(members)
        elif hierarchical and key.startswith("weight"):
            weights[_parse_key_id(key)] = _parse_java_int(key, value, LONG_MIN, LONG_MAX)
    if hierarchical:
        for spec in servers.values():
            if spec.role == "participant":
                if spec.sid not in server_group:
                    raise ConfigError(f"server.{spec.sid}: Server {spec.sid}is not in a group")
                weights.setdefault(spec.sid, 1)
    return _Quorum(servers, groups, weights, version)


def _java_hashmap_order(keys: Iterable[int]) -> list[int]:
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


def _version_from_filename(path: str) -> int | None:
    """getVersionFromFilename: the hex suffix after the last dot, if any."""
    suffix = path.rsplit(".", 1)[-1] if "." in path else None
    if suffix is None or not _HEX.fullmatch(suffix):
        return None
    n = int(suffix, 16)
    return n if LONG_MIN <= n <= LONG_MAX else None


# --------------------------------------------------------------------------
# The configuration


@dataclass
class ServerConfig:
    """Everything a pyzk server needs from zoo.cfg and the JVM flags.

    Values are resolved the way Apache's getters return them (e.g. session
    timeout bounds already defaulted from tickTime).  ``raw`` keeps every
    key/value read from the files; ``system_properties`` the resulting JVM
    system properties.
    """

    data_dir: str
    path: str | None = None
    tick_time: int = DEFAULT_TICK_TIME
    init_limit: int = 0
    sync_limit: int = 0
    data_log_dir: str = ""
    client_port: int | None = None
    client_port_address: str | None = None
    secure_client_port: int | None = None
    secure_client_port_address: str | None = None
    max_client_cnxns: int = 60
    min_session_timeout: int = 2 * DEFAULT_TICK_TIME
    max_session_timeout: int = 20 * DEFAULT_TICK_TIME
    local_sessions_enabled: bool = False
    local_sessions_upgrading_enabled: bool = False
    four_letter_whitelist: frozenset[str] = frozenset({"srvr"})
    read_only_mode_enabled: bool = False
    super_digest: str | None = None
    digest_auth_enabled: bool = True
    skip_acl: bool = False
    extended_types_enabled: bool = False
    emulate_353_ttl_nodes: bool = False
    enforce_quota: bool = False
    digest_enabled: bool = True
    close_session_txn_enabled: bool = True
    jute_maxbuffer: int = DEFAULT_JUTE_MAXBUFFER
    jute_maxbuffer_extrasize: int = DEFAULT_JUTE_MAXBUFFER
    snap_count: int = 100000
    snap_size_limit_kb: int = 4194304
    pre_alloc_size_kb: int = 65536
    force_sync: bool = True
    flush_delay_ms: int = 0
    max_batch_size: int = 1000
    global_outstanding_limit: int = 1000
    max_cnxns: int = 0
    snapshot_compression: str = ""
    reconfig_enabled: bool = False
    standalone_enabled: bool = True
    autopurge_snap_retain_count: int = 3
    autopurge_purge_interval: int = 0
    admin_enable_server: bool = True
    admin_server_address: str = "0.0.0.0"
    admin_server_port: int = 8080
    admin_command_url: str = "/commands"
    admin_idle_timeout: int = 30000
    container_check_interval_ms: int = 60000
    container_max_per_minute: int = 10000
    container_max_never_used_interval_ms: int = 0
    election_alg: int = 3
    peer_type: str = "participant"
    quorum_enable_sasl: bool = False
    quorum_server_require_sasl: bool = False
    quorum_learner_require_sasl: bool = False
    multi_address_enabled: bool = False
    dynamic_config_file: str | None = None
    config_version: int = 0
    servers: dict[int, ServerSpec] = field(default_factory=dict)
    groups: dict[int, tuple[int, ...]] = field(default_factory=dict)
    weights: dict[int, int] = field(default_factory=dict)
    last_seen_servers: dict[int, ServerSpec] | None = None
    my_id: int | None = None
    initial_config: str = ""
    raw: dict[str, str] = field(default_factory=dict)
    system_properties: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.data_log_dir:
            self.data_log_dir = self.data_dir

    def voting_members(self) -> dict[int, ServerSpec]:
        return {sid: s for sid, s in self.servers.items() if s.role == "participant"}

    def observing_members(self) -> dict[int, ServerSpec]:
        return {sid: s for sid, s in self.servers.items() if s.role == "observer"}

    def is_distributed(self) -> bool:
        """QuorumPeerConfig.isDistributed: an ensemble rather than one server."""
        if not self.servers:
            return False
        return not self.standalone_enabled or len(self.voting_members()) > 1

    def is_standalone(self) -> bool:
        """True when Apache would run ZooKeeperServerMain instead of a quorum peer."""
        return not self.is_distributed()

    def quorum_config_string(self) -> str:
        """The ensemble as Apache's QuorumVerifier.toString() writes it (the data
        of /zookeeper/config and the dynamic config file, with version)."""
        lines = [
            f"server.{sid}={self.servers[sid].to_config_value()}"
            for sid in _java_hashmap_order(self.servers)
        ]
        if self.groups:
            for gid in _java_hashmap_order(self.groups):
                members = sorted(self.groups[gid], key=_java_hashmap_order(self.groups[gid]).index)
                lines.append(f"group.{gid}={':'.join(str(s) for s in members)}")
            for sid in _java_hashmap_order(self.weights):
                lines.append(f"weight.{sid}={self.weights[sid]}")
        lines.append(f"version={self.config_version:x}")
        return "\n".join(lines)


_STATIC_INT_KEYS = {
    "clientPort": "client_port",
    "secureClientPort": "secure_client_port",
    "tickTime": "tick_time",
    "maxClientCnxns": "max_client_cnxns",
    "minSessionTimeout": "min_session_timeout",
    "maxSessionTimeout": "max_session_timeout",
    "initLimit": "init_limit",
    "syncLimit": "sync_limit",
    "autopurge.snapRetainCount": "autopurge_snap_retain_count",
    "autopurge.purgeInterval": "autopurge_purge_interval",
}
_STATIC_BOOL_KEYS = {
    "localSessionsEnabled": "local_sessions_enabled",
    "localSessionsUpgradingEnabled": "local_sessions_upgrading_enabled",
    "standaloneEnabled": "standalone_enabled",
    "reconfigEnabled": "reconfig_enabled",
    "quorum.auth.enableSasl": "quorum_enable_sasl",
    "quorum.auth.serverRequireSasl": "quorum_server_require_sasl",
    "quorum.auth.learnerRequireSasl": "quorum_learner_require_sasl",
    "multiAddress.enabled": "multi_address_enabled",
}
# Integer-valued QuorumPeerConfig keys that pyzk does not use but Apache still
# parses strictly (a non-number there stops Apache from starting).
_STRICT_UNUSED_INT_KEYS = frozenset(
    {"observerMasterPort", "clientPortListenBacklog", "connectToLearnerMasterLimit",
     "quorum.cnxn.threads.size", "multiAddress.reachabilityCheckTimeoutMs"}
)  # fmt: skip
_STRICT_UNUSED_LONG_KEYS = frozenset(
    {"jvm.pause.info-threshold.ms", "jvm.pause.warn-threshold.ms", "jvm.pause.sleep.time.ms"}
)
_STRICT_UNUSED_BOOL_KEYS = frozenset(
    {"quorumListenOnAllIPs", "syncEnabled", "sslQuorum", "portUnification",
     "sslQuorumReloadCertFiles", "jvm.pause.monitor", "multiAddress.reachabilityCheckEnabled"}
)  # fmt: skip


def _is_quorum_key(key: str) -> bool:
    return key.startswith(("server.", "group", "weight"))


def load_config(path: str, *, jvm_flags: str | None = None) -> ServerConfig:
    """Read zoo.cfg at ``path`` (plus its dynamic config file and dataDir/myid).

    ``jvm_flags`` is the text of SERVER_JVMFLAGS/JVMFLAGS; its ``-D`` system
    properties apply where zoo.cfg does not override them.
    """
    log.info("Reading configuration from: %s", path)
    try:
        with open(path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise ConfigError(f"Error processing {path}: {e.strerror or e}") from None
    text = data.decode("latin-1")
    props = {java_trim(k): java_trim(v) for k, v in parse_properties(text).items()}
    sysprops = parse_jvm_flags(jvm_flags)
    try:
        cfg = _parse_static(props, sysprops, path)
    except ConfigError as e:
        raise ConfigError(f"Error processing {path}: {e}") from None
    cfg.initial_config = text
    return cfg


def _parse_static(props: dict[str, str], sysprops: dict[str, str], path: str) -> ServerConfig:
    """QuorumPeerConfig.parseProperties followed by the quorum setup."""
    values: dict[str, int | bool] = {}
    data_dir: str | None = None
    data_log_dir: str | None = None
    client_port = 0
    secure_client_port = 0
    client_port_address: str | None = None
    secure_client_port_address: str | None = None
    dynamic_file: str | None = props.get("dynamicConfigFile")
    peer_type = "participant"
    for key, value in props.items():
        if key == "dataDir":
            data_dir = value
            _warn_relative(key, value)
        elif key == "dataLogDir":
            data_log_dir = value
            _warn_relative(key, value)
        elif key == "clientPort":
            client_port = _parse_java_int(key, value)
        elif key == "secureClientPort":
            secure_client_port = _parse_java_int(key, value)
        elif key == "clientPortAddress":
            client_port_address = value
        elif key == "secureClientPortAddress":
            secure_client_port_address = value
        elif key in _STATIC_INT_KEYS:
            values[_STATIC_INT_KEYS[key]] = _parse_java_int(key, value)
        elif key in _STATIC_BOOL_KEYS:
            values[_STATIC_BOOL_KEYS[key]] = _parse_bool(key, value)
        elif key == "electionAlg":
            if _parse_java_int(key, value) != 3:
                raise ConfigError("Invalid electionAlg value. Only 3 is supported.")
        elif key == "peerType":
            peer_type = value.lower()
            if peer_type not in ("observer", "participant"):
                raise ConfigError(f"Unrecognised peertype: {value}")
        elif key == "dynamicConfigFile":
            pass
        elif _is_quorum_key(key) and dynamic_file is not None:
            raise ConfigError(f"parameter: {key} must be in a separate dynamic config file")
        elif key in _QPC_UNUSED_KEYS or key.startswith("metricsProvider."):
            if key in _STRICT_UNUSED_INT_KEYS:
                _parse_java_int(key, value)
            elif key in _STRICT_UNUSED_LONG_KEYS:
                _parse_java_int(key, value, LONG_MIN, LONG_MAX)
            elif key in _STRICT_UNUSED_BOOL_KEYS:
                _parse_bool(key, value)
            log.info("zoo.cfg key %s=%s is accepted but not used by pyzk", key, value)
        elif key.startswith("quorum.auth."):
            log.info("zoo.cfg key %s=%s is accepted but not used by pyzk", key, value)
        else:
            # Apache: System.setProperty("zookeeper." + key, value).
            name = "zookeeper." + key
            sysprops[name] = value
            if name not in _USED_SYSTEM_PROPERTIES and not _is_quorum_key(key):
                if key == "jute.maxbuffer":
                    log.info(
                        "zoo.cfg key jute.maxbuffer has no effect on the server, as in "
                        "Apache; pass -Djute.maxbuffer=%s in SERVER_JVMFLAGS instead",
                        value,
                    )
                else:
                    shown = "******" if "password" in key.lower() else value
                    log.info("zoo.cfg key %s=%s is accepted but not used by pyzk", key, shown)

    if values.get("quorum_server_require_sasl") and not values.get("quorum_enable_sasl"):
        raise ConfigError(
            "quorum.auth.enableSasl is disabled, so cannot enable quorum.auth.serverRequireSasl"
        )
    if values.get("quorum_learner_require_sasl") and not values.get("quorum_enable_sasl"):
        raise ConfigError(
            "quorum.auth.enableSasl is disabled, so cannot enable quorum.auth.learnerRequireSasl"
        )
    if values.get("quorum_server_require_sasl") and not values.get("quorum_learner_require_sasl"):
        raise ConfigError(
            "quorum.auth.learnerRequireSasl is disabled, so cannot enable "
            "quorum.auth.serverRequireSasl"
        )

    retain = _int_value(values, "autopurge_snap_retain_count", 3)
    if retain < 3:
        log.warning("Invalid autopurge.snapRetainCount: %d. Defaulting to 3", retain)
        values["autopurge_snap_retain_count"] = 3

    if data_dir is None:
        raise ConfigError("dataDir is not set")

    if client_port == 0:
        log.info("clientPort is not set")
        if client_port_address is not None:
            raise ConfigError("clientPortAddress is set but clientPort is not set")
    else:
        _check_port("clientPort", client_port)
        client_port_address = client_port_address or "0.0.0.0"
        log.info("clientPortAddress is %s:%d", client_port_address, client_port)
    if secure_client_port == 0:
        if secure_client_port_address is not None:
            raise ConfigError("secureClientPortAddress is set but secureClientPort is not set")
    else:
        _check_port("secureClientPort", secure_client_port)
        secure_client_port_address = secure_client_port_address or "0.0.0.0"

    tick_time = _int_value(values, "tick_time", DEFAULT_TICK_TIME)
    if tick_time == 0:
        raise ConfigError("tickTime is not set")
    if tick_time < 0:
        raise ConfigError(f"tickTime must be positive, not {tick_time}")
    min_to = _int_value(values, "min_session_timeout", -1)
    max_to = _int_value(values, "max_session_timeout", -1)
    min_to = tick_time * 2 if min_to == -1 else min_to
    max_to = tick_time * 20 if max_to == -1 else max_to
    if min_to > max_to:
        raise ConfigError(
            "minSessionTimeout must not be larger than maxSessionTimeout "
            f"(minSessionTimeout={min_to}, maxSessionTimeout={max_to})"
        )
    values["min_session_timeout"] = min_to
    values["max_session_timeout"] = max_to

    cfg = ServerConfig(
        data_dir=data_dir,
        path=path,
        data_log_dir=data_log_dir or data_dir,
        client_port=client_port or None,
        client_port_address=client_port_address if client_port else None,
        secure_client_port=secure_client_port or None,
        secure_client_port_address=secure_client_port_address if secure_client_port else None,
        peer_type=peer_type,
        dynamic_config_file=dynamic_file,
        raw=dict(props),
        **values,  # type: ignore[arg-type]
    )
    _apply_system_properties(cfg, _SystemProperties(sysprops))
    cfg.system_properties = sysprops

    if dynamic_file is None:
        quorum = _quorum_from(props, cfg, backward_compatible=True)
    else:
        quorum = _load_dynamic(dynamic_file, cfg)
        cfg.last_seen_servers = _load_next_dynamic(path, cfg)
    _setup_quorum(cfg, quorum)
    return cfg


def _int_value(values: dict[str, int | bool], name: str, default: int) -> int:
    value = values.get(name, default)
    assert isinstance(value, int)
    return value


def _warn_relative(key: str, value: str) -> None:
    if not os.path.isabs(value) and not value.startswith("./"):
        log.warning("%s is relative. Prepend ./ to indicate that you're sure!", value)


def _check_port(key: str, port: int) -> None:
    if not 0 <= port <= 0xFFFF:
        raise ConfigError(f"{key}: port out of range:{port}")


def _apply_system_properties(cfg: ServerConfig, sp: _SystemProperties) -> None:
    """Settings Apache reads from JVM system properties, with the JDK's lenient rules."""
    cfg.skip_acl = sp.get("zookeeper.skipACL", "no") == "yes"
    cfg.extended_types_enabled = sp.get_boolean("zookeeper.extendedTypesEnabled")
    cfg.emulate_353_ttl_nodes = sp.get_boolean("zookeeper.emulate353TTLNodes")
    cfg.enforce_quota = sp.parse_boolean("zookeeper.enforceQuota", False)
    cfg.digest_enabled = sp.parse_boolean("zookeeper.digest.enabled", True)
    cfg.close_session_txn_enabled = sp.parse_boolean("zookeeper.closeSessionTxn.enabled", True)
    cfg.super_digest = sp.get("zookeeper.DigestAuthenticationProvider.superDigest")
    cfg.digest_auth_enabled = sp.parse_boolean(
        "zookeeper.DigestAuthenticationProvider.enabled", True
    )
    cfg.read_only_mode_enabled = sp.get("readonlymode.enabled", "false") == "true"
    cfg.four_letter_whitelist = four_letter_whitelist(
        sp.get("zookeeper.4lw.commands.whitelist"), read_only=cfg.read_only_mode_enabled
    )
    cfg.jute_maxbuffer = sp.get_integer("jute.maxbuffer", DEFAULT_JUTE_MAXBUFFER)
    cfg.jute_maxbuffer_extrasize = sp.get_integer(
        "zookeeper.jute.maxbuffer.extrasize", cfg.jute_maxbuffer
    )
    cfg.force_sync = sp.get("zookeeper.forceSync", "yes") != "no"
    snap_count = sp.get_integer("zookeeper.snapCount", 100000)
    if snap_count < 2:
        log.warning("SnapCount should be 2 or more. Now, snapCount is reset to 2")
        snap_count = 2
    cfg.snap_count = snap_count
    cfg.snap_size_limit_kb = sp.get_integer(
        "zookeeper.snapSizeLimitInKb", 4194304, LONG_MIN, LONG_MAX
    )
    pre_alloc = sp.get("zookeeper.preAllocSize")
    if pre_alloc is not None:
        if _DEC.fullmatch(pre_alloc) and LONG_MIN <= int(pre_alloc) <= LONG_MAX:
            cfg.pre_alloc_size_kb = int(pre_alloc)
        else:
            log.warning("%s is not a valid value for preAllocSize", pre_alloc)
    cfg.flush_delay_ms = sp.get_integer("zookeeper.flushDelay", 0, LONG_MIN, LONG_MAX)
    cfg.max_batch_size = sp.get_integer("zookeeper.maxBatchSize", 1000)
    cfg.global_outstanding_limit = sp.get_integer("zookeeper.globalOutstandingLimit", 1000)
    cfg.max_cnxns = sp.get_integer("zookeeper.maxCnxns", 0)
    method = sp.get("zookeeper.snapshot.compression.method", "")
    assert method is not None
    if method not in SNAPSHOT_COMPRESSION_METHODS:
        log.warning("unknown snapshot compression method %r; snapshots are not compressed", method)
        method = ""
    cfg.snapshot_compression = method
    cfg.admin_enable_server = sp.get("zookeeper.admin.enableServer") != "false"
    cfg.admin_server_address = sp.get("zookeeper.admin.serverAddress", "0.0.0.0") or "0.0.0.0"
    cfg.admin_server_port = sp.get_integer("zookeeper.admin.serverPort", 8080)
    cfg.admin_command_url = sp.get("zookeeper.admin.commandURL", "/commands") or "/commands"
    cfg.admin_idle_timeout = sp.get_integer("zookeeper.admin.idleTimeout", 30000)
    # These three are read without the "zookeeper." prefix, so (as in Apache)
    # only -D flags can set them, not zoo.cfg.
    cfg.container_check_interval_ms = sp.get_integer("znode.container.checkIntervalMs", 60000)
    cfg.container_max_per_minute = sp.get_integer("znode.container.maxPerMinute", 10000)
    cfg.container_max_never_used_interval_ms = sp.get_integer(
        "znode.container.maxNeverUsedIntervalMs", 0, LONG_MIN, LONG_MAX
    )
    if "multiAddress.enabled" not in cfg.raw:
        cfg.multi_address_enabled = sp.get("zookeeper.multiAddress.enabled") == "true"


def four_letter_whitelist(spec: str | None, *, read_only: bool = False) -> frozenset[str]:
    """FourLetterCommands.isEnabled's whitelist for a ``4lw.commands.whitelist`` value.

    Comma-separated names, ``*`` meaning every known command; ``srvr`` is
    always enabled (zkServer.sh status needs it), ``isro`` too in read-only mode.
    """
    enabled: set[str] = set()
    if spec is not None:
        for item in spec.split(","):
            name = java_trim(item)
            if name == "*":
                enabled |= FOUR_LETTER_WORDS
                break
            if name:
                enabled.add(name)
    if read_only:
        enabled.add("isro")
    enabled.add("srvr")
    return frozenset(enabled)


def _quorum_from(
    props: Mapping[str, str], cfg: ServerConfig, *, backward_compatible: bool
) -> _Quorum:
    """parseDynamicConfig: members from properties, and the checks on their count."""
    if not backward_compatible:
        for key in props:
            if not _is_quorum_key(key) and key != "version":
                raise ConfigError(f"Unrecognised parameter: {key}")
    quorum = _parse_quorum(
        {k: v for k, v in props.items() if _is_quorum_key(k) or k == "version"},
        multi_address=cfg.multi_address_enabled,
    )
    voters = sum(1 for s in quorum.servers.values() if s.role == "participant")
    observers = len(quorum.servers) - voters
    if voters == 0:
        if not cfg.standalone_enabled:
            raise ConfigError("standaloneEnabled = false then number of participants should be >0")
        if observers > 0:
            raise ConfigError("Observers w/o participants is an invalid configuration")
    elif voters == 1 and cfg.standalone_enabled:
        log.error("Invalid configuration, only one server specified (ignoring)")
        if observers > 0:
            raise ConfigError("Observers w/o quorum is an invalid configuration")
    elif voters <= 2:
        log.warning("No server failure will be tolerated. You need at least 3 servers.")
    elif voters % 2 == 0:
        log.warning("Non-optimal configuration, consider an odd number of servers.")
    return quorum


def _load_dynamic(dynamic_file: str, cfg: ServerConfig) -> _Quorum:
    try:
        dyn = {java_trim(k): java_trim(v) for k, v in read_properties(dynamic_file).items()}
    except OSError as e:
        raise ConfigError(
            f"dynamicConfigFile: Error processing {dynamic_file}: {e.strerror or e}"
        ) from None
    if "version" in dyn:
        raise ConfigError(
            f"dynamicConfigFile {dynamic_file}: dynamic file shouldn't have version inside"
        )
    version = _version_from_filename(dynamic_file)
    if version is not None:
        dyn["version"] = f"{version:x}"
    try:
        quorum = _quorum_from(dyn, cfg, backward_compatible=False)
    except ConfigError as e:
        raise ConfigError(f"dynamicConfigFile {dynamic_file}: {e}") from None
    cfg.raw.update(dyn)
    return quorum


def _load_next_dynamic(path: str, cfg: ServerConfig) -> dict[int, ServerSpec] | None:
    """The ``<zoo.cfg>.dynamic.next`` file a reconfig in flight leaves behind."""
    next_file = path + ".dynamic.next"
    if not os.path.exists(next_file):
        return None
    try:
        props = {java_trim(k): java_trim(v) for k, v in read_properties(next_file).items()}
    except OSError:
        log.warning("NextQuorumVerifier is initiated to null")
        return None
    return _parse_quorum(props, multi_address=cfg.multi_address_enabled).servers


def _read_myid(data_dir: str) -> int | None:
    """setupMyId: the first line of dataDir/myid as a Java long, if the file exists."""
    myid_path = os.path.join(data_dir, "myid")
    if not os.path.isfile(myid_path):
        return None
    with open(myid_path, "rb") as f:
        first = f.read().decode("latin-1")
    lines = first.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    text = lines[0] if first else "null"
    if not _DEC.fullmatch(text) or not LONG_MIN <= int(text) <= LONG_MAX:
        raise ConfigError(f"myid: serverid {text} is not a number")
    return int(text)


def _setup_quorum(cfg: ServerConfig, quorum: _Quorum) -> None:
    """setupMyId, setupClientPort, setupPeerType and checkValidity."""
    cfg.servers = quorum.servers
    cfg.groups = quorum.groups
    cfg.weights = quorum.weights
    cfg.config_version = quorum.version
    cfg.my_id = _read_myid(cfg.data_dir)
    me = cfg.servers.get(cfg.my_id) if cfg.my_id is not None else None
    if me is not None:
        if cfg.client_port is not None and me.client_port is not None:
            static_any = cfg.client_port_address in ("0.0.0.0", "::")
            mismatch = (
                cfg.client_port != me.client_port
                if static_any
                else (cfg.client_port_address, cfg.client_port) != (me.client_host, me.client_port)
            )
            if mismatch:
                raise ConfigError(
                    f"client address for this server (id = {cfg.my_id}) in static config file "
                    f"is {cfg.client_port_address}:{cfg.client_port} is different from client "
                    f"address found in dynamic file: {me.client_host}:{me.client_port}"
                )
        if me.client_port is not None:
            cfg.client_port = me.client_port
            cfg.client_port_address = me.client_host
        elif cfg.client_port is not None:
            me.client_host = cfg.client_port_address
            me.client_port = cfg.client_port
            me.client_from_static = True
    by_list = "observer" if me is not None and me.role == "observer" else "participant"
    if by_list != cfg.peer_type:
        log.warning(
            "Peer type from servers list (%s) doesn't match peerType (%s). "
            "Defaulting to servers list.",
            by_list.upper(),
            cfg.peer_type.upper(),
        )
        cfg.peer_type = by_list
    if cfg.is_distributed():
        if cfg.init_limit == 0:
            raise ConfigError("initLimit is not set")
        if cfg.sync_limit == 0:
            raise ConfigError("syncLimit is not set")
        if cfg.my_id is None:
            raise ConfigError("myid file is missing")
