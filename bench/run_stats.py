"""Median and range of a benchmark's runs, the form every recorded figure takes."""

from __future__ import annotations

import statistics


def summary(values: list[float], digits: int = 1) -> dict[str, float] | None:
    """``{"median", "min", "max"}`` of ``values`` rounded to ``digits``; None when empty."""
    if not values:
        return None
    return {"median": round(statistics.median(values), digits),
            "min": round(min(values), digits), "max": round(max(values), digits)}
