"""Benchmarks: a load generator and a runner comparing pyzk with Apache ZooKeeper 3.8.

`loadgen` drives a server with raw client-protocol frames from several worker
processes; `run` starts both servers and prints a side-by-side table;
`scale` measures memory per znode and start time from a snapshot.
"""
