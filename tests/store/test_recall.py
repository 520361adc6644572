"""ANN search against exact search: plain, int8 with rescoring, and filtered.

These comparisons double as the canary recall check for the embedded index.
"""

from __future__ import annotations

import numpy as np
import pytest

from embedops.errors import InvalidCollectionSpec
from embedops.store import VectorStore

from .conftest import ENGINES, opener
from .storedata import exact_top_k, mixture, recall

N, DIM, Q, K = 12_000, 64, 200, 10
PARAMS = {"exact_threshold": 0, "expansion_search": 96}


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    base = mixture(N + Q, DIM, seed=7)
    return base[:N], base[N:]


@pytest.fixture(scope="module", params=ENGINES)
def filled(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory,
           data: tuple[np.ndarray, np.ndarray]) -> VectorStore:
    """The same data in every engine: ANN against exact, for each."""
    store = opener(request.param)(tmp_path_factory.mktemp("recall") / "store")
    base, _ = data
    ids = [str(i) for i in range(N)]
    payloads = [{"bucket": i % 10, "rare": i % 100 == 0} for i in range(N)]
    for dtype in ("float32", "int8"):
        try:
            store.create_collection(dtype, DIM, fingerprint="fp", dtype=dtype,
                                    index_params=PARAMS, payload_indexes=["bucket"])
        except InvalidCollectionSpec:  # a backend without this dtype (see conftest.py)
            continue
        store.upsert(dtype, ids, base, payloads, fingerprint="fp")
    return store


def _found(store: VectorStore, name: str, queries: np.ndarray, **kwargs: object
           ) -> list[set[int]]:
    return [{int(h.id) for h in hits} for hits in store.search(name, queries, k=K, **kwargs)]


def test_exact_search_equals_numpy(filled: VectorStore, data: tuple[np.ndarray, np.ndarray]
                                   ) -> None:
    base, queries = data
    truth = exact_top_k(base, queries[:50], K)
    assert _found(filled, "float32", queries[:50], exact=True) == truth


def test_hnsw_recall_against_exact(filled: VectorStore, data: tuple[np.ndarray, np.ndarray]
                                   ) -> None:
    base, queries = data
    got = recall(_found(filled, "float32", queries), exact_top_k(base, queries, K))
    assert got >= 0.95


def test_int8_rescored_within_one_point_of_float32(
        filled: VectorStore, data: tuple[np.ndarray, np.ndarray]) -> None:
    base, queries = data
    truth = exact_top_k(base, queries, K)
    f32 = recall(_found(filled, "float32", queries), truth)
    i8 = recall(_found(filled, "int8", queries), truth)
    assert i8 >= f32 - 0.01, (i8, f32)


@pytest.mark.parametrize("spec", [
    {"field": "bucket", "eq": 3},                         # 10%: filtered HNSW
    {"field": "bucket", "in": [1, 2, 5, 7, 8, 9]},        # 60%: filtered HNSW
    {"field": "rare", "eq": True},                        # 1%: exact over candidates
    {"and": [{"field": "bucket", "eq": 4}, {"field": "rare", "eq": False}]},
])
@pytest.mark.parametrize("name", ["float32", "int8"])
def test_filtered_recall_against_exact_filtered(
        filled: VectorStore, data: tuple[np.ndarray, np.ndarray], spec: dict[str, object],
        name: str) -> None:
    base, queries = data
    idx = np.arange(N)
    allowed = {"bucket": lambda v: idx % 10 == v}
    allowed_mask = _mask(spec, idx, allowed)
    truth = exact_top_k(base, queries[:100], K, allowed=allowed_mask)
    found = _found(filled, name, queries[:100], filter=spec)
    assert all(allowed_mask[list(f)].all() for f in found)
    assert recall(found, truth) >= 0.95


def _mask(spec: dict[str, object], idx: np.ndarray, allowed: dict[str, object]) -> np.ndarray:
    if "and" in spec:
        parts = [_mask(s, idx, allowed) for s in spec["and"]]  # type: ignore[union-attr]
        return np.logical_and.reduce(parts)
    if spec["field"] == "rare":
        return (idx % 100 == 0) == spec["eq"]
    if "in" in spec:
        return np.isin(idx % 10, spec["in"])  # type: ignore[arg-type]
    return idx % 10 == spec["eq"]
