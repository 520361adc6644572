"""``top_k``: the best ``k`` entries per row, best first; one row takes a path of its own
(one-dimensional steps), which must rank exactly as the batch path does, ties included."""

from __future__ import annotations

import numpy as np
import pytest

from embedops.store import exact
from embedops.store.exact import scores, top_k


@pytest.mark.parametrize("width", [1, 3, 10, 57, 1000])
def test_one_row_ranks_as_the_batch_does(width: int) -> None:
    rng = np.random.default_rng(width)
    sims = np.round(rng.standard_normal((8, width)), 1).astype(np.float32)  # many ties
    for k in (1, 2, 5, 10, width, width + 5):
        keys, vals = top_k(sims, k)
        assert keys.shape == vals.shape == (8, min(k, width))
        for row in range(len(sims)):
            one_keys, one_vals = top_k(sims[row:row + 1], k)
            assert one_keys.tolist() == keys[row:row + 1].tolist(), (k, row)
            assert one_vals.tolist() == vals[row:row + 1].tolist(), (k, row)
            assert (np.diff(one_vals[0]) <= 0).all()  # best first
            assert np.isin(np.sort(sims[row])[::-1][:k], one_vals[0]).all()


def test_no_columns_or_k_zero_give_empty_rows() -> None:
    assert top_k(np.zeros((1, 0), np.float32), 3)[0].shape == (1, 0)
    assert top_k(np.ones((2, 4), np.float32), 0)[1].shape == (2, 0)


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
@pytest.mark.parametrize("rows", [0, 1, 7, 3000])
def test_one_query_scores_as_blas_does(metric: str, rows: int, monkeypatch) -> None:
    """``scores`` of one float32 query runs on the calling thread (faiss's SIMD inner
    products), not through BLAS: the same similarities, within float32 rounding, for
    contiguous and sliced inputs alike."""
    calls = [0]
    one_query = exact._one_query_dots

    def counted(queries: np.ndarray, matrix: np.ndarray) -> np.ndarray:
        calls[0] += 1
        return one_query(queries, matrix)

    monkeypatch.setattr(exact, "_one_query_dots", counted)
    rng = np.random.default_rng(rows)
    matrix = rng.standard_normal((2 * rows, 48)).astype(np.float32)[::2]  # (not contiguous)
    queries = rng.standard_normal((3, 48)).astype(np.float32)
    for query in (queries[:1], queries[1:2, :], queries[::2][:1]):
        got = scores(query, matrix, metric)
        want = (query.astype(np.float64) @ matrix.T.astype(np.float64))
        if metric == "l2":
            want = -(np.sum(query.astype(np.float64) ** 2, axis=1)[:, None] - 2 * want
                     + np.sum(matrix.astype(np.float64) ** 2, axis=1)[None, :])
        assert got.shape == (1, rows) and got.dtype == np.float32
        assert np.allclose(got, want, rtol=1e-5, atol=1e-4)
    assert calls[0] == 3
    scores(queries, matrix, metric)  # (a batch: BLAS spreads it over the cores)
    assert calls[0] == 3
