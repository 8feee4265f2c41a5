"""Quorum membership and Fast Leader Election, as pure cores.

``wire`` holds the election port's byte formats (connection handshake,
framing, notifications), ``verifier`` the majority quorum rules and the
configuration text peers exchange, ``election`` the FastLeaderElection state
machine and ``sim`` a seeded simulator that drives many of them over a fake
network.  Nothing here opens a socket or reads a clock.
"""
