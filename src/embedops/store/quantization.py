"""Vector storage formats and the int8 scalar quantizer.

Full-precision vectors live in SQLite as raw little-endian BLOBs: ``float32`` (4 bytes per
dimension) for ``float32`` and ``int8`` collections, ``float16`` (2 bytes) for ``float16``
collections. int8 collections keep float32 in SQLite because their search rescoring needs
full precision; only the in-memory index holds int8.

int8 design: one *global* scale per collection, calibrated on the vectors seen first
(the 99.99th percentile of ``|x|``, plus headroom), maps ``x`` to ``round(x * 127 / clip)``
clipped to ``[-127, 127]``. A single scale leaves angles and dot-product rankings intact
(per-dimension scales would distort them), and using the measured range instead of
``[-1, 1]`` gives unit-norm 384-d vectors — whose components rarely exceed 0.3 — about
8x finer steps than a fixed ``x * 127`` mapping. Search over the int8 index returns an
oversampled candidate set that is rescored with the float vectors.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from embedops.errors import InvalidVector

try:  # (a query's squared norm and layout in one call: ``one_query``)
    from embedops.store._graph_search import squared_norm as _squared_norm
except ImportError:  # (built without a C compiler)
    _squared_norm = None

INT8_MAX = 127.0
CALIBRATION_QUANTILE = 99.99
CALIBRATION_HEADROOM = 1.1
F16_MAX = float(np.finfo(np.float16).max)
# |q|^2 + 2|q||x| + |x|^2 stays finite in float32 when both squared norms are below this.
MAX_SQUARED_NORM = float(np.finfo(np.float32).max) / 4
# ``prepare`` works through a batch this many rows at a time: a block's float64 copy and
# temporaries (~0.8 MB at 384-d) reuse the memory the block before freed, where copies
# of the whole batch (3 MB each for 1,000 rows) were fresh pages every time: 4.8 ms of
# page faults for 1,000 rows of 384-d, against about 1 ms a block at a time.
PREPARE_BLOCK_ROWS = 256


def blob_dtype(storage_dtype: str) -> np.dtype:
    """The numpy dtype a collection's vectors are stored with in SQLite."""
    return np.dtype("<f2") if storage_dtype == "float16" else np.dtype("<f4")


def encode(vectors: np.ndarray, storage_dtype: str) -> list[bytes]:
    """One BLOB per row of a 2-D float array.

    Raises ``InvalidVector`` when a value does not fit float16 storage (it would become inf).
    """
    dtype = blob_dtype(storage_dtype)
    if dtype == np.float16 and vectors.size and np.abs(vectors).max() > F16_MAX:
        raise InvalidVector(f"vector values beyond ±{F16_MAX:g} do not fit a float16 collection")
    arr = np.ascontiguousarray(vectors, dtype=dtype)
    return [row.tobytes() for row in arr]


def decode(blobs: list[bytes], dim: int, storage_dtype: str) -> np.ndarray:
    """Stack BLOBs back into a float32 ``(len(blobs), dim)`` array."""
    if not blobs:
        return np.zeros((0, dim), dtype=np.float32)
    raw = np.frombuffer(b"".join(blobs), dtype=blob_dtype(storage_dtype))
    return raw.reshape(len(blobs), dim).astype(np.float32, copy=False)


def prepare(vectors: np.ndarray, dim: int, metric: str) -> np.ndarray:
    """Validate a batch and return a float32 C-contiguous 2-D copy (unit rows for cosine).

    Cosine rows are normalised in float64; a row whose norm float64 cannot square (huge,
    ``1e200``, or tiny, ``1e-200``, components) is first divided by its largest
    component, so it gets the right unit vector instead of a norm that overflows to inf
    (storing zeros) or underflows to zero. Each row is prepared alone: its result does
    not depend on the rows beside it.

    Raises ``InvalidVector`` for wrong rank, non-numeric, NaN or infinite values, zero
    vectors under cosine, and, under ``ip`` and ``l2``, vectors too long for float32
    scores (squared norm beyond a quarter of the float32 range). Dimension mismatches are
    checked by the caller, which knows the collection's name.
    """
    cosine = metric == "cosine"
    if (cosine and isinstance(vectors, np.ndarray) and vectors.ndim == 1
            and len(vectors) == dim and vectors.dtype.kind == "f"):
        unit = _unit_vector(vectors)
        if unit is not None:
            return unit
    wide = np.float64 if cosine else np.float32
    owned = not (isinstance(vectors, np.ndarray) and vectors.dtype.kind in "fiu")
    source = _as_array(vectors, wide) if owned else vectors
    if source.ndim == 1:
        source = source.reshape(1, -1)
    if source.ndim != 2:
        raise InvalidVector(f"vectors must be a 1-D or 2-D array, got {source.ndim}-D")
    if source.shape[1] != dim:  # (the caller reports the mismatch)
        checked = source if owned else _as_array(source, wide)
        _check_finite(checked)
        with np.errstate(over="ignore"):
            return checked.astype(np.float32)
    out = np.empty(source.shape, dtype=np.float32)
    for start in range(0, len(source), PREPARE_BLOCK_ROWS):
        block = source[start:start + PREPARE_BLOCK_ROWS]
        if cosine:  # (a copy of our own is normalised in place)
            out[start:start + len(block)] = _unit_rows(
                block if owned else _as_array(block, np.float64))
            continue
        rows = out[start:start + len(block)]
        with np.errstate(over="ignore"):  # float32 overflow becomes inf, refused below
            rows[...] = block
        _check_finite(rows)
        if (np.square(rows, dtype=np.float64).sum(axis=1) > MAX_SQUARED_NORM).any():
            raise InvalidVector(f"vector norms beyond {MAX_SQUARED_NORM ** 0.5:.3g} overflow "
                                f"float32 {metric} scores")
    return out


def _as_array(vectors: Any, dtype: type[np.floating[Any]]) -> np.ndarray:
    """``vectors`` as a new C-contiguous array of ``dtype``, or ``InvalidVector``."""
    try:
        with np.errstate(over="ignore"):  # (overflow becomes inf, refused by the caller)
            return np.array(vectors, dtype=dtype, order="C", copy=True)
    except (TypeError, ValueError) as exc:
        raise InvalidVector(f"vectors must be arrays of numbers: {exc}") from exc


def _check_finite(arr: np.ndarray) -> None:
    if not np.isfinite(arr).all():
        raise InvalidVector("vectors contain NaN or infinite values (or values beyond float32)")


# (numpy's own float32 dtype, checked by identity first; an equal one, e.g. unpickled,
# compares equal; big-endian float32 does not, and goes to ``prepare``)
_FLOAT32 = np.dtype(np.float32)


def one_query(vector: Any, dim: int, metric: str) -> tuple[np.ndarray, float] | None:
    """One C-contiguous float32 query of ``dim`` values as given, as a ``(1, dim)`` view
    (the graph reads it where it lies: ``HnswGraph.search_row``), and the factor that
    scales its scores to those of the vector ``prepare`` makes of it: 1/|q| under
    cosine (an inner-product graph ranks ``q`` and ``q/|q|`` alike, so the query need not
    be normalised before the search, only its scores after it), 1 otherwise. None for
    anything else, or anything ``prepare`` must judge (NaN, inf, a zero vector under
    cosine, a norm too small or too large to square in float32).

    The squared norm in one call of the compiled search's module (``_squared_norm``,
    which also checks the layout), else one BLAS dot product: against five numpy
    operations for ``prepare``'s unit row, ~5 µs instead of ~21 µs right after a graph
    search has evicted the CPU caches.
    """
    if not (type(vector) is np.ndarray  # (subclasses such as np.matrix: ``prepare``)
            and (vector.ndim == 1 or (vector.ndim == 2 and vector.shape[0] == 1))):
        return None
    squared = (_squared_norm(vector, dim) if _squared_norm is not None
               else _blas_squared_norm(vector, dim))
    if squared is None:
        return None
    row = vector.reshape(1, dim)
    if metric == "cosine":
        return (row, 1.0 / math.sqrt(squared)) if 1e-30 < squared < 1e30 else None
    return (row, 1.0) if squared <= MAX_SQUARED_NORM else None


def _blas_squared_norm(vector: np.ndarray, dim: int) -> float | None:
    """``_squared_norm`` where the compiled search was not built."""
    if not ((vector.dtype is _FLOAT32 or vector.dtype == _FLOAT32)
            and vector.size == dim and vector.flags.c_contiguous and vector.flags.aligned):
        return None
    # (float32: inf past its range, NaN for NaN, inf; vdot, unlike dot and @, sets no
    # warning off for those)
    return float(np.vdot(vector, vector))


def _unit_vector(vector: np.ndarray) -> np.ndarray | None:
    """One cosine query as a unit ``(1, dim)`` float32 row, or None when ``prepare``'s
    general path must judge it (NaN, inf, zero, or a norm that float64 squares out of
    range: those make the squared norm non-finite or fall outside the bounds)."""
    arr = vector.astype(np.float64)
    if vector.dtype == np.float32:  # (squares of float32 values cannot overflow float64:
        squared = float(arr @ arr)  # no error state to set, ~0.6 µs a query)
    else:
        with np.errstate(over="ignore", invalid="ignore"):
            squared = float(arr @ arr)
    if not 1e-300 < squared < 1e300:  # (also False for NaN)
        return None
    return (arr / math.sqrt(squared)).astype(np.float32).reshape(1, -1)


def _unit_rows(arr: np.ndarray) -> np.ndarray:
    """float64 rows (refused unless finite) scaled to unit length in place."""
    _check_finite(arr)
    norms = np.sqrt(np.einsum("ij,ij->i", arr, arr))
    plain = (norms > 1e-150) & (norms < 1e150)  # (no overflow or underflow was possible)
    if plain.all():
        arr /= norms[:, None]
        return arr
    odd = ~plain
    scale = np.abs(arr[odd]).max(axis=1, keepdims=True)
    if (scale == 0).any():
        raise InvalidVector("zero vector cannot be stored under the cosine metric")
    rows = arr[odd] / scale
    rows /= np.linalg.norm(rows, axis=1, keepdims=True)
    arr[plain] /= norms[plain, None]
    arr[odd] = rows
    return arr


def calibrate(sample: np.ndarray) -> float:
    """The clip value for int8 quantization, from a sample of float vectors."""
    if sample.size == 0:
        return 1.0
    clip = float(np.percentile(np.abs(sample), CALIBRATION_QUANTILE)) * CALIBRATION_HEADROOM
    return clip if clip > 0 else 1.0


def quantize(vectors: np.ndarray, clip: float) -> np.ndarray:
    """Map float vectors to int8 codes with the collection's calibrated clip value."""
    scaled = np.rint(vectors * (INT8_MAX / clip))
    return np.clip(scaled, -INT8_MAX, INT8_MAX).astype(np.int8)
