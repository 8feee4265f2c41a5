"""Majority quorums (Apache's QuorumMaj) and the configuration text peers send.

Every FLE notification of 3.5+ carries the sender's QuorumVerifier as text
(``server.N=host:qport:eport:role;clientHost:clientPort`` lines, then
``version=<hex>``).  Apache compares its version with its own and may adopt
a newer one, so the text must match Apache's byte for byte; it is produced by
pyzk.config's ServerConfig.quorum_config_string, the same code that writes
/zookeeper/config and the dynamic config file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pyzk.config import (
    ConfigError,
    ServerConfig,
    ServerSpec,
    parse_properties,
    parse_server_line,
)
from pyzk.javacompat import java_trim

_LONG_MIN = -(2**63)
_LONG_MAX = 2**63 - 1


class QuorumMaj:
    """A majority of voting members (participants); observers never count.

    ``half`` is ``voters // 2`` and a set of acks is a quorum when it holds
    more than ``half`` voters, as QuorumMaj.containsQuorum (which trusts its
    caller to pass only voters: :meth:`contains_quorum` filters them itself,
    as SyncedLearnerTracker.addAck does before calling it).
    """

    __slots__ = ("members", "version", "voting", "observing", "half", "_bytes")

    def __init__(self, members: Mapping[int, ServerSpec] | Iterable[ServerSpec], version: int = 0):
        specs = members.values() if isinstance(members, Mapping) else members
        self.members: dict[int, ServerSpec] = {s.sid: s for s in specs}
        self.version = version
        self.voting = frozenset(s.sid for s in self.members.values() if s.role == "participant")
        self.observing = frozenset(s.sid for s in self.members.values() if s.role != "participant")
        self.half = len(self.voting) // 2
        self._bytes: bytes | None = None

    @classmethod
    def from_config(cls, cfg: ServerConfig) -> QuorumMaj:
        """The verifier of a loaded zoo.cfg (hierarchical quorums are refused)."""
        if cfg.groups or cfg.weights:
            raise ConfigError("hierarchical quorums (group.N/weight.N) are not supported by pyzk")
        return cls(cfg.servers, cfg.config_version)

    @classmethod
    def from_string(cls, text: str) -> QuorumMaj:
        """QuorumPeer.configFromString: parse config text a peer sent.

        Like parseDynamicConfig without backward compatibility, any key other
        than ``server.N`` and ``version`` is refused.
        """
        members: dict[int, ServerSpec] = {}
        version = 0
        for raw_key, raw_value in parse_properties(text).items():
            key, value = java_trim(raw_key), java_trim(raw_value)
            if key.startswith(("group", "weight")):
                raise ConfigError("hierarchical quorums (group.N/weight.N) are not supported")
            if key == "version":
                try:
                    version = int(value, 16)
                except ValueError:
                    raise ConfigError(f"version: invalid hex number {value!r}") from None
                if not _LONG_MIN <= version <= _LONG_MAX:
                    raise ConfigError(f"version: out of range {value!r}")
            elif key.startswith("server."):
                try:
                    sid = int(key[key.index(".") + 1 :])
                except ValueError:
                    raise ConfigError(f"{key}: invalid server id") from None
                members[sid] = parse_server_line(sid, value)
            else:
                raise ConfigError(f"Unrecognised parameter: {key}")
        voters = sum(1 for s in members.values() if s.role == "participant")
        if voters == 0 and members:
            raise ConfigError("Observers w/o participants is an invalid configuration")
        return cls(members, version)

    def get_weight(self, sid: int) -> int:
        """QuorumMaj gives every server weight 1 (FLE never votes for weight 0)."""
        return 1

    def contains_quorum(self, acks: Iterable[int]) -> bool:
        return len(self.voting.intersection(acks)) > self.half

    def to_string(self) -> str:
        """QuorumMaj.toString(): member lines in Java HashMap order, then version."""
        cfg = ServerConfig(data_dir="", servers=self.members, config_version=self.version)
        return cfg.quorum_config_string()

    def to_bytes(self) -> bytes:
        """The config bytes a notification carries (computed once: members
        and version are fixed after construction)."""
        if self._bytes is None:
            self._bytes = self.to_string().encode()
        return self._bytes

    def same_members(self, other: QuorumMaj) -> bool:
        """QuorumMaj.equals: equal versions, or the same servers with the same
        addresses and roles."""
        if self.version == other.version:
            return True
        if self.members.keys() != other.members.keys():
            return False
        return all(_same_server(s, other.members[sid]) for sid, s in self.members.items())

    def __repr__(self) -> str:
        return (
            f"QuorumMaj(voting={sorted(self.voting)}, observing={sorted(self.observing)}, "
            f"version={self.version:#x})"
        )


def _same_server(a: ServerSpec, b: ServerSpec) -> bool:
    return (
        a.role == b.role
        and (a.host, a.quorum_port, a.election_port) == (b.host, b.quorum_port, b.election_port)
        and (a.client_host, a.client_port) == (b.client_host, b.client_port)
    )
