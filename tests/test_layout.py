"""The layout rule of docs/ARCHITECTURE.md, enforced by reading the imports.

Pure cores (codec, data tree, request core, log formats, election and
membership, Zab, configuration parsing, Java compatibility) never touch a
socket, a file, a thread or a clock; everything that does lives in
pyzk.shell. The packages import each other without cycles. A change that
breaks either rule fails here, not in a review.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

import pytest

pytestmark = pytest.mark.pure

ROOT = Path(__file__).resolve().parent.parent / "pyzk"

#: Modules and packages that must stay pure (sans-IO).
PURE = ("pyzk.jute", "pyzk.datatree", "pyzk.core", "pyzk.txnlog", "pyzk.quorum", "pyzk.zab",
        "pyzk.config", "pyzk.javacompat")

#: Standard modules that mean I/O, threads or clocks.
FORBIDDEN = frozenset({
    "asyncio", "socket", "ssl", "selectors", "select", "threading", "_thread",
    "multiprocessing", "concurrent", "subprocess", "signal", "time", "os", "pathlib",
    "shutil", "tempfile", "glob", "fcntl", "mmap", "uvloop", "logging.handlers",
})

#: Calls that open or sync files whatever module they come from.
FORBIDDEN_CALLS = frozenset({"open", "FileIO", "fdopen", "fsync", "fdatasync", "urlopen"})


def _module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, ast.Module]:
    return {_module_name(p): ast.parse(p.read_text(), str(p)) for p in sorted(ROOT.rglob("*.py"))}


MODULES = _modules()


def _is_pure(name: str) -> bool:
    return any(name == p or name.startswith(p + ".") for p in PURE)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _runtime_nodes(tree: ast.AST) -> list[ast.AST]:
    """Every node but those under ``if TYPE_CHECKING:``: imports made only for
    annotations never run, so they cannot do I/O (a pure module may name
    ``pathlib.Path`` in a signature)."""
    out: list[ast.AST] = []
    todo: list[ast.AST] = [tree]
    while todo:
        node = todo.pop()
        out.append(node)
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            todo.extend(node.orelse)
            continue
        todo.extend(ast.iter_child_nodes(node))
    return out


def _resolve(importer: str, node: ast.ImportFrom) -> str:
    if not node.level:
        return node.module or ""
    base = importer.split(".")
    is_pkg = (ROOT.parent / Path(*base) / "__init__.py").exists()
    base = base[: len(base) - node.level + (1 if is_pkg else 0)]
    return ".".join(base + ([node.module] if node.module else []))


def _imports(name: str, tree: ast.Module, runtime: bool = False) -> list[tuple[int, str]]:
    """Every module ``name`` imports (``from pkg import mod`` counts pkg.mod when it is one);
    with ``runtime``, only the imports that run."""
    out: list[tuple[int, str]] = []
    for node in (_runtime_nodes(tree) if runtime else ast.walk(tree)):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            mod = _resolve(name, node)
            out.append((node.lineno, mod))
            out.extend((node.lineno, f"{mod}.{a.name}") for a in node.names
                       if f"{mod}.{a.name}" in MODULES)
    return out


def _violations(name: str, tree: ast.Module) -> list[str]:
    bad: list[str] = []
    for line, mod in _imports(name, tree, runtime=True):
        top = mod.split(".")[0]
        if top in FORBIDDEN or mod in FORBIDDEN:
            bad.append(f"{name}:{line} imports {mod}")
        elif top == "pyzk" and mod in MODULES and not _is_pure(mod):
            bad.append(f"{name}:{line} imports the impure {mod}")
    for node in _runtime_nodes(tree):
        if isinstance(node, ast.Call):
            f = node.func
            called = f.id if isinstance(f, ast.Name) else f.attr if isinstance(
                f, ast.Attribute) else None
            if called in FORBIDDEN_CALLS:
                bad.append(f"{name}:{node.lineno} calls {called}()")
    return bad


def test_pure_cores_do_no_io() -> None:
    pure = [n for n in MODULES if _is_pure(n)]
    assert len(pure) > 40, "the pure packages were not found"
    bad = [v for n in pure for v in _violations(n, MODULES[n])]
    assert not bad, "pure modules doing I/O:\n" + "\n".join(bad)


def test_the_rule_catches_io() -> None:
    """The scanner itself: each kind of violation is reported."""
    src = ("import socket\nfrom pyzk.shell import connection\nimport time as t\n"
           "def f(p):\n    return open(p)\n")
    found = "\n".join(_violations("pyzk.core.example", ast.parse(src)))
    for what in (":1 imports socket", ":2 imports the impure pyzk.shell.connection",
                 ":3 imports time", ":5 calls open()"):
        assert what in found, found
    assert _violations("pyzk.core.example", ast.parse("import io\nimport struct\n")) == []
    typing_only = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                   "    from pathlib import Path\nelse:\n    import socket\n")
    assert _violations("pyzk.core.example", ast.parse(typing_only)) == [
        "pyzk.core.example:5 imports socket"]


def _package(mod: str) -> str | None:
    parts = mod.split(".")
    if parts[0] != "pyzk" or len(parts) < 2:
        return None
    return ".".join(parts[:2])


def _cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> None:
        state[n] = 1
        stack.append(n)
        for m in sorted(edges.get(n, ())):
            if state.get(m) == 1:
                found.append(stack[stack.index(m):] + [m])
            elif m not in state:
                visit(m)
        stack.pop()
        state[n] = 2

    for n in sorted(edges):
        if n not in state:
            visit(n)
    return found


def test_no_import_cycles_between_packages() -> None:
    edges: dict[str, set[str]] = defaultdict(set)
    for name, tree in MODULES.items():
        src = _package(name)
        for _line, mod in _imports(name, tree):
            dst = _package(mod)
            if src and dst and src != dst and (dst in MODULES or mod in MODULES):
                edges[src].add(dst)
    assert not _cycles(edges), _cycles(edges)


def test_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []
