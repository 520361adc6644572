"""The filter compilers of the remote adapters agree with the Python semantics
(``embedops.store.filters.matches``) on real engines, and run filters at the size limits.

PostgreSQL: any filter on any payload (nulls, lists, mixed types), as ``test_filters.py``
checks SQLite. Milvus: payloads whose fields keep one type and hold no JSON null — the
two cases its JSON semantics decide differently (docs/scale-out.md).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedops.errors import InvalidFilter
from embedops.store import VectorStore
from embedops.store.filters import MAX_DEPTH, MAX_TERMS, matches

from . import servers
from .conftest import ENGINES, opener
from .test_filter_limits import chain, leaf, nots
from .test_filters import _payloads, filters

REMOTE = tuple(b for b in ENGINES if b != "embedded")  # one URL scheme an engine
MILVUS = tuple(b for b in REMOTE if b.startswith("milvus"))

if TYPE_CHECKING:
    import psycopg


@pytest.fixture(scope="module")
def pg_conn() -> Iterator[psycopg.Connection[Any]]:
    url = servers.postgres_base_url()  # (skips without the remote extra)
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        yield conn


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=filters, payloads=st.lists(_payloads(), min_size=1, max_size=8))
def test_pg_sql_matches_python_semantics(pg_conn: psycopg.Connection[Any],
                                         spec: dict[str, Any],
                                         payloads: list[dict[str, Any]]) -> None:
    from embedops.store.pg_filters import compile_pg_filter

    sql, params = compile_pg_filter(spec)
    rows = pg_conn.execute(
        f"SELECT n, ({sql}) IS TRUE FROM jsonb_array_elements(%s::jsonb) WITH ORDINALITY "
        "AS t(payload, n) ORDER BY n", [*params, json.dumps(payloads)]).fetchall()
    assert [bool(r[1]) for r in rows] == [matches(spec, p) for p in payloads], spec


# --- Milvus: one collection of typed payloads, many filters ----------------------------

TEXTS = st.text(alphabet="abcxyzé' \"\\", max_size=4)
TYPED = ("lang", "year", "flag", "score")


ALPHABET = list("abcxyzé' \"\\")


def _text(rng: np.random.Generator) -> str:
    return "".join(rng.choice(ALPHABET, size=int(rng.integers(0, 5))))


def _typed_payload(rng: np.random.Generator) -> dict[str, Any]:
    """Fields of one type each (lang, meta.src: text; year: int; flag: bool; score:
    float), each present with probability 0.7."""
    values = {"lang": _text(rng), "year": int(rng.integers(-5, 6)),
              "flag": bool(rng.random() < 0.5), "score": round(float(rng.uniform(-5, 5)), 2)}
    payload: dict[str, Any] = {k: v for k, v in values.items() if rng.random() < 0.7}
    if rng.random() < 0.6:
        payload["meta"] = {"src": _text(rng)} if rng.random() < 0.8 else {}
    return payload


def _typed_leaf() -> st.SearchStrategy[dict[str, Any]]:
    field = st.sampled_from([*TYPED, "meta.src"])
    value = {"lang": TEXTS, "meta.src": TEXTS, "year": st.integers(-5, 5),
             "flag": st.booleans(), "score": st.floats(-5, 5, allow_nan=False)}
    return field.flatmap(lambda f: st.one_of(
        st.builds(lambda v, op: {"field": f, op: v}, value[f],
                  st.sampled_from(["eq", "ne", "gt", "gte", "lt", "lte"])
                  if f != "flag" else st.sampled_from(["eq", "ne"])),
        st.builds(lambda vs: {"field": f, "in": vs}, st.lists(value[f], min_size=1,
                                                             max_size=3)),
        st.builds(lambda v: {"field": f, "exists": v}, st.booleans())))


typed_filters = st.recursive(
    _typed_leaf(),
    lambda inner: st.one_of(
        st.builds(lambda xs: {"and": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda xs: {"or": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda x: {"not": x}, inner)),
    max_leaves=6)


@pytest.fixture(scope="module", params=MILVUS)
def typed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> Iterator[tuple[VectorStore, list[dict[str, Any]]]]:
    rng = np.random.default_rng(11)
    payloads = [_typed_payload(rng) for _ in range(120)]
    store = opener(request.param)(tmp_path_factory.mktemp("filters") / "store")
    store.create_collection("t", 4, fingerprint="fp")
    store.upsert("t", [f"p{i:03d}" for i in range(len(payloads))],
                 rng.standard_normal((len(payloads), 4)), payloads, fingerprint="fp")
    yield store, payloads
    store.close()


@settings(max_examples=200, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(spec=typed_filters)
def test_milvus_expressions_match_python_semantics(
        typed: tuple[VectorStore, list[dict[str, Any]]], spec: dict[str, Any]) -> None:
    store, payloads = typed
    got = {p.id for page in store.scan("t", 500, filter=spec) for p in page}
    want = {f"p{i:03d}" for i, p in enumerate(payloads) if matches(spec, p)}
    assert got == want, spec


# --- filters at the limits, on every remote engine --------------------------------------

@pytest.fixture(scope="module", params=REMOTE)
def limits(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
           ) -> Iterator[VectorStore]:
    store = opener(request.param)(tmp_path_factory.mktemp("limits") / "store")
    store.create_collection("c", 2, fingerprint="fp")
    store.upsert("c", [f"p{i}" for i in range(50)], np.ones((50, 2), np.float32),
                 [{"a": i, "s": str(i)} for i in range(50)], fingerprint="fp")
    yield store
    store.close()


def _expected(spec: dict[str, Any]) -> int:
    return sum(matches(spec, {"a": i, "s": str(i)}) for i in range(50))


@pytest.mark.parametrize("spec", [
    {"or": [leaf(i) for i in range(MAX_TERMS)]},
    {"field": "a", "in": list(range(10, 1000))},
    {"and": [{"field": "a", "ne": i} for i in range(49)]},
    chain(MAX_DEPTH, 5, ("or", "not", "and", "not")),
    chain(MAX_DEPTH, 2, ("and", "or")),
    nots({"field": "s", "gte": "3"}, MAX_DEPTH - 1),
], ids=["or-10000", "in-990", "and-ne-49", "depth-64-mixed", "depth-64-and-or", "not-63"])
def test_filters_at_the_limits_run_and_count_right(limits: VectorStore,
                                                    spec: dict[str, Any]) -> None:
    assert limits.count("c", spec) == _expected(spec)


def test_filters_over_the_limits_are_refused(limits: VectorStore) -> None:
    with pytest.raises(InvalidFilter):
        limits.count("c", {"or": [leaf(i) for i in range(MAX_TERMS + 1)]})
    with pytest.raises(InvalidFilter):
        limits.count("c", {"not": chain(MAX_DEPTH, 2, ("and",))})
    with contextlib.suppress(InvalidFilter):
        limits.count("c", {"field": "x'); DROP TABLE points; --", "eq": 1})
    assert limits.count("c", {"field": "s", "eq": "x'); DROP TABLE points; --"}) == 0
    assert limits.count("c") == 50

