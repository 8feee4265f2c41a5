"""pyzk: a pure-Python, wire-compatible replacement for Apache ZooKeeper."""

__version__ = "0.1.0"

# The Apache release whose wire protocol, files and behaviour pyzk follows.
APACHE_COMPAT_VERSION = "3.8.0"
