"""Four-letter words (ruok, srvr, stat, mntr, ...) in Apache 3.8's formats."""

from __future__ import annotations

from typing import Any

COMMANDS = ("ruok", "srvr", "stat", "conf", "cons", "crst", "dump", "envi", "mntr", "wchs",
            "wchc", "wchp", "dirs", "isro", "srst", "gtmk", "stmk", "hash")
FOUR_LETTER_WORDS = frozenset(c.encode("ascii") for c in COMMANDS)


class FourLetterWords:
    def __init__(self, shell: Any) -> None:
        self.shell = shell
        self.server = shell.server

    def allowed(self, cmd: str) -> bool:
        wl = self.shell.cfg.four_letter_whitelist
        return "*" in wl or cmd in wl

    def run(self, cmd: str, conn: Any) -> str:
        if not self.allowed(cmd):
            return f"{cmd} is not executed because it is not in the whitelist."
        if cmd == "ruok":
            return "imok"
        if cmd == "isro":
            return "rw"
        return ""
