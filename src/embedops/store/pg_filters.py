"""Payload filters compiled to parameterised PostgreSQL over a ``jsonb`` column.

The filter language and its semantics are ``embedops.store.filters``'s; this module
only writes them in PostgreSQL, with the same meaning on every payload (the hypothesis
test ``tests/store/test_remote_filters.py`` checks the SQL against the Python evaluator):

- a field ``a.b`` is ``(payload #> '{a,b}')``: SQL NULL when missing, the ``jsonb`` value
  otherwise (a JSON ``null`` is present). Field names are validated identifiers before
  they reach the SQL text; values are always bound parameters.
- equality and ``in`` are ``x = ANY(%s::jsonb[])``: ``jsonb`` equality is type-strict and
  compares numbers numerically; ``true``/``false`` are added as ``1``/``0`` and the
  reverse, which is how the embedded store (and Python) compare booleans with numbers.
- ranges check the JSON type first (numbers with numbers, strings with strings, byte
  order via ``COLLATE "C"``, as SQLite and Python compare).
- a comparison on a missing field is NULL, and ``not`` is ``IS NOT TRUE``: so ``ne`` and
  ``not`` match points without the field.

A payload index declared on a field is a btree expression index on exactly
``(payload #> '{a,b}')`` (:func:`field_sql`), the text equality and ranges compile to.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from psycopg.types.json import Jsonb

from embedops.store.filters import Sql, balanced_sql, json_path, parse_filter

_RANGE = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}


def field_sql(field: str) -> str:
    """``(payload #> '{a,b}')`` for a validated dotted field name."""
    json_path(field)
    return "(payload #> '{" + ",".join(field.split(".")) + "}')"


def _equal_values(value: Any) -> list[Jsonb]:
    """The jsonb values equal to ``value`` under the filter semantics."""
    values = [value]
    if isinstance(value, bool):
        values.append(int(value))
    elif not isinstance(value, str) and value in (0, 1):
        values.append(bool(value))
    return [Jsonb(v) for v in values]


def _leaf(field: str, op: str, value: Any) -> Sql:
    x = field_sql(field)
    if op == "exists":
        return (f"({x} IS NOT NULL)" if value else f"({x} IS NULL)"), []
    if op in ("eq", "ne", "in"):
        items = value if op == "in" else [value]
        sql = f"({x} = ANY(%s::jsonb[]))"
        params = [[j for item in items for j in _equal_values(item)]]
        return (f"({sql} IS NOT TRUE)" if op == "ne" else sql), params
    if isinstance(value, str):
        return (f"(jsonb_typeof({x}) = 'string' AND ({x} #>> '{{}}') COLLATE \"C\" "
                f"{_RANGE[op]} %s)"), [value]
    return f"(jsonb_typeof({x}) = 'number' AND {x} {_RANGE[op]} %s::jsonb)", [Jsonb(value)]


def _compile(spec: Mapping[str, Any]) -> Sql:
    if "field" in spec:
        return balanced_sql([_leaf(spec["field"], op, v) for op, v in spec.items()
                        if op != "field"], " AND ")
    if "not" in spec:
        sql, params = _compile(spec["not"])
        return f"({sql} IS NOT TRUE)", params
    (key, items), = spec.items()
    return balanced_sql([_compile(item) for item in items], " OR " if key == "or" else " AND ")


def compile_pg_filter(spec: Mapping[str, Any] | str) -> Sql:
    """``(sql, params)``: a boolean expression over the ``payload`` column, safe to AND
    into a WHERE clause. Raises ``InvalidFilter`` for a malformed or oversized filter."""
    return _compile(parse_filter(spec))
