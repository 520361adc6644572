"""Every input of the cost model in one frozen, validated dataclass.

Prices are example defaults taken from public list prices; override them with your own.
Unless a throughput is given, a self-hosted worker embeds at the measured CPU speed of the
model of ``dim`` (``self_hosted``), not a GPU speed: pass ``gpu_docs_per_second`` (or
``gpu_tokens_per_minute``) measured on the hardware you would rent. Byte units are decimal
(see ``units``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

from embedops.cost.self_hosted import Throughput, throughput
from embedops.cost.units import DTYPE_BYTES, INDEX_TYPES
from embedops.errors import InvalidCostInput
from embedops.search_depth import default_depth


def _spec(default: Any, kind: type, low: float | None, source: str, *,
          strict: bool = False, optional: bool = False) -> Any:
    """A dataclass field whose metadata carries its type, lower bound and default's source.

    ``low`` is the smallest allowed value (exclusive when ``strict``); ``None`` means no
    numeric bound (choice fields). ``optional`` fields may be ``None``.
    """
    meta = {"kind": kind, "low": low, "strict": strict, "optional": optional, "source": source}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Scenario:
    """The inputs of one cost estimate. Construction validates every field.

    Raises ``InvalidCostInput`` (naming the field) for a wrong type, a negative value, zero
    where zero is not allowed, an unknown dtype or index type, or contradictory bounds.
    Integral floats (``5e8``) are accepted for whole-number fields and stored as ``int``.
    """

    documents: int = _spec(
        1_000_000, int, 0, "example corpus size; set your own", strict=True)
    tokens_per_doc: float = _spec(
        200.0, float, 0, "example (about 150 English words); set your corpus' mean",
        strict=True)
    dim: int = _spec(
        768, int, 0, "a BERT-base width (all-mpnet-base-v2, bge-base-en-v1.5: 768)",
        strict=True)
    dtype: str = _spec(
        "float32", str, None, "stored vector type: float32, float16 or int8")
    index_type: str = _spec(
        "hnsw", str, None, "the embedded store's index (HNSW); ivf and flat also modelled")
    hnsw_m: int = _spec(
        16, int, 2, "embedops' HNSW connectivity (store/hnsw_index.py)")
    ef_search: int | None = _spec(
        None, int, 1, "unset: the embedded store's default search depth for `documents` "
        "nodes (64 up to 100k, 64 x sqrt(documents / 100k) above, at most 512; "
        "search_depth.py)", optional=True)
    ivf_nlist: int | None = _spec(
        None, int, 1, "unset: round(4 * sqrt(documents)), a common IVF rule of thumb",
        optional=True)
    ivf_nprobe: int = _spec(
        16, int, 1, "example IVF lists probed per query")
    index_overhead_low: float = _spec(
        1.0, float, 0, "planning range: an index keeps 1-4x the raw vectors beside them")
    index_overhead_high: float = _spec(
        4.0, float, 0, "planning range: an index keeps 1-4x the raw vectors beside them")
    replicas: int = _spec(
        1, int, 1, "one copy of the RAM-resident index; raise for availability")
    qps: float = _spec(
        10.0, float, 0, "example query rate")
    re_embeds_per_year: float = _spec(
        1.0, float, 0, "example: one model upgrade a year")
    api_price_per_mtok: float = _spec(
        0.02, float, 0, "OpenAI text-embedding-3-small list price, USD per 1M tokens")
    gpu_price_per_hour: float = _spec(
        0.08925, float, 0,
        "AWS c7i.large (2 vCPU) on-demand list price, us-east-1, to match the CPU throughput")
    gpu_docs_per_second: float | None = _spec(
        None, float, 0,
        "unset: the measured CPU speed of the model of dim (cost/self_hosted.py), "
        "tokens/s / tokens_per_doc",
        strict=True, optional=True)
    gpu_tokens_per_minute: float | None = _spec(
        None, float, 0, "unset; when set, replaces gpu_docs_per_second",
        strict=True, optional=True)
    gpus: int = _spec(
        1, int, 1, "self-hosted workers embedding in parallel")
    self_hosted_setup_usd: float = _spec(
        0.0, float, 0, "one-off cost of running your own model; set your own")
    storage_price_per_gb_month: float = _spec(
        0.023, float, 0, "AWS S3 Standard list price, first 50 TB, us-east-1")
    ram_per_node_gb: float = _spec(
        64.0, float, 0, "AWS r6i.2xlarge has 64 GiB (68.7 GB); 64 GB leaves the rest to the OS",
        strict=True)
    node_price_per_hour: float = _spec(
        0.504, float, 0, "AWS r6i.2xlarge on-demand list price, us-east-1")
    node_distances_per_second: float = _spec(
        25e6, float, 0,
        "embedops bench/results/ann-100k.json: 2,958 queries/s on one thread at ef=64, 384-d "
        "(about 6.3M distances/s by this model); halved for 768-d, x8 vCPUs. CPU numbers",
        strict=True)

    def __post_init__(self) -> None:
        for f in fields(self):
            object.__setattr__(self, f.name, _checked(f.name, getattr(self, f.name), f.metadata))
        if self.dtype not in DTYPE_BYTES:
            raise InvalidCostInput("dtype", f"unknown dtype {self.dtype!r}; "
                                            f"choose one of {', '.join(DTYPE_BYTES)}")
        if self.index_type not in INDEX_TYPES:
            raise InvalidCostInput("index_type", f"unknown index type {self.index_type!r}; "
                                                 f"choose one of {', '.join(INDEX_TYPES)}")
        if self.index_overhead_high < self.index_overhead_low:
            raise InvalidCostInput("index_overhead_high", "must be >= index_overhead_low")

    @property
    def bytes_per_value(self) -> int:
        """Bytes of one stored vector component at ``dtype``."""
        return DTYPE_BYTES[self.dtype]

    @property
    def self_hosted(self) -> Throughput:
        """One worker's throughput and its source: tokens/min when given, else docs/s,
        else the measured speed of the model of ``dim``."""
        return throughput(self.dim, self.tokens_per_doc, self.gpu_docs_per_second,
                          self.gpu_tokens_per_minute)

    @property
    def docs_per_second(self) -> float:
        """Self-hosted docs/s of one worker (see ``self_hosted``)."""
        return self.self_hosted.docs_per_second

    @property
    def search_depth(self) -> int:
        """HNSW search depth: ``ef_search`` or the store's default for ``documents``."""
        if self.ef_search is not None:
            return self.ef_search
        return default_depth(self.documents)

    @property
    def nlist(self) -> int:
        """IVF list count: ``ivf_nlist`` or ``round(4 * sqrt(documents))``, at least 1."""
        if self.ivf_nlist is not None:
            return self.ivf_nlist
        return max(1, round(4 * math.sqrt(self.documents)))


def default_sources() -> dict[str, tuple[Any, str]]:
    """Each input's default and where it comes from, in declaration order."""
    return {f.name: (f.default, f.metadata["source"]) for f in fields(Scenario)}


def _checked(name: str, value: Any, meta: Any) -> Any:
    """``value`` coerced to the field's type and checked against its bound, else raises."""
    kind, low, strict = meta["kind"], meta["low"], meta["strict"]
    if value is None and meta["optional"]:
        return None
    if kind is str:
        if not isinstance(value, str):
            raise InvalidCostInput(name, f"expected text, got {value!r}")
        return value.strip().lower()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidCostInput(name, f"expected a number, got {value!r}")
    if not math.isfinite(value):
        raise InvalidCostInput(name, f"must be finite, got {value!r}")
    if kind is int:
        if value != int(value):
            raise InvalidCostInput(name, f"must be a whole number, got {value!r}")
        value = int(value)
    else:
        value = float(value)
    if strict and value <= low:
        raise InvalidCostInput(name, f"must be greater than {low:g}, got {value!r}")
    if not strict and value < low:
        raise InvalidCostInput(name, f"must be at least {low:g}, got {value!r}")
    return value
