"""The full cost report of one scenario, as dataclasses and as a JSON-ready dict."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from embedops.cost.assumptions import FOOTPRINT_VS_RAM, Assumption, assumptions
from embedops.cost.generation import Generation, generation
from embedops.cost.inputs import Scenario
from embedops.cost.query import Query, query
from embedops.cost.storage import Storage, storage
from embedops.cost.units import HOURS_PER_MONTH
from embedops.cost.whatif import WhatIf, what_ifs

UNITS: dict[str, Any] = {
    "bytes": "decimal: 1 GB = 1e9 bytes, 1 TB = 1e12 bytes",
    "currency": "USD",
    "hours_per_month": HOURS_PER_MONTH,
    "tokens_per_mtok": 1_000_000,
    "index_footprint_vs_ram": FOOTPRINT_VS_RAM,
}


@dataclass(frozen=True)
class CostReport:
    """Every figure the cost model gives for ``scenario``."""

    scenario: Scenario
    assumptions: dict[str, Assumption]
    generation: Generation
    storage: Storage
    query: Query
    what_ifs: dict[str, WhatIf]

    def to_dict(self) -> dict[str, Any]:
        """Nested JSON-ready dict: units, assumptions, inputs, generation, storage, query,
        what_ifs.

        Derived inputs are given as used: for an IVF scenario ``inputs.ivf_nlist`` is the
        list count; for an HNSW one ``inputs.ef_search`` is the search depth; without a
        throughput input ``inputs.gpu_docs_per_second`` is the measured speed of the
        scenario's model (``assumptions.self_hosted_docs_per_second`` says which).
        """
        s = self.scenario
        inputs = asdict(s)
        if s.index_type == "ivf":
            inputs["ivf_nlist"] = s.nlist
        if s.index_type == "hnsw":
            inputs["ef_search"] = s.search_depth
        if s.gpu_docs_per_second is None and s.gpu_tokens_per_minute is None:
            inputs["gpu_docs_per_second"] = s.docs_per_second
        return {
            "units": dict(UNITS),
            "assumptions": {name: asdict(a) for name, a in self.assumptions.items()},
            "inputs": inputs,
            "generation": asdict(self.generation),
            "storage": asdict(self.storage),
            "query": asdict(self.query),
            "what_ifs": {name: asdict(w) for name, w in self.what_ifs.items()},
        }


def build_report(s: Scenario) -> CostReport:
    """Compute the assumptions, generation, storage, query and what-if figures for ``s``
    (pure arithmetic)."""
    return CostReport(
        scenario=s,
        assumptions=assumptions(s),
        generation=generation(s),
        storage=storage(s),
        query=query(s),
        what_ifs=what_ifs(s),
    )
