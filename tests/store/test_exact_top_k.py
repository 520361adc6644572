"""``top_k``: the best ``k`` entries per row, best first; one row takes a path of its own
(one-dimensional steps), which must rank exactly as the batch path does, ties included."""

from __future__ import annotations

import numpy as np
import pytest

from embedops.store.exact import top_k


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
