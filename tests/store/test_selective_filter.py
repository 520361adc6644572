"""A filter few points match is answered by scoring every match, with the vectors the
loaded index holds: the same hits as an exact search, for every dtype and metric."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedops.store import open_store
from embedops.store import search as search_module

from .storedata import mixture

DIM = 32
N = 6000


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
@pytest.mark.parametrize("metric", ["cosine", "l2"])
def test_a_selective_filter_gives_the_exact_hits(tmp_path: Path, dtype: str,
                                                 metric: str) -> None:
    vectors = mixture(N, DIM, seed=21)
    with open_store(tmp_path / "s") as store:
        store.create_collection("c", DIM, fingerprint="fp", dtype=dtype, metric=metric,
                                index_params={"exact_threshold": 0},
                                payload_indexes=["bucket"])
        store.upsert("c", [str(i) for i in range(N)], vectors,
                     [{"bucket": i % 50} for i in range(N)], fingerprint="fp")
        store.upsert("c", [str(i) for i in range(0, N, 97)], vectors[:N:97] * 1.01,
                     [{"bucket": 3} for _ in range(0, N, 97)], fingerprint="fp")
        queries = mixture(40, DIM, seed=22)
        where = {"field": "bucket", "eq": 3}  # ~2% of the points: the selective plan
        planned = store.search("c", queries, k=10, filter=where)
        exact = store.search("c", queries, k=10, filter=where, exact=True)
    overlap = np.mean([len({h.id for h in a} & {h.id for h in b}) / 10
                       for a, b in zip(planned, exact, strict=True)])
    assert all(len(hits) == 10 for hits in planned)
    assert all(int(h.id) % 50 == 3 or int(h.id) % 97 == 0 for hits in planned for h in hits)
    if dtype == "int8":  # codes choose 40 candidates, rescored exactly
        assert overlap >= 0.98
        for a, b in zip(planned, exact, strict=True):
            common = {h.id: h.score for h in b}
            assert all(abs(h.score - common[h.id]) < 1e-5 for h in a if h.id in common)
    else:
        assert overlap == 1.0
        for a, b in zip(planned, exact, strict=True):
            assert [h.id for h in a] == [h.id for h in b]
            assert np.allclose([h.score for h in a], [h.score for h in b], atol=1e-4)


def test_the_selective_plan_reads_no_vector_from_sqlite_for_float32(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    vectors = mixture(3000, DIM, seed=23)
    with open_store(tmp_path / "s") as store:
        store.create_collection("c", DIM, fingerprint="fp",
                                index_params={"exact_threshold": 0})
        store.upsert("c", [str(i) for i in range(3000)], vectors,
                     [{"b": i % 100} for i in range(3000)], fingerprint="fp")

        def no_scan(*args: object, **kwargs: object) -> None:
            raise AssertionError("the selective plan scanned SQLite's vectors")

        monkeypatch.setattr(search_module.Searcher, "_exact_scan", no_scan)
        hits = store.search("c", vectors[7], k=5, filter={"field": "b", "eq": 7})[0]
    assert hits[0].id == "7" and len(hits) == 5
