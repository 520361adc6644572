"""The embedded store's bytes per vector, measured, and what they make of a scenario.

``bench/store_footprint.py`` fills a store with random unit vectors and a small payload
per point and measures the growth per vector of the resident index, the SQLite database
and the index checkpoint (docs/benchmarks-store.md, "Bytes per vector"). Those figures
price an embedded store of any size at HNSW connectivity ``STORE_M`` (the store's):

* at the measured dimension, the measured bytes;
* at another dimension, the measured bytes minus the measured vector's own bytes plus the
  new vector's (the graph links, ids, payload and row overheads do not depend on the
  dimension);
* float16 and float32 from the int8 figures with the vector at 2 and 4 bytes per
  dimension (float32, measured on its own at 1M, came out at exactly the int8 figures
  with 4-byte vectors: 1,792.1 B in RAM on cfd2c67).
"""

from __future__ import annotations

from dataclasses import dataclass

from embedops.cost.units import DTYPE_BYTES

STORE_M = 16  # the embedded store's HNSW connectivity (store/hnsw_index.DEFAULT_PARAMS)
# Bytes per dimension of a vector in the store: in the index, the dtype's own
# (``DTYPE_BYTES``); in SQLite, float32 for float32 and int8 collections, which rescore
# from it, float16 otherwise (store/quantization.py).
SQLITE_BYTES = {"float32": 4, "float16": 2, "int8": 4}


@dataclass(frozen=True)
class Footprint:
    """Measured bytes per vector of one dtype at one dimension."""

    dtype: str
    dim: int
    index_memory: float
    sqlite: float
    index_files: float
    measured_at: int
    source: str


SOURCE = ("bench/store_footprint.py --n 1000000 --dtypes {dtype} --data clustered, "
          "docs/benchmarks-store.md")
# Measured on the faiss graph (store/hnsw_graph.py), int8 at 1M on 5ffc23c, with a node's
# 16-byte fingerprint in RAM and in the checkpoint's fingerprint file (640.1 B in RAM and
# 536.3 B of files before them): 656.1 B in RAM, of which 106 B the key -> position
# dictionary. Since 8ba8f6c the key map is sorted arrays of 16 B a node
# (store/key_positions.py): 90 B less, 566.1 B (the same 1M store's ``index_bytes``, read
# by both commits: 658.4 and 568.4 B per vector). float32 and float16 are the int8 figures
# with the vector at its own bytes: the graph's links, levels, key map and fingerprints do
# not depend on the scalar type (float32, measured on its own at 1M on cfd2c67, came out at
# exactly the int8 figures of that commit with 4-byte vectors: 1,792.1 B in RAM, 1,688.3 B
# of files).
KEY_MAP = "; in RAM less the key map's 90 B since 8ba8f6c (bench/key_map.py)"
# SQLite since schema migration 3 (the vectors in a table of their own): that 1M int8
# store migrated, its live pages ((page_count - freelist_count) x page size) per point,
# 2,193.9 B against 2,100.5 B the same way before (2,090.0 B as growth per vector).
VECTORS_APART = ("; SQLite: the 1M store after schema migration 3, live pages "
                 "(docs/benchmarks-store.md, 'Vectors in a table of their own')")
SQLITE_BYTES_MEASURED = 2193.9
MEASURED: dict[str, Footprint] = {
    "int8": Footprint("int8", 384, index_memory=566.1, sqlite=SQLITE_BYTES_MEASURED,
                      index_files=552.3, measured_at=1_000_000,
                      source=SOURCE.format(dtype="int8") + KEY_MAP + VECTORS_APART),
    "float32": Footprint("float32", 384, index_memory=566.1 + 3 * 384,
                         sqlite=SQLITE_BYTES_MEASURED, index_files=552.3 + 3 * 384,
                         measured_at=1_000_000,
                         source=SOURCE.format(dtype="int8") + KEY_MAP + VECTORS_APART
                         + " (int8's bytes with 4-byte vectors; float32 alone: cfd2c67)"),
}


@dataclass(frozen=True)
class StoreBytes:
    """Bytes per vector the embedded store takes at a scenario's dimension and dtype."""

    ram_per_vector: float
    disk_per_vector: float
    basis: str


def per_vector(dim: int, dtype: str) -> StoreBytes:
    """Resident index bytes and disk bytes (SQLite + index checkpoint) per vector."""
    base = MEASURED.get(dtype, MEASURED["int8"])
    index_shift = dim * DTYPE_BYTES[dtype] - base.dim * DTYPE_BYTES[base.dtype]
    sqlite_shift = dim * SQLITE_BYTES[dtype] - base.dim * SQLITE_BYTES[base.dtype]
    ram = base.index_memory + index_shift
    disk = base.sqlite + sqlite_shift + base.index_files + index_shift
    how = (f"measured: {base.dtype}, dim {base.dim}, {base.measured_at:,} vectors, "
           f"{base.index_memory:,.0f} B/vector in RAM, "
           f"{base.sqlite + base.index_files:,.0f} B/vector on disk ({base.source})")
    if (dim, dtype) != (base.dim, base.dtype):
        how += f"; scaled to {dtype} at dim {dim} by the vector's own bytes"
    return StoreBytes(ram, disk, how)
