"""Vectors with extreme components: stored as given (or as their unit vector), or refused.

The float32 norm of ``[1e20, 1e20, 1e20, 1e20]`` overflows to inf; dividing by it stored
zeros. The store must keep the direction it was given, or refuse the vector with
``InvalidVector`` (HTTP 422), never store something else.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from embedops.errors import InvalidVector
from embedops.store import open_store
from embedops.store.embedded import EmbeddedStore

EXTREME = {
    "huge": ([1e20, 1e20, 1e20, 1e20], [0.5, 0.5, 0.5, 0.5]),
    "one-huge": ([3e19, 0, 0, 0], [1, 0, 0, 0]),
    "tiny": ([1e-30, 0, 0, 0], [1, 0, 0, 0]),          # squares underflow to zero
    "subnormal": ([1e-45, 1e-45, 0, 0], [0.5**0.5, 0.5**0.5, 0, 0]),
    "mixed": ([3e38, -3e38, 1, 0], [0.5**0.5, -(0.5**0.5), 0, 0]),
}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    with open_store(tmp_path / "store") as handle:
        yield handle


def _upsert(store: EmbeddedStore, name: str, vectors: list[list[float]]) -> None:
    store.upsert(name, [f"p{i}" for i in range(len(vectors))],
                 np.asarray(vectors, dtype=np.float32), fingerprint="fp")


@pytest.mark.parametrize("dtype", ["float32", "float16", "int8"])
def test_cosine_normalises_extreme_vectors_to_their_direction(store: EmbeddedStore,
                                                              dtype: str) -> None:
    store.create_collection("c", 4, fingerprint="fp", dtype=dtype)
    given = [v for v, _ in EXTREME.values()]
    _upsert(store, "c", given)
    points = store.get("c", [f"p{i}" for i in range(len(given))], with_vectors=True)
    tolerance = 1e-3 if dtype == "float16" else 1e-6
    for point, (_, unit) in zip(points, EXTREME.values(), strict=True):
        assert point.vector is not None
        np.testing.assert_allclose(point.vector, unit, atol=tolerance)
    # The stored direction is searchable, and an extreme query finds it with score 1.
    for i, (vector, _) in enumerate(EXTREME.values()):
        hits = store.search_one("c", np.asarray(vector, dtype=np.float32), k=len(given))
        assert len(hits) == len(given)
        assert hits[0].score == pytest.approx(1.0, abs=1e-3)
        assert f"p{i}" in {h.id for h in hits if h.score > 1 - 1e-3}


def test_cosine_extreme_vectors_through_the_hnsw_index(store: EmbeddedStore) -> None:
    store.create_collection("c", 4, fingerprint="fp", index_params={"exact_threshold": 0})
    rng = np.random.default_rng(0)
    store.upsert("c", [f"r{i}" for i in range(300)],
                 rng.standard_normal((300, 4)).astype(np.float32), fingerprint="fp")
    _upsert(store, "c", [[1e20, 1e20, 1e20, 1e20]])
    assert store.verify_index("c")["mismatched"] == []
    hit = store.search_one("c", np.full(4, 1e20, dtype=np.float32), k=1)[0]
    assert hit.id == "p0" and hit.score == pytest.approx(1.0, abs=1e-5)


def test_float64_input_beyond_float32_keeps_its_cosine_direction(store: EmbeddedStore) -> None:
    store.create_collection("c", 4, fingerprint="fp")
    store.upsert("c", ["a"], np.asarray([[1e39, 1e39, 0, 0]], dtype=np.float64),
                 fingerprint="fp")
    (point,) = store.get("c", ["a"], with_vectors=True)
    assert point.vector is not None
    np.testing.assert_allclose(point.vector, [0.5**0.5, 0.5**0.5, 0, 0], atol=1e-6)


@pytest.mark.parametrize("metric", ["ip", "l2"])
def test_unscaled_metrics_refuse_vectors_whose_scores_overflow(store: EmbeddedStore,
                                                               metric: str) -> None:
    store.create_collection("c", 4, fingerprint="fp", metric=metric)
    for vector in ([1e20, 1e20, 1e20, 1e20], [3e19, 0, 0, 0]):
        with pytest.raises(InvalidVector):
            _upsert(store, "c", [vector])
        with pytest.raises(InvalidVector):
            store.search_one("c", np.asarray(vector, dtype=np.float32))
    assert store.count("c") == 0
    # Large but scorable vectors are stored exactly as given.
    _upsert(store, "c", [[1e18, -2e18, 0, 1e-30]])
    (point,) = store.get("c", ["p0"], with_vectors=True)
    assert point.vector is not None
    np.testing.assert_array_equal(point.vector, np.float32([1e18, -2e18, 0, 1e-30]))


def test_float16_collection_refuses_values_it_cannot_hold(store: EmbeddedStore) -> None:
    store.create_collection("c", 4, fingerprint="fp", metric="l2", dtype="float16")
    with pytest.raises(InvalidVector, match="float16"):
        _upsert(store, "c", [[7e4, 0, 0, 0]])
    assert store.count("c") == 0
    _upsert(store, "c", [[6e4, -1, 0, 0.5]])
    (point,) = store.get("c", ["p0"], with_vectors=True)
    assert point.vector is not None and np.isfinite(point.vector).all()


def test_zero_and_non_finite_vectors_are_still_refused(store: EmbeddedStore) -> None:
    store.create_collection("c", 4, fingerprint="fp")
    for vector in ([0, 0, 0, 0], [np.inf, 0, 0, 0], [np.nan, 1, 1, 1]):
        with pytest.raises(InvalidVector):
            _upsert(store, "c", [vector])
    assert store.count("c") == 0


def test_a_single_query_is_prepared_as_a_batch_row_would_be() -> None:
    """One 1-D cosine query takes a shorter path; it must give the batch path's unit row
    and refuse what the batch path refuses."""
    from embedops.store import quantization

    rng = np.random.default_rng(3)
    for vector in [*rng.standard_normal((20, 384)), *(np.asarray(v) for v, _ in
                                                      EXTREME.values())]:
        for dtype in (np.float32, np.float64):
            one = np.asarray(vector, dtype=dtype)
            single = quantization.prepare(one, len(one), "cosine")
            batch = quantization.prepare(one[None, :], len(one), "cosine")
            assert single.shape == (1, len(one)) and single.dtype == np.float32
            np.testing.assert_allclose(single, batch, rtol=0, atol=1e-7)
    for bad in ([0.0] * 4, [np.inf, 0, 0, 0], [np.nan, 1, 1, 1], [1e200, 1e200, 0, 0]):
        arr = np.asarray(bad, dtype=np.float64)
        try:
            expected = quantization.prepare(arr[None, :], 4, "cosine")
        except InvalidVector:
            with pytest.raises(InvalidVector):
                quantization.prepare(arr, 4, "cosine")
        else:
            np.testing.assert_allclose(quantization.prepare(arr, 4, "cosine"), expected)


def test_single_queries_with_zero_or_non_finite_values_are_refused(
        store: EmbeddedStore) -> None:
    store.create_collection("c", 4, fingerprint="fp")
    _upsert(store, "c", [[1, 0, 0, 0]])
    for vector in ([0, 0, 0, 0], [np.inf, 0, 0, 0], [np.nan, 1, 1, 1]):
        with pytest.raises(InvalidVector):
            store.search_one("c", np.asarray(vector, dtype=np.float32))


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_one_plain_query_is_taken_as_given_and_scaled_as_its_prepared_row(metric: str) -> None:
    """``one_query`` skips normalising one float32 query: its row times its factor must be
    the row ``prepare`` makes, and anything ``prepare`` would judge goes to ``prepare``."""
    from embedops.store import quantization

    rng = np.random.default_rng(4)
    scaled = [v * f for v in rng.standard_normal((10, 384)) for f in (1e-12, 1.0, 1e12)]
    for vector in [*scaled, *(np.asarray(v) for v, _ in EXTREME.values())]:
        given = np.asarray(vector, dtype=np.float32)
        try:
            prepared = quantization.prepare(given, len(given), metric)
        except InvalidVector:
            assert quantization.one_query(given, len(given), metric) is None
            continue
        one = quantization.one_query(given, len(given), metric)
        if one is None:  # judged by prepare: only where float32 cannot square the norm
            with np.errstate(over="ignore", under="ignore"):
                squared = float(np.dot(given, given))
            assert not 1e-30 < squared < 1e30
            continue
        row, scale = one
        assert row.shape == (1, len(given)) and np.shares_memory(row, given)
        if metric != "cosine":
            assert scale == 1.0
        np.testing.assert_allclose(row * np.float32(scale), prepared, rtol=1e-6, atol=1e-30)
    for bad in ([0.0] * 4, [np.inf, 0, 0, 0], [np.nan, 1, 1, 1]):
        if metric == "cosine" or bad[0] != 0.0:
            assert quantization.one_query(np.float32(bad), 4, metric) is None
    for other in (np.ones(4), np.ones((2, 4), np.float32), np.ones((1, 1, 4), np.float32),
                  np.ones(5, np.float32), [1.0, 0.0, 0.0, 0.0]):
        assert quantization.one_query(other, 4, metric) is None


def test_a_query_far_from_unit_length_answers_as_in_a_batch(store: EmbeddedStore) -> None:
    store.create_collection("c", 8, fingerprint="fp", index_params={"exact_threshold": 0})
    rng = np.random.default_rng(5)
    store.upsert("c", [f"r{i}" for i in range(300)],
                 rng.standard_normal((300, 8)).astype(np.float32), fingerprint="fp")
    assert store.wait_merged(60)
    for factor in (1e-25, 1e-12, 1.0, 1e12, 1e20):
        query = (rng.standard_normal(8) * factor).astype(np.float32)
        alone = store.search("c", query, k=5)[0]
        (batch, _) = store.search("c", np.stack([query, query]), k=5)
        assert [h.id for h in alone] == [h.id for h in batch]
        assert [h.score for h in alone] == pytest.approx([h.score for h in batch], abs=1e-6)
        assert -1 - 1e-6 <= alone[-1].score <= alone[0].score <= 1 + 1e-6


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_a_batch_over_several_blocks_is_prepared_row_by_row(metric: str) -> None:
    """A batch is prepared a block of rows at a time: 600 rows span three blocks, and
    every row comes out as numpy makes it alone in float64 (its unit vector under
    cosine), the rows with components float64 cannot square (1e200, 1e-200) as their
    direction."""
    from embedops.store import quantization

    rng = np.random.default_rng(11)
    rows = rng.standard_normal((600, 4)) * 3
    extreme = {5: [1e200, 1e200, 0, 0], 599: [0, -1e-200, 0, 0]}
    if metric == "cosine":
        for i, row in extreme.items():
            rows[i] = row
    batch = quantization.prepare(rows, 4, metric)
    assert batch.shape == (600, 4) and batch.dtype == np.float32
    assert batch.flags.c_contiguous
    if metric == "cosine":
        plain = [i for i in range(600) if i not in extreme]
        expected = rows[plain] / np.sqrt(np.einsum("ij,ij->i", rows[plain], rows[plain]))[:, None]
        assert np.array_equal(batch[plain], expected.astype(np.float32))
        np.testing.assert_allclose(batch[5], [0.5 ** 0.5, 0.5 ** 0.5, 0, 0], atol=1e-7)
        assert batch[599].tolist() == [0, -1, 0, 0]
    else:
        assert np.array_equal(batch, rows.astype(np.float32))


def test_a_dimension_mismatch_is_left_to_the_caller_even_beyond_float32() -> None:
    """``prepare`` returns rows of another dimension for the caller to refuse with
    ``DimensionMismatch``; values beyond float32 but finite in float64 must not turn
    that into an ``InvalidVector`` under cosine."""
    from embedops.store import quantization

    out = quantization.prepare(np.array([[1e39, 1.0, 2.0]]), 4, "cosine")
    assert out.shape == (1, 3)
    with pytest.raises(InvalidVector):
        quantization.prepare(np.array([[np.nan, 1.0, 2.0]]), 4, "cosine")


@pytest.mark.parametrize("bad", ["nan", "zero"])
def test_a_bad_row_in_a_later_block_refuses_the_whole_batch(store: EmbeddedStore,
                                                            bad: str) -> None:
    store.create_collection("c", 4, fingerprint="fp")
    rows = np.random.default_rng(2).standard_normal((700, 4)).astype(np.float32)
    rows[650] = np.nan if bad == "nan" else 0.0
    with pytest.raises(InvalidVector):
        store.upsert("c", [f"p{i}" for i in range(700)], rows, fingerprint="fp")
    assert store.count("c") == 0
