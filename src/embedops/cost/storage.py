"""Storage: raw vector bytes, index footprint range, resident RAM, nodes and monthly cost.

Decimal bytes throughout. The footprint range ``raw x (1 + overhead)`` with overhead in
``[index_overhead_low, index_overhead_high]`` (default +1-4x) is a planning range for
everything an index keeps beside the vectors (graph or list structures, a full-precision
copy for rescoring, build and compaction headroom). ``ram`` is the resident index
structure itself: for HNSW at the embedded store's connectivity, the store's measured
bytes per vector (``store_measured``); otherwise modelled from the index type's layout.
``embedded_store_disk_bytes`` is the embedded store's measured disk use (SQLite database
and index checkpoint) for the scenario's vectors.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from embedops.cost.inputs import Scenario
from embedops.cost.store_measured import STORE_M, per_vector
from embedops.cost.units import BYTES_PER_GB, HOURS_PER_MONTH

LINK_ID_BYTES = 4  # HNSW neighbour ids (hnswlib, FAISS)
IVF_ID_BYTES = 8  # int64 ids stored in each inverted list (FAISS)
CENTROID_BYTES = 4  # IVF centroids are float32


@dataclass(frozen=True)
class Storage:
    """Storage figures for one Scenario."""

    raw_bytes: int
    index_bytes_low: float
    index_bytes_high: float
    ram_bytes_per_replica: float
    ram_bytes: float
    ram_basis: str
    embedded_store_disk_bytes: float
    embedded_store_basis: str
    nodes_needed: int
    object_storage_usd_per_month: float
    ram_nodes_usd_per_month: float
    usd_per_month: float


def raw_bytes(documents: int, dim: int, bytes_per_value: int) -> int:
    """Bytes of the vectors alone: ``documents x dim x bytes_per_value`` (exact integer)."""
    return documents * dim * bytes_per_value


def hnsw_bytes_per_vector(dim: int, bytes_per_value: int, m: int) -> float:
    """Resident bytes per vector in an HNSW graph with connectivity ``m``.

    The vector, plus ``2m`` neighbour ids at layer 0, plus the upper layers: a node reaches
    layer ``l`` with probability ``m^-l``, so it holds ``1/(m-1)`` upper layers on average,
    ``m`` ids each. Headers and allocator slack are left out.
    """
    layer0 = 2 * m * LINK_ID_BYTES
    upper = m * LINK_ID_BYTES / (m - 1)
    return dim * bytes_per_value + layer0 + upper


def is_the_embedded_store(s: Scenario) -> bool:
    """Does ``s`` describe the embedded store's index (HNSW at its connectivity), whose
    bytes per vector are measured?"""
    return s.index_type == "hnsw" and s.hnsw_m == STORE_M


def ram_per_replica(s: Scenario) -> float:
    """Resident bytes of one copy of the index, by index type (hnsw, ivf, flat): the
    embedded store's measured figure for HNSW at its connectivity."""
    raw = raw_bytes(s.documents, s.dim, s.bytes_per_value)
    if is_the_embedded_store(s):
        return s.documents * per_vector(s.dim, s.dtype).ram_per_vector
    if s.index_type == "hnsw":
        return s.documents * hnsw_bytes_per_vector(s.dim, s.bytes_per_value, s.hnsw_m)
    if s.index_type == "ivf":
        return raw + s.documents * IVF_ID_BYTES + s.nlist * s.dim * CENTROID_BYTES
    return float(raw)


def storage(s: Scenario) -> Storage:
    """Raw bytes, footprint range, RAM, RAM nodes (per replica, rounded up) and monthly cost.

    Object storage holds one copy of the raw vectors at the stored dtype; RAM nodes are
    billed for the 730-hour month.
    """
    raw = raw_bytes(s.documents, s.dim, s.bytes_per_value)
    ram_one = ram_per_replica(s)
    nodes = math.ceil(ram_one / (s.ram_per_node_gb * BYTES_PER_GB)) * s.replicas
    object_usd = raw / BYTES_PER_GB * s.storage_price_per_gb_month
    nodes_usd = nodes * s.node_price_per_hour * HOURS_PER_MONTH
    measured = per_vector(s.dim, s.dtype)
    if is_the_embedded_store(s):
        ram_basis = f"the embedded store, {measured.basis}"
    else:
        ram_basis = f"modelled from the {s.index_type} layout (docs/cost.md)"
    return Storage(
        raw_bytes=raw,
        index_bytes_low=raw * (1 + s.index_overhead_low),
        index_bytes_high=raw * (1 + s.index_overhead_high),
        ram_bytes_per_replica=ram_one,
        ram_bytes=ram_one * s.replicas,
        ram_basis=ram_basis,
        embedded_store_disk_bytes=s.documents * measured.disk_per_vector,
        embedded_store_basis=measured.basis,
        nodes_needed=nodes,
        object_storage_usd_per_month=object_usd,
        ram_nodes_usd_per_month=nodes_usd,
        usd_per_month=object_usd + nodes_usd,
    )
