"""Settings Apache reads from JVM system properties, with the JDK's lenient rules.

A system property comes from a ``-D`` flag in SERVER_JVMFLAGS/JVMFLAGS or
from a zoo.cfg key QuorumPeerConfig does not know (it becomes
``zookeeper.<key>``).  They are parsed as the JDK does (``Integer.getInteger``
falls back to the default on garbage, ``Boolean.getBoolean`` is true only for
"true"): a config that Apache starts with must start pyzk too; pyzk adds a
warning where Apache is silent.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from pyzk.config.model import DEFAULT_JUTE_MAXBUFFER
from pyzk.config.tls import CLIENT_PREFIX, QUORUM_PREFIX
from pyzk.config.tls import SUFFIXES as TLS_SUFFIXES
from pyzk.config.values import DECIMAL, INT_MAX, INT_MIN, LONG_MAX, LONG_MIN, decode_java_int
from pyzk.javacompat import java_trim

if TYPE_CHECKING:
    from pyzk.config.model import ServerConfig

log = logging.getLogger(__name__)

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


# System properties pyzk honours (whether set by -D or by a zoo.cfg key that
# Apache turns into ``zookeeper.<key>``).
USED_SYSTEM_PROPERTIES = frozenset(
    {
        "zookeeper.skipACL", "zookeeper.extendedTypesEnabled", "zookeeper.emulate353TTLNodes",
        "zookeeper.enforceQuota", "zookeeper.digest.enabled",
        "zookeeper.closeSessionTxn.enabled",
        "zookeeper.serializeLastProcessedZxid.enabled",
        "zookeeper.DigestAuthenticationProvider.superDigest",
        "zookeeper.DigestAuthenticationProvider.enabled",
        "zookeeper.4lw.commands.whitelist", "readonlymode.enabled", "jute.maxbuffer",
        "zookeeper.jute.maxbuffer.extrasize", "zookeeper.forceSync", "zookeeper.snapCount",
        "zookeeper.snapSizeLimitInKb", "zookeeper.preAllocSize",
        "zookeeper.globalOutstandingLimit", "zookeeper.maxCnxns",
        "zookeeper.snapshot.compression.method", "zookeeper.admin.enableServer",
        "zookeeper.admin.serverAddress", "zookeeper.admin.serverPort",
        "zookeeper.admin.commandURL", "zookeeper.admin.idleTimeout",
        "zookeeper.admin.snapshot.enabled", "zookeeper.admin.restore.enabled",
        "zookeeper.admin.rateLimiterIntervalInMS", "zookeeper.admin.portUnification",
        "zookeeper.admin.forceHttps",
        "znode.container.checkIntervalMs", "znode.container.maxPerMinute",
        "znode.container.maxNeverUsedIntervalMs", "zookeeper.flushDelay",
        "zookeeper.maxBatchSize", "zookeeper.multiAddress.enabled",
        "zookeeper.X509AuthenticationProvider.superUser", "zookeeper.client.portUnification",
        "zookeeper.superUser", "zookeeper.sasl.serverconfig",
        "zookeeper.sessionRequireClientSASLAuth", "zookeeper.enforce.auth.enabled",
        "zookeeper.enforce.auth.schemes", "zookeeper.allowSaslFailedClients",
        "zookeeper.kerberos.removeHostFromPrincipal",
        "zookeeper.kerberos.removeRealmFromPrincipal", "zookeeper.security.auth_to_local",
        "java.security.krb5.conf", "java.security.krb5.realm",
        "zookeeper.quorumCnxnTimeoutMs", "zookeeper.server.realm",
        *(CLIENT_PREFIX + suffix for suffix in TLS_SUFFIXES),
        *(QUORUM_PREFIX + suffix for suffix in TLS_SUFFIXES),
    }
)  # fmt: skip
#: Read by prefix: ``zookeeper.authProvider.<anything>`` names a provider class.
AUTH_PROVIDER_PREFIX = "zookeeper.authProvider."


class SystemProperties:
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
        n = decode_java_int(value)
        if n is None or not lo <= n <= hi:
            log.warning("%s=%r is not a valid number; using the default %d", name, value, default)
            return default
        return n


def apply_system_properties(cfg: ServerConfig, sp: SystemProperties) -> None:
    """Settings Apache reads from JVM system properties, with the JDK's lenient rules."""
    cfg.skip_acl = sp.get("zookeeper.skipACL", "no") == "yes"
    cfg.extended_types_enabled = sp.get_boolean("zookeeper.extendedTypesEnabled")
    cfg.emulate_353_ttl_nodes = sp.get_boolean("zookeeper.emulate353TTLNodes")
    cfg.enforce_quota = sp.parse_boolean("zookeeper.enforceQuota", False)
    cfg.digest_enabled = sp.parse_boolean("zookeeper.digest.enabled", True)
    cfg.close_session_txn_enabled = sp.parse_boolean("zookeeper.closeSessionTxn.enabled", True)
    # 3.9's key (its default there is true); off by default, as 3.8 writes no such field
    cfg.serialize_last_processed_zxid = sp.parse_boolean(
        "zookeeper.serializeLastProcessedZxid.enabled", False
    )
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
        if DECIMAL.fullmatch(pre_alloc) and LONG_MIN <= int(pre_alloc) <= LONG_MAX:
            cfg.pre_alloc_size_kb = int(pre_alloc)
        else:
            log.warning("%s is not a valid value for preAllocSize", pre_alloc)
    cfg.flush_delay_ms = sp.get_integer("zookeeper.flushDelay", 0, LONG_MIN, LONG_MAX)
    cfg.max_batch_size = sp.get_integer("zookeeper.maxBatchSize", 1000)
    cfg.global_outstanding_limit = sp.get_integer("zookeeper.globalOutstandingLimit", 1000)
    cfg.max_cnxns = sp.get_integer("zookeeper.maxCnxns", 0)
    method = sp.get("zookeeper.snapshot.compression.method", "")
    assert method is not None
    method = method.lower()  # StreamMode.fromString compares ignoring case
    if method not in SNAPSHOT_COMPRESSION_METHODS:
        log.warning("unknown snapshot compression method %r; snapshots are not compressed", method)
        method = ""
    cfg.snapshot_compression = method
    cfg.admin_enable_server = sp.get("zookeeper.admin.enableServer") != "false"
    cfg.admin_server_address = sp.get("zookeeper.admin.serverAddress", "0.0.0.0") or "0.0.0.0"
    cfg.admin_server_port = sp.get_integer("zookeeper.admin.serverPort", 8080)
    cfg.admin_command_url = sp.get("zookeeper.admin.commandURL", "/commands") or "/commands"
    cfg.admin_idle_timeout = sp.get_integer("zookeeper.admin.idleTimeout", 30000)
    # Boolean.parseBoolean, as Commands reads them (pyzk's default is off, see the model)
    cfg.admin_snapshot_enabled = sp.parse_boolean("zookeeper.admin.snapshot.enabled", False)
    cfg.admin_restore_enabled = sp.parse_boolean("zookeeper.admin.restore.enabled", False)
    cfg.admin_port_unification = sp.get_boolean("zookeeper.admin.portUnification")
    cfg.admin_force_https = sp.get_boolean("zookeeper.admin.forceHttps")
    cfg.admin_rate_limiter_interval_ms = sp.get_integer("zookeeper.admin.rateLimiterIntervalInMS",
                                                        300000)
    # These three are read without the "zookeeper." prefix, so (as in Apache)
    # only -D flags can set them, not zoo.cfg.
    cfg.container_check_interval_ms = sp.get_integer("znode.container.checkIntervalMs", 60000)
    cfg.container_max_per_minute = sp.get_integer("znode.container.maxPerMinute", 10000)
    cfg.container_max_never_used_interval_ms = sp.get_integer(
        "znode.container.maxNeverUsedIntervalMs", 0, LONG_MIN, LONG_MAX
    )
    # ProviderRegistry walks System.getProperties(), a Hashtable: its order is
    # not the file's; pyzk sorts, and a scheme named twice keeps the last.
    cfg.auth_provider_classes = tuple(
        value for name, value in sorted(sp.props.items()) if name.startswith(AUTH_PROVIDER_PREFIX))
    cfg.x509_super_user = sp.get("zookeeper.X509AuthenticationProvider.superUser")
    if sp.parse_boolean("zookeeper.sessionRequireClientSASLAuth", False):
        cfg.enforce_auth_enabled, cfg.enforce_auth_schemes = True, ("sasl",)
    else:
        cfg.enforce_auth_enabled = sp.parse_boolean("zookeeper.enforce.auth.enabled", False)
        schemes = sp.get("zookeeper.enforce.auth.schemes")
        cfg.enforce_auth_schemes = (tuple(x.strip() for x in schemes.split(","))
                                    if schemes is not None else ())
    cfg.allow_sasl_failed_clients = sp.get_boolean("zookeeper.allowSaslFailedClients")
    # isSaslSuperUser: zookeeper.superUser, or zookeeper.superUser.<anything>
    cfg.sasl_super_users = frozenset(
        v for k, v in sp.props.items()
        if v and (k == "zookeeper.superUser" or k.startswith("zookeeper.superUser.")))
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
