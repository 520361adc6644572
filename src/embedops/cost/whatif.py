"""What-ifs side by side: the same scenario with half the dimension, int8, or float16.

Each variant changes one input and recomputes storage, so the rows differ only by what
that change buys. Generation cost does not depend on dimension or dtype in this model (the
API bills tokens), and the query model counts distance computations, whose number does not
change either (each gets cheaper; measure the per-node rate of the variant you pick).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from embedops.cost.inputs import Scenario
from embedops.cost.storage import storage


@dataclass(frozen=True)
class WhatIf:
    """Storage figures of one variant of a scenario."""

    name: str
    dim: int
    dtype: str
    raw_bytes: int
    index_bytes_low: float
    index_bytes_high: float
    ram_bytes: float
    ram_nodes: int
    storage_usd_per_month: float


def variants(s: Scenario) -> dict[str, Scenario]:
    """The baseline and its variants, by name: baseline, half_dim, int8, float16.

    ``half_dim`` is ``dim // 2`` (at least 1). A variant equal to the baseline (e.g. int8
    when the baseline is int8) is still listed, so the table keeps its shape.
    """
    return {
        "baseline": s,
        "half_dim": replace(s, dim=max(1, s.dim // 2)),
        "int8": replace(s, dtype="int8"),
        "float16": replace(s, dtype="float16"),
    }


def what_if(name: str, s: Scenario) -> WhatIf:
    """The storage figures of scenario ``s``, labelled ``name``."""
    st = storage(s)
    return WhatIf(
        name=name,
        dim=s.dim,
        dtype=s.dtype,
        raw_bytes=st.raw_bytes,
        index_bytes_low=st.index_bytes_low,
        index_bytes_high=st.index_bytes_high,
        ram_bytes=st.ram_bytes,
        ram_nodes=st.nodes_needed,
        storage_usd_per_month=st.usd_per_month,
    )


def what_ifs(s: Scenario) -> dict[str, WhatIf]:
    """Every variant of ``s`` (see ``variants``) with its figures, baseline first."""
    return {name: what_if(name, v) for name, v in variants(s).items()}
