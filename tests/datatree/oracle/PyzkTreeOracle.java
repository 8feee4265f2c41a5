// Test oracle: drives Apache ZooKeeper 3.8's own DataTree with a script and
// prints its state, so tests/datatree can compare pyzk's tree against it.
// Lives in Apache's package only to read the ACL cache's package-private maps.
package org.apache.zookeeper.server;

import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.InputStreamReader;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.jute.BinaryInputArchive;
import org.apache.jute.Record;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs.OpCode;
import org.apache.zookeeper.data.ACL;
import org.apache.zookeeper.data.Stat;
import org.apache.zookeeper.txn.*;

public class PyzkTreeOracle {
    static final Map<String, Watcher> watchers = new java.util.HashMap<>();

    static Watcher watcher(String name) {
        return watchers.computeIfAbsent(name, n -> new Watcher() {
            public void process(WatchedEvent e) {
                System.out.println("E " + n + " " + e.getType().getIntValue() + " " + e.getPath());
            }
        });
    }

    static byte[] hex(String s) {
        if (s.equals("-")) return null;
        byte[] b = new byte[s.length() / 2];
        for (int i = 0; i < b.length; i++) b[i] = (byte) Integer.parseInt(s.substring(2 * i, 2 * i + 2), 16);
        return b;
    }

    static String hex(byte[] b) {
        if (b == null) return "-";
        if (b.length == 0) return "~";
        StringBuilder sb = new StringBuilder();
        for (byte x : b) sb.append(String.format("%02x", x));
        return sb.toString();
    }

    static String stat(Stat s) {
        if (s == null) return "-";
        return s.getCzxid() + "," + s.getMzxid() + "," + s.getCtime() + "," + s.getMtime() + ","
            + s.getVersion() + "," + s.getCversion() + "," + s.getAversion() + ","
            + s.getEphemeralOwner() + "," + s.getDataLength() + "," + s.getNumChildren() + ","
            + s.getPzxid();
    }

    static void result(String tag, DataTree.ProcessTxnResult r) {
        System.out.println(tag + " " + r.err + " " + (r.path == null ? "-" : r.path) + " " + stat(r.stat)
            + " " + (r.multiResult == null ? -1 : r.multiResult.size()));
        if (r.multiResult != null) for (DataTree.ProcessTxnResult s : r.multiResult) result("S", s);
    }

    static Record record(int type) {
        switch (type) {
            case OpCode.create: case OpCode.create2: return new CreateTxn();
            case OpCode.createTTL: return new CreateTTLTxn();
            case OpCode.createContainer: return new CreateContainerTxn();
            case OpCode.delete: case OpCode.deleteContainer: return new DeleteTxn();
            case OpCode.setData: case OpCode.reconfig: return new SetDataTxn();
            case OpCode.setACL: return new SetACLTxn();
            case OpCode.closeSession: return new CloseSessionTxn();
            case OpCode.error: return new ErrorTxn();
            case OpCode.check: return new CheckVersionTxn();
            case OpCode.multi: return new MultiTxn();
            case OpCode.createSession: return new CreateSessionTxn();
            default: return null;
        }
    }

    static void dump(DataTree dt, String path) {
        DataNode n = dt.getNode(path);
        Stat s = new Stat();
        n.copyStat(s);
        List<String> kids = new ArrayList<>(n.getChildren());
        System.out.println("N " + path + " " + stat(s) + " " + n.stat.getCversion() + " "
            + n.stat.getEphemeralOwner() + " " + n.acl + " " + hex(n.data) + " " + String.join(",", kids));
        for (String k : kids) dump(dt, (path.equals("/") ? "" : path) + "/" + k);
    }

    public static void main(String[] args) throws Exception {
        DataTree dt = new DataTree();
        watchers.clear();
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in));
        String line;
        while ((line = in.readLine()) != null) {
            String[] a = line.trim().split(" ");
            switch (a[0]) {
                case "T": {
                    TxnHeader hdr = new TxnHeader();
                    hdr.deserialize(BinaryInputArchive.getArchive(new ByteArrayInputStream(hex(a[1]))), "hdr");
                    Record txn = null;
                    if (!a[2].equals("-")) {
                        txn = record(hdr.getType());
                        txn.deserialize(BinaryInputArchive.getArchive(new ByteArrayInputStream(hex(a[2]))), "txn");
                    }
                    result("R", dt.processTxn(hdr, txn));
                    System.out.println("Z " + dt.lastProcessedZxid + " " + dt.getTreeDigest());
                    break;
                }
                case "W": {
                    Watcher w = watcher(a[3]);
                    String p = a[2];
                    try {
                        switch (a[1]) {
                            case "data": dt.getData(p, new Stat(), w); break;
                            case "exists": dt.statNode(p, w); break;
                            case "child": dt.getChildren(p, new Stat(), w); break;
                            case "add0": dt.addWatch(p, w, 0); break;
                            case "add1": dt.addWatch(p, w, 1); break;
                            default: throw new IllegalArgumentException(a[1]);
                        }
                        System.out.println("W ok");
                    } catch (org.apache.zookeeper.KeeperException.NoNodeException e) {
                        System.out.println("W nonode");
                    }
                    break;
                }
                case "C": {  // containsWatcher / removeWatch: C contains|remove type path watcher
                    Watcher.WatcherType t = Watcher.WatcherType.fromInt(Integer.parseInt(a[2]));
                    boolean r = a[1].equals("contains") ? dt.containsWatcher(a[3], t, watcher(a[4]))
                        : dt.removeWatch(a[3], t, watcher(a[4]));
                    System.out.println("C " + r);
                    break;
                }
                case "X": dt.removeCnxn(watcher(a[1])); System.out.println("X"); break;
                case "G": {  // getEphemerals order for a session
                    System.out.println("G " + String.join(",", dt.getEphemerals(Long.parseLong(a[1]))));
                    break;
                }
                case "D": {
                    dump(dt, "/");
                    System.out.println("COUNT " + dt.getNodeCount() + " " + dt.cachedApproximateDataSize()
                        + " " + dt.approximateDataSize() + " " + dt.getTreeDigest() + " " + dt.lastProcessedZxid
                        + " " + dt.getWatchCount() + " " + dt.getAllChildrenNumber("/"));
                    for (Long sid : dt.getSessions()) {
                        System.out.println("EPH " + sid + " " + String.join(",", dt.getEphemerals(sid)));
                    }
                    List<String> c = new ArrayList<>(dt.getContainers());
                    java.util.Collections.sort(c);
                    System.out.println("CONT " + String.join(",", c));
                    List<String> t = new ArrayList<>(dt.getTtls());
                    java.util.Collections.sort(t);
                    System.out.println("TTLS " + String.join(",", t));
                    ReferenceCountedACLCache ac = dt.getReferenceCountedAclCache();
                    System.out.println("ACLINDEX " + ac.aclIndex);
                    for (Map.Entry<Long, List<ACL>> e : ac.longKeyMap.entrySet()) {
                        Object rc = ac.referenceCounter.get(e.getKey());
                        StringBuilder sb = new StringBuilder();
                        for (ACL x : e.getValue()) {
                            sb.append(x.getPerms()).append(':').append(x.getId().getScheme()).append(':')
                                .append(x.getId().getId()).append(';');
                        }
                        System.out.println("ACL " + e.getKey() + " " + rc + " " + sb);
                    }
                    System.out.println("END");
                    break;
                }
                case "NEW": dt = new DataTree(); watchers.clear(); break;
                case "PATH": {  // PATH hex(utf8 path) sequential
                    try {
                        org.apache.zookeeper.common.PathUtils.validatePath(
                            new String(hex(a[1]), java.nio.charset.StandardCharsets.UTF_8), a[2].equals("1"));
                        System.out.println("ok");
                    } catch (IllegalArgumentException e) {
                        System.out.println("bad " + hex(e.getMessage().getBytes(java.nio.charset.StandardCharsets.UTF_8)));
                    }
                    break;
                }
                case "IP": {  // IP hex(acl expr) hex(client)
                    org.apache.zookeeper.server.auth.IPAuthenticationProvider ip =
                        new org.apache.zookeeper.server.auth.IPAuthenticationProvider();
                    String expr = new String(hex(a[1]), java.nio.charset.StandardCharsets.UTF_8);
                    String client = new String(hex(a[2]), java.nio.charset.StandardCharsets.UTF_8);
                    System.out.println(ip.isValid(expr) + " " + ip.matches(client, expr));
                    break;
                }
                case "DIGEST": {  // DIGEST hex(user:password)
                    String idpw = new String(hex(a[1]), java.nio.charset.StandardCharsets.UTF_8);
                    String d = org.apache.zookeeper.server.auth.DigestAuthenticationProvider.generateDigest(idpw);
                    System.out.println(hex(d.getBytes(java.nio.charset.StandardCharsets.UTF_8)) + " "
                        + new org.apache.zookeeper.server.auth.DigestAuthenticationProvider().isValid(idpw));
                    break;
                }
                case "FIX": {  // FIX hex(SetACLTxn with the acls) hex(QuorumPacket with the auth ids)
                    SetACLTxn in1 = new SetACLTxn();
                    in1.deserialize(BinaryInputArchive.getArchive(new ByteArrayInputStream(hex(a[1]))), "t");
                    org.apache.zookeeper.server.quorum.QuorumPacket qp = new org.apache.zookeeper.server.quorum.QuorumPacket();
                    qp.deserialize(BinaryInputArchive.getArchive(new ByteArrayInputStream(hex(a[2]))), "q");
                    try {
                        List<ACL> r = PrepRequestProcessor.fixupACL("/p", qp.getAuthinfo(), in1.getAcl());
                        java.io.ByteArrayOutputStream bo = new java.io.ByteArrayOutputStream();
                        new SetACLTxn("/p", r, 0).serialize(org.apache.jute.BinaryOutputArchive.getArchive(bo), "t");
                        System.out.println("ok " + hex(bo.toByteArray()));
                    } catch (org.apache.zookeeper.KeeperException e) {
                        System.out.println("err " + e.code().intValue());
                    }
                    break;
                }
                case "STATS": {  // STATS hex(text)
                    try {
                        org.apache.zookeeper.StatsTrack st = new org.apache.zookeeper.StatsTrack(hex(a[1]));
                        System.out.println("ok " + hex(st.getStatsBytes()) + " " + st.getCount() + " "
                            + st.getBytes() + " " + st.getCountHardLimit() + " " + st.getByteHardLimit());
                    } catch (RuntimeException e) {
                        System.out.println("error");
                    }
                    break;
                }
                case "PROP": System.setProperty(a[1], a[2]); break;
                default: throw new IllegalArgumentException(line);
            }
            System.out.println(".");
            System.out.flush();
        }
    }
}
