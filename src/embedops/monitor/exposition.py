"""What a metrics scrape adds about health: index memory against its budget, the active
alerts by kind, the last run of each scheduled job, migration and field-backfill
progress. Cheap: a few ledger reads, no store statistics."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from embedops.config import Settings
from embedops.ledger import Ledger
from embedops.ledger.migrations import ACTIVE_PHASES
from embedops.metrics import Metrics
from embedops.migrate.state import PHASES
from embedops.monitor.alerts import active_alerts
from embedops.monitor.memory import memory_state
from embedops.store.protocol import VectorStore

ALERT_KINDS = ("index_memory", "canary", "job")


def publish_health(metrics: Metrics, store: VectorStore, ledger: Ledger,
                   settings: Settings) -> None:
    used = getattr(store, "index_memory_bytes", None)
    memory = memory_state(store, settings, used() if callable(used) else None, log=False)
    metrics.index_memory_share.set(memory.share)
    kinds = {a["alert"] for a in active_alerts(store, ledger, settings, memory)}
    for kind in ALERT_KINDS:
        metrics.alert_active.labels(kind).set(1 if kind in kinds else 0)
    for job, run in ledger.last_job_runs().items():
        _job(metrics, job, run)
    for m in ledger.migrations():
        if m.phase not in ACTIVE_PHASES:
            continue
        metrics.migration_documents_done.labels(m.alias).set(
            min(ledger.document_count(m.shadow), ledger.document_count(m.live)))
        metrics.migration_documents_total.labels(m.alias).set(ledger.document_count(m.live))
        for phase in PHASES:
            metrics.migration_phase.labels(m.alias, phase).set(1 if phase == m.phase else 0)
    for b in ledger.backfills():
        labels = (b["collection"], b["field"])
        metrics.backfill_running.labels(*labels).set(1 if b["state"] == "running" else 0)
        metrics.backfill_points.labels(*labels, "updated").set(b["points_updated"])
        metrics.backfill_points.labels(*labels, "total").set(b["points_total"])


def _job(metrics: Metrics, job: str, run: dict[str, Any]) -> None:
    metrics.job_last_run.labels(job).set(datetime.fromisoformat(run["last_run"]).timestamp())
    metrics.job_last_duration.labels(job).set(run["seconds"])
    metrics.job_last_success.labels(job).set(1 if run["outcome"] == "ok" else 0)
