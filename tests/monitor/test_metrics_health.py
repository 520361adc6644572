"""/metrics carries the health figures: memory share and alert flags, the last run of each
job, and migration progress by phase."""

from __future__ import annotations

from pathlib import Path

import httpx

from embedops.config import load_settings
from embedops.ledger import Ledger
from embedops.server import create_app
from tests.server.live import live_server


def _sample(text: str, line_start: str) -> float:
    for line in text.splitlines():
        if line.startswith(line_start):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {line_start!r} in /metrics")


def test_metrics_show_alerts_jobs_and_migrations(tmp_path: Path) -> None:
    store = tmp_path / "store"
    # a budget the first write passes (the empty index, ~8.5 kB, is below 90% of it) and
    # its points then exceed (a few hundred bytes each in the graph)
    settings = load_settings(model="testing/hash-64", store=str(store),
                             memory_budget_bytes=20_000)
    with live_server(create_app(settings, open_store=True)) as url, \
            httpx.Client(base_url=url, timeout=30) as http:
        text = " ".join(f"sentence number {i} of a long document." for i in range(2000))
        put = http.put("/collections/kb/documents/d?wait=true", json={"text": text})
        assert put.status_code == 200, put.text
        ledger = Ledger(store)
        ledger.record_job_run("nightly", "2026-12-01T03:00:00+00:00", 1.5, "failed", "boom")
        ledger.close()
        started = http.post("/admin/migrations/kb/start", json={"to": "testing/hash-32"})
        assert started.status_code == 200, started.text
        text = http.get("/metrics").text
        assert _sample(text, "embedops_index_memory_share") > 1.0
        assert _sample(text, 'embedops_alert_active{alert="index_memory"}') == 1.0
        assert _sample(text, 'embedops_alert_active{alert="job"}') == 1.0
        assert _sample(text, 'embedops_alert_active{alert="canary"}') == 0.0
        assert _sample(text, 'embedops_job_last_success{job="nightly"}') == 0.0
        assert _sample(text, 'embedops_job_last_duration_seconds{job="nightly"}') == 1.5
        assert _sample(text, 'embedops_migration_documents_total{alias="kb"}') == 1.0
        phases = [line for line in text.splitlines()
                  if line.startswith('embedops_migration_phase{alias="kb"') and
                  line.endswith(" 1.0")]
        assert len(phases) == 1 and ('phase="backfilling"' in phases[0]
                                     or 'phase="ready"' in phases[0])
