"""docs/asvs.md, the requirement-by-requirement map to OWASP ASVS 5.0.0, cannot rot.

The map has one table row per requirement: ``| ID | L | requirement | status | how | tests |
docs |``. This test reads it and fails when

* a requirement of the mapped chapters is missing, listed twice, or given the wrong level
  (``REQUIREMENTS`` below is copied from the ASVS 5.0.0 release, tag ``v5.0.0_release``);
* a status is not one of ``covered``, ``partial``, ``pending``, ``gap``, ``n/a``;
* a row that applies at L1 or L2 is a ``gap``, or a ``covered``/``partial`` row names no test;
* a ``gap`` or ``n/a`` row does not say why;
* a named test does not exist (``tests/path.py::test_name`` or ``::Class::test_name``, found
  by parsing the file, so nothing is imported or run);
* a ``pending`` row's tests (agreed with work under way elsewhere) have all landed: the row
  must then say ``covered``;
* the summary of counts disagrees with the rows;
* a link to another document, or to a section of it, points nowhere.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MAP = ROOT / "docs" / "asvs.md"

#: ``ID:level`` of every requirement the map covers: V7, V9, V3.3-3.5, V6, V2.4 and V16.3 whole,
#: plus the requirements of other chapters that session handling touches.
_LEVELS = """
    2.4.1:2 2.4.2:3
    3.3.1:1 3.3.2:2 3.3.3:2 3.3.4:2 3.3.5:3
    3.4.1:1 3.4.2:1 3.4.3:2 3.4.4:2 3.4.5:2 3.4.6:2 3.4.7:3 3.4.8:3
    3.5.1:1 3.5.2:1 3.5.3:1 3.5.4:2 3.5.5:2 3.5.6:3 3.5.7:3 3.5.8:3
    6.1.1:1 6.1.2:2 6.1.3:2
    6.2.1:1 6.2.2:1 6.2.3:1 6.2.4:1 6.2.5:1 6.2.6:1 6.2.7:1 6.2.8:1 6.2.9:2 6.2.10:2
    6.2.11:2 6.2.12:2
    6.3.1:1 6.3.2:1 6.3.3:2 6.3.4:2 6.3.5:3 6.3.6:3 6.3.7:3 6.3.8:3
    6.4.1:1 6.4.2:1 6.4.3:2 6.4.4:2 6.4.5:3 6.4.6:3
    6.5.1:2 6.5.2:2 6.5.3:2 6.5.4:2 6.5.5:2 6.5.6:3 6.5.7:3 6.5.8:3
    6.6.1:2 6.6.2:2 6.6.3:2 6.6.4:3 6.7.1:3 6.7.2:3 6.8.1:2 6.8.2:2 6.8.3:2 6.8.4:2
    7.1.1:2 7.1.2:2 7.1.3:2 7.2.1:1 7.2.2:1 7.2.3:1 7.2.4:1 7.3.1:2 7.3.2:2
    7.4.1:1 7.4.2:1 7.4.3:2 7.4.4:2 7.4.5:2 7.5.1:2 7.5.2:2 7.5.3:3 7.6.1:2 7.6.2:2
    9.1.1:1 9.1.2:1 9.1.3:1 9.2.1:1 9.2.2:2 9.2.3:2 9.2.4:2
    10.4.5:1 10.4.8:2 10.4.9:2 11.4.2:2 11.5.1:2 14.2.1:1 14.3.1:1 14.3.2:2 14.3.3:2
    16.2.5:2 16.3.1:2 16.3.2:2 16.3.3:2 16.3.4:2
"""
REQUIREMENTS = dict(item.split(":") for item in _LEVELS.split())
STATUSES = {"covered", "partial", "pending", "gap", "n/a"}
_ROW = re.compile(r"^\|\s*(\d+\.\d+\.\d+)\s*\|")
_TEST = re.compile(r"`(tests/[^`\s]+?\.py)::([^`\s]+)`")
_LINK = re.compile(r"\]\(([^)\s]+)\)")


def _rows() -> list[list[str]]:
    rows = []
    for line in MAP.read_text(encoding="utf-8").splitlines():
        if _ROW.match(line):
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            assert len(cells) == 7, f"a row needs 7 cells: {line}"
            rows.append(cells)
    return rows


@cache
def _defined(path: str) -> frozenset[str]:
    """``name`` and ``Class::name`` of every test function the file defines."""
    tree = ast.parse((ROOT / path).read_text(encoding="utf-8"))
    names: set[str] = set()
    functions = (ast.FunctionDef, ast.AsyncFunctionDef)
    for node in tree.body:
        if isinstance(node, functions) and node.name.startswith("test"):
            names.add(node.name)
        elif isinstance(node, ast.ClassDef):
            names |= {
                f"{node.name}::{item.name}"
                for item in node.body
                if isinstance(item, functions) and item.name.startswith("test")
            }
    return frozenset(names)


def _exists(path: str, name: str) -> bool:
    return (ROOT / path).is_file() and name.split("[")[0] in _defined(path)


def _slug(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    return {_slug(line.lstrip("#")) for line in lines if line.startswith("#")}


def test_every_requirement_once_with_its_level() -> None:
    rows = _rows()
    ids = [row[0] for row in rows]
    assert sorted(set(ids)) == sorted(ids), "a requirement is listed twice"
    missing, unknown = set(REQUIREMENTS) - set(ids), set(ids) - set(REQUIREMENTS)
    assert not missing, f"missing {sorted(missing)}"
    assert not unknown, f"not a mapped requirement: {sorted(unknown)}"
    for row in rows:
        assert row[1] == REQUIREMENTS[row[0]], f"{row[0]} is level {REQUIREMENTS[row[0]]}"


def test_every_row_has_a_status_a_reason_and_its_tests() -> None:
    for ident, level, _, status, how, tests, _ in _rows():
        named = _TEST.findall(tests)
        assert status in STATUSES, f"{ident}: status {status!r}"
        if status in ("gap", "n/a"):
            assert len(how) > 15, f"{ident}: say why it is {status}"
        if status == "gap":
            assert level == "3", f"{ident}: an L{level} requirement may not be left as a gap"
        if status in ("covered", "partial", "pending"):
            assert named, f"{ident}: {status} but no test named"
            assert how, f"{ident}: say where it is implemented"


def test_every_named_test_exists() -> None:
    missing = []
    for ident, _, _, status, _, tests, _ in _rows():
        named = _TEST.findall(tests)
        absent = [f"{path}::{name}" for path, name in named if not _exists(path, name)]
        if status == "pending":
            assert absent, f"{ident}: its tests have landed; mark it covered"
        else:
            missing += [f"{ident}: {test}" for test in absent]
    assert not missing, "named tests that do not exist:\n" + "\n".join(missing)


def test_the_counts_add_up() -> None:
    text = MAP.read_text(encoding="utf-8")
    block = text[text.index("<!-- counts -->") : text.index("<!-- /counts -->")]
    stated = {m[0]: int(m[1]) for m in re.findall(r"^\| ([a-z/]+) \| (\d+) \|$", block, re.M)}
    counted = Counter(row[3] for row in _rows())
    assert stated == dict(counted)


def test_links_point_somewhere() -> None:
    text = MAP.read_text(encoding="utf-8")
    broken = []
    for target in _LINK.findall(text):
        if target.startswith(("http://", "https://")):
            continue
        file_part, _, anchor = target.partition("#")
        path = (MAP.parent / file_part) if file_part else MAP
        if not path.is_file() or (anchor and anchor not in _anchors(path)):
            broken.append(target)
    assert not broken, f"broken links: {broken}"


def test_the_checker_sees_what_it_checks() -> None:
    """The parsing above finds real tests and refuses invented ones."""
    assert _exists("tests/test_asvs_map.py", "test_every_named_test_exists")
    assert _exists("tests/test_csprng.py", "test_minted_values_come_from_secrets[token]")
    assert not _exists("tests/test_asvs_map.py", "test_that_was_never_written")
    assert not _exists("tests/no_such_file.py", "test_x")
    assert _slug("V7.2 Fundamental session security") == "v72-fundamental-session-security"
    assert _TEST.findall("`tests/x.py`") == []
