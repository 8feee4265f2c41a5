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
  the kept keys; :func:`properties_order` reproduces that order.

Every file is written whole to a temporary name and renamed over the old one
(AtomicFileWritingIdiom), so a crash leaves either the old or the new file.
"""

from __future__ import annotations

import contextlib
import logging
import os

from pyzk.config import parse_properties
from pyzk.javacompat import java_trim
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


def _java_string_hash(s: str) -> int:
    """String.hashCode over UTF-16 code units, as an unsigned 32-bit value."""
    data = s.encode("utf-16-be")
    h = 0
    for i in range(0, len(data), 2):
        h = (31 * h + (data[i] << 8 | data[i + 1])) & 0xFFFFFFFF
    return h


def _spread(key: str) -> int:
    """ConcurrentHashMap.spread of the key's hashCode."""
    h = _java_string_hash(key)
    return (h ^ (h >> 16)) & 0x7FFFFFFF


def properties_order(keys: list[str]) -> list[str]:
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
        h = _spread(key)
        table[h & (n - 1)].append((h, key))
        if len(seen) >= n - (n >> 2):
            table = _transfer(table, n)
            n <<= 1
    return [key for bin_ in table for _h, key in bin_]


def _transfer(table: list[list[tuple[int, str]]], n: int) -> list[list[tuple[int, str]]]:
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
