"""The server core: sessions, the request pipeline and replies.

Transport-agnostic: connections are objects with ``send(bytes)``,
``close()`` and ``send_event(type, path)``; time comes in through the
``now_ms``/``wall_ms`` callables so tests can drive it.

One pipeline in every mode. A prepared write is :meth:`submit`-ted: its txn
is encoded once, kept under its zxid in ``proposed`` and handed to
``propose(hdr, data)``, which the shell provides. What "proposed" leads to is
the mode's quorum: standalone is a quorum of one whose only vote is its own
log (pyzk.shell.logstage calls :meth:`committed` once the txn is fsynced); a
leader's ``propose`` is ``LeaderCore.propose`` and the COMMIT of a quorum
calls :meth:`committed` (pyzk.core.roleservers). Without a shell (unit
tests) a txn is committed at once.

Pipeline (DESIGN.md section 1): a write is prepared (zxid assigned, txn or
error txn built against tree + outstanding changes), handed to the log, and
applied to the tree when the log says it is durable; only then is it
answered. Reads are answered from the tree at once unless the same session
has earlier requests still in flight, in which case they queue behind them
(per-session FIFO).
"""

from __future__ import annotations

import logging
import struct
from collections.abc import Callable, Mapping
from typing import Any

from pyzk.config import ConfigError, ServerConfig
from pyzk.config.parse import PROMETHEUS_METRICS_PROVIDER
from pyzk.core.digestmd5 import DigestMD5Server, SaslError
from pyzk.core.errors import KeeperError
from pyzk.core.kerberosname import KerberosNameError, authorized_id
from pyzk.core.metrics import LAST_OP_NAMES, count, observe
from pyzk.core.prep import WRITE_OPS, Prepared, Preparer
from pyzk.core.reads import Reads
from pyzk.core.sessions import SessionTracker
from pyzk.datatree import acl as aclmod
from pyzk.datatree.ephemeral import ttl_of
from pyzk.datatree.paths import top_namespace
from pyzk.datatree.tree import DataTree
from pyzk.jute.codec import JuteError
from pyzk.jute.constants import Err, KeeperState, OpCode
from pyzk.jute.multi import encode_multi_response
from pyzk.jute.records import (
    AuthPacket,
    ConnectRequest,
    ConnectResponse,
    Create2Response,
    CreateResponse,
    ErrorResponse,
    GetDataResponse,
    GetSASLRequest,
    Id,
    SetDataResponse,
    SetSASLResponse,
    TxnHeader,
)
from pyzk.txnlog.txn import encode_txn

log = logging.getLogger(__name__)

REPLY_HDR = struct.Struct(">iiqi")  # frame length, xid, zxid, err
_INT = struct.Struct(">i")
_REQ_HDR = struct.Struct(">ii")
NOTIFICATION_XID = -1
PING_XID = -2
_NULL_SASL_TOKEN = b"\xff\xff\xff\xff"  # SetSASLResponse(token=null)
AUTH_XID = -4

# Request types Apache's Request.isValid accepts.
VALID_OPS = frozenset({
    OpCode.check, OpCode.closeSession, OpCode.create, OpCode.create2, OpCode.createTTL,
    OpCode.createContainer, OpCode.createSession, OpCode.delete, OpCode.deleteContainer,
    OpCode.exists, OpCode.getACL, OpCode.getChildren, OpCode.getAllChildrenNumber,
    OpCode.getChildren2, OpCode.getData, OpCode.getEphemerals, OpCode.multi,
    OpCode.multiRead, OpCode.ping, OpCode.reconfig, OpCode.setACL, OpCode.setData,
    OpCode.setWatches, OpCode.setWatches2, OpCode.sync, OpCode.checkWatches,
    OpCode.removeWatches, OpCode.addWatch, OpCode.whoAmI,
})


_WRITE_STAT_OPS = frozenset({OpCode.create, OpCode.create2, OpCode.createTTL,
                             OpCode.createContainer, OpCode.delete, OpCode.deleteContainer,
                             OpCode.setData})

# The hot paths compare plain ints: naming an IntEnum member is a global
# and then an attribute lookup through the enum's metaclass (with the
# comparison about 0.4 us a test on these machines, several per request),
# and a tuple of members is rebuilt at every test.
_AUTH = int(OpCode.auth)
_SASL = int(OpCode.sasl)
_CREATE_SESSION = int(OpCode.createSession)
_CLOSE_SESSION = int(OpCode.closeSession)
_PING = int(OpCode.ping)
_MULTI = int(OpCode.multi)
_ERROR = int(OpCode.error)
_DELETE = int(OpCode.delete)
_DELETE_CONTAINER = int(OpCode.deleteContainer)
_CHECK = int(OpCode.check)
_SESSION_MOVED = int(Err.SESSIONMOVED)
_VALID_OPS = frozenset(int(o) for o in VALID_OPS)
_WRITE_OPS = frozenset(int(o) for o in WRITE_OPS)
_WRITE_STAT_INTS = frozenset(int(o) for o in _WRITE_STAT_OPS)


def _stat_reply(rc: Any, prepared: Any, out: bytearray) -> None:
    """SetDataResponse, SetACLResponse: the body is the Stat alone."""
    rc.stat.encode(out)


def _create_reply(rc: Any, prepared: Any, out: bytearray) -> None:
    CreateResponse(rc.path).encode(out)


def _create2_reply(rc: Any, prepared: Any, out: bytearray) -> None:
    Create2Response(rc.path, rc.stat).encode(out)


def _reconfig_reply(rc: Any, prepared: Any, out: bytearray) -> None:
    # the new configuration (the txn's data) and the config node's stat
    GetDataResponse(prepared.txn.data, rc.stat).encode(out)


#: The body of a successful write's reply, by op (multi and check apart;
#: delete and deleteContainer answer with no body).
_WRITE_REPLIES: dict[int, Callable[[Any, Any, bytearray], None]] = {
    int(OpCode.create): _create_reply,
    int(OpCode.create2): _create2_reply,
    int(OpCode.createTTL): _create2_reply,
    int(OpCode.createContainer): _create2_reply,
    int(OpCode.setData): _stat_reply,
    int(OpCode.setACL): _stat_reply,
    int(OpCode.reconfig): _reconfig_reply,
}

#: LAST_OP_NAMES by plain int, for the per-reply bookkeeping
_OP_NAMES = {int(k): v for k, v in LAST_OP_NAMES.items()}


class Entry:
    """One request on its way through the pipeline."""

    __slots__ = ("conn", "xid", "op", "body", "prepared", "received")

    def __init__(self, conn: Any, xid: int, op: int, body: bytes,
                 prepared: Prepared | None, received: float) -> None:
        self.conn = conn
        self.xid = xid
        self.op = op
        self.body = body
        self.prepared = prepared
        self.received = received


class ServerStats:
    """Counters behind srvr/stat/mntr."""

    __slots__ = ("packets_received", "packets_sent", "min_latency", "max_latency",
                 "total_latency", "count", "outstanding", "auth_failed",
                 "bytes_received", "watch_events", "fsyncs", "fsynced_txns",
                 "last_response_size", "min_response_size", "max_response_size",
                 "counters", "summaries", "sample_all")

    def __init__(self, sample_all: bool = False) -> None:
        #: every summary keeps samples (the Prometheus endpoint's medians)
        self.sample_all = sample_all
        self.reset()
        # Client response sizes (Apache BufferStats; -1 until the first reply).
        self.last_response_size = -1
        self.min_response_size = -1
        self.max_response_size = -1
        # mntr metrics by Apache's ServerMetrics name: counters (name -> int)
        # and summaries (name -> metrics.Summary); fed with
        # pyzk.core.metrics.count()/observe(), zeroed by srst.
        self.counters: dict[str, int] = {}
        self.summaries: dict[str, Any] = {}

    def reset(self) -> None:
        self.packets_received = 0
        self.packets_sent = 0
        self.min_latency = -1.0
        self.max_latency = 0.0
        self.total_latency = 0.0
        self.count = 0
        self.outstanding = 0
        self.auth_failed = 0
        self.bytes_received = 0
        self.watch_events = 0
        self.fsyncs = 0
        self.fsynced_txns = 0

    def latency(self, ms: float) -> None:
        if self.min_latency < 0 or ms < self.min_latency:
            self.min_latency = ms
        if ms > self.max_latency:
            self.max_latency = ms
        self.total_latency += ms
        self.count += 1


def auth_providers(cfg: ServerConfig) -> Mapping[str, aclmod.AuthProvider]:
    """The auth schemes ACLs may name (ProviderRegistry), from authProvider.N."""
    return aclmod.configured_providers(
        cfg.auth_provider_classes, digest_enabled=cfg.digest_auth_enabled,
        x509_super_user=cfg.x509_super_user)


def enforced_schemes(cfg: ServerConfig,
                     providers: Mapping[str, aclmod.AuthProvider]) -> tuple[str, ...] | None:
    """AuthenticationHelper's validation: the schemes to enforce, or None.

    ConfigError as Apache's IllegalArgumentException; the shell calls this
    when it loads the config, so an ensemble member fails at start too, not
    at its first election.
    """
    if not cfg.enforce_auth_enabled:
        return None
    if not cfg.enforce_auth_schemes:
        raise ConfigError("zookeeper.enforce.auth.enabled is true "
                          "zookeeper.enforce.auth.schemes must be  configured.")
    for scheme in cfg.enforce_auth_schemes:
        if scheme not in providers:
            raise ConfigError(f"Authentication scheme {scheme} is not available.")
    return cfg.enforce_auth_schemes


class ZooKeeperServer:
    #: ReadOnlyZooKeeperServer sets the ConnectResponse's readOnly flag (and srvr/isro say so).
    read_only = False

    def __init__(self, cfg: ServerConfig, *, now_ms: Callable[[], float],
                 wall_ms: Callable[[], int], server_id: int = 1, tree: DataTree | None = None,
                 sessions: dict[int, int] | None = None, zxid: int = 0) -> None:
        self.cfg = cfg
        self.now_ms = now_ms
        self.wall_ms = wall_ms
        self.maxbuf = cfg.jute_maxbuffer
        if tree is None:
            tree = DataTree(extended_types=cfg.extended_types_enabled,
                            digest_enabled=cfg.digest_enabled)
        self.tree = tree
        self.skip_acl = cfg.skip_acl
        self.super_digest = cfg.super_digest
        self.extended_types = cfg.extended_types_enabled
        self.providers = auth_providers(cfg)
        #: enforce.auth.schemes when enforcement is on (AuthenticationHelper), else None
        self.enforce_schemes = enforced_schemes(cfg, self.providers)
        self.sasl_auth_required = "sasl" in (self.enforce_schemes or ())
        self.prep = Preparer(
            self.tree, skip_acl=self.skip_acl, extended_types=self.extended_types,
            enforce_quota=cfg.enforce_quota, reconfig_enabled=cfg.reconfig_enabled,
            maxbuf=self.maxbuf, providers=self.providers)
        self.stats = ServerStats(
            sample_all=cfg.metrics_provider_class_name == PROMETHEUS_METRICS_PROVIDER)
        self.reads = Reads(self.tree, skip_acl=self.skip_acl, maxbuf=self.maxbuf,
                           stats=self.stats, providers=self.providers)
        self.min_session_timeout = cfg.min_session_timeout
        self.max_session_timeout = cfg.max_session_timeout
        self.sessions = SessionTracker(server_id, cfg.tick_time, int(now_ms()))
        # Sessions restored from disk get a full timeout to reconnect, as in Apache.
        for sid, timeout in (sessions or {}).items():
            self.sessions.add(sid, timeout, int(now_ms()))
        self.zxid = zxid
        #: The quorum's way in: ``propose(hdr, encoded_txn)``; set by the shell.
        self.propose: Callable[[TxnHeader, bytes], None] = self._commit_now
        #: Prepared writes by zxid, from submit() until their commit.
        self.proposed: dict[int, Entry] = {}
        self.conn_by_session: dict[int, Any] = {}
        self.connections: set[Any] = set()
        self.started_ms = wall_ms()
        self.log_failed: BaseException | None = None
        #: "<ns>_write_per_namespace" by namespace, made once each
        self._ns_write_names: dict[str, str] = {}

    # -- helpers ----------------------------------------------------------------

    def _commit_now(self, hdr: TxnHeader, data: bytes) -> None:
        self.committed(hdr.zxid)

    def submit(self, entry: Entry) -> None:
        """Hand a prepared write to the quorum (see the module docstring)."""
        if self.log_failed is not None:
            # The log is broken: never acknowledge a write that is not durable.
            if entry.conn is not None:
                entry.conn.close()
            return
        p = entry.prepared
        hdr = p.hdr
        self.proposed[hdr.zxid] = entry
        self.propose(hdr, encode_txn(hdr, p.txn, p.digest))

    def committed(self, zxid: int) -> None:
        """The quorum committed the txn proposed as ``zxid``: apply it and answer."""
        entry = self.proposed.pop(zxid, None)
        if entry is None:
            log.error("Commit of 0x%x that this server did not propose", zxid)
            return
        self.apply(entry)

    def next_zxid(self) -> int:
        self.zxid += 1
        return self.zxid

    @property
    def last_zxid(self) -> int:
        return self.tree.last_processed_zxid

    def reply(self, conn: Any, xid: int, err: int, body: bytes | bytearray = b"",
              zxid: int | None = None) -> None:
        if zxid is None:
            zxid = self.tree.last_processed_zxid
        conn.send(REPLY_HDR.pack(16 + len(body), xid, zxid, err) + body)
        self.stats.packets_sent += 1

    # -- connection establishment ---------------------------------------------

    def connect(self, conn: Any, frame: bytes) -> None:
        """Handle the first packet of a connection: a ConnectRequest."""
        req, pos = ConnectRequest.decode(frame, 0, self.maxbuf)
        self.stats.packets_received += 1
        count(self.stats, "connection_request_count")
        # An old client sends no readOnly flag and gets none back. (A
        # read-write server serves read-only clients too, so the flag's value
        # does not matter here.)
        conn.old_client = pos >= len(frame)
        if req.lastZxidSeen > self.tree.last_processed_zxid:
            log.info(
                "Refusing session request for client %s as it has seen zxid 0x%x our last "
                "zxid is 0x%x client must try another server", conn.remote,
                req.lastZxidSeen, self.tree.last_processed_zxid)
            conn.close()
            return
        timeout = max(self.min_session_timeout, min(req.timeOut, self.max_session_timeout))
        conn.timeout = timeout
        now = self.now_ms()
        if req.sessionId == 0:
            sid = self.sessions.new_session_id()
            conn.session_id = sid
            self.sessions.add(sid, timeout, int(now))
            self.conn_by_session[sid] = conn
            self.create_session(conn, sid, timeout, now)
            return
        sid = req.sessionId
        count(self.stats, "connection_revalidate_count")
        old = self.conn_by_session.get(sid)
        if old is not None and old is not conn:
            old.close()
        conn.session_id = sid
        valid = (req.passwd == self.sessions.password(sid)
                 and self.sessions.touch(sid, int(now), timeout))
        if not valid:
            log.info("Invalid session 0x%x for client %s, probably expired", sid & (2**64 - 1),
                     conn.remote)
        else:
            self.conn_by_session[sid] = conn
        self.finish_session_init(conn, valid)

    def create_session(self, conn: Any, sid: int, timeout: int, now: float) -> None:
        """A new session's createSession txn, answered with the ConnectResponse
        once it is applied (a learner overrides this to forward it)."""
        prepared = self.prepare(sid, 0, OpCode.createSession, _INT.pack(timeout), [])
        entry = Entry(conn, 0, OpCode.createSession, b"", prepared, now)
        conn.inflight.append(entry)
        self.submit(entry)

    def finish_session_init(self, conn: Any, valid: bool) -> None:
        sid = conn.session_id
        rsp = ConnectResponse(0, conn.timeout if valid else 0, sid if valid else 0,
                              self.sessions.password(sid) if valid else bytes(16))
        out = bytearray(b"\0\0\0\0")
        rsp.encode(out)
        if not conn.old_client:
            out += b"\1" if self.read_only else b"\0"
        out[0:4] = _INT.pack(len(out) - 4)
        conn.send(bytes(out))
        # Apache's createSession path returns before updating the
        # connection's last-op stats, so cons keeps lop=null here.
        self.stats.packets_sent += 1
        if valid:
            conn.established = True
        else:
            conn.session_id = 0
            conn.close()

    # -- requests -----------------------------------------------------------------

    def request(self, conn: Any, frame: bytes) -> None:
        """Handle one framed request (after the handshake)."""
        stats = self.stats
        stats.packets_received += 1
        if len(frame) < 8:
            raise JuteError("request shorter than its header")
        xid, op = _REQ_HDR.unpack_from(frame, 0)
        body = frame[8:]
        now = self.now_ms()
        conn.cnxn_stats.touch(now)
        sid = conn.session_id
        if op == _AUTH:
            self._auth(conn, xid, body)
            return
        if op == _SASL:
            self._sasl(conn, xid, body)
            return
        if self.enforce_schemes is not None and not any(
                a.scheme in self.enforce_schemes for a in conn.auth):
            # AuthenticationHelper.enforceAuthentication: answer, then close
            # the connection (the session lives on until it expires)
            log.error("Client authentication scheme(s) %s does not match with any of the "
                      "expected authentication scheme %s, closing session.",
                      "[" + ", ".join(a.scheme for a in conn.auth) + "]",
                      "[" + ", ".join(self.enforce_schemes) + "]")
            self.reply(conn, xid, Err.SESSIONCLOSEDREQUIRESASLAUTH, zxid=0)
            conn.close()
            return
        self.sessions.touch(sid, int(now))
        if op not in _VALID_OPS or op == _CREATE_SESSION:
            log.warning("Received packet at server of unknown type %d", op)
            self.reply(conn, xid, Err.UNIMPLEMENTED, zxid=-1)
            conn.close()
            return
        if op in _WRITE_OPS:
            self.write(conn, xid, op, body, now)
            return
        if conn.inflight:
            conn.inflight.append(Entry(conn, xid, op, body, None, now))
            stats.outstanding += 1
            return
        self._read(conn, xid, op, body, now)

    def write(self, conn: Any, xid: int, op: int, body: bytes, now: float) -> None:
        """A client's write: prepare it here and hand it to the log stage (an
        ensemble's learner overrides this to forward it to the leader)."""
        entry = Entry(conn, xid, op, body,
                      self.prepare(conn.session_id, xid, op, body, conn.auth), now)
        conn.inflight.append(entry)
        self.stats.outstanding += 1
        self.submit(entry)

    def prepare(self, sid: int, xid: int, op: int, body: bytes, auth: list[Id]) -> Prepared:
        """PrepRequestProcessor for one write of session ``sid``, from a client of
        this server or forwarded by a learner: the next zxid and its txn (an
        error txn when the request fails). ``body`` of a createSession is its
        timeout, as a learner's REQUEST carries it."""
        zxid = self.next_zxid()
        wall = self.wall_ms()
        if op == _CREATE_SESSION:
            timeout = _INT.unpack_from(body, 0)[0] if len(body) >= 4 else 0
            return self.prep.create_session(sid, timeout, zxid, wall)
        if op == _CLOSE_SESSION:
            prepared = self.prep.close_session(sid, xid, zxid, wall)
            self.sessions.set_closing(sid)
            return prepared
        return self.prep.prepare(sid, xid, op, body, auth, zxid, wall)

    def _read(self, conn: Any, xid: int, op: int, body: bytes, received: float) -> None:
        if op == _PING:
            self.reply(conn, PING_XID, 0)
            self._finished(conn, xid, "PING", received, 16, read=True)
            return
        out = bytearray(20)
        err = 0
        try:
            self.reads.handlers[op](body, conn, conn.session_id, conn.auth, out)
        except KeeperError as e:
            err = e.code
            if not e.keep_body:
                del out[20:]
        except Exception:
            # Apache answers any failure while serving a request with
            # MarshallingError and keeps the session.
            log.exception("Failed to process request type %d", op)
            err = Err.MARSHALLINGERROR
            del out[20:]
        REPLY_HDR.pack_into(out, 0, len(out) - 4, xid, self.tree.last_processed_zxid, err)
        conn.send(bytes(out))
        self.stats.packets_sent += 1
        self._finished(conn, xid, _OP_NAMES.get(op, "NA"), received, len(out) - 4,
                       read=True)

    def _finished(self, conn: Any, xid: int, op_name: str, received: float, size: int,
                  read: bool) -> None:
        """Per-reply bookkeeping behind srvr/cons/mntr."""
        now = self.now_ms()
        ms = now - received
        stats = self.stats
        stats.latency(ms)
        stats.last_response_size = size
        if stats.min_response_size < 0 or size < stats.min_response_size:
            stats.min_response_size = size
        if size > stats.max_response_size:
            stats.max_response_size = size
        name = "readlatency" if read else "updatelatency"
        s = stats.summaries.get(name)
        if s is None:
            observe(stats, name, int(ms))
        else:
            s.add(int(ms))
        conn.cnxn_stats.update(xid, self.tree.last_processed_zxid, op_name, received, now)

    def _auth(self, conn: Any, xid: int, body: bytes) -> None:
        pkt = AuthPacket.decode(body, 0, self.maxbuf)[0]
        scheme = pkt.scheme
        ok = False
        if scheme == "digest":
            ident = (pkt.auth or b"").decode("utf-8", "replace")
            digest = aclmod.digest_id(ident)
            if self.super_digest and digest == self.super_digest:
                _add_auth(conn.auth, Id("super", ""))
            _add_auth(conn.auth, Id("digest", digest))
            ok = True
        elif scheme == "ip":
            _add_auth(conn.auth, Id("ip", conn.remote_ip))
            ok = True
        if ok:
            log.info("Session 0x%x: auth success for scheme %s and address %s",
                     conn.session_id & (2**64 - 1), scheme, conn.remote)
            self.reply(conn, xid, 0, zxid=0)
        else:
            log.warning("Authentication failed for scheme: %s", scheme)
            self.stats.auth_failed += 1
            self.reply(conn, xid, Err.AUTHFAILED, zxid=0)
            conn.close()

    def _sasl(self, conn: Any, xid: int, body: bytes) -> None:
        """ZooKeeperServer.processSasl: DIGEST-MD5, or GSSAPI when the JAAS
        Server section logs in with Kerberos (the shell holds the keytab's
        credentials and makes the GSSAPI mechanism: ``conn.new_gssapi_server``)."""
        token = GetSASLRequest.decode(body, 0, self.maxbuf)[0].token or b""
        users = self.cfg.sasl_digest_users
        kerberos = self.cfg.sasl_kerberos is not None
        if users is None and not kerberos:
            # No SASL server is configured: Apache's evaluate step fails with a
            # NullPointerException it swallows, and answers OK with a null token.
            self.reply(conn, xid, 0, _NULL_SASL_TOKEN, zxid=0)
            return
        mech = conn.sasl
        if mech is None:
            mech = conn.sasl = (conn.new_gssapi_server() if kerberos
                                else DigestMD5Server(users or {}, conn.new_nonce()))
        try:
            answer = mech.evaluate(token)
        except SaslError as e:
            log.warning("Client %s failed to SASL authenticate: %s", conn.remote, e)
            self.stats.auth_failed += 1
            if self.cfg.allow_sasl_failed_clients and not self.sasl_auth_required:
                log.warning("Maintaining client connection despite SASL authentication failure.")
                self.reply(conn, xid, 0, _NULL_SASL_TOKEN, zxid=0)
                return
            if self.sasl_auth_required:
                log.warning("Closing client connection due to server requires client SASL "
                            "authenticaiton,but client SASL authentication has failed, or "
                            "client is not configured with SASL authentication.")
                err = Err.SESSIONCLOSEDREQUIRESASLAUTH
            else:
                log.warning("Closing client connection due to SASL authentication failure.")
                err = Err.AUTHFAILED
            self.reply(conn, xid, err, _NULL_SASL_TOKEN, zxid=0)
            conn.close()
            return
        if mech.complete and mech.authentication_id is not None:
            ident = self._sasl_id(mech.authentication_id, mech.authorization_id)
            log.info("Session 0x%x: adding SASL authorization for authorizationID: %s",
                     conn.session_id & (2**64 - 1), ident)
            _add_auth(conn.auth, Id("sasl", ident))
            if ident in self.cfg.sasl_super_users:
                _add_auth(conn.auth, Id("super", ""))
                log.info("Session 0x%x: Authenticated Id '%s' as super user",
                         conn.session_id & (2**64 - 1), ident)
        self.reply(conn, xid, 0, SetSASLResponse(answer).to_bytes(), zxid=0)

    def _sasl_id(self, authentication_id: str, authorization_id: str | None) -> str:
        """SaslServerCallbackHandler.handleAuthorizeCallback: the SASL id."""
        log.info("Successfully authenticated client: authenticationID=%s;  "
                 "authorizationID=%s.", authentication_id, authorization_id)
        try:
            ident = authorized_id(authentication_id, self.cfg.system_properties,
                                  self.cfg.kerberos_default_realm)
        except KerberosNameError as e:
            log.error("Failed to set name based on Kerberos authentication rules. %s", e)
            return authorization_id or authentication_id
        log.info("Setting authorizedID: %s", ident)
        return ident

    # -- commit ---------------------------------------------------------------

    def apply(self, entry: Entry) -> None:
        """The log made ``entry`` durable: apply it and answer."""
        prepared = entry.prepared
        hdr = prepared.hdr
        rc = self.tree.process_txn(hdr, prepared.txn)
        self.prep.committed(hdr.zxid)
        self._write_stats(rc)
        if rc.events:
            for watcher, etype, path in rc.events:
                watcher.send_event(etype, path)
                self.stats.watch_events += 1
        op = entry.op
        conn = entry.conn
        if op == _CLOSE_SESSION:
            sid = hdr.clientId
            self.sessions.remove(sid)
            owner = self.conn_by_session.pop(sid, None)
            if conn is None and owner is not None:
                owner.close()
        if conn is None or conn.closed:
            return
        inflight = conn.inflight
        if not inflight or inflight[0] is not entry:
            log.error("reply out of order for session 0x%x", conn.session_id)
            return
        inflight.popleft()
        self.stats.outstanding -= 1
        if op == _CREATE_SESSION:
            self.stats.outstanding += 1  # the handshake was not counted as a request
            self.finish_session_init(conn, True)
        else:
            self._write_reply(conn, entry, rc)
            if op == _CLOSE_SESSION:
                conn.close()
                return
        if inflight and inflight[0].prepared is None:
            self.drain_reads(conn)

    def drain_reads(self, conn: Any) -> None:
        """Answer the reads queued behind the request just answered, up to the
        session's next write still in the pipeline (per-session FIFO)."""
        inflight = conn.inflight
        while inflight and inflight[0].prepared is None:
            r = inflight.popleft()
            self.stats.outstanding -= 1
            self._read(conn, r.xid, r.op, r.body, r.received)

    def _write_stats(self, rc: Any) -> None:
        """Apache's DataTree.updateWriteStat, as <ns>_write_per_namespace."""
        for r in rc.multi or (rc,):
            if r.err or r.path is None or r.type not in _WRITE_STAT_INTS:
                continue
            path = r.path
            ns = top_namespace(path)
            if ns is not None:
                t = r.type
                node = None if t in (_DELETE, _DELETE_CONTAINER) else \
                    self.tree.nodes.get(path)
                data = node.data_length() if node is not None else 0
                name = self._ns_write_names.get(ns)
                if name is None:
                    name = self._ns_write_names[ns] = f"{ns}_write_per_namespace"
                observe(self.stats, name, len(path) + data)

    def _write_reply(self, conn: Any, entry: Entry, rc: Any) -> None:
        prepared = entry.prepared
        op = entry.op
        out = bytearray(20)
        err = prepared.err
        if err == _SESSION_MOVED:
            # The session belongs to another server now: Apache answers
            # nothing and closes this connection (FinalRequestProcessor).
            conn.close()
            return
        if prepared.hdr.type == _ERROR:
            pass
        elif op == _MULTI:
            err = 0
            results = []
            for sub in rc.multi:
                t = sub.type
                if t == OpCode.create:
                    results.append((t, 0, CreateResponse(sub.path)))
                elif t in (OpCode.create2, OpCode.createTTL, OpCode.createContainer):
                    results.append((OpCode.create2, 0, Create2Response(sub.path, sub.stat)))
                elif t in (OpCode.delete, OpCode.deleteContainer):
                    results.append((OpCode.delete, 0, None))
                elif t == OpCode.setData:
                    results.append((t, 0, SetDataResponse(sub.stat)))
                elif t == OpCode.check:
                    results.append((t, 0, None))
                else:
                    results.append((OpCode.error, sub.err, ErrorResponse(sub.err)))
            encode_multi_response(results, out)
        else:
            err = rc.err
            if err == 0:
                encode = _WRITE_REPLIES.get(op)
                if encode is not None:
                    encode(rc, prepared, out)
                elif op == _CHECK:
                    # Apache answers a bare successful check with
                    # SetDataResponse(null), fails to serialise it and sends
                    # nothing; clients only use check inside multi.
                    log.warning("check outside multi from session 0x%x gets no reply",
                                conn.session_id & (2**64 - 1))
                    return
        if err and op != _MULTI:
            del out[20:]
        REPLY_HDR.pack_into(out, 0, len(out) - 4, entry.xid, self.tree.last_processed_zxid, err)
        conn.send(bytes(out))
        self.stats.packets_sent += 1
        self._finished(conn, entry.xid, _OP_NAMES.get(op, "NA"), entry.received,
                       len(out) - 4, read=False)

    # -- connection loss and time -------------------------------------------------

    def session_timeouts(self) -> dict[int, int]:
        """Live sessions and their timeouts, as a snapshot stores them."""
        return {sid: s.timeout for sid, s in self.sessions.sessions.items()}

    def on_log_failure(self, exc: BaseException) -> None:
        """The transaction log cannot be written: stop taking writes and drop
        every connection waiting on one that will never be durable (Apache
        exits on a failed log write; the shell decides how to stop)."""
        self.log_failed = exc
        proposed, self.proposed = self.proposed, {}
        for entry in proposed.values():
            if entry.conn is not None:
                entry.conn.close()

    def disconnected(self, conn: Any) -> None:
        self.connections.discard(conn)
        self.tree.data_watches.remove_watcher(conn)
        self.tree.child_watches.remove_watcher(conn)
        sid = conn.session_id
        if sid and self.conn_by_session.get(sid) is conn:
            del self.conn_by_session[sid]
        self.stats.outstanding -= sum(1 for e in conn.inflight)
        conn.inflight.clear()

    def expire_sessions(self) -> list[int]:
        """Close every session whose timeout has passed (a closeSession txn each)."""
        expired = self.sessions.expire(int(self.now_ms()))
        for sid in expired:
            log.info("Expiring session 0x%x, timeout of %dms exceeded", sid & (2**64 - 1),
                     self.sessions.sessions[sid].timeout if sid in self.sessions.sessions else 0)
            prepared = self.prep.close_session(sid, 0, self.next_zxid(), self.wall_ms())
            self.submit(Entry(None, 0, OpCode.closeSession, b"", prepared, self.now_ms()))
        return expired

    def container_candidates(self, max_never_used_ms: int) -> list[str]:
        """Apache ContainerManager.getCandidates: empty containers that once had
        children (or stayed unused too long) and empty TTL nodes past their TTL."""
        tree = self.tree
        now = self.wall_ms()
        out: list[str] = []
        for path in sorted(tree.containers):
            node = tree.get_node(path)
            if node is None or node.children:
                continue
            if node.cversion > 0 or (max_never_used_ms and now - node.mtime > max_never_used_ms):
                out.append(path)
        if self.extended_types:
            for path in sorted(tree.ttls):
                node = tree.get_node(path)
                if node is None or node.children:
                    continue
                ttl = ttl_of(node.ephemeralOwner)
                if ttl and now - node.mtime > ttl:
                    out.append(path)
        return out

    def reap_containers(self, max_per_minute: int, max_never_used_ms: int) -> int:
        """Submit deleteContainer txns for the candidates (rate-limited like Apache)."""
        n = 0
        for path in self.container_candidates(max_never_used_ms):
            if max_per_minute > 0 and n >= max_per_minute:
                break
            self.delete_container(path)
            n += 1
        return n

    def delete_container(self, path: str) -> None:
        prepared = self.prep.delete_container(path, self.next_zxid(), self.wall_ms())
        self.submit(Entry(None, 0, OpCode.deleteContainer, b"", prepared, self.now_ms()))


def _add_auth(auth: list[Id], ident: Id) -> None:
    if ident not in auth:
        auth.append(ident)


NOTIFICATION = struct.Struct(">iiqi")


def encode_notification(etype: int, path: str) -> bytes:
    """A watch event frame: ReplyHeader(-1, -1, 0) + WatcherEvent."""
    p = path.encode("utf-8")
    body_len = 16 + 4 + 4 + 4 + len(p)
    return (NOTIFICATION.pack(body_len, NOTIFICATION_XID, -1, 0)
            + struct.pack(">iii", etype, KeeperState.SyncConnected, len(p)) + p)
