"""Preparing a reconfig request on the leader (PrepRequestProcessor's reconfig case).

A reconfig (opcode 16) becomes a SetDataTxn on ``/zookeeper/config`` whose data
is the new configuration's text with ``version=<the txn's zxid>``; the txn
header keeps type reconfig, which is how every member recognises it. The
checks run in Apache's order, each with its error code:

1. reconfigEnabled false: ReconfigDisabled (Preparer does this one itself);
2. not a leader: Unimplemented (Preparer, when no :class:`ReconfigPreparer` is set);
3. a proposed configuration not yet committed: ReconfigInProgress;
4. ``curConfigId`` neither -1 nor the last seen version: BadVersion;
5. a bad member list: BadArguments (a malformed id: MarshallingError, as
   Apache's NumberFormatException ends there);
6. fewer than 2 voters (1 with standaloneEnabled=false): BadArguments;
7. no quorum of the new configuration synced with the leader: NewConfigNoQuorum;
8. no WRITE permission on /zookeeper/config (world may only read it, so only
   a super user or skipACL passes): NoAuth.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from pyzk.config import ConfigError, ServerSpec, parse_server_line
from pyzk.core.errors import KeeperError
from pyzk.jute.constants import Err, Perms
from pyzk.jute.records import Id, ReconfigRequest, SetDataTxn, TxnHeader
from pyzk.quorum.confignode import CONFIG_NODE
from pyzk.quorum.verifier import QuorumMaj

if TYPE_CHECKING:
    from pyzk.core.prep import Preparer

log = logging.getLogger(__name__)


def _split(text: str | None) -> list[str] | None:
    """ZooKeeper's StringUtils.split(s, ","): trimmed, empty parts dropped."""
    if text is None:
        return None
    return [p.strip() for p in text.split(",") if p.strip()]


def _special(host: str | None) -> bool:
    """excludedSpecialAddresses: wildcard and loopback addresses are never conflicts."""
    if host is None or host == "localhost":
        return True
    try:
        ip = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return ip.is_unspecified or ip.is_loopback


def _addresses(s: ServerSpec) -> set[tuple[str, int]]:
    """QuorumServer's myAddrs: quorum, client and election addresses that count."""
    addrs = {(s.host, s.quorum_port), (s.host, s.election_port)}
    if s.client_port is not None:
        addrs.add((s.client_host or "0.0.0.0", s.client_port))
    return {a for a in addrs if not _special(a[0])}


def incremental(last_seen: QuorumMaj, joining: str | None, leaving: str | None,
                zxid: int) -> QuorumMaj:
    """The next configuration: ``last_seen`` minus ``leaving`` plus ``joining``."""
    servers: dict[int, ServerSpec] = dict(last_seen.members)
    for sid_text in _split(leaving) or ():
        servers.pop(int(sid_text), None)  # ValueError -> MarshallingError
    for joiner in _split(joining) or ():
        parts = [p.strip() for p in joiner.split("=") if p.strip()]
        if len(parts) != 2:
            raise KeeperError(Err.BADARGUMENTS)
        sid = int(parts[0][parts[0].rfind(".") + 1:])
        try:
            spec = parse_server_line(sid, parts[1])
        except ConfigError:
            raise KeeperError(Err.BADARGUMENTS) from None
        if spec.client_port is None:
            # "Wrong format of server string - each server should have 3 ports specified"
            raise KeeperError(Err.BADARGUMENTS)
        for other in servers.values():
            if other.sid != sid and _addresses(spec) & _addresses(other):
                raise KeeperError(Err.BADARGUMENTS)  # "Reconfiguration failed"
        servers.pop(sid, None)
        servers[sid] = spec
    return QuorumMaj(servers, zxid)


def non_incremental(new_members: str, zxid: int) -> QuorumMaj:
    """The configuration ``newMembers`` lists (commas or newlines between lines)."""
    try:
        qv = QuorumMaj.from_string(new_members.replace(",", "\n"))
    except ConfigError:
        raise KeeperError(Err.BADARGUMENTS) from None
    return QuorumMaj(qv.members, zxid)


class PeerConfigs(Protocol):
    """The configurations a reconfig starts from (pyzk.shell.quorumpeer.QuorumPeer has them)."""

    #: The committed configuration.
    verifier: QuorumMaj
    #: The newest one proposed (the committed one when no reconfig is in flight).
    last_seen: QuorumMaj


class ReconfigPreparer:
    """What a leader's Preparer calls for a reconfig request.

    ``peer`` gives the current and last seen configurations (a
    pyzk.shell.quorumpeer.QuorumPeer); ``quorum_synced(qv)`` is Leader.isQuorumSynced.
    """

    def __init__(self, peer: PeerConfigs, quorum_synced: Callable[[QuorumMaj], bool], *,
                 standalone_enabled: bool = True) -> None:
        self.peer = peer
        self.quorum_synced = quorum_synced
        self.standalone_enabled = standalone_enabled

    def __call__(self, prep: Preparer, hdr: TxnHeader, body: bytes | memoryview,
                 auth: list[Id]) -> SetDataTxn:
        peer = self.peer
        last_seen: QuorumMaj = peer.last_seen
        if last_seen.version != peer.verifier.version:
            raise KeeperError(Err.RECONFIGINPROGRESS)
        req = ReconfigRequest.decode(body, 0, prep.maxbuf)[0]
        if req.curConfigId != -1 and req.curConfigId != last_seen.version:
            log.info("Reconfiguration from version %d failed -- last seen version is %d",
                     req.curConfigId, last_seen.version)
            raise KeeperError(Err.BADVERSION)
        zxid = hdr.zxid
        if req.newMembers is not None:
            log.info("Non-incremental reconfig")
            qv = non_incremental(req.newMembers, zxid)
        else:
            log.info("Incremental reconfig")
            qv = incremental(last_seen, req.joiningServers, req.leavingServers, zxid)
        voters = len(qv.voting)
        if self.standalone_enabled and voters < 2:
            log.warning("Reconfig failed - new configuration must include at least 2 followers")
            raise KeeperError(Err.BADARGUMENTS)
        if voters < 1:
            log.warning("Reconfig failed - new configuration must include at least 1 follower")
            raise KeeperError(Err.BADARGUMENTS)
        if not self.quorum_synced(qv):
            log.warning("Reconfig failed - there must be a connected and synced quorum in new "
                        "configuration")
            raise KeeperError(Err.NEWCONFIGNOQUORUM)
        rec = prep.record_for(CONFIG_NODE)
        prep.check_acl(rec.acl, Perms.WRITE, auth)
        data = qv.to_string().encode("utf-8")
        new = rec.duplicate(zxid)
        new.stat.version = -1
        new.stat.mtime = hdr.time
        new.stat.mzxid = zxid
        new.data = data
        prep._add(new)  # noqa: SLF001 - the change record, as addChangeRecord
        return SetDataTxn(CONFIG_NODE, data, -1)
