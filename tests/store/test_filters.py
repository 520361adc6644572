"""Filters: the SQL compilation agrees with the Python semantics on arbitrary payloads."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedops.errors import InvalidFilter
from embedops.store.filters import compile_filter, matches, parse_filter

FIELDS = ["lang", "year", "score", "flag", "meta.src"]
texts = st.text(alphabet="abcxyzé' \"", max_size=4)
scalars = st.one_of(texts, st.integers(-5, 5), st.booleans(),
                    st.floats(-5, 5, allow_nan=False).map(lambda f: round(f, 2)))


def _payloads() -> st.SearchStrategy[dict[str, Any]]:
    flat = st.dictionaries(st.sampled_from(["lang", "year", "score", "flag"]),
                           st.one_of(scalars, st.none(), st.lists(scalars, max_size=2)),
                           max_size=4)
    return st.tuples(flat, st.one_of(st.none(), st.dictionaries(st.just("src"), scalars))).map(
        lambda t: {**t[0], **({"meta": t[1]} if t[1] is not None else {})})


def _leaf() -> st.SearchStrategy[dict[str, Any]]:
    field = st.sampled_from(FIELDS)
    return st.one_of(
        st.builds(lambda f, v: {"field": f, "eq": v}, field, scalars),
        st.builds(lambda f, v: {"field": f, "ne": v}, field, scalars),
        st.builds(lambda f, v: {"field": f, "in": v}, field, st.lists(scalars, min_size=1,
                                                                        max_size=3)),
        st.builds(lambda f, op, v: {"field": f, op: v}, field,
                  st.sampled_from(["gt", "gte", "lt", "lte"]),
                  st.one_of(texts, st.integers(-5, 5), st.floats(-5, 5, allow_nan=False))),
        st.builds(lambda f, v: {"field": f, "exists": v}, field, st.booleans()),
    )


filters = st.recursive(
    _leaf(),
    lambda inner: st.one_of(
        st.builds(lambda xs: {"and": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda xs: {"or": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda x: {"not": x}, inner),
    ),
    max_leaves=6,
)


@pytest.fixture(scope="module")
def db() -> sqlite3.Connection:
    return sqlite3.connect(":memory:")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=filters, payloads=st.lists(_payloads(), min_size=1, max_size=8))
def test_sql_matches_python_semantics(db: sqlite3.Connection, spec: dict[str, Any],
                                      payloads: list[dict[str, Any]]) -> None:
    sql, params = compile_filter(spec)
    for payload in payloads:
        text = json.dumps(payload)
        (got,) = db.execute(f"SELECT EXISTS(SELECT 1 FROM (SELECT ? AS payload) WHERE {sql})",
                            (text, *params)).fetchone()
        assert bool(got) == matches(spec, payload), (spec, payload)


def _render(spec: dict[str, Any]) -> str:
    if "and" in spec or "or" in spec:
        op = "and" if "and" in spec else "or"
        return "(" + f" {op} ".join(_render(s) for s in spec[op]) + ")"
    if "not" in spec:
        return f"not ({_render(spec['not'])})"
    (op, value), = [(k, v) for k, v in spec.items() if k != "field"]
    if op == "exists":
        return f"{spec['field']} {'exists' if value else 'not exists'}"
    symbol = {"eq": "=", "ne": "!=", "gt": ">", "gte": ">=", "lt": "<", "lte": "<=", "in": "in"}
    return f"{spec['field']} {symbol[op]} {json.dumps(value)}"


@settings(max_examples=200, deadline=None)
@given(spec=filters, payload=_payloads())
def test_string_form_means_the_same(spec: dict[str, Any], payload: dict[str, Any]) -> None:
    assert matches(_render(spec), payload) == matches(spec, payload)


def test_string_form_examples() -> None:
    assert parse_filter('lang = "en" and year >= 2020') == {
        "and": [{"field": "lang", "eq": "en"}, {"field": "year", "gte": 2020}]}
    assert parse_filter("a = 1 or b = 2 and c = 3") == {
        "or": [{"field": "a", "eq": 1},
               {"and": [{"field": "b", "eq": 2}, {"field": "c", "eq": 3}]}]}
    assert parse_filter("not meta.x exists") == {"not": {"field": "meta.x", "exists": True}}
    assert parse_filter("tag in ['a', \"b\"]") == {"field": "tag", "in": ["a", "b"]}


@pytest.mark.parametrize("bad", ["", "lang =", "lang = en", "(a = 1", "a = 1 b = 2",
                                 "1 = a", "a in []", "and = 1", "a.=1", "a = 'x"])
def test_malformed_strings_are_refused(bad: str) -> None:
    with pytest.raises(InvalidFilter):
        parse_filter(bad)


@given(value=st.text(max_size=30))
def test_values_never_reach_the_sql_text(value: str) -> None:
    sql, params = compile_filter({"field": "lang", "eq": value})
    assert params == [value]
    assert sql == compile_filter({"field": "lang", "eq": "fixed"})[0]


def test_deeply_nested_filters_are_refused_not_recursed() -> None:
    from embedops.errors import InvalidFilter
    from embedops.store.filters import compile_filter

    with pytest.raises(InvalidFilter, match="deeper"):
        compile_filter("not " * 3000 + "a = 1")
    with pytest.raises(InvalidFilter, match="deeper"):
        compile_filter("(" * 2000 + "a = 1" + ")" * 2000)
    nested: dict = {"field": "a", "eq": 1}
    for _ in range(3000):
        nested = {"not": nested}
    with pytest.raises(InvalidFilter, match="deeper"):
        compile_filter(nested)
    compile_filter("not " * 10 + "a = 1")  # modest nesting still works
