"""The derived ANN index: a usearch HNSW graph keyed by the SQLite row key.

The index is never the source of truth. It is checkpointed to ``index/<cid>-<seq>.usearch``
(usearch's documented binary format) with a JSON manifest ``index/<cid>.json`` that names
the file and the collection change sequence it covers; the manifest is replaced atomically
after the index file is complete and fsynced, so a crash leaves the previous checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import usearch
from usearch.index import Index

from embedops.errors import IndexFailure
from embedops.store import quantization

MANIFEST_FORMAT = 1
DEFAULT_PARAMS: dict[str, Any] = {
    "connectivity": 16,
    "expansion_add": 128,
    "expansion_search": 64,
    "exact_threshold": 10_000,
    "checkpoint_every": 50_000,
    "oversample": 4,
}
BASE_ARENA_BYTES = 16 * 1024 * 1024
_SCALAR_BYTES = {"float32": 4, "float16": 2, "int8": 1}
_USEARCH_DTYPE = {"float32": "f32", "float16": "f16", "int8": "i8"}


def usearch_metric(metric: str, dtype: str) -> str:
    """The usearch metric for a collection (cosine vectors are stored unit-normalised)."""
    if metric == "l2":
        return "l2sq"
    if metric == "cosine" and dtype == "int8":
        return "cos"
    return "ip"


def estimate_memory(n: int, dim: int, dtype: str = "float32", connectivity: int = 16) -> int:
    """Resident bytes an HNSW index of ``n`` vectors of ``dim`` at ``dtype`` will need.

    Per node: the vector (``dim`` x 4/2/1 bytes) plus about ``24 * connectivity + 8`` bytes
    of graph links, levels and key (measured on usearch 2.x); plus 25% for capacity growth
    and usearch's ~16 MiB base arena. A planning figure, usually within 50% of
    ``stats()['index_bytes']``; raises ``ValueError`` for an unknown dtype.
    """
    if dtype not in _SCALAR_BYTES:
        raise ValueError(f"unknown dtype {dtype!r}")
    per_node = dim * _SCALAR_BYTES[dtype] + 24 * connectivity + 8
    return int(n * per_node * 1.25) + BASE_ARENA_BYTES


class HnswIndex:
    """usearch HNSW over int row keys; float32 input, quantized per the collection dtype."""

    def __init__(self, dim: int, metric: str, dtype: str, params: dict[str, Any],
                 clip: float | None) -> None:
        self.dim, self.metric, self.dtype = dim, metric, dtype
        self.params = {**DEFAULT_PARAMS, **params}
        self.clip = clip
        self.removed = 0
        self._lock = threading.Lock()
        try:
            self.index = Index(
                ndim=dim,
                metric=usearch_metric(metric, dtype),
                dtype=_USEARCH_DTYPE[dtype],
                connectivity=int(self.params["connectivity"]),
                expansion_add=int(self.params["expansion_add"]),
                expansion_search=int(self.params["expansion_search"]),
            )
        except (ValueError, RuntimeError, TypeError) as exc:
            raise IndexFailure(f"cannot create HNSW index: {exc}") from exc

    def __len__(self) -> int:
        return len(self.index)

    def _codes(self, vectors: np.ndarray) -> np.ndarray:
        if self.dtype == "int8":
            return quantization.quantize(vectors, self.clip or 1.0)
        return vectors

    def add(self, keys: np.ndarray, vectors: np.ndarray) -> None:
        """Insert or replace ``keys`` (int64) with ``vectors`` (float32 rows)."""
        if len(keys) == 0:
            return
        keys = np.asarray(keys, dtype=np.uint64)
        try:
            present = np.asarray(self.index.contains(keys), dtype=bool).reshape(-1)
            if present.any():
                self.remove(keys[present])
            self.index.add(keys, self._codes(vectors))
        except (ValueError, RuntimeError) as exc:
            raise IndexFailure(f"HNSW insert failed: {exc}") from exc

    def remove(self, keys: np.ndarray) -> int:
        """Remove keys that are present; returns how many were removed."""
        if len(keys) == 0:
            return 0
        try:
            removed = int(np.sum(self.index.remove(np.asarray(keys, dtype=np.uint64))))
        except (ValueError, RuntimeError) as exc:
            raise IndexFailure(f"HNSW removal failed: {exc}") from exc
        self.removed += removed
        return removed

    def search(self, queries: np.ndarray, k: int, ef: int | None = None,
               threads: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """Top-``k`` keys and scores (higher is better) per query; -1 pads missing slots.

        The search depth is ``max(ef or expansion_search, k)``, widened by up to 2x while
        tombstones (removed or replaced vectors) make up to a quarter of the index.
        """
        k = max(1, min(k, len(self.index)))
        # Removed nodes still occupy candidate slots during traversal: widen the search
        # in proportion to the tombstone share until compaction clears them.
        widen = 1.0 + 4.0 * self.removed / max(len(self.index), 1)
        ef_value = max(int(int(ef or self.params["expansion_search"]) * widen), k)
        with self._lock:
            try:
                self.index.expansion_search = ef_value
                found = self.index.search(self._codes(queries), k, threads=threads)
            except (ValueError, RuntimeError) as exc:
                raise IndexFailure(f"HNSW search failed: {exc}") from exc
        keys = np.asarray(found.keys, dtype=np.int64).reshape(len(queries), -1)
        dist = np.asarray(found.distances, dtype=np.float32).reshape(len(queries), -1)
        counts = np.asarray(getattr(found, "counts", [keys.shape[1]])).reshape(-1)
        mask = np.arange(keys.shape[1])[None, :] >= counts[:, None]
        keys[mask] = -1
        scores = -dist if self.metric == "l2" else 1.0 - dist
        return keys, scores

    def stored(self, keys: np.ndarray) -> np.ndarray:
        """The vectors the index holds for ``keys`` (int8 codes for int8 indexes)."""
        if len(keys) == 0:
            return np.zeros((0, self.dim), dtype=np.float32)
        got = self.index.get(np.asarray(keys, dtype=np.uint64))
        return np.asarray(got).reshape(len(keys), self.dim)

    def matches_vectors(self, keys: np.ndarray, vectors: np.ndarray) -> np.ndarray:
        """Per key: does the index hold ``vectors`` (as this index would encode them)?"""
        held = self.stored(keys).astype(np.float32)
        expect = self._codes(vectors).astype(np.float32)
        tolerance = 1.0 if self.dtype == "int8" else 1e-2 if self.dtype == "float16" else 1e-5
        return np.all(np.abs(held - expect) <= tolerance, axis=1)

    def keys(self) -> np.ndarray:
        """Every key currently in the index."""
        return np.asarray(self.index.keys, dtype=np.int64)

    @property
    def memory_bytes(self) -> int:
        return int(self.index.memory_usage)

    def save(self, folder: Path, cid: int, seq: int) -> Path:
        """Checkpoint the index as covering change ``seq``; returns the index file path."""
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{cid}-{seq}.usearch"
        tmp = folder / f".{cid}-{seq}.usearch.tmp"
        try:
            self.index.save(str(tmp))
        except (ValueError, RuntimeError, OSError) as exc:
            raise IndexFailure(f"cannot save index checkpoint: {exc}") from exc
        _fsync_file(tmp)
        os.replace(tmp, target)
        manifest = {
            "format": MANIFEST_FORMAT, "file": target.name, "seq": seq, "dim": self.dim,
            "metric": self.metric, "dtype": self.dtype, "clip": self.clip,
            "size": len(self.index), "removed": self.removed, "params": self.params,
            "usearch_version": usearch.__version__, "saved_at": datetime.now(UTC).isoformat(),
        }
        _write_json_atomic(folder / f"{cid}.json", manifest)
        for old in folder.glob(f"{cid}-*.usearch"):
            if old != target:
                old.unlink(missing_ok=True)
        return target

    @classmethod
    def load(cls, folder: Path, cid: int, dim: int, metric: str, dtype: str,
             params: dict[str, Any], clip: float | None) -> tuple[HnswIndex, int] | None:
        """The checkpointed index and its seq, or ``None`` if absent, stale or unreadable."""
        manifest = read_manifest(folder, cid)
        if manifest is None:
            return None
        same = (manifest.get("dim"), manifest.get("dtype"), manifest.get("metric"),
                manifest.get("clip")) == (dim, dtype, metric, clip)
        path = folder / str(manifest.get("file", ""))
        if not same or not path.is_file():
            return None
        index = cls(dim, metric, dtype, params, clip)
        try:
            index.index.load(str(path))
        except (ValueError, RuntimeError, OSError):
            return None
        index.removed = int(manifest.get("removed", 0))
        return index, int(manifest["seq"])


def read_manifest(folder: Path, cid: int) -> dict[str, Any] | None:
    """The checkpoint manifest of collection ``cid``, or ``None``."""
    try:
        data = json.loads((folder / f"{cid}.json").read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") == MANIFEST_FORMAT else None


def remove_checkpoints(folder: Path, cid: int) -> None:
    """Delete every checkpoint file of collection ``cid``."""
    for path in [folder / f"{cid}.json", *folder.glob(f"{cid}-*.usearch"),
                 *folder.glob(f".{cid}-*.tmp")]:
        path.unlink(missing_ok=True)


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _write_json_atomic(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, sort_keys=True)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
