"""The data tree core: Apache DataTree, WatchManager, ACL cache, quotas and path rules.

Pure and deterministic: transactions go in (in zxid order), results and the
watch notifications to deliver come out. See `tree.DataTree`.
"""

from pyzk.datatree.acl import (
    ACLCache,
    InvalidACL,
    check_acl,
    digest_id,
    fixup_acl,
    ip_matches,
    is_valid_acl_id,
)
from pyzk.datatree.node import ZNode
from pyzk.datatree.paths import BadPath, basename, parent_of, validate_path
from pyzk.datatree.quota import QuotaExceeded, StatsTrack, check_quota
from pyzk.datatree.tree import DataTree, TxnResult
from pyzk.datatree.watches import WatcherMode, WatchManager

__all__ = [
    "ACLCache", "BadPath", "DataTree", "InvalidACL", "QuotaExceeded", "StatsTrack",
    "TxnResult", "WatchManager", "WatcherMode", "ZNode", "basename", "check_acl",
    "check_quota", "digest_id", "fixup_acl", "ip_matches", "is_valid_acl_id",
    "parent_of", "validate_path",
]
