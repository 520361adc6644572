"""The active alerts of a store, in one list: index memory against its budget, canaries
whose last run fell below their baseline, scheduled jobs whose last run failed.
``embedops status --json`` shows it as ``alerts``; the service exports it to /metrics."""

from __future__ import annotations

from typing import Any

from embedops.config import Settings
from embedops.ledger import Ledger
from embedops.monitor.memory import MemoryState, memory_state
from embedops.store.protocol import VectorStore


def canary_alerts(ledger: Ledger) -> list[dict[str, Any]]:
    out = []
    for canary in ledger.canaries():
        last = next(iter(ledger.canary_runs(canary.name, limit=1)), None)
        if last is not None and last.alert:
            out.append({"alert": "canary", "level": "critical", "name": canary.name,
                        "reason": f"canary {canary.name}: recall@10 {last.recall:.4f} is "
                                  f"{last.drop_points:.2f} points below its baseline "
                                  f"{last.baseline_recall:.4f} (threshold "
                                  f"{last.threshold_points} points) at {last.ran_at}"})
    return out


def job_alerts(ledger: Ledger) -> list[dict[str, Any]]:
    return [{"alert": "job", "level": "warning" if run["outcome"] == "alert" else "critical",
             "name": job, "reason": f"job {job} ended {run['outcome']} at {run['last_run']}: "
                                    f"{run['detail']}"}
            for job, run in ledger.last_job_runs().items() if run["outcome"] != "ok"]


def active_alerts(store: VectorStore, ledger: Ledger | None, settings: Settings,
                  memory: MemoryState | None = None) -> list[dict[str, Any]]:
    """Every active alert with its ``alert`` kind, ``level`` and ``reason``."""
    memory = memory or memory_state(store, settings)
    alerts = memory.alerts()
    if ledger is not None:
        alerts += canary_alerts(ledger) + job_alerts(ledger)
    return alerts
