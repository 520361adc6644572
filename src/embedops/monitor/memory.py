"""The memory budget of the store's indexes and the alarms on it.

The budget is ``memory_budget_bytes`` when set, else the cgroup's memory limit when the
process runs under one, else the machine's RAM. Past 80% of it: a warning (``status``,
``/metrics``, a log line); past 100%: new index growth is refused by the store
(``MemoryBudgetExceeded``) rather than letting the machine swap.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedops.config import Settings
from embedops.store import estimate_memory
from embedops.store.protocol import VectorStore

WARN_SHARE = 0.8
_log = logging.getLogger("embedops.alerts")
_CGROUP_FILES = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def machine_memory() -> int:
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def cgroup_limit(files: tuple[str, ...] = _CGROUP_FILES) -> int | None:
    """The memory limit of this process's cgroup, when one is set."""
    for name in files:
        try:
            text = Path(name).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < machine_memory():
            return int(text)
    return None


def memory_budget(settings: Settings) -> tuple[int, str]:
    """(bytes, where the figure comes from)."""
    if settings.memory_budget_bytes is not None:
        return settings.memory_budget_bytes, "memory_budget_bytes"
    limit = cgroup_limit()
    if limit is not None:
        return limit, "cgroup limit"
    return machine_memory(), "machine RAM"


def estimated_index_memory(store: VectorStore) -> int:
    """What the store's indexes take (or will take once loaded), estimated from each
    collection's size: cheap, no index is loaded."""
    return sum(estimate_memory(c.points, c.dim, c.dtype) for c in store.list_collections())


@dataclass(frozen=True)
class MemoryState:
    used_bytes: int
    budget_bytes: int
    budget_source: str

    @property
    def share(self) -> float:
        return self.used_bytes / max(self.budget_bytes, 1)

    def alerts(self) -> list[dict[str, Any]]:
        """Active memory alerts: warning past 80% of the budget, critical past 100%."""
        if self.share < WARN_SHARE:
            return []
        level = "critical" if self.share >= 1.0 else "warning"
        return [{"alert": "index_memory", "level": level,
                 "reason": f"index memory {self.used_bytes:,} bytes is {self.share:.0%} of "
                           f"the budget ({self.budget_bytes:,} bytes, {self.budget_source})"
                           + ("; new index growth is refused" if level == "critical" else "")}]

    def to_dict(self) -> dict[str, Any]:
        return {"index_bytes": self.used_bytes, "budget_bytes": self.budget_bytes,
                "budget_source": self.budget_source, "share": round(self.share, 4)}


def memory_state(store: VectorStore, settings: Settings, used: int | None = None,
                 log: bool = True) -> MemoryState:
    """``used`` when the caller measured it (a service's resident indexes), else an
    estimate from the collections' sizes. ``log``: write the alert lines (not on every
    metrics scrape)."""
    budget, source = memory_budget(settings)
    state = MemoryState(estimated_index_memory(store) if used is None else used, budget,
                        source)
    for alert in state.alerts() if log else ():
        _log.warning("alert %s: %s", alert["alert"], alert["reason"])
    return state
