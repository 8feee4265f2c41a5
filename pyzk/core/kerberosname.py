"""Kerberos principal names as ZooKeeper's KerberosName maps them to SASL ids.

After a SASL client authenticates (GSSAPI or DIGEST-MD5), Apache's
SaslServerCallbackHandler turns its authentication id into the id that ACLs
of the ``sasl`` scheme name: the principal's short name by the
``zookeeper.security.auth_to_local`` rules (Hadoop's syntax, ``DEFAULT`` when
unset), then ``/host`` and ``@REALM`` appended back unless
``zookeeper.kerberos.removeHostFromPrincipal`` / ``removeRealmFromPrincipal``
say ``true``. So ``client@EXAMPLE.COM`` is the id ``client@EXAMPLE.COM`` by
default and ``client`` with the realm removed. When no rule maps the name,
Apache logs an error and keeps the authorization id the client asked for.

The rules are Java regular expressions; the ones auth_to_local files use
(character classes, groups, anchors, ``.*``) mean the same to Python's ``re``,
and ``$n`` in a substitution becomes ``\\g<n>``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

AUTH_TO_LOCAL = "zookeeper.security.auth_to_local"
REMOVE_HOST = "zookeeper.kerberos.removeHostFromPrincipal"
REMOVE_REALM = "zookeeper.kerberos.removeRealmFromPrincipal"

_NAME = re.compile(r"([^/@]*)(/([^/@]*))?@([^/@]*)")
_PARAM = re.compile(r"([^$]*)(\$(\d*))?")
_RULE = re.compile(r"\s*((DEFAULT)|(RULE:\[(\d*):([^\]]*)](\(([^)]*)\))?"
                   r"(s/([^/]*)/([^/]*)/(g)?)?))")
_NON_SIMPLE = re.compile(r"[/@]")


class KerberosNameError(ValueError):
    """A malformed principal, a bad rule, or no rule that maps a name."""


@dataclass(frozen=True, slots=True)
class KerberosName:
    """``service/host@REALM``; host and realm may be absent."""

    service: str
    host: str | None
    realm: str | None

    @classmethod
    def parse(cls, name: str) -> KerberosName:
        m = _NAME.fullmatch(name)
        if m is None:
            if "@" in name:
                raise KerberosNameError(f"Malformed Kerberos name: {name}")
            return cls(name, None, None)
        return cls(m.group(1), m.group(3), m.group(4))

    def __str__(self) -> str:
        out = self.service
        if self.host is not None:
            out += "/" + self.host
        if self.realm is not None:
            out += "@" + self.realm
        return out


def _java_replacement(to: str) -> str:
    """A Java replacement string (``$1``, ``\\$``) as a Python one."""
    out = []
    i = 0
    while i < len(to):
        c = to[i]
        if c == "\\" and i + 1 < len(to):
            out.append(to[i + 1].replace("\\", "\\\\"))
            i += 2
        elif c == "$" and i + 1 < len(to) and to[i + 1].isdigit():
            j = i + 1
            while j < len(to) and to[j].isdigit():
                j += 1
            out.append(f"\\g<{to[i + 1:j]}>")
            i = j
        else:
            out.append(c.replace("\\", "\\\\"))
            i += 1
    return "".join(out)


@dataclass(frozen=True, slots=True)
class Rule:
    """One auth_to_local rule: DEFAULT, or ``RULE:[n:fmt](match)s/from/to/g``."""

    default: bool
    components: int = 0
    format: str = ""
    match: str | None = None
    from_pattern: str | None = None
    to_pattern: str = ""
    repeat: bool = False

    def __str__(self) -> str:
        if self.default:
            return "DEFAULT"
        out = f"RULE:[{self.components}:{self.format}]"
        if self.match is not None:
            out += f"({self.match})"
        if self.from_pattern is not None:
            out += f"s/{self.from_pattern}/{self.to_pattern}/" + ("g" if self.repeat else "")
        return out

    def apply(self, params: list[str], default_realm: str) -> str | None:
        result: str | None = None
        if self.default:
            if params[0] == default_realm:
                result = params[1]
        elif len(params) - 1 == self.components:
            base = _replace_parameters(self.format, params)
            if self.match is None or re.fullmatch(self.match, base):
                if self.from_pattern is None:
                    result = base
                else:
                    result = re.sub(self.from_pattern, _java_replacement(self.to_pattern), base,
                                    count=0 if self.repeat else 1)
        if result is not None and _NON_SIMPLE.search(result):
            raise KerberosNameError(f"Non-simple name {result} after auth_to_local rule {self}")
        return result


def _replace_parameters(fmt: str, params: list[str]) -> str:
    out = []
    start = 0
    while start < len(fmt):
        m = _PARAM.match(fmt, start)
        if m is None or m.end() == start:
            break
        out.append(m.group(1))
        num = m.group(3)
        if num is not None:
            if not num:
                raise KerberosNameError(f"bad format in username mapping in {num}")
            n = int(num)
            if n < 0 or n >= len(params):
                raise KerberosNameError(f"index {n} from {fmt} is outside of the valid range "
                                        f"0 to {len(params) - 1}")
            out.append(params[n])
        start = m.end()
    return "".join(out)


def parse_rules(text: str) -> tuple[Rule, ...]:
    """KerberosName.parseRules; KerberosNameError on a rule it cannot read."""
    rules: list[Rule] = []
    rest = text.strip()
    while rest:
        m = _RULE.match(rest)
        if m is None:
            raise KerberosNameError(f"Invalid rule: {rest}")
        if m.group(2) is not None:
            rules.append(Rule(True))
        else:
            rules.append(Rule(False, int(m.group(4)), m.group(5), m.group(7), m.group(9),
                              m.group(10) or "", m.group(11) == "g"))
        rest = rest[m.end():]
    return tuple(rules)


def short_name(name: KerberosName, rules: tuple[Rule, ...], default_realm: str) -> str:
    """KerberosName.getShortName: the first rule that maps the name."""
    if name.host is None:
        if name.realm is None:
            return name.service
        params = [name.realm, name.service]
    else:
        params = [name.realm or "", name.service, name.host]
    for rule in rules:
        got = rule.apply(params, default_realm)
        if got is not None:
            return got
    raise KerberosNameError(f"No rules applied to {name}")


def authorized_id(authentication_id: str, sysprops: Mapping[str, str],
                  default_realm: str) -> str:
    """The SASL id SaslServerCallbackHandler.handleAuthorizeCallback settles on.

    KerberosNameError when no rule maps the name; the caller logs it and keeps
    the authorization id the client asked for, as Apache's handler does.
    """
    name = KerberosName.parse(authentication_id)
    rules = parse_rules(sysprops.get(AUTH_TO_LOCAL, "DEFAULT"))
    out = short_name(name, rules, default_realm)
    if sysprops.get(REMOVE_HOST) != "true" and name.host is not None:
        out += "/" + name.host
    if sysprops.get(REMOVE_REALM) != "true" and name.realm is not None:
        out += "@" + name.realm
    return out


def default_realm_of(krb5_conf: str) -> str | None:
    """``default_realm`` of a krb5.conf's ``[libdefaults]``, None when unset.

    The profile syntax is ``[section]`` headers and ``key = value`` lines
    (``#``/``;`` comments, ``{ }`` sub-sections); only the one key is read.
    """
    section = ""
    depth = 0
    for raw in krb5_conf.splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("[") and depth == 0:
            section = line.strip("[]").strip()
            continue
        if line.endswith("{"):
            depth += 1
            continue
        if line == "}":
            depth = max(0, depth - 1)
            continue
        if section == "libdefaults" and depth == 0 and "=" in line:
            key, _, value = line.partition("=")
            if key.strip() == "default_realm":
                return value.strip() or None
    return None
