"""Deterministic test vectors: a normalised Gaussian mixture, like real embedding clusters."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import numpy as np

from embedops.store import VectorStore

StoreFactory = Callable[..., VectorStore]


def mixture(n: int, dim: int, seed: int = 0, clusters: int = 50, spread: float = 0.35
            ) -> np.ndarray:
    """``n`` unit vectors drawn around ``clusters`` random centres."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim)).astype(np.float32)
    labels = rng.integers(0, clusters, n)
    noise = rng.standard_normal((n, dim)).astype(np.float32) * spread
    x = centres[labels] + noise * np.linalg.norm(centres[labels], axis=1, keepdims=True) / dim**0.5
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def exact_top_k(base: np.ndarray, queries: np.ndarray, k: int,
                allowed: np.ndarray | None = None) -> list[set[int]]:
    """Positions of each query's ``k`` nearest rows by dot product (restricted to ``allowed``)."""
    sims = queries @ base.T
    if allowed is not None:
        sims[:, ~allowed] = -np.inf
    order = np.argsort(-sims, axis=1)[:, :k]
    return [set(row.tolist()) for row in order]


def recall(found: list[set[int]], truth: list[set[int]]) -> float:
    """Mean fraction of the true neighbours that were found."""
    return float(np.mean([len(f & t) / max(len(t), 1) for f, t in zip(found, truth, strict=True)]))


def back_to_schema_2(path: Path) -> None:
    """Undo the embedded store's schema migration 3 in the (closed) store at ``path``: its
    vectors back in the points' rows, as stores written before it keep them. (The column
    added last, and filled by an UPDATE, leaves the rows two to a page, as rows written
    with their vectors were.)"""
    conn = sqlite3.connect(path / "store.sqlite")
    conn.executescript(
        "ALTER TABLE points ADD COLUMN vector BLOB NOT NULL DEFAULT x'';"
        "UPDATE points SET vector = (SELECT vector FROM vectors "
        "WHERE vectors.rowkey = points.rowkey);"
        "DROP TABLE vectors; DELETE FROM schema_migrations WHERE version > 2;")
    conn.close()
