"""A table kept as sorted keys with values beside them, plus a dictionary of the entries
added since the last sort (``fingerprints``, ``key_positions``): lookups, and the fold
of the dictionary into the arrays.

Equal keys may stand several times in the arrays, the newest last: a lookup takes the
last, and a fold puts the dictionary's entries, which are newer than any in the arrays,
after their equals. A fold is a merge, not a sort of the whole table: it sorts the
dictionary's entries and copies the arrays once to insert them (~5 ms at 1M entries
plus 16k folded in), since it runs with the store's index lock held.
"""

from __future__ import annotations

import numpy as np


def find(keys: np.ndarray, values: np.ndarray, recent: dict[int, int],
         asked: np.ndarray) -> np.ndarray:
    """Per asked key: its value in ``recent`` if there, else that of the last of its
    equal entries in the sorted ``keys`` (the newest), else -1."""
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


def merged(keys: np.ndarray, values: np.ndarray, new_keys: np.ndarray,
           new_values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The sorted ``keys`` and their ``values`` with the distinct ``new_keys`` (newer than
    any of them) and ``new_values`` merged in, each after its equals."""
    order = np.argsort(new_keys, kind="stable")
    new_keys, new_values = new_keys[order], new_values[order]
    at = np.searchsorted(keys, new_keys, side="right")
    return np.insert(keys, at, new_keys), np.insert(values, at, new_values)


def fold_share(sorted_count: int, least: int) -> int:
    """Entries the dictionary holds at most before a fold: a 64th of the arrays, and at
    least ``least`` (a fold copies the arrays: ~5 ms at 1M entries)."""
    return max(least, sorted_count // 64)
