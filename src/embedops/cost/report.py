"""The full cost report of one scenario, as dataclasses and as a JSON-ready dict."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

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
}


@dataclass(frozen=True)
class CostReport:
    """Every figure the cost model gives for ``scenario``."""

    scenario: Scenario
    generation: Generation
    storage: Storage
    query: Query
    what_ifs: dict[str, WhatIf]

    def to_dict(self) -> dict[str, Any]:
        """Nested JSON-ready dict: units, inputs, generation, storage, query, what_ifs.

        For an IVF scenario, ``inputs.ivf_nlist`` is the list count used (derived when unset).
        """
        inputs = asdict(self.scenario)
        if self.scenario.index_type == "ivf":
            inputs["ivf_nlist"] = self.scenario.nlist
        return {
            "units": dict(UNITS),
            "inputs": inputs,
            "generation": asdict(self.generation),
            "storage": asdict(self.storage),
            "query": asdict(self.query),
            "what_ifs": {name: asdict(w) for name, w in self.what_ifs.items()},
        }


def build_report(s: Scenario) -> CostReport:
    """Compute generation, storage, query and what-if figures for ``s`` (pure arithmetic)."""
    return CostReport(
        scenario=s,
        generation=generation(s),
        storage=storage(s),
        query=query(s),
        what_ifs=what_ifs(s),
    )
