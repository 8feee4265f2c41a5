"""zoo.cfg's properties made into a ServerConfig, as QuorumPeerConfig does.

pyzk must start from any configuration Apache starts from and refuse the
ones Apache refuses, so this follows QuorumPeerConfig closely.  Settings of
QuorumPeerConfig itself are strict: a bad value is a :class:`ConfigError`
naming the key.  Keys it does not know become the system property
``zookeeper.<key>`` (see pyzk.config.sysprops).

The steps take text and values, never paths to read: pyzk.shell.configfile
reads zoo.cfg, the dynamic config file (and its ``.next``) and dataDir/myid,
and calls them in QuorumPeerConfig's order, so the first error reported is
the one Apache reports.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from pyzk.config.errors import ConfigError
from pyzk.config.model import DEFAULT_TICK_TIME, ServerConfig
from pyzk.config.properties import trim_properties
from pyzk.config.servers import (
    Quorum,
    ServerSpec,
    is_quorum_key,
    parse_quorum,
    version_from_filename,
)
from pyzk.config.sysprops import (
    AUTH_PROVIDER_PREFIX,
    USED_SYSTEM_PROPERTIES,
    SystemProperties,
    apply_system_properties,
)
from pyzk.config.values import DECIMAL, LONG_MAX, LONG_MIN, parse_bool, parse_java_int

log = logging.getLogger(__name__)

# QuorumPeerConfig keys that pyzk reads but does not act on (yet): accepted,
# logged once, never an error.  Keys it acts on are handled in parse_static.
_QPC_UNUSED_KEYS = frozenset(
    {
        "secureClientPortAddress", "observerMasterPort", "clientPortListenBacklog",
        "connectToLearnerMasterLimit", "quorumListenOnAllIPs", "syncEnabled",
        "quorum.cnxn.threads.size",
        "jvm.pause.info-threshold.ms", "jvm.pause.warn-threshold.ms",
        "jvm.pause.sleep.time.ms", "jvm.pause.monitor",
        "multiAddress.reachabilityCheckTimeoutMs", "multiAddress.reachabilityCheckEnabled",
        "oraclePath",
    }
)  # fmt: skip


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
    # pyzk's own key (Apache makes it a system property nothing reads)
    "pyzk.workers": "workers",
}
#: Quorum SASL's string settings (pyzk.quorum.auth has their defaults).
_STATIC_STR_KEYS = {
    "quorum.auth.learner.saslLoginContext": "quorum_learner_login_context",
    "quorum.auth.server.saslLoginContext": "quorum_server_login_context",
    "quorum.auth.kerberos.servicePrincipal": "quorum_service_principal",
    # the metrics provider's settings, checked when the provider starts, as
    # Apache's PrometheusMetricsProvider.configure does (pyzk.shell.prometheus)
    "metricsProvider.className": "metrics_provider_class_name",
    "metricsProvider.httpHost": "metrics_provider_http_host",
    "metricsProvider.httpPort": "metrics_provider_http_port",
    "metricsProvider.exportJvmInfo": "metrics_provider_export_jvm_info",
}
#: The metrics providers pyzk serves: Apache's default (mntr only) and Prometheus.
DEFAULT_METRICS_PROVIDER = "org.apache.zookeeper.metrics.impl.DefaultMetricsProvider"
PROMETHEUS_METRICS_PROVIDER = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"
_STATIC_BOOL_KEYS = {
    "localSessionsEnabled": "local_sessions_enabled",
    "localSessionsUpgradingEnabled": "local_sessions_upgrading_enabled",
    "standaloneEnabled": "standalone_enabled",
    "reconfigEnabled": "reconfig_enabled",
    "quorum.auth.enableSasl": "quorum_enable_sasl",
    "quorum.auth.serverRequireSasl": "quorum_server_require_sasl",
    "quorum.auth.learnerRequireSasl": "quorum_learner_require_sasl",
    "multiAddress.enabled": "multi_address_enabled",
    "sslQuorum": "ssl_quorum",
    "portUnification": "quorum_port_unification",
    "sslQuorumReloadCertFiles": "ssl_quorum_reload_cert_files",
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
    {"quorumListenOnAllIPs", "syncEnabled", "jvm.pause.monitor",
     "multiAddress.reachabilityCheckEnabled"}
)  # fmt: skip


#: pyzk's zoo.cfg key for worker processes (ServerConfig.workers, pyzk.shell.workers).
WORKERS_KEY = "pyzk.workers"
#: Session ids carry the creating process's id in their top byte (1 is the
#: server itself, workers take 2..): 254 workers at most, as a byte allows.
MAX_WORKERS = 254

X509_PROVIDER_CLASS = "org.apache.zookeeper.server.auth.X509AuthenticationProvider"
PORT_UNIFICATION_KEY = "zookeeper.client.portUnification"


def _configure_ssl_auth(sysprops: dict[str, str]) -> None:
    """QuorumPeerConfig.configureSSLAuth: a secure client port registers the x509
    provider unless ssl.authProvider names another scheme, which must then
    have its own authProvider entry."""
    scheme = sysprops.get("zookeeper.ssl.authProvider", "x509")
    key = AUTH_PROVIDER_PREFIX + scheme
    if key in sysprops:
        return
    if scheme != "x509":
        raise ConfigError(
            f"No auth provider configured for the SSL authentication scheme '{scheme}'.")
    sysprops[key] = X509_PROVIDER_CLASS


def parse_static(props: dict[str, str], sysprops: dict[str, str], path: str) -> ServerConfig:
    """QuorumPeerConfig.parseProperties: every setting but the ensemble.

    ``props`` are zoo.cfg's trimmed properties, ``sysprops`` the system
    properties of the JVM flags (zoo.cfg keys Apache turns into system
    properties are added to it).  The members come next, from
    :func:`static_quorum` or :func:`dynamic_quorum`, then :func:`setup_quorum`.
    """
    values: dict[str, int | bool] = {}
    strings: dict[str, str] = {}
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
            client_port = parse_java_int(key, value)
        elif key == "secureClientPort":
            secure_client_port = parse_java_int(key, value)
        elif key == "clientPortAddress":
            client_port_address = value
        elif key == "secureClientPortAddress":
            secure_client_port_address = value
        elif key in _STATIC_INT_KEYS:
            values[_STATIC_INT_KEYS[key]] = parse_java_int(key, value)
        elif key in _STATIC_BOOL_KEYS:
            values[_STATIC_BOOL_KEYS[key]] = parse_bool(key, value)
        elif key in _STATIC_STR_KEYS:
            strings[_STATIC_STR_KEYS[key]] = value
        elif key == "electionAlg":
            if parse_java_int(key, value) != 3:
                raise ConfigError("Invalid electionAlg value. Only 3 is supported.")
        elif key == "peerType":
            peer_type = value.lower()
            if peer_type not in ("observer", "participant"):
                raise ConfigError(f"Unrecognised peertype: {value}")
        elif key == "dynamicConfigFile":
            pass
        elif is_quorum_key(key) and dynamic_file is not None:
            raise ConfigError(f"parameter: {key} must be in a separate dynamic config file")
        elif key in _QPC_UNUSED_KEYS or key.startswith("metricsProvider."):
            if key in _STRICT_UNUSED_INT_KEYS:
                parse_java_int(key, value)
            elif key in _STRICT_UNUSED_LONG_KEYS:
                parse_java_int(key, value, LONG_MIN, LONG_MAX)
            elif key in _STRICT_UNUSED_BOOL_KEYS:
                parse_bool(key, value)
            log.info("zoo.cfg key %s=%s is accepted but not used by pyzk", key, value)
        elif key.startswith("quorum.auth."):
            log.info("zoo.cfg key %s=%s is accepted but not used by pyzk", key, value)
        else:
            # Apache: System.setProperty("zookeeper." + key, value).
            name = "zookeeper." + key
            sysprops[name] = value
            if (name not in USED_SYSTEM_PROPERTIES and not is_quorum_key(key)
                    and not name.startswith(AUTH_PROVIDER_PREFIX)):
                if key == "jute.maxbuffer":
                    log.info(
                        "zoo.cfg key jute.maxbuffer has no effect on the server, as in "
                        "Apache; pass -Djute.maxbuffer=%s in SERVER_JVMFLAGS instead",
                        value,
                    )
                else:
                    shown = "******" if "password" in key.lower() else value
                    log.info("zoo.cfg key %s=%s is accepted but not used by pyzk", key, shown)

    provider = strings.get("metrics_provider_class_name", DEFAULT_METRICS_PROVIDER)
    if provider != PROMETHEUS_METRICS_PROVIDER:
        # only the Prometheus provider reads these; another one (which pyzk
        # cannot load) runs as the default one: mntr only
        for key in _STATIC_STR_KEYS:
            if key.startswith("metricsProvider.") and key in props and not (
                    key == "metricsProvider.className" and provider == DEFAULT_METRICS_PROVIDER):
                log.info("zoo.cfg key %s=%s is accepted but not used by pyzk", key, props[key])

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

    workers = _int_value(values, "workers", 0)
    if not 0 <= workers <= MAX_WORKERS:
        raise ConfigError(f"{WORKERS_KEY} must be between 0 and {MAX_WORKERS}, not {workers}")

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
        _configure_ssl_auth(sysprops)

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
        **strings,
        **values,  # type: ignore[arg-type]
    )
    apply_system_properties(cfg, SystemProperties(sysprops))
    port_unification = sysprops.get(PORT_UNIFICATION_KEY, "").lower() == "true"
    if port_unification:
        # NettyServerCnxnFactory.configure runs configureSSLAuth too, but a
        # failure turns port unification off instead of stopping the server.
        # It runs after ProviderRegistry has read the system properties, so
        # the x509 provider it names is not registered (Apache then closes
        # every TLS client with a certificate on the unified port, "X509 Auth
        # provider not found"), unless authProvider.x509 was configured: hence
        # after apply_system_properties, which took auth_provider_classes.
        try:
            _configure_ssl_auth(sysprops)
        except ConfigError as e:
            log.error("unable to set up SslAuthProvider, turning off client port unification: %s",
                      e)
            port_unification = False
    cfg.client_port_unification = port_unification
    cfg.system_properties = sysprops
    return cfg


def _int_value(values: dict[str, int | bool], name: str, default: int) -> int:
    value = values.get(name, default)
    assert isinstance(value, int)
    return value


def _warn_relative(key: str, value: str) -> None:
    # os.path.isabs on POSIX is exactly startswith("/").
    if not value.startswith("/") and not value.startswith("./"):
        log.warning("%s is relative. Prepend ./ to indicate that you're sure!", value)


def _check_port(key: str, port: int) -> None:
    if not 0 <= port <= 0xFFFF:
        raise ConfigError(f"{key}: port out of range:{port}")


def _quorum_from(
    props: Mapping[str, str], cfg: ServerConfig, *, backward_compatible: bool
) -> Quorum:
    """parseDynamicConfig: members from properties, and the checks on their count."""
    if not backward_compatible:
        for key in props:
            if not is_quorum_key(key) and key != "version":
                raise ConfigError(f"Unrecognised parameter: {key}")
    quorum = parse_quorum(
        {k: v for k, v in props.items() if is_quorum_key(k) or k == "version"},
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


def static_quorum(props: Mapping[str, str], cfg: ServerConfig) -> Quorum:
    """The members listed in zoo.cfg itself (no dynamicConfigFile)."""
    return _quorum_from(props, cfg, backward_compatible=True)


def dynamic_quorum(dynamic_file: str, props: Mapping[str, str], cfg: ServerConfig) -> Quorum:
    """The members of the dynamic config file ``dynamic_file``, given its properties."""
    dyn = trim_properties(props)
    if "version" in dyn:
        raise ConfigError(
            f"dynamicConfigFile {dynamic_file}: dynamic file shouldn't have version inside"
        )
    version = version_from_filename(dynamic_file)
    if version is not None:
        dyn["version"] = f"{version:x}"
    try:
        quorum = _quorum_from(dyn, cfg, backward_compatible=False)
    except ConfigError as e:
        raise ConfigError(f"dynamicConfigFile {dynamic_file}: {e}") from None
    cfg.raw.update(dyn)
    return quorum


def next_dynamic_servers(props: Mapping[str, str], cfg: ServerConfig) -> dict[int, ServerSpec]:
    """The members of the ``<zoo.cfg>.dynamic.next`` a reconfig in flight leaves behind."""
    return parse_quorum(trim_properties(props), multi_address=cfg.multi_address_enabled).servers


def parse_myid(data: bytes) -> int:
    """setupMyId: the first line of the myid file's bytes as a Java long."""
    first = data.decode("latin-1")
    lines = first.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    text = lines[0] if first else "null"
    if not DECIMAL.fullmatch(text) or not LONG_MIN <= int(text) <= LONG_MAX:
        raise ConfigError(f"myid: serverid {text} is not a number")
    return int(text)


def setup_quorum(cfg: ServerConfig, quorum: Quorum, my_id: int | None) -> None:
    """setupMyId, setupClientPort, setupPeerType and checkValidity.

    ``my_id`` is what :func:`parse_myid` made of dataDir/myid, None without one.
    """
    cfg.servers = quorum.servers
    cfg.groups = quorum.groups
    cfg.weights = quorum.weights
    cfg.config_version = quorum.version
    cfg.my_id = my_id
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
