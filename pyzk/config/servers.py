"""Ensemble membership: ``server.N``, ``group.N``, ``weight.N`` and ``version``.

What QuorumPeerConfig and the QuorumVerifiers make of those lines, with
Apache's error wording (the caller prefixes the key).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pyzk.config.errors import ConfigError
from pyzk.config.values import DECIMAL, HEX, INT_MAX, INT_MIN, LONG_MAX, LONG_MIN, parse_java_int
from pyzk.javacompat import java_split, java_trim


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


def _host_and_port(s: str) -> list[str]:
    """ConfigUtils.getHostAndPort: split on ':' with [IPv6] literals."""
    if s.startswith("["):
        i = s.find("]")
        if i < 0:
            raise ConfigError(f"{s} starts with '[' but has no matching ']:'")
        if i + 2 == len(s):
            raise ConfigError(f"{s} doesn't have a port after colon")
        if i + 2 < len(s):
            return [s[1:i], *java_split(s[i + 2 :], ":")]
        return [s.replace("[", "").replace("]", "")]
    return java_split(s, ":")


def _port(text: str, what: str) -> int:
    """A port number as InetSocketAddress accepts it."""
    if not DECIMAL.fullmatch(text) or not INT_MIN <= int(text) <= INT_MAX:
        raise ConfigError(f"Address unresolved: {what}")
    n = int(text)
    if not 0 <= n <= 0xFFFF:
        raise ConfigError(f"port out of range:{n}")
    return n


def parse_server_line(sid: int, value: str, *, multi_address: bool = False) -> ServerSpec:
    """Parse the value of ``server.<sid>`` (QuorumServer's address string).

    Errors carry Apache's wording; the caller prefixes the key.
    """
    server_client = java_split(value, ";")
    if not server_client:
        raise ConfigError(value + _WRONG_FORMAT)
    addresses = java_split(server_client[0], "|")
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
class Quorum:
    """What a QuorumVerifier holds: members, optional groups/weights, version."""

    servers: dict[int, ServerSpec]
    groups: dict[int, tuple[int, ...]]
    weights: dict[int, int]
    version: int


def _parse_key_id(key: str) -> int:
    """The number after the first dot of server.N / group.N / weight.N (a Java long)."""
    dot = key.find(".")
    return parse_java_int(key, key[dot + 1 :], LONG_MIN, LONG_MAX)


def parse_quorum(props: Mapping[str, str], *, multi_address: bool) -> Quorum:
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
            if not HEX.fullmatch(value):
                raise ConfigError(f"version: invalid hex number {value!r}")
            version = int(value, 16)
        elif hierarchical and key.startswith("group"):
            gid = _parse_key_id(key)
            members = []
            for s in value.split(":"):
                sid = parse_java_int(key, s, LONG_MIN, LONG_MAX)
                if sid in server_group:
                    raise ConfigError(f"{key}: Server {sid}is in multiple groups")
                server_group[sid] = gid
                members.append(sid)
            groups[gid] = tuple(members)
        elif hierarchical and key.startswith("weight"):
            weights[_parse_key_id(key)] = parse_java_int(key, value, LONG_MIN, LONG_MAX)
    if hierarchical:
        for spec in servers.values():
            if spec.role == "participant":
                if spec.sid not in server_group:
                    raise ConfigError(f"server.{spec.sid}: Server {spec.sid}is not in a group")
                weights.setdefault(spec.sid, 1)
    return Quorum(servers, groups, weights, version)


def version_from_filename(path: str) -> int | None:
    """getVersionFromFilename: the hex suffix after the last dot, if any."""
    suffix = path.rsplit(".", 1)[-1] if "." in path else None
    if suffix is None or not HEX.fullmatch(suffix):
        return None
    n = int(suffix, 16)
    return n if LONG_MIN <= n <= LONG_MAX else None


def is_quorum_key(key: str) -> bool:
    return key.startswith(("server.", "group", "weight"))
