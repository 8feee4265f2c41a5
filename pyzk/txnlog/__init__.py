"""Apache's data file formats, pure: txn records, log records, snapshot streams, names,
replay and purge decisions. The files themselves are pyzk.shell's (datadir, txnlogfiles,
snapfiles, recovery, autopurge, datatools)."""
