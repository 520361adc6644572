"""Payload filters: a small dict language, a short string form, and their SQL compilation.

Dict form (JSON-friendly)::

    {"field": "lang", "eq": "en"}                      equality (strings, numbers, booleans)
    {"field": "lang", "ne": "en"}                      not equal (missing fields match)
    {"field": "lang", "in": ["en", "de"]}              membership
    {"field": "year", "gte": 2020, "lt": 2024}         range: gt, gte, lt, lte (numbers or strings)
    {"field": "meta.source", "exists": true}           presence (a JSON null counts as present)
    {"and": [f1, f2, ...]}, {"or": [f1, ...]}, {"not": f}

Several operators in one leaf are combined with AND. Field names are dotted paths of
identifiers (``[A-Za-z_][A-Za-z0-9_]*``); they address nested payload objects.

String form (what the CLI's ``--filter EXPR`` takes)::

    lang = "en" and year >= 2020
    not (lang in ["en", "de"] or draft = true) and meta.source exists

Operators: ``= == != > >= < <=``, ``in [...]``, ``exists``, ``not exists``; ``and`` binds
tighter than ``or``; ``not`` and parentheses as usual. Values: double- or single-quoted
strings, numbers, ``true``, ``false``.

Semantics: comparisons are type-strict (``year >= 2020`` never matches the string
``"2021"``); a comparison on a missing field is false, so ``not`` of it is true.

Limits: a filter nests at most ``MAX_DEPTH`` filter objects deep (a leaf is one level,
each ``and``/``or``/``not`` around it one more) and holds at most ``MAX_TERMS``
comparisons (each leaf operator one, each value of an ``in`` list one). Larger filters
are refused with ``InvalidFilter`` before anything is compiled.

Compilation (``compile_filter``) produces a parameterised SQL expression over
``json_extract(payload, '$.path')``: values always travel as bound parameters; field names
are validated against the identifier pattern above before they become JSON paths, which
lets the SQLite expression indexes declared as payload indexes match the query text.
The expression stays inside SQLite's parser limits for every filter within the limits
above: wide ``and``/``or`` lists and ``in`` lists become balanced trees (SQLite refuses
an expression tree deeper than 1000, and a flat list of n terms is n deep), nested lists
of the same kind are merged, and the most deeply nested operand comes first in its list
(the parser holds less state for a left operand than for a right one).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from embedops.errors import InvalidFilter
from embedops.store.filter_parser import MAX_DEPTH

FIELD_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")
LEAF_OPS = ("eq", "ne", "in", "gt", "gte", "lt", "lte", "exists")
RANGE_SQL = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
MAX_IN = 1000
MAX_TERMS = 10_000
Scalar = str | int | float | bool
Sql = tuple[str, list[Any]]  # an SQL expression and its bound parameters


def json_path(field: str) -> str:
    """The SQLite JSON path for a validated dotted field name; raises ``InvalidFilter``."""
    if not isinstance(field, str) or not FIELD_RE.match(field) or len(field) > 200:
        raise InvalidFilter(f"invalid field name {field!r}: use dotted identifiers like a.b_c")
    return "$." + field


def field_sql(field: str) -> str:
    """``json_extract(payload, '$.field')`` — the exact text payload indexes are built on."""
    return f"json_extract(payload, '{json_path(field)}')"


def parse_filter(spec: Mapping[str, Any] | str) -> dict[str, Any]:
    """Normalise a dict or string filter into the validated dict form; raises
    ``InvalidFilter`` for a malformed filter or one over ``MAX_DEPTH`` or ``MAX_TERMS``."""
    if isinstance(spec, str):
        from embedops.store.filter_parser import parse_expression

        spec = parse_expression(spec)
    check_size(spec)
    return validate(spec)


def _check_scalar(op: str, value: Any) -> None:
    if isinstance(value, bool | str):
        return
    if isinstance(value, int) and -(2**63) <= value < 2**63:
        return
    if isinstance(value, float) and value == value and abs(value) != float("inf"):
        return
    raise InvalidFilter(f"operator {op!r} needs a string, number or boolean, got {value!r}")


def _validate_leaf(spec: Mapping[str, Any]) -> dict[str, Any]:
    json_path(spec["field"])
    ops = [key for key in spec if key != "field"]
    unknown = [op for op in ops if op not in LEAF_OPS]
    if unknown or not ops:
        raise InvalidFilter(f"leaf needs one of {LEAF_OPS}, got {sorted(map(str, unknown or ops))}")
    for op in ops:
        value = spec[op]
        if op == "exists":
            if not isinstance(value, bool):
                raise InvalidFilter("'exists' takes true or false")
        elif op == "in":
            if not isinstance(value, list | tuple) or not value or len(value) > MAX_IN:
                raise InvalidFilter(f"'in' takes a non-empty list of at most {MAX_IN} values")
            for item in value:
                _check_scalar(op, item)
        elif op in RANGE_SQL:
            _check_scalar(op, value)
            if isinstance(value, bool):
                raise InvalidFilter(f"range operator {op!r} takes a number or a string")
        else:
            _check_scalar(op, value)
    return {key: (list(v) if key == "in" else v) for key, v in spec.items()}


def validate(spec: Any) -> dict[str, Any]:
    """Check a dict filter's structure; returns a normalised copy or raises ``InvalidFilter``."""
    if not isinstance(spec, Mapping) or not spec:
        raise InvalidFilter(f"a filter is a non-empty object, got {spec!r}")
    if "field" in spec:
        return _validate_leaf(spec)
    if len(spec) != 1:
        raise InvalidFilter(f"a combinator has exactly one key (and/or/not), got {sorted(spec)}")
    (key, value), = spec.items()
    if key in ("and", "or"):
        if not isinstance(value, list | tuple) or not value:
            raise InvalidFilter(f"{key!r} takes a non-empty list of filters")
        return {key: [validate(item) for item in value]}
    if key == "not":
        return {"not": validate(value)}
    raise InvalidFilter(f"unknown filter key {key!r}: use field/and/or/not")


def _leaf_op_sql(field: str, op: str, value: Any) -> tuple[str, list[Any]]:
    x = field_sql(field)
    jtype = f"json_type(payload, '{json_path(field)}')"
    if op == "exists":
        return (f"{jtype} IS NOT NULL" if value else f"{jtype} IS NULL"), []
    if op == "eq":
        return _eq_sql(x, jtype, value)
    if op == "ne":
        sql, params = _eq_sql(x, jtype, value)
        return f"NOT IFNULL(({sql}), 0)", params
    if op == "in":
        return balanced_sql([_eq_sql(x, jtype, item) for item in value], " OR ")
    kind = "('text')" if isinstance(value, str) else "('integer', 'real')"
    return f"({x} {RANGE_SQL[op]} ? AND {jtype} IN {kind})", [value]


def _eq_sql(x: str, jtype: str, value: Scalar) -> tuple[str, list[Any]]:
    if isinstance(value, bool):
        return f"({jtype} IN ('true', 'false', 'integer', 'real') AND {x} = ?)", [int(value)]
    if isinstance(value, str):
        return f"({x} = ? AND {jtype} = 'text')", [value]
    return f"({x} = ? AND {jtype} IN ('integer', 'real', 'true', 'false'))", [value]


def _compile(spec: Mapping[str, Any]) -> tuple[str, list[Any], int]:
    """SQL, parameters and filter depth of a validated filter. Every expression
    returned is parenthesised, so it nests anywhere without precedence surprises."""
    if "field" in spec:
        parts = [_leaf_op_sql(spec["field"], op, v) for op, v in spec.items() if op != "field"]
        sql, params = balanced_sql(parts, " AND ")
        return sql, params, 1
    if "not" in spec:
        sql, params, depth = _compile(spec["not"])
        # `IS NOT 1` is true for false and for NULL (a missing field): the negation of a
        # comparison that cannot hold. Postfix, so it costs the parser one level only.
        return f"({sql} IS NOT 1)", params, depth + 1
    (key, items), = spec.items()
    compiled = sorted((_compile(item) for item in _merged(key, items)), key=lambda c: -c[2])
    if len(compiled) == 1:
        return compiled[0]
    joiner = " OR " if key == "or" else " AND "
    deepest, rest = compiled[0], compiled[1:]
    rest_sql, rest_params = balanced_sql([(c[0], c[1]) for c in rest], joiner)
    return (f"({deepest[0]}{joiner}{rest_sql})", deepest[1] + rest_params,
            deepest[2] + 1)


def _merged(key: str, items: list[Any]) -> list[Mapping[str, Any]]:
    """The operands of an ``and`` (``or``) list, with nested lists of the same kind
    merged into it: ``a and (b and c)`` is ``a and b and c``."""
    out: list[Mapping[str, Any]] = []
    stack = list(reversed(items))
    while stack:
        item = stack.pop()
        if key in item and len(item) == 1:
            stack.extend(reversed(item[key]))
        else:
            out.append(item)
    return out


def balanced(parts: list[str], joiner: str) -> str:
    """``parts`` joined by ``joiner`` as a balanced tree of flat groups of at most 8:
    the expression is O(log n) deep instead of n, so parsers recurse O(log n) deep."""
    if len(parts) == 1:
        return parts[0]
    if len(parts) <= 8:
        return "(" + joiner.join(parts) + ")"
    half = len(parts) // 2
    return f"({balanced(parts[:half], joiner)}{joiner}{balanced(parts[half:], joiner)})"


def balanced_sql(parts: list[Sql], joiner: str) -> Sql:
    """``balanced`` over SQL fragments: their parameters stay in the order of the text."""
    return balanced([p[0] for p in parts], joiner), [v for p in parts for v in p[1]]


def compile_filter(spec: Mapping[str, Any] | str) -> tuple[str, list[Any]]:
    """Compile a filter into ``(sql_expression, params)`` over the ``payload`` column.

    The expression is safe to AND into a WHERE clause; raises ``InvalidFilter``.
    """
    sql, params, _ = _compile(parse_filter(spec))
    return sql, params


def check_size(spec: Any, depth_limit: int = MAX_DEPTH, term_limit: int = MAX_TERMS) -> None:
    """Refuse a dict filter nested deeper than ``depth_limit`` filter objects (lists
    between them do not count) or holding more than ``term_limit`` comparisons.
    Iterative, and stops at the first excess, so it is safe on any parsed JSON."""
    stack: list[tuple[Any, int]] = [(spec, 1)]
    terms = 0
    while stack:
        node, depth = stack.pop()
        if isinstance(node, Mapping):
            if depth > depth_limit:
                raise InvalidFilter(f"filter nests deeper than {depth_limit} levels")
            if "field" in node:
                terms += sum(len(v) if k == "in" and isinstance(v, list | tuple) else 1
                             for k, v in node.items() if k != "field")
            children: Any = node.values()
            depth += 1
        elif isinstance(node, list | tuple):
            children = node
        else:
            continue
        if terms > term_limit:
            raise InvalidFilter(f"filter holds more than {term_limit} comparisons")
        stack.extend((child, depth) for child in children
                     if isinstance(child, Mapping | list | tuple))


_MISSING = object()


def _lookup(payload: Mapping[str, Any], field: str) -> Any:
    value: Any = payload
    for part in field.split("."):
        if not isinstance(value, Mapping) or part not in value:
            return _MISSING
        value = value[part]
    return value


def _eq(value: Any, target: Scalar) -> bool:
    if isinstance(value, dict | list) or value is None or value is _MISSING:
        return False
    if isinstance(target, str) or isinstance(value, str):
        return isinstance(target, str) and isinstance(value, str) and value == target
    return bool(value == target)


def _leaf_matches(value: Any, op: str, target: Any) -> bool:
    if op == "exists":
        return (value is not _MISSING) == target
    if op == "eq":
        return _eq(value, target)
    if op == "ne":
        return not _eq(value, target)
    if op == "in":
        return any(_eq(value, t) for t in target)
    if isinstance(target, str):
        ok = isinstance(value, str)
    else:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    if not ok:
        return False
    return {"gt": value > target, "gte": value >= target,
            "lt": value < target, "lte": value <= target}[op]


def matches(spec: Mapping[str, Any] | str, payload: Mapping[str, Any]) -> bool:
    """Evaluate a filter against one payload in Python, with the same semantics as the SQL."""
    return _matches(parse_filter(spec), payload)


def _matches(spec: Mapping[str, Any], payload: Mapping[str, Any]) -> bool:
    if "field" in spec:
        value = _lookup(payload, spec["field"])
        return all(_leaf_matches(value, op, t) for op, t in spec.items() if op != "field")
    if "not" in spec:
        return not _matches(spec["not"], payload)
    if "and" in spec:
        return all(_matches(item, payload) for item in spec["and"])
    return any(_matches(item, payload) for item in spec["or"])


def canonical(spec: Mapping[str, Any] | str) -> str:
    """A stable JSON text for a filter (for logs and cache keys)."""
    return json.dumps(parse_filter(spec), sort_keys=True, separators=(",", ":"))
