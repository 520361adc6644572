"""Cost model and capacity planner: what embedding, storing and querying a corpus costs.

    from embedops.cost import load_scenario, build_report
    report = build_report(load_scenario(documents=500_000_000, tokens_per_doc=200))
    report.generation.api_cost_usd  # 2000.0

Every figure is arithmetic on explicit inputs (``Scenario``), in decimal byte units, so it
can be checked by hand; docs/cost.md gives the formulas and the source of every default.
"""

from __future__ import annotations

from embedops.cost.assumptions import Assumption, assumptions
from embedops.cost.generation import Generation
from embedops.cost.inputs import Scenario, default_sources
from embedops.cost.loading import load_scenario, read_scenario_file, scenario_from
from embedops.cost.query import Query
from embedops.cost.report import CostReport, build_report
from embedops.cost.self_hosted import MEASURED, ModelSpeed, Throughput, speed_for_dim
from embedops.cost.storage import Storage
from embedops.cost.whatif import WhatIf, what_ifs

__all__ = [
    "MEASURED",
    "Assumption",
    "CostReport",
    "Generation",
    "ModelSpeed",
    "Query",
    "Scenario",
    "Storage",
    "Throughput",
    "WhatIf",
    "assumptions",
    "build_report",
    "default_sources",
    "load_scenario",
    "read_scenario_file",
    "scenario_from",
    "speed_for_dim",
    "what_ifs",
]
