"""Inputs the store refuses as client errors, never as a 500: filters too wide or too
deep for SQLite, invalid names, index parameters out of range. Real stores in tmp_path."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedops.errors import InvalidFilter, StoreError
from embedops.store import EmbeddedStore
from embedops.store.catalog import InvalidIndexParams
from embedops.store.filters import MAX_DEPTH, MAX_TERMS
from embedops.store.names import InvalidName


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStore]:
    with EmbeddedStore(tmp_path_factory.mktemp("limits")) as handle:
        handle.create_collection("c", 2, fingerprint="fp")
        vectors = np.ones((50, 2), dtype=np.float32)
        handle.upsert("c", [f"p{i}" for i in range(50)], vectors,
                      [{"a": i, "s": str(i)} for i in range(50)], fingerprint="fp")
        yield handle


def leaf(i: int = 1) -> dict[str, Any]:
    return {"field": "a", "eq": i}


def chain(depth: int, width: int, kinds: tuple[str, ...]) -> dict[str, Any]:
    """``depth`` filter levels; each combinator also holds ``width - 1`` leaves."""
    spec = leaf()
    for level in range(depth - 1):
        kind = kinds[level % len(kinds)]
        spec = {"not": spec} if kind == "not" else {kind: [spec, *map(leaf, range(width - 1))]}
    return spec


def test_wide_filters_run_and_count_right(store: EmbeddedStore) -> None:
    assert store.count("c", {"or": [leaf(i) for i in range(999)]}) == 50
    assert store.count("c", {"or": [leaf(i) for i in range(MAX_TERMS)]}) == 50
    assert store.count("c", {"field": "a", "in": list(range(10, 1000))}) == 40
    assert store.count("c", {"and": [{"field": "a", "ne": i} for i in range(49)]}) == 1
    assert store.count("c", " or ".join(f"a = {i}" for i in range(2000))) == 50


@pytest.mark.parametrize("kinds", [("and",), ("and", "or"), ("not",), ("and", "not"),
                                   ("or", "not", "and", "not")])
@pytest.mark.parametrize("width", [1, 2, 5])
def test_every_depth_up_to_the_limit_runs(store: EmbeddedStore, kinds: tuple[str, ...],
                                          width: int) -> None:
    assert store.count("c", chain(MAX_DEPTH, width, kinds)) >= 0
    with pytest.raises(InvalidFilter, match=f"deeper than {MAX_DEPTH}"):
        store.count("c", {"not": chain(MAX_DEPTH, width, kinds)})


def test_sixty_nested_ands_are_sixty_one_levels(store: EmbeddedStore) -> None:
    spec = leaf(7)
    for _ in range(60):
        spec = {"and": [spec]}
    assert store.count("c", spec) == 1


def test_too_many_comparisons_are_refused(store: EmbeddedStore) -> None:
    with pytest.raises(InvalidFilter, match="more than"):
        store.count("c", {"or": [leaf(i) for i in range(MAX_TERMS + 1)]})
    with pytest.raises(InvalidFilter, match="more than"):
        store.count("c", {"and": [{"field": "a", "in": list(range(1000))}] * 11})


def nots(spec: dict[str, Any], n: int) -> dict[str, Any]:
    for _ in range(n):
        spec = {"not": spec}
    return spec


def _shapes() -> st.SearchStrategy[dict[str, Any]]:
    """Filters within the limits, skewed towards deep and wide ones."""
    leaves = st.builds(lambda i, op: {"field": "a", op: i}, st.integers(0, 60),
                       st.sampled_from(["eq", "ne", "gte", "lt"]))
    return st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.builds(lambda xs: {"and": xs}, st.lists(inner, min_size=1, max_size=6)),
            st.builds(lambda xs: {"or": xs}, st.lists(inner, min_size=1, max_size=6)),
            st.builds(lambda x: {"not": x}, inner),
            st.builds(lambda x, n: {"or": [x, *[leaf(i) for i in range(n)]]}, inner,
                      st.integers(0, 1200)),
            st.builds(lambda x, n: chain(n, 2, ("and", "not", "or"))
                      if n else x, inner, st.integers(0, 40)),
            st.builds(lambda x, n: nots(x, n), inner, st.integers(0, 40)),
        ),
        max_leaves=40,
    )


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                   HealthCheck.data_too_large])
@given(spec=_shapes())
def test_any_filter_runs_or_is_an_invalid_filter(store: EmbeddedStore,
                                                  spec: dict[str, Any]) -> None:
    """Whatever the shape: an answer, or InvalidFilter (a 400), never another error."""
    with contextlib.suppress(InvalidFilter):
        store.count("c", spec)


def test_names_and_index_params_are_client_errors(tmp_path: Path) -> None:
    with EmbeddedStore(tmp_path) as handle:
        for name in ("a b", "...", "été", "x\n", "a" * 129, ""):
            with pytest.raises(InvalidName) as caught:
                handle.create_collection(name, 2, fingerprint="fp")
            assert caught.value.status_code == 422
        handle.create_collection("ok", 2, fingerprint="fp")
        with pytest.raises(InvalidName):
            handle.create_alias("bad name", "ok")
        with pytest.raises(InvalidIndexParams) as params:
            handle.create_collection("c1", 2, fingerprint="fp", index_params={"connectivity": 1})
        assert params.value.status_code == 422 and isinstance(params.value, StoreError)
        assert [c.name for c in handle.list_collections()] == ["ok"]
