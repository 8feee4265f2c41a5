"""ServerConfig: everything a pyzk server takes from zoo.cfg and the JVM flags."""

from __future__ import annotations

from dataclasses import dataclass, field

from pyzk.config.jaas import KerberosLogin, LoginModule
from pyzk.config.servers import ServerSpec
from pyzk.javacompat import java_hashmap_order

#: ZooKeeperServer.DEFAULT_TICK_TIME in 3.8 (the sample zoo.cfg says 2000,
#: but a zoo.cfg without tickTime gets 3000).
DEFAULT_TICK_TIME = 3000
#: BinaryInputArchive's default for the ``jute.maxbuffer`` system property.
DEFAULT_JUTE_MAXBUFFER = 0xFFFFF


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
    serialize_last_processed_zxid: bool = False
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
    #: 3.9's snapshot/restore commands; off unless asked (Apache 3.9 defaults them on)
    admin_snapshot_enabled: bool = False
    admin_restore_enabled: bool = False
    admin_rate_limiter_interval_ms: int = 300000
    #: HTTPS on the admin port with the ssl.quorum.* stores (3.8's JettyAdminServer)
    admin_port_unification: bool = False
    admin_force_https: bool = False
    #: metricsProvider.*: kept as written, checked when the provider starts
    #: (Apache's PrometheusMetricsProvider.configure), not when zoo.cfg is read.
    metrics_provider_class_name: str = "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider"
    metrics_provider_http_host: str = "0.0.0.0"
    metrics_provider_http_port: str = "7000"
    metrics_provider_export_jvm_info: str = "true"
    container_check_interval_ms: int = 60000
    container_max_per_minute: int = 10000
    container_max_never_used_interval_ms: int = 0
    election_alg: int = 3
    peer_type: str = "participant"
    quorum_enable_sasl: bool = False
    quorum_server_require_sasl: bool = False
    quorum_learner_require_sasl: bool = False
    quorum_learner_login_context: str = "QuorumLearner"
    quorum_server_login_context: str = "QuorumServer"
    quorum_service_principal: str = "zkquorum/localhost"
    #: The JAAS sections quorum SASL logs in with (the two login contexts),
    #: loaded only with quorum.auth.enableSasl; never in repr (passwords).
    quorum_server_login: list[LoginModule] | None = field(default=None, repr=False)
    quorum_learner_login: list[LoginModule] | None = field(default=None, repr=False)
    multi_address_enabled: bool = False
    dynamic_config_file: str | None = None
    config_version: int = 0
    servers: dict[int, ServerSpec] = field(default_factory=dict)
    groups: dict[int, tuple[int, ...]] = field(default_factory=dict)
    weights: dict[int, int] = field(default_factory=dict)
    last_seen_servers: dict[int, ServerSpec] | None = None
    #: the ``version`` of ``<zoo.cfg>.dynamic.next`` (QuorumMaj's hex version key)
    last_seen_version: int = 0
    my_id: int | None = None
    initial_config: str = ""
    #: Classes named by ``zookeeper.authProvider.*`` (zoo.cfg ``authProvider.N``),
    #: in the order ProviderRegistry would meet them.
    auth_provider_classes: tuple[str, ...] = ()
    x509_super_user: str | None = None
    #: client.portUnification: clientPort also takes TLS, told apart by the first bytes.
    client_port_unification: bool = False
    #: sslQuorum: the quorum and election ports speak TLS (ssl.quorum.* stores).
    ssl_quorum: bool = False
    #: portUnification: the quorum and election ports take TLS and plaintext.
    quorum_port_unification: bool = False
    #: sslQuorumReloadCertFiles: new quorum connections use the stores as they are now.
    ssl_quorum_reload_cert_files: bool = False
    #: DigestLoginModule users of the JAAS Server section (name -> password),
    #: None without one; never in repr (it holds passwords).
    sasl_digest_users: dict[str, str] | None = field(default=None, repr=False)
    #: The Krb5LoginModule of the JAAS Server section: SASL is GSSAPI, as
    #: Apache's server chooses when its login yields a Kerberos principal.
    sasl_kerberos: KerberosLogin | None = None
    #: The realm Kerberos names are mapped against (KerberosName's DEFAULT rule).
    kerberos_default_realm: str = ""
    #: zookeeper.superUser[.*]: SASL ids that are super users.
    sasl_super_users: frozenset[str] = frozenset()
    #: AuthenticationHelper: enforce.auth.enabled/schemes, or
    #: sessionRequireClientSASLAuth (which means: enforced, scheme sasl).
    enforce_auth_enabled: bool = False
    enforce_auth_schemes: tuple[str, ...] = ()
    allow_sasl_failed_clients: bool = False
    #: pyzk.workers: worker processes that each serve a share of the client
    #: port's connections from a replica of the tree (pyzk.shell.workers);
    #: 0 (the default) is one process. Standalone servers only.
    workers: int = 0
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
            for sid in java_hashmap_order(self.servers)
        ]
        if self.groups:
            for gid in java_hashmap_order(self.groups):
                members = sorted(self.groups[gid], key=java_hashmap_order(self.groups[gid]).index)
                lines.append(f"group.{gid}={':'.join(str(s) for s in members)}")
            for sid in java_hashmap_order(self.weights):
                lines.append(f"weight.{sid}={self.weights[sid]}")
        lines.append(f"version={self.config_version:x}")
        return "\n".join(lines)
