"""Exact search over chosen nodes of a faiss HNSW graph, on the vectors as it stores them.

A filter that few points match is answered by scoring every matching point
(``Searcher._selective``). Reading those points back out of the graph as float32 rows
(faiss's ``reconstruct_batch``) and scoring them with numpy cost ~3 µs a point on the
store's 2-core development machine: ~30 ms a query for 10,000 matches, most of it the
decoding. Here the nodes' stored codes are copied out of the graph's storage as they are
(one gather from a view of faiss's code array) into a flat faiss index of the same
scalar type, which faiss scans with its own distance kernels on the codes: the same
scores, in ~2 ms for those 10,000 (docs/benchmarks-store.md, "A filter's matches scored
on their codes").

The view is read while the caller keeps inserts away from the graph (the store's index
lock): an insert may reallocate the array it views. The copy is the caller's own.
"""

from __future__ import annotations

from dataclasses import dataclass

import faiss
import numpy as np


def scalar_kind(dtype: str) -> int | None:
    """faiss's scalar quantizer for a collection's ``dtype`` (None: plain float32)."""
    if dtype == "float32":
        return None
    if dtype == "float16":
        return faiss.ScalarQuantizer.QT_fp16
    if dtype == "int8":  # the store's own codes, stored as they are
        return faiss.ScalarQuantizer.QT_8bit_direct_signed
    raise ValueError(f"unknown dtype {dtype!r}")


def new_flat(dim: int, fmetric: int, dtype: str) -> faiss.IndexFlatCodes:
    """An empty flat (exhaustive) faiss index holding ``dtype`` rows, as a graph of that
    ``dtype`` stores them."""
    kind = scalar_kind(dtype)
    if kind is None:
        return faiss.IndexFlat(dim, fmetric)
    flat = faiss.IndexScalarQuantizer(dim, kind, fmetric)
    flat.train(np.zeros((1, dim), dtype=np.float32))  # (these quantizers learn nothing)
    return flat


def stored_codes(graph: faiss.IndexHNSW, positions: np.ndarray) -> np.ndarray:
    """The codes the graph stores at ``positions`` (each below its size), copied: one
    row of ``code_size`` bytes a position."""
    storage = faiss.downcast_index(graph.storage)
    size = int(storage.code_size)
    held = faiss.rev_swig_ptr(storage.codes.data(), int(graph.ntotal) * size)
    return held.reshape(-1, size)[positions]


def flat_of(graph: faiss.IndexHNSW, positions: np.ndarray, dtype: str
            ) -> faiss.IndexFlatCodes:
    """A flat faiss index of the vectors the graph stores at ``positions``, in that order
    (its row ``i`` is the node at ``positions[i]``)."""
    flat = new_flat(int(graph.d), int(graph.metric_type), dtype)
    if len(positions):
        flat.add_sa_codes(stored_codes(graph, positions))
    return flat


@dataclass
class NodeCodes:
    """Graph nodes' stored vectors in a flat faiss index (``flat_of``) and their keys:
    ``keys[i]`` holds row ``i``, and a last ``-1`` stands for faiss's padding (row -1)."""

    flat: faiss.IndexFlatCodes
    keys: np.ndarray

    @property
    def nbytes(self) -> int:
        return int(self.flat.ntotal) * int(self.flat.code_size) + self.keys.nbytes
