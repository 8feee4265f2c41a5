"""Test support shared by tests/, compat_tests/ and benchmarks/.

`servers` starts Apache ZooKeeper and pyzk as child processes from their own
zoo.cfg; `wire` is a small synchronous raw-protocol client for byte-level
differential tests; `scenario` runs one list of requests against a server and
normalises the outcome so two servers' outcomes can be compared.
"""
