"""The request core: sessions, prepare (request to txn), reads and commit.

Pure: driven by the shell (pyzk.shell) with requests, txns and clock readings.
"""
