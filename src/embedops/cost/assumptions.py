"""The assumptions a report rests on: each price, size and speed with its unit and source.

They are printed above the tables and carried in JSON (``assumptions``) so that a reader
sees which figures are example defaults to replace with their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from embedops.cost.inputs import Scenario, default_sources

FOOTPRINT_VS_RAM = (
    "index footprint = raw x (1 + overhead), a planning range for disk (vectors plus graph "
    "or lists, a float copy for rescoring, build headroom); RAM = the resident index alone "
    "(vectors and links), which sizes the RAM nodes")

# Scenario inputs stated as assumptions (name, label, unit), in the order they are printed.
_INPUTS: tuple[tuple[str, str, str], ...] = (
    ("api_price_per_mtok", "API price", "USD per 1M tokens"),
    ("tokens_per_doc", "tokens per document", "tokens"),
    ("gpu_price_per_hour", "self-hosted worker price", "USD per hour"),
    ("storage_price_per_gb_month", "object storage price", "USD per GB-month"),
    ("ram_per_node_gb", "index RAM per node", "GB"),
    ("node_price_per_hour", "RAM node price", "USD per hour"),
    ("node_distances_per_second", "query node speed", "distances/s"),
)


@dataclass(frozen=True)
class Assumption:
    """One assumed figure: ``default`` is True when it is embedops' built-in example."""

    label: str
    value: Any
    unit: str
    source: str
    default: bool


def assumptions(s: Scenario) -> dict[str, Assumption]:
    """Prices, tokens per document, self-hosted speed, RAM nodes and index overhead of ``s``.

    A value equal to the built-in default carries the default's source; any other value
    is labelled "set by the scenario". The self-hosted speed names the model it was
    measured on, or says that the scenario gave it.
    """
    sources = default_sources()
    out: dict[str, Assumption] = {}
    for name, label, unit in _INPUTS:
        default, source = sources[name]
        value = getattr(s, name)
        out[name] = _entry(label, value, unit, source, value == default)
        if name == "gpu_price_per_hour":
            worker = s.self_hosted
            out["self_hosted_docs_per_second"] = Assumption(
                "self-hosted speed", worker.docs_per_second, "docs/s per worker",
                worker.source, worker.model is not None)
    overhead = [s.index_overhead_low, s.index_overhead_high]
    default_overhead = [sources["index_overhead_low"][0], sources["index_overhead_high"][0]]
    out["index_overhead"] = _entry(
        "index overhead", overhead, "x raw (low, high)", sources["index_overhead_low"][1],
        overhead == default_overhead)
    return out


def _entry(label: str, value: Any, unit: str, source: str, is_default: bool) -> Assumption:
    return Assumption(label, value, unit, source if is_default else "set by the scenario",
                      is_default)
