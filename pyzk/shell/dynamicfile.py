"""The files a reconfiguration leaves behind, written as Apache's QuorumPeerConfig writes them.

* ``<zoo.cfg>.dynamic.<version hex>``: the committed configuration's member lines,
  sorted, joined by newlines, without ``version`` (writeDynamicConfig with
  needKeepVersion false); the version is in the file name.
* ``<zoo.cfg>.dynamic.next``: a proposed (last seen) configuration, with its
  ``version=`` line, deleted once it is committed.
* ``zoo.cfg`` itself is rewritten without its ``server.N``/``group``/``weight``/
  ``peerType``/``dynamicConfigFile`` keys (and without ``clientPort``/
  ``clientPortAddress`` when the new config gives this server a client address)
  and with ``dynamicConfigFile=<absolute path>`` appended (editStaticConfig).
  Apache iterates a java.util.Properties, i.e. a ConcurrentHashMap, to write
  the kept keys; :func:`pyzk.javacompat.properties_order` reproduces that order.

Every file is written whole to a temporary name and renamed over the old one
(AtomicFileWritingIdiom), so a crash leaves either the old or the new file.
"""

from __future__ import annotations

import contextlib
import logging
import os

from pyzk.config import parse_properties
from pyzk.javacompat import java_trim, properties_order
from pyzk.shell.configfile import read_properties

log = logging.getLogger(__name__)

NEXT_SUFFIX = ".dynamic.next"

#: Keys editStaticConfig never writes back (prefix match, as Apache's startsWith).
_DROPPED = ("server.", "group", "weight", "dynamicConfigFile", "peerType")
_CLIENT = ("clientPort", "clientPortAddress")


def dynamic_file_name(config_path: str, version: int) -> str:
    """QuorumPeer.makeDynamicConfigFilename."""
    return f"{config_path}.dynamic.{version:x}"


def next_file_name(config_path: str) -> str:
    """QuorumPeer.getNextDynamicConfigFilename."""
    return config_path + NEXT_SUFFIX


def _atomic_write(path: str, text: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w", encoding="latin-1", errors="replace") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def dynamic_config_text(config_text: str, *, keep_version: bool) -> str:
    """writeDynamicConfig's content for a QuorumVerifier's text."""
    lines = []
    for key, value in parse_properties(config_text).items():
        key = java_trim(key)
        if not keep_version and key.startswith("version"):
            continue
        lines.append(f"{key}={java_trim(value)}")
    return "\n".join(sorted(lines))


def write_dynamic_config(path: str, config_text: str, *, keep_version: bool) -> None:
    _atomic_write(path, dynamic_config_text(config_text, keep_version=keep_version))


def static_config_text(config_path: str, dynamic_path: str, *, erase_client: bool) -> str:
    """editStaticConfig's new content for the zoo.cfg at ``config_path``."""
    props = {java_trim(k): java_trim(v) for k, v in read_properties(config_path).items()}
    out = []
    for key in properties_order(list(props)):
        if key.startswith(_DROPPED) or (erase_client and key.startswith(_CLIENT)):
            continue
        out.append(f"{key}={props[key]}\n")
    out.append(f"dynamicConfigFile={os.path.realpath(dynamic_path)}\n")
    return "".join(out)


def edit_static_config(config_path: str, dynamic_path: str, *, erase_client: bool) -> None:
    _atomic_write(config_path, static_config_text(config_path, dynamic_path,
                                                  erase_client=erase_client))


def delete_file(path: str) -> None:
    """QuorumPeerConfig.deleteFile: quietly."""
    with contextlib.suppress(FileNotFoundError):
        try:
            os.unlink(path)
        except OSError as e:
            log.warning("deleting %s failed: %s", path, e)
