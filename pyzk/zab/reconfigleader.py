"""A leader core that commits reconfigurations (Apache's Leader with reconfigEnabled).

pyzk.zab.leader.LeaderCore counts acks against one configuration. While a
reconfig is proposed and not yet committed, Apache's Proposal carries one ack
set per configuration (the committed one and the proposed one, its
``qvAcksetPairs``) and a proposal commits only with a quorum of each. When the
reconfig itself commits the leader

* picks the designated leader of the new configuration (itself if it is a voter
  there on the same quorum address, else the voter that acked the most of what
  is outstanding: Leader.getDesignatedLeader),
* activates the configuration (:class:`ActivateConfig`, which the shell turns into
  QuorumPeer.processReconfig: files, /zookeeper/config, election view),
* sends COMMITANDACTIVATE to followers and INFORMANDACTIVATE to observers instead
  of COMMIT/INFORM,
* and, when it is not the designated leader, stops committing (allowedToCommit):
  the designated leader takes over after the next election.

A proposed reconfig is reported with :class:`SeeConfig` (setLastSeenQuorumVerifier,
which writes ``zoo.cfg.dynamic.next``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from pyzk.jute.constants import OpCode
from pyzk.quorum.verifier import QuorumMaj
from pyzk.zab import packets as P
from pyzk.zab.actions import Action, Entry
from pyzk.zab.leader import BROADCAST, LeaderCore, _Proposal
from pyzk.zab.zxid import hexz, is_epoch_start

log = logging.getLogger(__name__)

_TXN_TYPE_OFFSET = 8 + 4 + 8 + 8  # TxnHeader: clientId, cxid, zxid, time, then type


@dataclass(frozen=True, slots=True)
class SeeConfig:
    """A reconfig was proposed: ``verifier`` is the last seen configuration."""

    verifier: QuorumMaj


@dataclass(frozen=True, slots=True)
class ActivateConfig:
    """The reconfig at ``zxid`` committed: ``verifier`` is now the configuration and
    ``designated_leader`` leads it."""

    verifier: QuorumMaj
    designated_leader: int
    zxid: int


def txn_type(data: bytes) -> int:
    return int.from_bytes(data[_TXN_TYPE_OFFSET:_TXN_TYPE_OFFSET + 4], "big", signed=True)


def reconfig_verifier(data: bytes) -> QuorumMaj:
    """The configuration a reconfig txn's SetDataTxn carries."""
    from pyzk.txnlog.txn import decode_txn

    _hdr, txn, _digest = decode_txn(data)
    return QuorumMaj.from_string(txn.data.decode("utf-8"))


class ReconfigLeaderCore(LeaderCore):
    """LeaderCore plus Apache's reconfiguration commit rules (``quorum`` must be a
    :class:`~pyzk.quorum.verifier.QuorumMaj`; ``last_seen`` is the newest
    configuration proposed so far)."""

    def __init__(self, sid: int, quorum: QuorumMaj, *, last_seen: QuorumMaj | None = None,
                 **kw: Any) -> None:
        super().__init__(sid, quorum, **kw)
        self.next_quorum = last_seen if last_seen is not None \
            and last_seen.version > quorum.version else None
        self.allowed_to_commit = True
        self._pairs: dict[int, list[tuple[QuorumMaj, set[int]]]] = {}
        self._reconfigs: set[int] = set()

    def is_quorum_synced(self, qv: QuorumMaj) -> bool:
        """Leader.isQuorumSynced: voters of ``qv`` among us and the synced followers."""
        ids = {self.sid} if self.sid in qv.voting else set()
        for h in self.forwarding:
            if self.tick <= h.tick_deadline and h.sid in qv.voting:
                ids.add(h.sid)
        return qv.contains_quorum(ids)

    def propose(self, entry: Entry) -> list[Action]:
        if self.phase == BROADCAST and txn_type(entry.data) == OpCode.reconfig:
            qv = reconfig_verifier(entry.data)
            self.next_quorum = qv
            self._reconfigs.add(entry.zxid)
            self._out.append(SeeConfig(qv))
        actions = super().propose(entry)
        if entry.zxid in self.outstanding:
            pairs: list[tuple[QuorumMaj, set[int]]] = [(self.quorum, set())]  # type: ignore[list-item]
            nxt = self.next_quorum
            if nxt is not None and nxt.version > self.quorum.version:
                pairs.append((nxt, set()))
            self._pairs[entry.zxid] = pairs
        return actions

    def _process_ack(self, sid: int, zxid: int) -> None:
        if not self.allowed_to_commit or is_epoch_start(zxid):
            return
        if not self.outstanding or self.last_committed >= zxid:
            return
        p = self.outstanding.get(zxid)
        if p is None:
            log.warning("Trying to commit future proposal: zxid 0x%s from %d", hexz(zxid), sid)
            return
        for qv, acks in self._pairs.get(zxid, ()):
            if sid in qv.voting:
                acks.add(sid)
        if self._try_to_commit(p, zxid) and zxid in self._reconfigs:
            self._reconfigs.discard(zxid)
            z = zxid
            while self.allowed_to_commit:
                z += 1
                nxt = self.outstanding.get(z)
                if nxt is None or not self._try_to_commit(nxt, z):
                    break

    def _designated_leader(self, new_qv: QuorumMaj, new_acks: set[int], zxid: int) -> int:
        me = new_qv.members.get(self.sid)
        cur = self.quorum.members.get(self.sid)  # type: ignore[attr-defined]
        if self.sid in new_qv.voting and me is not None and cur is not None \
                and (me.host, me.quorum_port) == (cur.host, cur.quorum_port):
            return self.sid
        candidates = sorted(new_acks - {self.sid})
        best = candidates[0]
        z = zxid + 1
        while z in self.outstanding and candidates:
            for _qv, acks in self._pairs.get(z, ()):
                candidates = [c for c in candidates if c in acks]
                if not candidates:
                    return best
                best = candidates[0]
                if len(candidates) == 1:
                    return best
            z += 1
        return best

    def _try_to_commit(self, p: _Proposal, zxid: int) -> bool:
        if zxid - 1 in self.outstanding:
            return False
        pairs = self._pairs.get(zxid)
        if pairs is None or not all(qv.contains_quorum(acks) for qv, acks in pairs):
            return False
        if zxid != self.last_committed + 1:
            log.warning("Commiting zxid 0x%s not first! First is 0x%s", hexz(zxid),
                        hexz(self.last_committed + 1))
        del self.outstanding[zxid]
        del self._pairs[zxid]
        self.last_committed = zxid
        data = p.entry.data
        if txn_type(data) == OpCode.reconfig:
            new_qv, new_acks = pairs[-1]
            designated = self._designated_leader(new_qv, new_acks, zxid)
            self._out.append(ActivateConfig(new_qv, designated, zxid))
            self.quorum = new_qv
            self.next_quorum = None
            if designated != self.sid:
                log.info("Committing a reconfiguration (reconfigEnabled=true); this leader is "
                         "not the designated leader anymore, setting allowedToCommit=false")
                self.allowed_to_commit = False
            commit = P.commit_and_activate_packet(zxid, designated)
            inform = P.inform_and_activate_packet(zxid, designated, data)
        else:
            commit = P.commit_packet(zxid)
            inform = P.inform_packet(zxid, data)
        self._broadcast_commit(p, zxid, commit, inform)
        return True
