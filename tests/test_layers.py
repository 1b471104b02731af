"""The package is laid out by layer, and imports only point down the layers.

    core  <  risk  <  stores  <  manager  <  web, django  <  jwt  <  signals  <  service  <  cli

``errors``, ``clock`` and the private helpers sit below everything; ``audit`` (the black-box
tester) stands apart and may use only those. A module may import its own layer or lower ones,
never a higher one, and no set of modules may import each other in a circle.
"""

from __future__ import annotations

import ast
from collections.abc import Container, Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "src" / "sessionward"

LAYERS: dict[str, float] = {
    "errors": 0,
    "clock": 0,
    "_version": 0,
    "_backoff": 0,
    "core": 1,
    "risk": 1.5,  # request signals for the engine: may use core only
    "stores": 2,
    "manager": 3,
    "testing": 3,
    "web": 4,
    "django": 4,
    "jwt": 5,
    "signals": 5.5,  # events leaving the process: webhooks, Shared Signals, back-channel logout
    "service": 6,
    "cli": 7,
    "__main__": 7,
    "__init__": 7,
}
# audit may import only layer 0 and itself: it tests other sites and keeps out of the core.
APART = {"audit"}


def _module(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(path: Path, name: str, modules: Container[str]) -> Iterator[str]:
    """Absolute names of the sessionward modules ``path`` imports (at any depth of the code,
    including imports inside functions; ``TYPE_CHECKING`` blocks count too). ``from p import
    m`` names the module ``p.m`` when there is one, the package ``p`` otherwise."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.startswith("sessionward"))
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([base] if base else [])])
            if base.startswith("sessionward"):
                for alias in node.names:
                    yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base


def _edges() -> dict[str, set[str]]:
    modules = _modules()
    return {
        name: {target for target in _imports(path, name, modules) if target in modules} - {name}
        for name, path in modules.items()
    }


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def test_every_top_level_module_has_a_layer() -> None:
    tops = {_top(m) for m in _modules()}
    assert tops - LAYERS.keys() - APART == set()


def test_imports_point_down_the_layers() -> None:
    upward = []
    for source, targets in _edges().items():
        for target in targets:
            a, b = _top(source), _top(target)
            if a == b:
                continue
            if a in APART:
                allowed = b not in APART and LAYERS[b] == 0
            elif b in APART:
                allowed = a in ("cli", "__init__", "__main__")
            else:
                allowed = LAYERS[b] <= LAYERS[a]
            if not allowed:
                upward.append(f"{source} -> {target}")
    assert upward == []


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import circle among modules, or ``None``. Imports of a package's own
    ``__init__`` from its submodules are how packages hand names on, so the edge from a
    package to its submodules is what counts, not back."""
    colour: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        colour[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if node.startswith(nxt + "."):
                continue  # a submodule importing its package's face
            if colour.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if colour.get(nxt) is None and (found := visit(nxt)):
                return found
        stack.pop()
        colour[node] = 2
        return None

    for node in sorted(edges):
        if colour.get(node) is None and (found := visit(node)):
            return found
    return None


def test_no_import_circle() -> None:
    assert _cycle(_edges()) is None


@pytest.mark.parametrize(
    ("edges", "circle"),
    [
        ({"a": {"b"}, "b": {"a"}}, True),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, True),
        ({"a": {"b"}, "b": {"c"}, "c": set()}, False),
        ({"p.x": {"p"}, "p": {"p.x"}}, False),
    ],
)
def test_the_circle_finder_finds_circles(edges: dict[str, set[str]], circle: bool) -> None:
    assert (_cycle(edges) is not None) is circle


def test_no_hand_written_module_reaches_600_lines() -> None:
    long = {
        str(path.relative_to(PACKAGE)): lines
        for path in PACKAGE.rglob("*.py")
        if "_sync" not in path.parts and (lines := len(path.read_text("utf-8").splitlines())) >= 600
    }
    assert long == {}
