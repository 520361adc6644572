"""One query's HNSW search in compiled code, over the arrays faiss keeps the graph in.

A single unfiltered search is the store's most common call, and on small collections
faiss's own search of it is mostly fixed cost: a parallel region opened, a visited table
allocated and cleared, the search parameters checked, each paid per query. The
extension ``_graph_search`` (``_graph_search.c``, built by ``setup.py``) runs the
standard HNSW search (a greedy descent through the upper levels, then a beam of ``ef``
nodes at level 0) over faiss's own links and float32 vectors, read where faiss keeps
them, with per-thread scratch kept from one search to the next, and without the
interpreter lock from the query's start to its ranked nodes. Removed nodes route the
search and are never returned, as with faiss's ``IDSelectorBitmap``. The results match
faiss's own search of the same graph to within ties and its recall to within a tenth of a
point either way (``tests/store/test_graph_search.py``); the time it saves is in
docs/benchmarks-store.md.

Batches take the same search, spread over the threads faiss would spread them over
(``GraphView.search_into``), so that a query answers alike alone and in a batch. float32
graphs (``IndexHNSWFlat``) and int8 ones (``IndexHNSWSQ`` holding the store's own codes,
each value stored as a byte of value + 128, which the search reads as they are and
widens to floats in registers; the query must be codes too, whole numbers within ±127,
as ``HnswIndex._codes`` makes it: the offset is taken out of a sum of products, exact
for whole numbers) under inner product or L2 are searched here; float16
graphs, searches kept within a filter's matches, graphs of more than 1,024 links a node
and ``k`` above ``MAX_K`` (2**20) go through faiss. So does
everything where the extension was not built (no C compiler at install time) or
``EMBEDOPS_GRAPH_SEARCH=faiss`` is set (to compare the two).

Each thread that searches keeps its visited marks (2 bytes a node of the largest graph
it searched: 2 MB at 1M nodes) until it ends; a batch's helper threads end with it.

A ``GraphView`` points into faiss's arrays and is only valid until the graph next
changes: ``HnswGraph`` makes a new one after every insert, under the index lock that
keeps searches away from inserts.
"""

from __future__ import annotations

import os
from typing import Any

import faiss
import numpy as np

try:
    from embedops.store._graph_search import MAX_K, GraphView
except ImportError:  # (built without a C compiler: faiss's own search is used)
    GraphView, MAX_K = None, 0

SWITCH = "EMBEDOPS_GRAPH_SEARCH"  # "faiss": never use the compiled search


def compiled() -> bool:
    """Is the compiled search built, and not switched off (``SWITCH``)?"""
    return GraphView is not None and os.environ.get(SWITCH, "") != "faiss"


def view_of(graph: faiss.IndexHNSW, labels: np.ndarray, alive: np.ndarray) -> Any | None:
    """A ``GraphView`` of ``graph`` (an ``IndexHNSWFlat``, or an ``IndexHNSWSQ`` holding
    the store's int8 codes, of at least one node) whose nodes' keys are ``labels`` and
    whose live nodes are the bits of ``alive`` (the arrays themselves: later removals
    show in them), or None where the compiled search does not apply (module docstring)."""
    if not compiled() or graph.ntotal < 1 or graph.hnsw.entry_point < 0:
        return None
    if graph.metric_type not in (faiss.METRIC_INNER_PRODUCT, faiss.METRIC_L2):
        return None
    nodes, dim = int(graph.ntotal), int(graph.d)
    storage = faiss.downcast_index(graph.storage)
    if isinstance(storage, faiss.IndexFlat):
        rows, codes = faiss.rev_swig_ptr(storage.get_xb(), nodes * dim), False
    elif (isinstance(storage, faiss.IndexScalarQuantizer)
          and storage.sq.qtype == faiss.ScalarQuantizer.QT_8bit_direct_signed
          and storage.code_size == dim):
        rows, codes = faiss.rev_swig_ptr(storage.codes.data(), nodes * dim), True
    else:  # (float16 codes)
        return None
    hnsw = graph.hnsw
    try:
        return GraphView(
            owner=graph, vectors=rows, codes=codes,
            links=_array(hnsw.neighbors), offsets=_array(hnsw.offsets),
            level_begin=faiss.vector_to_array(hnsw.cum_nneighbor_per_level).tolist(),
            keys=labels, alive=alive, dim=dim, nodes=nodes,
            entry=int(hnsw.entry_point), max_level=int(hnsw.max_level),
            inner=graph.metric_type == faiss.METRIC_INNER_PRODUCT)
    except ValueError:  # (a graph of more than 1,024 links a node: faiss searches it)
        return None


def _array(vector: Any) -> np.ndarray:
    """A faiss vector's items where they lie (no copy)."""
    return faiss.rev_swig_ptr(vector.data(), vector.size())
