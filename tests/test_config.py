"""zoo.cfg parsing against what Apache ZooKeeper 3.8's QuorumPeerConfig does."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest

from pyzk.config import (
    DEFAULT_JUTE_MAXBUFFER,
    DEFAULT_TICK_TIME,
    FOUR_LETTER_WORDS,
    ConfigError,
    ServerConfig,
    ServerSpec,
    four_letter_whitelist,
    parse_jvm_flags,
    parse_properties,
    parse_server_line,
)
from pyzk.config.parse import _STATIC_BOOL_KEYS, _STATIC_INT_KEYS, _STATIC_STR_KEYS
from pyzk.config.sysprops import USED_SYSTEM_PROPERTIES
from pyzk.shell.configfile import load_config

pytestmark = pytest.mark.pure


def write_cfg(tmp_path: Path, body: str, name: str = "zoo.cfg") -> str:
    (tmp_path / "data").mkdir(exist_ok=True)
    path = tmp_path / name
    path.write_text(body)
    return str(path)


def minimal(tmp_path: Path, extra: str = "", data_dir: str | None = None) -> str:
    data = data_dir if data_dir is not None else str(tmp_path / "data")
    return write_cfg(tmp_path, f"dataDir={data}\nclientPort=2181\n{extra}")


# --------------------------------------------------------------------------
# java.util.Properties syntax


def test_properties_separators_comments_and_whitespace() -> None:
    text = "# comment\n! also a comment\n   \na=1\nb: 2\nc 3\n  d   =   4  \ne\nf=\ng==x\nh:=y\n"
    assert parse_properties(text) == {
        "a": "1",
        "b": "2",
        "c": "3",
        "d": "4  ",  # Properties keeps trailing blanks; QuorumPeerConfig trims later
        "e": "",
        "f": "",
        "g": "=x",
        "h": "=y",
    }


def test_properties_continuations_and_escapes() -> None:
    text = (
        "long=first \\\n"
        "      second\\\n"
        "#not a comment here\n"
        "key\\ with\\ spaces=v\n"
        "colon\\:key=v2\n"
        "esc=tab\\there\\u0041\\q\n"
        "even=ends with two\\\\\n"
        "next=1\n"
        "last=cont\\"
    )
    props = parse_properties(text)
    assert props["long"] == "first second#not a comment here"
    assert props["key with spaces"] == "v"
    assert props["colon:key"] == "v2"
    assert props["esc"] == "tab\there" + "A" + "q"
    assert props["even"] == "ends with two\\"
    assert props["next"] == "1"
    assert props["last"] == "cont"


def test_properties_line_endings_and_last_value_wins() -> None:
    assert parse_properties("a=1\r\nb=2\rc=3\na=4") == {"a": "4", "b": "2", "c": "3"}


def test_properties_malformed_unicode_escape() -> None:
    with pytest.raises(ConfigError, match="Malformed"):
        parse_properties("a=\\u12x4\n")


def test_file_is_read_as_latin1_like_java(tmp_path: Path) -> None:
    path = tmp_path / "zoo.cfg"
    data = tmp_path / "data"
    data.mkdir()
    path.write_bytes(f"dataDir={data}\nclientPort=2181\nmyKey=caf\xe9\n".encode("latin-1"))
    assert load_config(str(path)).raw["myKey"] == "caf\u00e9"


# --------------------------------------------------------------------------
# defaults


def test_defaults_equal_apache(tmp_path: Path) -> None:
    cfg = load_config(write_cfg(tmp_path, f"dataDir={tmp_path / 'data'}\n"))
    assert cfg.tick_time == DEFAULT_TICK_TIME == 3000
    assert cfg.init_limit == 0 and cfg.sync_limit == 0
    assert cfg.data_log_dir == cfg.data_dir == str(tmp_path / "data")
    assert cfg.client_port is None and cfg.client_port_address is None
    assert cfg.secure_client_port is None
    assert cfg.max_client_cnxns == 60
    assert (cfg.min_session_timeout, cfg.max_session_timeout) == (6000, 60000)
    assert cfg.four_letter_whitelist == frozenset({"srvr"})
    assert cfg.super_digest is None
    assert not cfg.skip_acl and not cfg.extended_types_enabled and not cfg.enforce_quota
    assert cfg.jute_maxbuffer == DEFAULT_JUTE_MAXBUFFER == 0xFFFFF
    assert cfg.snap_count == 100000
    assert cfg.pre_alloc_size_kb == 65536
    assert cfg.force_sync is True
    assert cfg.reconfig_enabled is False and cfg.standalone_enabled is True
    assert cfg.local_sessions_enabled is False
    assert cfg.autopurge_snap_retain_count == 3 and cfg.autopurge_purge_interval == 0
    assert cfg.global_outstanding_limit == 1000
    assert cfg.digest_enabled is True
    assert cfg.snapshot_compression == ""
    assert cfg.admin_enable_server is True and cfg.admin_server_port == 8080
    assert cfg.container_check_interval_ms == 60000
    assert cfg.election_alg == 3 and cfg.peer_type == "participant"
    assert cfg.servers == {} and cfg.my_id is None
    assert cfg.is_standalone()


def test_session_timeouts_follow_tick_time_unless_set(tmp_path: Path) -> None:
    cfg = load_config(minimal(tmp_path, "tickTime=100\n"))
    assert (cfg.min_session_timeout, cfg.max_session_timeout) == (200, 2000)
    cfg = load_config(minimal(tmp_path, "tickTime=100\nminSessionTimeout=50\n"))
    assert (cfg.min_session_timeout, cfg.max_session_timeout) == (50, 2000)


def test_client_port_address_defaults_to_wildcard(tmp_path: Path) -> None:
    cfg = load_config(minimal(tmp_path))
    assert (cfg.client_port, cfg.client_port_address) == (2181, "0.0.0.0")
    cfg = load_config(minimal(tmp_path, "clientPortAddress=127.0.0.1\n"))
    assert cfg.client_port_address == "127.0.0.1"


def test_data_log_dir_separate(tmp_path: Path) -> None:
    cfg = load_config(minimal(tmp_path, f"dataLogDir={tmp_path / 'log'}\n"))
    assert cfg.data_log_dir == str(tmp_path / "log")


def test_keys_and_values_are_trimmed(tmp_path: Path) -> None:
    cfg = load_config(minimal(tmp_path, "tickTime = 500   \n\tmaxClientCnxns :7\t\n"))
    assert cfg.tick_time == 500 and cfg.max_client_cnxns == 7


def test_autopurge_retain_count_below_three_resets(tmp_path: Path) -> None:
    cfg = load_config(minimal(tmp_path, "autopurge.snapRetainCount=1\nautopurge.purgeInterval=2\n"))
    assert cfg.autopurge_snap_retain_count == 3 and cfg.autopurge_purge_interval == 2


def test_repo_conf_zoo_cfg_parses() -> None:
    path = Path(__file__).resolve().parents[1] / "conf" / "zoo.cfg"
    cfg = load_config(str(path))
    assert cfg.client_port == 2181 and cfg.tick_time == 2000
    assert cfg.four_letter_whitelist == FOUR_LETTER_WORDS
    assert cfg.admin_enable_server is False
    assert cfg.is_standalone()


# --------------------------------------------------------------------------
# bad values name their key


@pytest.mark.parametrize(
    ("extra", "key"),
    [
        ("clientPort=abc\n", "clientPort"),
        ("tickTime=-5\n", "tickTime"),
        ("tickTime=0\n", "tickTime"),
        ("tickTime=2.5\n", "tickTime"),
        ("maxClientCnxns=lots\n", "maxClientCnxns"),
        ("initLimit=99999999999\n", "initLimit"),
        ("minSessionTimeout=5000\nmaxSessionTimeout=4000\n", "minSessionTimeout"),
        ("standaloneEnabled=yes\n", "standaloneEnabled"),
        ("reconfigEnabled=1\n", "reconfigEnabled"),
        ("localSessionsEnabled=maybe\n", "localSessionsEnabled"),
        ("electionAlg=1\n", "electionAlg"),
        ("peerType=voter\n", "peertype"),
        ("secureClientPort=x\n", "secureClientPort"),
        ("autopurge.purgeInterval=hourly\n", "autopurge.purgeInterval"),
        ("syncEnabled=nope\n", "syncEnabled"),
        ("observerMasterPort=none\n", "observerMasterPort"),
    ],
)
def test_bad_value_names_key(tmp_path: Path, extra: str, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        load_config(minimal(tmp_path, extra))


@pytest.mark.parametrize("port", ["70000", "-1", "65536"])
def test_client_port_out_of_range(tmp_path: Path, port: str) -> None:
    path = write_cfg(tmp_path, f"dataDir={tmp_path / 'data'}\nclientPort={port}\n")
    with pytest.raises(ConfigError, match=f"clientPort.*out of range:{port}"):
        load_config(path)


def test_missing_data_dir(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="dataDir is not set"):
        load_config(write_cfg(tmp_path, "clientPort=2181\n"))


def test_client_port_address_without_client_port(tmp_path: Path) -> None:
    path = write_cfg(tmp_path, f"dataDir={tmp_path}\nclientPortAddress=127.0.0.1\n")
    with pytest.raises(ConfigError, match="clientPortAddress is set but clientPort is not set"):
        load_config(path)


def test_missing_file_names_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="nope.cfg"):
        load_config(str(tmp_path / "nope.cfg"))


def test_error_message_carries_the_path(tmp_path: Path) -> None:
    path = minimal(tmp_path, "tickTime=x\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"Error processing {path}")
    assert "'x'" in str(info.value)


def test_quorum_sasl_consistency(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="quorum.auth.enableSasl is disabled"):
        load_config(minimal(tmp_path, "quorum.auth.serverRequireSasl=true\n"))


# --------------------------------------------------------------------------
# system properties: zoo.cfg keys and -D flags


def test_unknown_keys_are_logged_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    extra = (
        "serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory\n"
        "authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider\n"
        "ssl.keyStore.location=/x/keystore.jks\n"
        "metricsProvider.className=org.example.Metrics\n"
        "metricsProvider.httpPort=7000\n"
        "sslQuorum=false\n"
    )
    with caplog.at_level(logging.INFO, logger="pyzk.config"):
        cfg = load_config(minimal(tmp_path, extra))
    unused = [r.getMessage() for r in caplog.records if "not used by pyzk" in r.getMessage()]
    for key in (
        "serverCnxnFactory",
        "metricsProvider.className",
        "metricsProvider.httpPort",
    ):
        assert sum(1 for m in unused if m.startswith(f"zoo.cfg key {key}=")) == 1, key
    # authProvider.N, ssl.* and sslQuorum are read now (auth providers, the TLS ports)
    for key in ("authProvider.1", "ssl.keyStore.location", "sslQuorum"):
        assert not any(m.startswith(f"zoo.cfg key {key}=") for m in unused), key
    assert cfg.auth_provider_classes == (
        "org.apache.zookeeper.server.auth.SASLAuthenticationProvider",)
    assert all(r.levelno == logging.INFO for r in caplog.records if "not used" in r.getMessage())
    assert cfg.system_properties["zookeeper.serverCnxnFactory"].endswith("NettyServerCnxnFactory")
    assert "zookeeper.sslQuorum" not in cfg.system_properties  # a QuorumPeerConfig key


def test_used_system_property_keys_are_not_reported_unused(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="pyzk.config"):
        load_config(minimal(tmp_path, "skipACL=yes\nsnapCount=10\n"))
    assert not [r for r in caplog.records if "not used" in r.getMessage()]


def test_zoo_cfg_keys_become_zookeeper_system_properties(tmp_path: Path) -> None:
    extra = (
        "skipACL=yes\n"
        "extendedTypesEnabled=true\n"
        "enforceQuota=true\n"
        "4lw.commands.whitelist=ruok, stat ,, mntr\n"
        "DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU=\n"
        "forceSync=no\n"
        "snapCount=5000\n"
        "preAllocSize=1024\n"
        "globalOutstandingLimit=77\n"
        "digest.enabled=false\n"
        "snapshot.compression.method=gz\n"
        "admin.enableServer=false\n"
        "admin.serverPort=9090\n"
    )
    cfg = load_config(minimal(tmp_path, extra))
    assert cfg.skip_acl and cfg.extended_types_enabled and cfg.enforce_quota
    assert cfg.four_letter_whitelist == frozenset({"ruok", "stat", "mntr", "srvr"})
    assert cfg.super_digest == "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
    assert cfg.force_sync is False
    assert cfg.snap_count == 5000
    assert cfg.pre_alloc_size_kb == 1024
    assert cfg.global_outstanding_limit == 77
    assert cfg.digest_enabled is False
    assert cfg.snapshot_compression == "gz"
    assert cfg.admin_enable_server is False and cfg.admin_server_port == 9090


def test_jvm_flags_are_honoured(tmp_path: Path) -> None:
    flags = (
        "-Xmx512m -Dfile.encoding=UTF-8 -Dzookeeper.skipACL=yes "
        "-Dzookeeper.extendedTypesEnabled=true -Dzookeeper.enforceQuota=true "
        "-Dzookeeper.DigestAuthenticationProvider.superDigest=super:abc= "
        "-Dzookeeper.4lw.commands.whitelist=* -Djute.maxbuffer=4194304 "
        "-Dzookeeper.forceSync=no -Dzookeeper.snapCount=0x100 -Dzookeeper.preAllocSize=16 "
        "-Dreadonlymode.enabled=true -Dznode.container.checkIntervalMs=100"
    )
    cfg = load_config(minimal(tmp_path), jvm_flags=flags)
    assert cfg.skip_acl and cfg.extended_types_enabled and cfg.enforce_quota
    assert cfg.super_digest == "super:abc="
    assert cfg.four_letter_whitelist == FOUR_LETTER_WORDS
    assert cfg.jute_maxbuffer == 4194304
    assert cfg.jute_maxbuffer_extrasize == 4194304
    assert cfg.force_sync is False
    assert cfg.snap_count == 256  # Integer.getInteger decodes hex
    assert cfg.pre_alloc_size_kb == 16
    assert cfg.read_only_mode_enabled
    assert cfg.container_check_interval_ms == 100


def test_zoo_cfg_overrides_jvm_flags(tmp_path: Path) -> None:
    cfg = load_config(
        minimal(tmp_path, "skipACL=no\nsnapCount=7\n"),
        jvm_flags="-Dzookeeper.skipACL=yes -Dzookeeper.snapCount=9",
    )
    assert cfg.skip_acl is False and cfg.snap_count == 7


def test_settings_apache_only_takes_from_jvm_flags(tmp_path: Path) -> None:
    # Apache reads these without the "zookeeper." prefix, so zoo.cfg cannot set them.
    cfg = load_config(minimal(tmp_path, "jute.maxbuffer=10\nreadonlymode.enabled=true\n"))
    assert cfg.jute_maxbuffer == DEFAULT_JUTE_MAXBUFFER
    assert cfg.read_only_mode_enabled is False
    assert cfg.four_letter_whitelist == frozenset({"srvr"})


def test_lenient_jdk_getters(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    extra = "snapCount=many\nskipACL=true\nextendedTypesEnabled=yes\nforceSync=false\nsnapCount=1\n"
    with caplog.at_level(logging.WARNING, logger="pyzk.config"):
        cfg = load_config(minimal(tmp_path, extra))
    assert cfg.snap_count == 2  # snapCount below 2 is reset to 2
    assert cfg.skip_acl is False  # only "yes" enables it
    assert cfg.extended_types_enabled is False  # Boolean.getBoolean wants "true"
    assert cfg.force_sync is True  # only "no" disables it
    cfg = load_config(minimal(tmp_path, "globalOutstandingLimit=lots\n"))
    assert cfg.global_outstanding_limit == 1000
    assert any("globalOutstandingLimit" in r.getMessage() for r in caplog.records)


def test_parse_jvm_flags() -> None:
    assert parse_jvm_flags(None) == {}
    assert parse_jvm_flags("-Xmx1g -Da=1 -Db -Dc=x=y  -D -cp foo") == {
        "a": "1",
        "b": "",
        "c": "x=y",
    }


def test_four_letter_whitelist_semantics() -> None:
    assert four_letter_whitelist(None) == frozenset({"srvr"})
    assert four_letter_whitelist("") == frozenset({"srvr"})
    assert four_letter_whitelist("stat, *") == FOUR_LETTER_WORDS
    assert four_letter_whitelist("ruok", read_only=True) == frozenset({"ruok", "isro", "srvr"})


# --------------------------------------------------------------------------
# the config kazoo's test harness (kazoo/testing/common.py) writes


def test_kazoo_harness_config(tmp_path: Path) -> None:
    data = tmp_path / "data"
    body = f"""
tickTime=2000
dataDir={data}
clientPort=20000
secureClientPort=20001
maxClientCnxns=0
admin.serverPort=20002
serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory
authProvider.1=org.apache.zookeeper.server.auth.SASLAuthenticationProvider
ssl.keyStore.location={tmp_path}/keystore.jks
ssl.keyStore.password=apassword
ssl.trustStore.location={tmp_path}/truststore.jks
ssl.trustStore.password=apassword
4lw.commands.whitelist=*
reconfigEnabled=true
localSessionsEnabled=false
localSessionsUpgradingEnabled=false
"""
    path = write_cfg(tmp_path, body)
    (data / "myid").write_text("1")
    flags = (
        "-Dfile.encoding=UTF-8 -Dreadonlymode.enabled=true -Dzookeeper.log.dir=/tmp/log "
        "-Dzookeeper.root.logger=INFO,CONSOLE -Djava.awt.headless=true "
        "-Dzookeeper.DigestAuthenticationProvider.superDigest=super:D/InIHSb7yEEbrWz8b9l71RjZJU="
    )
    cfg = load_config(path, jvm_flags=flags)
    assert cfg.client_port == 20000 and cfg.secure_client_port == 20001
    assert cfg.max_client_cnxns == 0 and cfg.tick_time == 2000
    assert cfg.admin_server_port == 20002
    assert cfg.reconfig_enabled is True
    assert cfg.four_letter_whitelist == FOUR_LETTER_WORDS
    assert cfg.super_digest == "super:D/InIHSb7yEEbrWz8b9l71RjZJU="
    assert cfg.my_id == 1 and cfg.is_standalone()


def test_kazoo_harness_cluster_config(tmp_path: Path) -> None:
    data = tmp_path / "data"
    body = f"""
tickTime=2000
dataDir={data}
clientPort=20010
secureClientPort=20011
maxClientCnxns=0
admin.serverPort=20012
4lw.commands.whitelist=*
reconfigEnabled=true

initLimit=4
syncLimit=2
server.1=localhost:20013:20014:participant
server.0=localhost:20003:20004:participant
server.2=localhost:20023:20024:observer
peerType=participant
"""
    path = write_cfg(tmp_path, body)
    (data / "myid").write_text("1")
    cfg = load_config(path)
    assert not cfg.is_standalone()
    assert cfg.my_id == 1 and cfg.peer_type == "participant"
    assert cfg.servers[0] == ServerSpec(0, "localhost", 20003, 20004, "participant")
    assert cfg.servers[2].role == "observer"
    assert (cfg.init_limit, cfg.sync_limit) == (4, 2)
    me = cfg.servers[1]
    assert (me.client_host, me.client_port, me.client_from_static) == ("0.0.0.0", 20010, True)
    assert cfg.quorum_config_string() == (
        "server.0=localhost:20003:20004:participant\n"
        "server.1=localhost:20013:20014:participant\n"
        "server.2=localhost:20023:20024:observer\n"
        "version=0"
    )


# --------------------------------------------------------------------------
# server.N lines, myid and dynamic config


def test_parse_server_line_forms() -> None:
    assert parse_server_line(1, "zk1:2888:3888") == ServerSpec(1, "zk1", 2888, 3888)
    assert parse_server_line(2, "zk2:2888:3888:observer;2181") == ServerSpec(
        2, "zk2", 2888, 3888, "observer", "0.0.0.0", 2181
    )
    assert parse_server_line(3, "zk3:1:2: Participant ;127.0.0.1:2182") == ServerSpec(
        3, "zk3", 1, 2, "participant", "127.0.0.1", 2182
    )
    spec = parse_server_line(4, "[::1]:2888:3888;[::1]:2181")
    assert (spec.host, spec.client_host, spec.client_port) == ("::1", "::1", 2181)
    assert spec.to_config_value() == "[::1]:2888:3888:participant;[::1]:2181"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("zk1:2888", "does not have the form"),
        ("zk1:2888:3888:participant:x", "does not have the form"),
        ("zk1:2888:3888;a:b:c", "does not have the form"),
        ("zk1:2888:3888;1;2", "does not have the form"),
        ("zk1:abc:3888", "Address unresolved: zk1:abc"),
        ("zk1:2888:3888:voter", "Unrecognised peertype: voter"),
        ("zk1:2888:2888", "Client and election port must be different"),
        ("zk1:2888:99999", "port out of range:99999"),
        ("zk1:2888:3888|zk1b:2889:3889", "Multiple address feature is disabled"),
        ("[::1:2888:3888", "no matching"),
    ],
)
def test_bad_server_lines(tmp_path: Path, value: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_server_line(1, value)
    cfg_text = f"initLimit=5\nsyncLimit=2\nserver.1={value}\nserver.2=zk2:2888:3888\n"
    with pytest.raises(ConfigError, match=r"server\.1="):
        load_config(minimal(tmp_path, cfg_text))


def test_bad_server_id(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="server.x"):
        load_config(minimal(tmp_path, "server.x=zk:1:2\n"))


def ensemble(tmp_path: Path, extra: str = "", myid: str | None = "2") -> str:
    lines = "".join(f"server.{i}=127.0.0.{i}:{2880 + i}:{3880 + i}\n" for i in (1, 2, 3))
    path = minimal(tmp_path, f"initLimit=10\nsyncLimit=5\n{lines}{extra}")
    if myid is not None:
        (tmp_path / "data" / "myid").write_text(myid)
    return path


def test_ensemble_with_myid(tmp_path: Path) -> None:
    cfg = load_config(ensemble(tmp_path, myid="2\n"))
    assert cfg.my_id == 2 and not cfg.is_standalone()
    assert sorted(cfg.servers) == [1, 2, 3]
    assert cfg.servers[3] == ServerSpec(3, "127.0.0.3", 2883, 3883)
    assert len(cfg.voting_members()) == 3 and not cfg.observing_members()


def test_ensemble_needs_myid_and_limits(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="myid file is missing"):
        load_config(ensemble(tmp_path, myid=None))
    with pytest.raises(ConfigError, match="serverid two is not a number"):
        load_config(ensemble(tmp_path, myid="two"))
    lines = "".join(f"server.{i}=h:{2880 + i}:{3880 + i}\n" for i in (1, 2, 3))
    path = minimal(tmp_path, lines)
    (tmp_path / "data" / "myid").write_text("1")
    with pytest.raises(ConfigError, match="initLimit is not set"):
        load_config(path)


def test_single_server_line_is_standalone(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.ERROR, logger="pyzk.config"):
        cfg = load_config(minimal(tmp_path, "server.1=localhost:2888:3888\n"))
    assert cfg.is_standalone() and 1 in cfg.servers
    assert any("only one server specified" in r.getMessage() for r in caplog.records)
    (tmp_path / "data" / "myid").write_text("1")
    cfg = load_config(
        minimal(tmp_path, "standaloneEnabled=false\ninitLimit=1\nsyncLimit=1\nserver.1=h:1:2\n")
    )
    assert not cfg.is_standalone()


def test_observers_without_participants(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Observers w/o participants"):
        load_config(minimal(tmp_path, "server.1=h:1:2:observer\n"))
    with pytest.raises(ConfigError, match="Observers w/o quorum"):
        load_config(minimal(tmp_path, "server.1=h:1:2\nserver.2=h:3:4:observer\n"))


def test_client_address_from_server_line(tmp_path: Path) -> None:
    lines = "".join(
        f"server.{i}=h{i}:{2880 + i}:{3880 + i};127.0.0.{i}:{2180 + i}\n" for i in (1, 2, 3)
    )
    path = write_cfg(tmp_path, f"dataDir={tmp_path / 'data'}\ninitLimit=1\nsyncLimit=1\n{lines}")
    (tmp_path / "data" / "myid").write_text("3")
    cfg = load_config(path)
    assert (cfg.client_port, cfg.client_port_address) == (2183, "127.0.0.3")


def test_client_port_conflicting_with_server_line(tmp_path: Path) -> None:
    lines = "".join(f"server.{i}=h:{2880 + i}:{3880 + i};{2180 + i}\n" for i in (1, 2, 3))
    path = minimal(tmp_path, f"initLimit=1\nsyncLimit=1\n{lines}")  # clientPort=2181
    (tmp_path / "data" / "myid").write_text("2")
    with pytest.raises(ConfigError, match="is different from client address found in dynamic file"):
        load_config(path)


def test_peer_type_follows_server_list(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = ensemble(tmp_path, extra="server.4=127.0.0.4:2884:3884:observer\n", myid="4")
    cfg = load_config(path)
    assert cfg.peer_type == "observer"
    with caplog.at_level(logging.WARNING, logger="pyzk.config"):
        cfg = load_config(ensemble(tmp_path, extra="peerType=observer\n", myid="1"))
    assert cfg.peer_type == "participant"
    assert any("doesn't match peerType" in r.getMessage() for r in caplog.records)


def test_hierarchical_groups_and_weights(tmp_path: Path) -> None:
    extra = "group.1=1:2\ngroup.2=3\nweight.1=2\nweight.3=0\n"
    cfg = load_config(ensemble(tmp_path, extra=extra))
    assert cfg.groups == {1: (1, 2), 2: (3,)}
    assert cfg.weights == {1: 2, 2: 1, 3: 0}
    assert cfg.quorum_config_string().splitlines()[3:] == [
        "group.1=1:2",
        "group.2=3",
        "weight.1=2",
        "weight.2=1",
        "weight.3=0",
        "version=0",
    ]
    with pytest.raises(ConfigError, match="Server 3is not in a group"):
        load_config(ensemble(tmp_path, extra="group.1=1:2\n"))
    with pytest.raises(ConfigError, match="Server 2is in multiple groups"):
        load_config(ensemble(tmp_path, extra="group.1=1:2\ngroup.2=2:3\n"))


def test_dynamic_config_file(tmp_path: Path) -> None:
    dyn = tmp_path / "zoo.cfg.dynamic.100000000"
    dyn.write_text(
        "server.1=127.0.0.1:2881:3881:participant;127.0.0.1:2181\n"
        "server.2=127.0.0.1:2882:3882:participant;127.0.0.1:2182\n"
        "server.3=127.0.0.1:2883:3883:observer;2183\n"
    )
    path = write_cfg(
        tmp_path,
        f"dataDir={tmp_path / 'data'}\ninitLimit=5\nsyncLimit=2\n"
        f"reconfigEnabled=true\ndynamicConfigFile={dyn}\n",
    )
    (tmp_path / "data" / "myid").write_text("2")
    cfg = load_config(path)
    assert cfg.dynamic_config_file == str(dyn)
    assert cfg.config_version == 0x100000000
    assert (cfg.client_port, cfg.client_port_address) == (2182, "127.0.0.1")
    assert cfg.servers[3] == ServerSpec(3, "127.0.0.1", 2883, 3883, "observer", "0.0.0.0", 2183)
    assert not cfg.is_standalone()
    assert cfg.last_seen_servers is None
    assert cfg.quorum_config_string() == (
        "server.1=127.0.0.1:2881:3881:participant;127.0.0.1:2181\n"
        "server.2=127.0.0.1:2882:3882:participant;127.0.0.1:2182\n"
        "server.3=127.0.0.1:2883:3883:observer;0.0.0.0:2183\n"
        "version=100000000"
    )
    Path(path + ".dynamic.next").write_text("server.1=127.0.0.1:2881:3881\nversion=200000000\n")
    nxt = load_config(path)
    assert nxt.last_seen_servers == {1: ServerSpec(1, "127.0.0.1", 2881, 3881)}
    assert nxt.last_seen_version == 0x200000000


def test_dynamic_config_file_errors(tmp_path: Path) -> None:
    dyn = tmp_path / "zoo.cfg.dynamic"
    base = f"dataDir={tmp_path / 'data'}\ndynamicConfigFile={dyn}\n"
    path = write_cfg(tmp_path, base + "server.1=h:1:2\n")
    dyn.write_text("server.2=h:1:2\n")
    with pytest.raises(ConfigError, match="parameter: server.1 must be in a separate dynamic"):
        load_config(path)
    path = write_cfg(tmp_path, base)
    dyn.write_text("server.1=h:1:2\nversion=1\n")
    with pytest.raises(ConfigError, match="dynamic file shouldn't have version inside"):
        load_config(path)
    dyn.write_text("server.1=h:1:2\ntickTime=100\n")
    with pytest.raises(ConfigError, match="Unrecognised parameter: tickTime"):
        load_config(path)
    dyn.unlink()
    with pytest.raises(ConfigError, match="dynamicConfigFile"):
        load_config(path)


def test_dynamic_file_without_version_suffix(tmp_path: Path) -> None:
    dyn = tmp_path / "zoo.cfg.dynamic"
    dyn.write_text("server.1=h:1:2\n")
    path = write_cfg(
        tmp_path, f"dataDir={tmp_path / 'data'}\nclientPort=2181\ndynamicConfigFile={dyn}\n"
    )
    cfg = load_config(path)
    assert cfg.config_version == 0 and cfg.is_standalone()


def test_server_config_direct_construction() -> None:
    cfg = ServerConfig(data_dir="/d")
    assert cfg.data_log_dir == "/d" and cfg.is_standalone()


# --------------------------------------------------------------------------
# the README's table of keys is the set pyzk.config understands


def _readme_table() -> list[tuple[list[str], list[str]]]:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## zoo.cfg", 1)[1].split("\n## ", 1)[0]
    rows = []
    for line in section.splitlines():
        if not line.startswith("| ") or line.startswith("| key") or "---" in line:
            continue
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        rows.append((re.findall(r"`([^`]+)`", cells[0]), re.findall(r"`([^`]+)`", cells[1])))
    return rows


def test_readme_key_table_matches_config() -> None:
    static_keys = (
        set(_STATIC_INT_KEYS)
        | set(_STATIC_BOOL_KEYS)
        | {"dataDir", "dataLogDir", "clientPort", "clientPortAddress", "secureClientPort"}
        | {"secureClientPortAddress", "electionAlg", "peerType", "dynamicConfigFile"}
        | {"server.N", "group.N", "weight.N", "authProvider.N"}
        | set(_STATIC_STR_KEYS)
    )
    documented_props: set[str] = set()
    rows = _readme_table()
    assert len(rows) > 30
    for cfg_keys, props in rows:
        for key in cfg_keys:
            assert key in static_keys or f"zookeeper.{key}" in USED_SYSTEM_PROPERTIES, key
        for prop in props:
            if prop.endswith(".*"):
                matches = {p for p in USED_SYSTEM_PROPERTIES if p.startswith(prop[:-1])}
                assert matches, prop
                documented_props |= matches
            else:
                assert prop in USED_SYSTEM_PROPERTIES, prop
                documented_props.add(prop)
    assert documented_props | {"zookeeper.multiAddress.enabled"} == USED_SYSTEM_PROPERTIES


def test_snapshot_compression_and_39_trailer_keys(tmp_path: Path) -> None:
    cfg = load_config(minimal(tmp_path, "snapshot.compression.method=SNAPPY\n"))
    assert cfg.snapshot_compression == "snappy"  # StreamMode.fromString ignores case
    assert cfg.serialize_last_processed_zxid is False  # 3.8 writes no trailer
    cfg = load_config(minimal(tmp_path, "serializeLastProcessedZxid.enabled=TRUE\n"))
    assert cfg.serialize_last_processed_zxid is True
