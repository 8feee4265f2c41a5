"""Reading zoo.cfg and the files it points to; the parsing is pyzk.config's.

:func:`load_config` reads zoo.cfg, then (as QuorumPeerConfig does, in its
order) the ``dynamicConfigFile`` and the ``<zoo.cfg>.dynamic.next`` a
reconfig in flight leaves behind, and ``dataDir/myid``, handing each text to
the pure steps of pyzk.config.parse.  Files are read as
``Properties.load(InputStream)`` reads them: ISO-8859-1.
"""

from __future__ import annotations

import logging
import os
import re

from pyzk.config import (
    ConfigError,
    Quorum,
    ServerConfig,
    ServerSpec,
    dynamic_quorum,
    next_dynamic_servers,
    parse_jvm_flags,
    parse_myid,
    parse_properties,
    parse_static,
    setup_quorum,
    static_quorum,
    trim_properties,
)
from pyzk.config.jaas import (
    DIGEST_LOGIN_MODULE,
    KRB5_LOGIN_MODULE,
    LoginModule,
    digest_credentials,
    digest_users,
    kerberos_login,
    parse_jaas,
)
from pyzk.core.kerberosname import AUTH_TO_LOCAL, KerberosNameError, parse_rules
from pyzk.core.zkserver import auth_providers, enforced_schemes
from pyzk.shell.kerberos import default_realm
from pyzk.shell.quorumauth import QuorumAuth

log = logging.getLogger(__name__)


def read_properties(path: str) -> dict[str, str]:
    """Read a properties file as ``Properties.load(InputStream)`` does (ISO-8859-1)."""
    with open(path, "rb") as f:
        return parse_properties(f.read().decode("latin-1"))


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
    props = trim_properties(parse_properties(text))
    sysprops = parse_jvm_flags(jvm_flags)
    try:
        cfg = _parse(props, sysprops, path)
    except ConfigError as e:
        raise ConfigError(f"Error processing {path}: {e}") from None
    cfg.initial_config = text
    _load_jaas(cfg)
    _load_quorum_jaas(cfg)
    try:
        enforced_schemes(cfg, auth_providers(cfg))
    except ConfigError as e:
        raise ConfigError(f"Error processing {path}: {e}") from None
    return cfg


def _read_jaas(path: str, section: str) -> dict[str, list[LoginModule]]:
    """The sections of the JAAS file at ``path``; a file that cannot be read or
    parsed is a ConfigError naming the ``section`` looked for."""
    try:
        with open(path, "rb") as f:
            return parse_jaas(f.read().decode("utf-8"))
    except (OSError, UnicodeDecodeError, ConfigError) as e:
        reason = getattr(e, "strerror", None) or str(e)
        raise ConfigError(f"No JAAS configuration section named '{section}' was found in "
                          f"'{path}' ({reason}).") from None


def _load_quorum_jaas(cfg: ServerConfig) -> None:
    """QuorumPeer.initialize with quorum.auth.enableSasl: the JAAS sections the
    quorum server and learner log in with (QuorumServer, QuorumLearner by
    default). Apache does not start without them, nor does pyzk."""
    if not cfg.quorum_enable_sasl:
        return
    path = cfg.system_properties.get("java.security.auth.login.config")
    server, learner = cfg.quorum_server_login_context, cfg.quorum_learner_login_context
    if path:
        sections = _read_jaas(path, server)
        cfg.quorum_server_login = sections.get(server)
        cfg.quorum_learner_login = sections.get(learner)
    QuorumAuth.from_config(cfg)  # the same checks the peer makes: fail now, not later
    creds = digest_credentials(cfg.quorum_learner_login or [])
    if cfg.quorum_learner_require_sasl and creds is not None and None in creds:
        log.error("JAAS section %s: %s has no username or password: this server cannot "
                  "authenticate to its quorum", learner, DIGEST_LOGIN_MODULE)
    log.info("Quorum SASL DIGEST-MD5 from the JAAS sections %s and %s of %s "
             "(learnerRequireSasl=%s, serverRequireSasl=%s)", server, learner, path,
             cfg.quorum_learner_require_sasl, cfg.quorum_server_require_sasl)


def _load_jaas(cfg: ServerConfig) -> None:
    """ServerCnxnFactory.configureSaslLogin: the JAAS file's Server section.

    A file that cannot be read or parsed stops the server, as Apache's
    IOException does; a file without the section leaves SASL off.
    """
    path = cfg.system_properties.get("java.security.auth.login.config")
    if not path:
        return
    section = cfg.system_properties.get("zookeeper.sasl.serverconfig", "Server")
    sections = _read_jaas(path, section)
    modules = sections.get(section)
    if modules is None:
        return
    cfg.kerberos_default_realm = default_realm(cfg.system_properties)
    try:
        parse_rules(cfg.system_properties.get(AUTH_TO_LOCAL, "DEFAULT"))
    except KerberosNameError as e:
        # Apache fails at the first SASL client (KerberosName's static
        # initialiser); refusing to start says it sooner.
        raise ConfigError(f"Could not configure Kerberos principal name mapping "
                          f"({AUTH_TO_LOCAL}): {e}") from None
    krb = kerberos_login(modules)
    if krb is not None:
        # ZooKeeperSaslServer takes GSSAPI when the login has a principal,
        # whose "service/host" part names the SASL server.
        if not re.fullmatch(r"[^/@]+/[^/@]+@[^/@]+|\*", krb.principal):
            raise ConfigError(f"JAAS section {section}: {KRB5_LOGIN_MODULE} principal "
                              f"{krb.principal!r} is not of the form service/host@REALM")
        cfg.sasl_kerberos = krb
        log.info("SASL GSSAPI as %s from the JAAS section %s of %s", krb.principal,
                 section, path)
        return
    users = digest_users(modules)
    if users is None:
        log.warning("JAAS section %s has neither %s nor %s: SASL is off (%s)", section,
                    DIGEST_LOGIN_MODULE, KRB5_LOGIN_MODULE,
                    ", ".join(m.name for m in modules))
        return
    cfg.sasl_digest_users = users
    log.info("SASL DIGEST-MD5 with %d user(s) from the JAAS section %s of %s",
             len(users), section, path)


def _parse(props: dict[str, str], sysprops: dict[str, str], path: str) -> ServerConfig:
    """QuorumPeerConfig.parseProperties followed by the quorum setup."""
    cfg = parse_static(props, sysprops, path)
    dynamic_file = cfg.dynamic_config_file
    if dynamic_file is None:
        quorum = static_quorum(props, cfg)
    else:
        quorum = _load_dynamic(dynamic_file, cfg)
        cfg.last_seen_servers = _load_next_dynamic(path, cfg)
    setup_quorum(cfg, quorum, _read_myid(cfg.data_dir))
    return cfg


def _load_dynamic(dynamic_file: str, cfg: ServerConfig) -> Quorum:
    try:
        props = read_properties(dynamic_file)
    except OSError as e:
        raise ConfigError(
            f"dynamicConfigFile: Error processing {dynamic_file}: {e.strerror or e}"
        ) from None
    return dynamic_quorum(dynamic_file, props, cfg)


def _load_next_dynamic(path: str, cfg: ServerConfig) -> dict[int, ServerSpec] | None:
    """The ``<zoo.cfg>.dynamic.next`` file a reconfig in flight leaves behind
    (QuorumPeerConfig.parse: its lastSeenQuorumVerifier, which QuorumPeerMain
    hands to the peer at start-up; see shell/quorumpeer.py). Its ``version``
    goes to ``cfg.last_seen_version``."""
    next_file = path + ".dynamic.next"
    if not os.path.exists(next_file):
        return None
    try:
        props = read_properties(next_file)
    except OSError:
        log.warning("NextQuorumVerifier is initiated to null")
        return None
    servers = next_dynamic_servers(props, cfg)
    version = props.get("version", "").strip()
    try:
        cfg.last_seen_version = int(version, 16) if version else 0
    except ValueError:
        raise ConfigError(f"{next_file}: version {version!r} is not a hex number") from None
    return servers


def _read_myid(data_dir: str) -> int | None:
    """setupMyId: the first line of dataDir/myid as a Java long, if the file exists."""
    myid_path = os.path.join(data_dir, "myid")
    if not os.path.isfile(myid_path):
        return None
    with open(myid_path, "rb") as f:
        return parse_myid(f.read())
