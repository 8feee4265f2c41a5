"""zoo.cfg, read the way Apache ZooKeeper 3.8 reads it (the parsing; no file I/O).

pyzk must start from any configuration Apache starts from and refuse the
ones Apache refuses, so this package follows QuorumPeerConfig closely:

* the file is a ``java.util.Properties`` file (ISO-8859-1, ``#``/``!``
  comments, ``key=value``/``key: value``/``key value``, backslash
  continuations and escapes), keys and values then trimmed like
  ``String.trim()`` (:mod:`pyzk.config.properties`);
* keys QuorumPeerConfig does not know become the system property
  ``zookeeper.<key>``, which is how ``skipACL=yes`` or
  ``4lw.commands.whitelist=*`` in zoo.cfg take effect; system properties
  given as ``-Dname=value`` in SERVER_JVMFLAGS/JVMFLAGS come first and are
  overridden by zoo.cfg, as ``System.setProperty`` does in Apache
  (:mod:`pyzk.config.sysprops`);
* ensemble membership comes from ``server.N``/``group.N``/``weight.N`` lines,
  either in zoo.cfg or in the ``dynamicConfigFile``, and ``dataDir/myid``
  (:mod:`pyzk.config.servers`);
* :mod:`pyzk.config.parse` turns the properties into a
  :class:`ServerConfig` (:mod:`pyzk.config.model`).

Settings Apache reads from system properties are parsed with the JDK's
lenient rules (``Integer.getInteger`` falls back to the default on garbage,
``Boolean.getBoolean`` is true only for "true"): a config that Apache starts
with must start pyzk too; pyzk adds a warning where Apache is silent.
Settings of QuorumPeerConfig itself are strict: a bad value is a
:class:`ConfigError` naming the key.

The package is pure: reading zoo.cfg, the dynamic config file and myid is
pyzk.shell.configfile's (``load_config``, ``read_properties``).
"""

from __future__ import annotations

from pyzk.config.errors import ConfigError
from pyzk.config.model import DEFAULT_JUTE_MAXBUFFER, DEFAULT_TICK_TIME, ServerConfig
from pyzk.config.parse import (
    dynamic_quorum,
    next_dynamic_servers,
    parse_myid,
    parse_static,
    setup_quorum,
    static_quorum,
)
from pyzk.config.properties import parse_jvm_flags, parse_properties, trim_properties
from pyzk.config.servers import Quorum, ServerSpec, parse_quorum, parse_server_line
from pyzk.config.sysprops import (
    FOUR_LETTER_WORDS,
    SNAPSHOT_COMPRESSION_METHODS,
    four_letter_whitelist,
)
from pyzk.config.values import INT_MAX, INT_MIN, LONG_MAX, LONG_MIN

__all__ = [
    "DEFAULT_JUTE_MAXBUFFER",
    "DEFAULT_TICK_TIME",
    "FOUR_LETTER_WORDS",
    "INT_MAX",
    "INT_MIN",
    "LONG_MAX",
    "LONG_MIN",
    "SNAPSHOT_COMPRESSION_METHODS",
    "ConfigError",
    "Quorum",
    "ServerConfig",
    "ServerSpec",
    "dynamic_quorum",
    "four_letter_whitelist",
    "next_dynamic_servers",
    "parse_jvm_flags",
    "parse_myid",
    "parse_properties",
    "parse_quorum",
    "parse_server_line",
    "parse_static",
    "setup_quorum",
    "static_quorum",
    "trim_properties",
]
