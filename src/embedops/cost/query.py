"""Query load: distance computations per query and per second, and nodes to serve them.

Rough by design: these count the distance computations a search makes, which is what CPU
time is spent on, and divide by a per-node rate you should measure (``bench/ann.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from embedops.cost.inputs import Scenario


@dataclass(frozen=True)
class Query:
    """Query figures for one Scenario."""

    distances_per_query: float
    distances_per_second: float
    nodes_needed: int


def distances_per_query(s: Scenario) -> float:
    """Distance computations of one search, by index type.

    - flat: every vector, ``documents``.
    - hnsw: greedy descent through ``log_m(documents)`` upper layers checking ``m``
      neighbours each, then ``search_depth`` expansions at layer 0 checking ``2m`` each
      (``ef_search``, or the store's default depth for ``documents``).
    - ivf: ``nlist`` centroids, then ``nprobe`` lists of ``documents / nlist`` vectors.
    """
    n = s.documents
    if s.index_type == "flat":
        return float(n)
    if s.index_type == "hnsw":
        m = s.hnsw_m
        upper_layers = math.log(n) / math.log(m) if n > 1 else 0.0
        return s.search_depth * 2 * m + m * upper_layers
    nprobe = min(s.ivf_nprobe, s.nlist)
    return s.nlist + nprobe * n / s.nlist


def query(s: Scenario) -> Query:
    """Distances per query and per second at ``qps``; nodes at ``node_distances_per_second``.

    Nodes are rounded up and are 0 when ``qps`` is 0.
    """
    per_query = distances_per_query(s)
    per_second = per_query * s.qps
    return Query(
        distances_per_query=per_query,
        distances_per_second=per_second,
        nodes_needed=math.ceil(per_second / s.node_distances_per_second),
    )
