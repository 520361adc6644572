"""Lookups in a table kept as sorted keys with values beside them, plus a dictionary of
the entries added since the last sort (``fingerprints``, ``key_positions``)."""

from __future__ import annotations

import numpy as np


def find(keys: np.ndarray, values: np.ndarray, recent: dict[int, int],
         asked: np.ndarray) -> np.ndarray:
    """Per asked key: its value in ``recent`` if there, else that of the last of its
    equal entries in the sorted ``keys`` (the newest, where a table keeps several), else
    -1."""
    found = np.full(len(asked), -1, dtype=np.int64)
    if len(keys) and len(asked):
        at = np.searchsorted(keys, asked, side="right") - 1
        hit = (at >= 0) & (keys[np.maximum(at, 0)] == asked)
        found[hit] = values[at[hit]]
    if recent:
        for i, key in enumerate(asked.tolist()):
            value = recent.get(key)
            if value is not None:
                found[i] = value  # (newer than any sorted one)
    return found
