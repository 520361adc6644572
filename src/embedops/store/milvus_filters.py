"""Payload filters compiled to Milvus boolean expressions over the ``payload`` JSON field.

Milvus evaluates a comparison on a missing JSON key as *unknown* and keeps it unknown
under ``not`` (three-valued logic), while embedops' semantics make such a comparison
false and its negation true. So the filter is first pushed into negation normal form
(``not`` moved down to the leaves by De Morgan), and each negated leaf is written as a
positive expression that holds for points without the field::

    not (lang = "en")      ->  (not (exists payload["lang"]) or payload["lang"] != "en")
    not (year > 2000)      ->  (not (exists payload["year"]) or payload["year"] <= 2000)

With no ``not`` left above a comparison, *unknown* and *false* select the same points.
``in`` is written as ``==`` alternatives (a JSON path on the left of ``in`` is not
accepted by every Milvus version). Field names are validated identifiers; strings are
quoted with the escapes every Milvus parser reads (``\\" \\\\ \\n \\r \\t``).

Known differences from the embedded store, both from the engine's JSON semantics: a key
holding JSON ``null`` counts as missing (``exists`` is false for it), and a negated range
on a field that holds values of another type (a string where the range is numeric) does
not match that point. ``tests/store/test_remote_filters.py`` checks the rest against the
Python evaluator.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from embedops.store.filters import balanced, json_path, parse_filter

_RANGE = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
_NEGATED_RANGE = {"gt": "<=", "gte": "<", "lt": ">=", "lte": ">"}


def field_expr(field: str) -> str:
    """``payload["a"]["b"]`` for a validated dotted field name."""
    json_path(field)
    return "payload" + "".join(f'["{part}"]' for part in field.split("."))


def literal(value: Any) -> str:
    """A Milvus literal for a validated scalar (string, number, boolean)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    text = (str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
            .replace("\r", "\\r").replace("\t", "\\t"))
    return f'"{text}"'


def _missing(x: str) -> str:
    return f"not (exists {x})"


def _leaf(field: str, op: str, value: Any, negated: bool) -> str:
    """One comparison (or its negation) as an expression that is never unknown where
    the embedops semantics say true."""
    x = field_expr(field)
    if op == "exists":
        present = value != negated
        return f"(exists {x})" if present else f"({_missing(x)})"
    if op == "ne":
        op, negated = "eq", not negated
    if op in ("eq", "in"):
        values = value if op == "in" else [value]
        if negated:
            parts = " and ".join(f"{x} != {literal(v)}" for v in values)
            return f"({_missing(x)} or ({parts}))"
        return "(" + " or ".join(f"{x} == {literal(v)}" for v in values) + ")"
    if negated:
        return f"({_missing(x)} or {x} {_NEGATED_RANGE[op]} {literal(value)})"
    return f"({x} {_RANGE[op]} {literal(value)})"


def _nnf(spec: Mapping[str, Any], negated: bool) -> str:
    if "field" in spec:
        parts = [_leaf(spec["field"], op, v, negated) for op, v in spec.items()
                 if op != "field"]
        return balanced(parts, " or " if negated else " and ")
    if "not" in spec:
        return _nnf(spec["not"], not negated)
    (key, items), = spec.items()
    conjunction = (key == "and") != negated
    return balanced([_nnf(item, negated) for item in items],
                    " and " if conjunction else " or ")


def compile_milvus_filter(spec: Mapping[str, Any] | str) -> str:
    """A Milvus boolean expression for a filter; raises ``InvalidFilter``."""
    return _nnf(parse_filter(spec), False)
