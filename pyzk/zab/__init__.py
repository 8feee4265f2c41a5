"""Zab, the atomic broadcast Apache ZooKeeper 3.8 runs on the quorum port.

Pure, deterministic state machines (sans-IO): events in, actions out.

``packets`` holds the QuorumPacket types and payloads byte for byte as
Apache writes them, plus incremental stream decoders; ``snapstream`` the
snapshot a leader streams after a SNAP packet; ``zxid`` the epoch/counter
arithmetic; ``actions`` what the cores ask their shell to do; ``history``
the leader's committed-log window and the DIFF/TRUNC/SNAP decision of
LearnerHandler.syncFollower; ``leader`` and ``follower`` the two roles (the
observer is a follower variant), ``reconfigleader`` the leader's dynamic
reconfiguration; ``sim`` a seeded simulator that drives several cores over a
fake network with crashes and partitions. The shell that carries out the
actions is pyzk.shell.roles.
"""
