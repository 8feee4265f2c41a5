from __future__ import annotations

from collections.abc import Iterator

import pytest

from pyzk.testing.servers import PyzkServer


@pytest.fixture(scope="module")
def pyzk_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PyzkServer]:
    with PyzkServer(tmp_path_factory.mktemp("pyzk"), extra_cfg={"maxClientCnxns": "20"}) as s:
        yield s
