"""Quorum membership and Fast Leader Election, as pure cores.

``wire`` holds the election port's byte formats (connection handshake,
framing, notifications), ``verifier`` the majority quorum rules and the
configuration text peers exchange, ``election`` the FastLeaderElection state
machine, ``confignode`` the /zookeeper/config znode, ``sim`` a seeded
simulator that drives many of them over a fake network and ``fleoracle`` the
election's safety checks it runs.  Nothing here opens a socket, touches a
file or reads a clock (tests/test_layout.py checks): the election port and
the peer loop are pyzk.shell.cnxmanager and pyzk.shell.quorumpeer.
"""
