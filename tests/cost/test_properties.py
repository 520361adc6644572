"""Properties over random valid scenarios: more documents never cost less; nothing is negative."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from embedops.cost import Scenario, build_report

price = st.floats(min_value=0, max_value=100, allow_nan=False)
positive = st.floats(min_value=1e-3, max_value=1e6, allow_nan=False)

scenarios = st.builds(
    Scenario,
    documents=st.integers(1, 10**12),
    tokens_per_doc=positive,
    dim=st.integers(1, 8192),
    dtype=st.sampled_from(["float32", "float16", "int8"]),
    index_type=st.sampled_from(["hnsw", "flat", "ivf"]),
    hnsw_m=st.integers(2, 128),
    ef_search=st.none() | st.integers(1, 1024),
    ivf_nlist=st.integers(1, 10**6),
    replicas=st.integers(1, 8),
    qps=st.floats(min_value=0, max_value=1e5),
    re_embeds_per_year=st.floats(min_value=0, max_value=12),
    api_price_per_mtok=price,
    gpu_price_per_hour=price,
    gpu_docs_per_second=positive,
    gpus=st.integers(1, 64),
    self_hosted_setup_usd=st.floats(min_value=0, max_value=1e6),
    storage_price_per_gb_month=price,
    ram_per_node_gb=st.floats(min_value=1, max_value=4096),
    node_price_per_hour=price,
    node_distances_per_second=st.floats(min_value=1e3, max_value=1e10),
)

COSTS = [
    ("generation", "tokens"), ("generation", "api_cost_usd"), ("generation", "gpu_hours"),
    ("generation", "gpu_cost_usd"), ("generation", "time_to_embed_hours"),
    ("generation", "first_year_api_cost_usd"), ("generation", "first_year_gpu_cost_usd"),
    ("storage", "raw_bytes"), ("storage", "index_bytes_low"), ("storage", "index_bytes_high"),
    ("storage", "ram_bytes"), ("storage", "nodes_needed"), ("storage", "usd_per_month"),
    ("query", "distances_per_query"), ("query", "distances_per_second"),
    ("query", "nodes_needed"),
]


def _figures(s: Scenario) -> dict[tuple[str, str], Any]:
    data = build_report(s).to_dict()
    return {(section, key): data[section][key] for section, key in COSTS}


@settings(max_examples=150, deadline=None)
@given(scenarios, st.integers(1, 10**9))
def test_more_documents_never_cost_less(s: Scenario, extra: int) -> None:
    before = _figures(s)
    after = _figures(replace(s, documents=s.documents + extra))
    for key, value in before.items():
        assert after[key] >= value * (1 - 1e-12), key


@settings(max_examples=150, deadline=None)
@given(scenarios)
def test_costs_are_non_negative(s: Scenario) -> None:
    data = build_report(s).to_dict()
    for section in ("generation", "storage", "query"):
        for key, value in data[section].items():
            if isinstance(value, str):  # where a figure comes from (ram_basis, ...)
                continue
            assert value is None or value >= 0, (section, key)
    for variant in data["what_ifs"].values():
        assert all(v >= 0 for v in variant.values() if isinstance(v, int | float))


@settings(max_examples=100, deadline=None)
@given(scenarios)
def test_what_ifs_never_need_more_than_the_float32_baseline(s: Scenario) -> None:
    w = build_report(replace(s, dtype="float32")).what_ifs
    base = w["baseline"]
    assert w["int8"].raw_bytes * 4 == base.raw_bytes
    assert w["float16"].raw_bytes * 2 == base.raw_bytes
    for name in ("half_dim", "int8", "float16"):
        assert w[name].raw_bytes <= base.raw_bytes
        assert w[name].ram_bytes <= base.ram_bytes
        assert w[name].ram_nodes <= base.ram_nodes
