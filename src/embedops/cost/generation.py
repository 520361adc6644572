"""Generation cost: tokens, API bill, self-hosted hours, and where the two break even.

One *pass* embeds the whole corpus once; the initial embed and every re-embed (a model
upgrade) are one pass each, so the per-pass figures are both "initial" and "per re-embed".
Self-hosted batch passes rent workers by the hour; a continuous monthly stream keeps one
worker up for the whole month (730 hours), which is what gives a break-even volume.
"""

from __future__ import annotations

from dataclasses import dataclass

from embedops.cost.inputs import Scenario
from embedops.cost.units import HOURS_PER_MONTH, SECONDS_PER_HOUR, TOKENS_PER_MTOK


@dataclass(frozen=True)
class Generation:
    """Generation figures for one Scenario (USD, hours, tokens; ``None`` means never)."""

    tokens: float
    api_cost_usd: float
    gpu_hours: float
    gpu_cost_usd: float
    time_to_embed_hours: float
    docs_per_second: float
    self_hosted_usd_per_mtok: float
    first_year_passes: float
    first_year_api_cost_usd: float
    first_year_gpu_cost_usd: float
    break_even_re_embeds: float | None
    worker_tokens_per_month: float
    break_even_monthly_tokens: float | None


def passes_break_even(setup_usd: float, api_per_pass: float, gpu_per_pass: float) -> float | None:
    """Re-embeds after the initial pass at which self-hosting has cost no more than the API.

    Totals after ``p`` passes: API ``p * api``, self-hosted ``setup + p * gpu``. Equal at
    ``p = setup / (api - gpu)``; the result is ``max(0, p - 1)`` re-embeds (0: no dearer
    from the first pass). ``None`` when self-hosting never catches up: a self-hosted pass
    costs more than an API pass, or the same while setup is not free.
    """
    saving = api_per_pass - gpu_per_pass
    if setup_usd == 0 and saving >= 0:
        return 0.0
    if saving <= 0:
        return None
    return max(0.0, setup_usd / saving - 1.0)


def monthly_break_even(s: Scenario) -> float | None:
    """Monthly tokens at which one always-on worker costs the same as the API.

    The worker costs ``gpu_price_per_hour * 730`` a month whatever the volume; the API costs
    ``tokens * price``. Break-even is ``worker_cost / api_price_per_token`` when a fully
    used worker is cheaper per token than the API (then it lies within one worker's
    capacity); otherwise ``None``: the API is cheaper at every volume.
    """
    api_per_token = s.api_price_per_mtok / TOKENS_PER_MTOK
    worker_month = s.gpu_price_per_hour * HOURS_PER_MONTH
    capacity = worker_tokens_per_month(s)
    if worker_month >= api_per_token * capacity:
        return None
    return worker_month / api_per_token


def worker_tokens_per_month(s: Scenario) -> float:
    """Tokens one self-hosted worker embeds in a 730-hour month at the scenario's throughput."""
    return s.docs_per_second * s.tokens_per_doc * SECONDS_PER_HOUR * HOURS_PER_MONTH


def generation(s: Scenario) -> Generation:
    """Per-pass tokens, API cost, self-hosted hours and cost; first-year totals (the initial
    pass plus ``re_embeds_per_year``, with setup); break-evens."""
    tokens = s.documents * s.tokens_per_doc
    api_cost = tokens / TOKENS_PER_MTOK * s.api_price_per_mtok
    gpu_hours = s.documents / s.docs_per_second / SECONDS_PER_HOUR
    gpu_cost = gpu_hours * s.gpu_price_per_hour
    tokens_per_hour = s.docs_per_second * s.tokens_per_doc * SECONDS_PER_HOUR
    passes = 1.0 + s.re_embeds_per_year
    return Generation(
        tokens=tokens,
        api_cost_usd=api_cost,
        gpu_hours=gpu_hours,
        gpu_cost_usd=gpu_cost,
        time_to_embed_hours=gpu_hours / s.gpus,
        docs_per_second=s.docs_per_second,
        self_hosted_usd_per_mtok=s.gpu_price_per_hour / tokens_per_hour * TOKENS_PER_MTOK,
        first_year_passes=passes,
        first_year_api_cost_usd=passes * api_cost,
        first_year_gpu_cost_usd=s.self_hosted_setup_usd + passes * gpu_cost,
        break_even_re_embeds=passes_break_even(s.self_hosted_setup_usd, api_cost, gpu_cost),
        worker_tokens_per_month=worker_tokens_per_month(s),
        break_even_monthly_tokens=monthly_break_even(s),
    )
