"""The HNSW search depth (``ef``) a search runs at when neither it nor its collection
sets one: 64 up to 100,000 graph nodes, then growing with the square root of the graph's
size (128 at 400k, 202 at 1M), at most 512 (from 6.4M nodes).

A fixed depth loses recall as a graph grows. On the clustered benchmark mixture, recall@10
at ef 64 was 1.000 at 100k, 0.896–0.913 at 1M and 0.811 at 10M; at 1M, depth 202 gave
0.955 (docs/benchmarks-store.md, "The default search depth grows with the graph"). The
cost model prices a search at the same depth (``embedops.cost``); an int8 collection of
many segments searches deeper for its rescoring candidates (``segmented_index``:
2,000 at 10M in 50 segments). No imports beyond the standard library: the cost model
uses it without loading the index.
"""

from __future__ import annotations

import math

DEPTH_BASE = 64  # the depth up to DEPTH_BASE_NODES nodes
DEPTH_BASE_NODES = 100_000
DEPTH_MAX = 512


def default_depth(nodes: int) -> int:
    """The search depth for a graph of ``nodes`` live nodes when none is set or asked for."""
    if nodes <= DEPTH_BASE_NODES:
        return DEPTH_BASE
    return min(DEPTH_MAX, round(DEPTH_BASE * math.sqrt(nodes / DEPTH_BASE_NODES)))
