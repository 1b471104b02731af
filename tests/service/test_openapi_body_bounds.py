"""Every request body the OpenAPI document allows fits under the service's body limit.

The walk computes, for each operation's request body schema, the largest JSON encoding a
schema-valid body can have, the way a client may encode it: Python's ``json.dumps`` defaults
(``", "`` and ``": "`` separators, ``ensure_ascii``), so a character outside printable ASCII
costs a ``\\uXXXX`` escape (6 bytes) or a surrogate pair of them (12 bytes), a control
character 6 and ``"``/``\\`` 2. A pattern anchored at both ends bounds the characters (and
sometimes the length) a string can hold. An unbounded string, array, object or integer is a
finding of its own, named by its path in the body.
"""

from __future__ import annotations

import json
import math
import warnings
from typing import Any

import pytest

from sessionward.service.api_fields import MAX_BODY
from sessionward.service.bounds import MAX_BODY_BYTES
from sessionward.service.openapi import openapi_document

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    import sre_constants as C
    import sre_parse

DOC = openapi_document()
INF = math.inf

#: Free-form JSON objects the application owns (session data): no schema can bound their
#: values without refusing what clients store today. The policy's ``max_data_bytes`` bounds
#: them (413 ``data_too_large``) and the body limit bounds the body (413
#: ``request_too_large``), both documented answers. Counted here as ``{}``.
FREE_FORM = {
    ("/v1/sessions", "post", ".data"),
    ("/v1/sessions/data", "post", ".set"),
}


def char_cost(c: int) -> int:
    """Bytes ``json.dumps`` (``ensure_ascii``) writes for code point ``c``."""
    return len(json.dumps(chr(c))) - 2


_PROBES = (0x00, 0x08, 0x09, 0x1F, 0x20, 0x22, 0x5C, 0x7E, 0x7F, 0xFF, 0xFFFF, 0x10000, 0x10FFFF)


def _range_cost(lo: int, hi: int) -> int:
    return max(char_cost(c) for c in (lo, hi, *(p for p in _PROBES if lo <= p <= hi)))


def _set_cost(items: Any) -> int:
    """The most a character of a ``[...]`` class costs (a negated or category class: 12)."""
    cost = 0
    for op, arg in items:
        if op is C.LITERAL:
            cost = max(cost, char_cost(arg))
        elif op is C.RANGE:
            cost = max(cost, _range_cost(*arg))
        elif op is C.CATEGORY and arg is C.CATEGORY_DIGIT:
            cost = max(cost, 1)
        else:
            return 12
    return cost


def _pattern(tree: Any) -> tuple[float, int]:
    """(most bytes a match encodes to, most bytes one of its characters encodes to)."""
    total: float = 0
    worst = 0
    for op, arg in tree:
        size: float
        cost: int
        if op is C.LITERAL:
            size = cost = char_cost(arg)
        elif op is C.IN:
            size = cost = _set_cost(arg)
        elif op in (C.ANY, C.NOT_LITERAL):
            size = cost = 12
        elif op in (C.MAX_REPEAT, C.MIN_REPEAT, C.POSSESSIVE_REPEAT):
            _, high, sub = arg
            inner, cost = _pattern(sub)
            size = INF if high is C.MAXREPEAT else high * inner
        elif op is C.SUBPATTERN:
            size, cost = _pattern(arg[-1])
        elif op is C.BRANCH:
            sizes = [_pattern(b) for b in arg[1]]
            size = max(s for s, _ in sizes)
            cost = max(c for _, c in sizes)
        elif op in (C.AT, C.ASSERT, C.ASSERT_NOT):  # `$`: the end, as JSON Schema means it
            size = cost = 0
        else:
            size, cost = INF, 12
        total += size
        worst = max(worst, cost)
    return total, worst


def pattern_bound(pattern: str) -> tuple[float, int]:
    """(most bytes a string matching ``pattern`` encodes to, most bytes per character).
    A pattern not anchored at both ends bounds neither."""
    tree: Any = list(sre_parse.parse(pattern))  # type: ignore[call-overload]
    anchored = (
        tree
        and tree[0] == (C.AT, C.AT_BEGINNING)
        and tree[-1][0] is C.AT
        and tree[-1][1] in (C.AT_END, C.AT_END_STRING)
    )
    if not anchored:
        return INF, 12
    return _pattern(tree)


class Walk:
    def __init__(self) -> None:
        self.findings: list[str] = []

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            node: Any = DOC
            for part in schema["$ref"].removeprefix("#/").split("/"):
                node = node[part]
            schema = node
        return schema

    def size(self, schema: dict[str, Any] | bool, where: str, op: tuple[str, str]) -> float:
        if schema is False:
            return 0
        if schema is True:
            self.findings.append(f"{where}: any JSON value")
            return INF
        schema = self.resolve(schema)
        if (*op, where) in FREE_FORM:
            return 2
        if "const" in schema:
            return len(json.dumps(schema["const"]))
        if "enum" in schema:
            return max(len(json.dumps(v)) for v in schema["enum"])
        alternatives = [*schema.get("oneOf", []), *schema.get("anyOf", [])]
        typed = [a for a in alternatives if set(self.resolve(a)) - {"required", "description"}]
        if typed and "type" not in schema:
            return max(self.size(a, where, op) for a in typed)
        kinds = schema.get("type")
        if kinds is None:
            self.findings.append(f"{where}: no type")
            return INF
        if isinstance(kinds, list):
            return max(self.size({**schema, "type": k}, where, op) for k in kinds)
        if kinds == "null":
            return 4
        if kinds == "boolean":
            return 5
        if kinds == "integer":
            return self.integer(schema, where)
        if kinds == "number":
            return self.number(schema, where)
        if kinds == "string":
            return self.string(schema, where)
        if kinds == "array":
            return self.array(schema, where, op)
        return self.object(schema, where, op)

    def integer(self, schema: dict[str, Any], where: str) -> float:
        if "minimum" not in schema or "maximum" not in schema:
            self.findings.append(f"{where}: integer without minimum and maximum")
            return INF
        return max(len(str(schema["minimum"])), len(str(schema["maximum"])))

    def number(self, schema: dict[str, Any], where: str) -> float:
        if "minimum" not in schema or "maximum" not in schema:
            self.findings.append(f"{where}: number without minimum and maximum")
            return INF
        return len(json.dumps(-1.7976931348623157e308))  # the longest float repr

    def string(self, schema: dict[str, Any], where: str) -> float:
        longest, cost = pattern_bound(schema["pattern"]) if "pattern" in schema else (INF, 12)
        if "maxLength" in schema:
            longest = min(longest, schema["maxLength"] * cost)
        if longest == INF:
            self.findings.append(f"{where}: string without maxLength")
        return 2 + longest

    def array(self, schema: dict[str, Any], where: str, op: tuple[str, str]) -> float:
        if "maxItems" not in schema:
            self.findings.append(f"{where}: array without maxItems")
            return INF
        n: int = schema["maxItems"]
        item = self.size(schema.get("items", True), f"{where}[]", op)
        return 2 + n * item + max(0, n - 1) * 2

    def object(self, schema: dict[str, Any], where: str, op: tuple[str, str]) -> float:
        members: list[float] = []
        for name, sub in schema.get("properties", {}).items():
            members.append(len(json.dumps(name)) + 2 + self.size(sub, f"{where}.{name}", op))
        extra = schema.get("additionalProperties", True)
        if extra is not False:
            n = schema.get("maxProperties")
            if n is None:
                self.findings.append(f"{where}: object without maxProperties")
                return INF
            names = schema.get("propertyNames", {"type": "string"})
            name = self.string({"type": "string", **names}, f"{where}{{name}}")
            value = self.size(extra, f"{where}{{}}", op)
            members += [name + 2 + value] * n
        return 2 + sum(members) + max(0, len(members) - 1) * 2


def bodies() -> list[tuple[str, str, str, dict[str, Any]]]:
    out = []
    for path, item in DOC["paths"].items():
        for method, operation in item.items():
            for media, content in operation.get("requestBody", {}).get("content", {}).items():
                out.append((path, method, media, content["schema"]))
    return out


def test_the_limits_agree() -> None:
    assert MAX_BODY == MAX_BODY_BYTES


@pytest.mark.parametrize(("path", "method", "media", "schema"), bodies())
def test_every_valid_body_fits(path: str, method: str, media: str, schema: dict[str, Any]) -> None:
    walk = Walk()
    largest = walk.size(schema, "", (path, method))  # a form's encoding is sized as JSON's
    assert walk.findings == [], f"{method.upper()} {path}"
    assert largest <= MAX_BODY_BYTES, f"{method.upper()} {path}: {largest} bytes"


def test_the_walk_finds_what_it_should() -> None:
    assert pattern_bound("^[ -~]*$")[1] == 2  # `"` and `\\`
    assert pattern_bound("^[A-Za-z0-9_-]{16}$") == (16, 1)
    assert pattern_bound("^whsec_")[0] == INF
    walk = Walk()
    assert walk.size({"type": "string", "maxLength": 10}, ".s", ("", "")) == 122
    assert walk.size({"type": "array", "items": {"type": "null"}}, ".a", ("", "")) == INF
    assert walk.size({"type": "object"}, ".o", ("", "")) == INF
    assert walk.findings == [".a: array without maxItems", ".o: object without maxProperties"]
