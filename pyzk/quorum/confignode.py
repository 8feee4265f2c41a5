"""The quorum configuration as clients read it: the ``/zookeeper/config`` znode.

Apache's DataTree creates ``/zookeeper/config`` empty (ACL world:anyone READ);
a quorum peer fills it with its QuorumVerifier's text (``server.N=...`` lines
then ``version=<hex>``) whenever it loads its database and again after a
learner synced with its leader (ZKDatabase.initConfigInZKDatabase). That write
is not a transaction: it sets the data with version -1 and the config's version
as mzxid, and none of it counts in the tree digest (nodes under /zookeeper/ do
not). Clients read the node with getData or getConfig.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyzk.datatree.tree import DataTree

log = logging.getLogger(__name__)

CONFIG_NODE = "/zookeeper/config"


def init_config_node(tree: DataTree, config_text: str, version: int, wall_ms: int) -> None:
    """ZKDatabase.initConfigInZKDatabase on ``tree``."""
    if tree.get_node(CONFIG_NODE) is None:
        log.warning("configuration znode missing (should only happen during upgrade), "
                    "creating the node")
        tree._add_config_node()  # noqa: SLF001 - DataTree.addConfigNode, as Apache calls it
    tree.set_data(CONFIG_NODE, config_text.encode("utf-8"), -1, version, wall_ms)
