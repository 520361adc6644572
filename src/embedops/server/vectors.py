"""Vectors sent as JSON numbers, checked before they become float32.

JSON numbers are float64: a finite value past float32's range would turn into inf in the
cast (with numpy's overflow warning) and then be refused as "not finite". Checking first
names the real fault and keeps the warning out of the server's log.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from embedops.errors import InputRejected

FLOAT32_MAX = float(np.finfo(np.float32).max)


def float32_rows(rows: Sequence[Sequence[float]]) -> np.ndarray:
    """``rows`` (of one length) as a float32 array; ``InputRejected`` ("vector") for NaN,
    inf or a value float32 cannot hold."""
    values = np.asarray(rows, dtype=np.float64)  # (JSON's own type: nothing lost yet)
    if not np.isfinite(values).all():
        raise InputRejected("vector", "vectors must hold finite numbers (no NaN or inf)")
    if values.size and np.abs(values).max() > FLOAT32_MAX:
        raise InputRejected("vector", f"vector values must lie within ±{FLOAT32_MAX:.4g} "
                                      "(float32), the store's number type")
    return values.astype(np.float32)
