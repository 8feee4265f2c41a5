"""QuorumMaj: majorities of voters, Apache's config text and equality."""

from __future__ import annotations

import pytest

from pyzk.config import ConfigError, ServerSpec
from pyzk.quorum.verifier import QuorumMaj

pytestmark = pytest.mark.pure


def _specs(voters: int, observers: int = 0) -> list[ServerSpec]:
    return [
        ServerSpec(i, "127.0.0.1", 2000 + i, 3000 + i,
                   "participant" if i <= voters else "observer")
        for i in range(1, voters + observers + 1)
    ]  # fmt: skip


@pytest.mark.parametrize(("voters", "needed"), [(1, 1), (2, 2), (3, 2), (4, 3), (5, 3)])
def test_majority_of_voters(voters: int, needed: int) -> None:
    q = QuorumMaj(_specs(voters, 2))
    ids = list(range(1, voters + 1))
    assert q.contains_quorum(ids[:needed])
    assert not q.contains_quorum(ids[: needed - 1])
    # Observers never count.
    assert not q.contains_quorum(ids[: needed - 1] + [voters + 1, voters + 2])


def test_to_string_matches_apache_form() -> None:
    specs = _specs(3, 1)
    specs[0].client_host, specs[0].client_port = "0.0.0.0", 2181
    q = QuorumMaj(specs, 0x100000003)
    assert q.to_string() == (
        "server.1=127.0.0.1:2001:3001:participant;0.0.0.0:2181\n"
        "server.2=127.0.0.1:2002:3002:participant\n"
        "server.3=127.0.0.1:2003:3003:participant\n"
        "server.4=127.0.0.1:2004:3004:observer\n"
        "version=100000003"
    )
    back = QuorumMaj.from_string(q.to_string())
    assert back.to_bytes() == q.to_bytes()
    assert back.voting == {1, 2, 3} and back.observing == {4}
    assert back.version == 0x100000003


def test_same_members() -> None:
    a = QuorumMaj(_specs(3), 1)
    assert a.same_members(QuorumMaj(_specs(4), 1))  # same version: equal, as in Apache
    assert a.same_members(QuorumMaj(_specs(3), 2))
    moved = _specs(3)
    moved[2].election_port = 4000
    assert not a.same_members(QuorumMaj(moved, 2))
    assert not a.same_members(QuorumMaj(_specs(2, 1), 2))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("server.1=h:1:2\nfoo=bar", "Unrecognised parameter: foo"),
        ("server.1=h:1:2\ngroup.1=1", "hierarchical"),
        ("server.1=h:1:2\nversion=zz", "invalid hex"),
        ("server.x=h:1:2", "invalid server id"),
        ("server.1=h:1:1", "must be different"),
        ("server.1=h:1:2:observer", "Observers w/o participants"),
    ],
)
def test_from_string_errors(text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        QuorumMaj.from_string(text)
