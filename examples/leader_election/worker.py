"""A worker that does its job only while it leads (the application under test)."""

from __future__ import annotations

import contextlib
import threading

from kazoo.client import KazooClient
from kazoo.exceptions import ConnectionClosedError, SessionExpiredError


class Worker:
    """Runs for leadership under ``path``; the leader appends its name to
    ``path + "/log"`` once, guarded by a lock so two leaders never interleave."""

    def __init__(self, client: KazooClient, name: str, path: str = "/app") -> None:
        self.client = client
        self.name = name
        self.path = path
        self.led = threading.Event()
        self.stop = threading.Event()
        client.ensure_path(f"{path}/log")

    def _lead(self) -> None:
        with self.client.Lock(f"{self.path}/lock", self.name):
            data, stat = self.client.get(f"{self.path}/log")
            runs = data.decode().split() if data else []
            runs.append(self.name)
            self.client.set(f"{self.path}/log", " ".join(runs).encode(), version=stat.version)
        self.led.set()
        self.stop.wait()  # leadership is held until the function returns

    def _campaign(self) -> None:
        election = self.client.Election(f"{self.path}/election", self.name)
        # our client was stopped or lost its session: nothing left to lead
        with contextlib.suppress(ConnectionClosedError, SessionExpiredError):
            election.run(self._lead)

    def run(self) -> threading.Thread:
        thread = threading.Thread(target=self._campaign, daemon=True)
        thread.start()
        return thread


def runs(client: KazooClient, path: str = "/app") -> list[str]:
    data, _ = client.get(f"{path}/log")
    return data.decode().split() if data else []
