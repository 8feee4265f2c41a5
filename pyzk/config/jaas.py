"""JAAS login configuration files, as the JDK's ConfigFile reads them.

    Server {
        org.apache.zookeeper.server.auth.DigestLoginModule required
        user_super="adminsecret"
        user_bob="bobsecret";
    };

A file holds named sections; each section lists login modules, each a class
name, a control flag and ``key=value`` options (values quoted or bare), ended
by ``;``. ``//`` and ``/* */`` comments are skipped. Only the text is parsed
here; the shell reads the file named by ``java.security.auth.login.config``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pyzk.config.errors import ConfigError

FLAGS = ("required", "requisite", "sufficient", "optional")
DIGEST_LOGIN_MODULE = "org.apache.zookeeper.server.auth.DigestLoginModule"

_TOKEN = re.compile(r'''
    \s+ | //[^\n]* | /\*.*?\*/          # space and comments
  | (?P<str>"(?:[^"\\]|\\.)*")          # a quoted value
  | (?P<punct>[{};=])
  | (?P<word>[^\s{};="/]+(?:/(?![/*])[^\s{};="/]*)*)
''', re.S | re.X)


@dataclass(frozen=True, slots=True)
class LoginModule:
    """One login module of a section; ``options`` may hold passwords, so it
    is left out of ``repr``."""

    name: str
    flag: str
    options: dict[str, str] = field(default_factory=dict, repr=False)


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    pos = 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ConfigError(f"JAAS configuration: unexpected {text[pos]!r} at offset {pos}")
        pos = m.end()
        if m.group("str") is not None:
            raw = m.group("str")[1:-1]
            out.append("\0" + re.sub(r"\\(.)", r"\1", raw))  # \0 marks a quoted value
        elif m.group("punct") is not None:
            out.append(m.group("punct"))
        elif m.group("word") is not None:
            out.append(m.group("word"))
    return out


def parse_jaas(text: str) -> dict[str, list[LoginModule]]:
    """Sections by name; ConfigError (without option values) on bad syntax."""
    toks = _tokens(text)
    sections: dict[str, list[LoginModule]] = {}
    i = 0

    def expect(what: str) -> None:
        nonlocal i
        if i >= len(toks) or toks[i] != what:
            got = "end of file" if i >= len(toks) else repr(toks[i].lstrip("\0")[:20])
            raise ConfigError(f"JAAS configuration: expected {what!r}, found {got}")
        i += 1

    while i < len(toks):
        name = toks[i].lstrip("\0")
        i += 1
        expect("{")
        modules: list[LoginModule] = []
        while i < len(toks) and toks[i] != "}":
            cls = toks[i]
            flag = toks[i + 1].lower() if i + 1 < len(toks) else ""
            if flag not in FLAGS:
                raise ConfigError(f"JAAS configuration: {cls} has no control flag "
                                  f"(one of {', '.join(FLAGS)})")
            i += 2
            options: dict[str, str] = {}
            while i < len(toks) and toks[i] != ";":
                key = toks[i]
                i += 1
                expect("=")
                if i >= len(toks):
                    raise ConfigError(f"JAAS configuration: option {key} has no value")
                options[key] = toks[i].lstrip("\0")
                i += 1
            expect(";")
            modules.append(LoginModule(cls, flag, options))
        expect("}")
        expect(";")
        sections[name] = modules
    return sections


def digest_users(modules: list[LoginModule]) -> dict[str, str] | None:
    """DigestLoginModule's ``user_<name>="<password>"`` options, or None when the
    section has no DigestLoginModule."""
    for m in modules:
        if m.name == DIGEST_LOGIN_MODULE:
            return {k[5:]: v for k, v in m.options.items() if k.startswith("user_")}
    return None


def digest_credentials(modules: list[LoginModule]) -> tuple[str | None, str | None] | None:
    """DigestLoginModule's own ``username`` and ``password`` (a quorum learner's
    login: the module puts them in the subject's credentials, either may be
    missing), or None when the section has no DigestLoginModule."""
    for m in modules:
        if m.name == DIGEST_LOGIN_MODULE:
            return m.options.get("username"), m.options.get("password")
    return None


KRB5_LOGIN_MODULE = "com.sun.security.auth.module.Krb5LoginModule"


@dataclass(frozen=True, slots=True)
class KerberosLogin:
    """What a ``Krb5LoginModule`` entry says: whose key, from which keytab.

    ``principal`` is ``service/host@REALM`` for a server (``*``: any key of
    the keytab, as the JDK allows for acceptors); ``keytab`` empty means the
    default keytab.
    """

    principal: str
    keytab: str
    use_keytab: bool
    store_key: bool


def kerberos_login(modules: list[LoginModule]) -> KerberosLogin | None:
    """The section's Krb5LoginModule, None when it has none."""
    for m in modules:
        if m.name == KRB5_LOGIN_MODULE:
            o = m.options
            return KerberosLogin(o.get("principal", ""), o.get("keyTab", ""),
                                 o.get("useKeyTab", "false").lower() == "true",
                                 o.get("storeKey", "false").lower() == "true")
    return None
