"""Self-hosted embedding speed: measured figures per model, and which one a scenario uses.

A scenario that gives no throughput is embedded by the measured model of its dimension:
docs/s = the model's tokens/s / ``tokens_per_doc``. A dimension with no measured model
uses the model of the nearest measured dimension (a tie goes to the wider, slower one) and
says so: wider models are larger and slower, so for them the figure overstates the speed.
Figures are CPU numbers measured by embedops' benchmarks (docs/cost.md), not GPU numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

CPU_WORKER = "2 vCPUs with AVX2, no VNNI, onnx-int8"


@dataclass(frozen=True)
class ModelSpeed:
    """One model's measured self-hosted throughput on one worker."""

    model: str
    dim: int
    tokens_per_second: float
    hardware: str
    source: str


# docs/cost.md ("Self-hosted speed per model") gives each figure's measurement.
MEASURED: tuple[ModelSpeed, ...] = (
    ModelSpeed("all-MiniLM-L6-v2", 384, 5_040.0, CPU_WORKER,
               "bench/self_hosted_speed.py, 200-token documents, median of three runs; "
               "docs/cost.md"),
    ModelSpeed("all-mpnet-base-v2", 768, 921.0, CPU_WORKER,
               "bench/self_hosted_speed.py, 200-token documents, median of three runs "
               "beside MiniLM; docs/cost.md"),
)


@dataclass(frozen=True)
class Throughput:
    """The docs/s a scenario's worker is assumed to embed, and where that figure comes from.

    ``model`` is the measured model whose speed is used, ``None`` when the scenario gave
    its own throughput.
    """

    docs_per_second: float
    model: str | None
    source: str


def speed_for_dim(dim: int) -> ModelSpeed:
    """The measured model of ``dim``, else of the nearest measured dimension (ties: wider)."""
    return min(MEASURED, key=lambda m: (abs(m.dim - dim), -m.dim))


def throughput(dim: int, tokens_per_doc: float, docs_per_second: float | None,
               tokens_per_minute: float | None) -> Throughput:
    """The worker's docs/s: ``tokens_per_minute`` when given, else ``docs_per_second``,
    else the measured speed of the model of ``dim`` at ``tokens_per_doc`` tokens each."""
    if tokens_per_minute is not None:
        return Throughput(tokens_per_minute / 60.0 / tokens_per_doc, None,
                          f"set by the scenario: {tokens_per_minute:,.0f} tokens/min "
                          f"/ {tokens_per_doc:g} tokens per doc")
    if docs_per_second is not None:
        return Throughput(docs_per_second, None, "set by the scenario")
    speed = speed_for_dim(dim)
    which = (f"{speed.model} ({speed.dim}-d)" if speed.dim == dim else
             f"no measured model at {dim}-d; {speed.model} ({speed.dim}-d), the nearest "
             f"measured width" + (" (wider models are slower: this overstates their speed)"
                                  if dim > speed.dim else ""))
    return Throughput(
        speed.tokens_per_second / tokens_per_doc, speed.model,
        f"{which}: {speed.tokens_per_second:,.0f} tokens/s ({speed.hardware}) "
        f"/ {tokens_per_doc:g} tokens per doc; {speed.source}")
