"""Memory alarms and scheduled jobs: status carries the active alerts, the store refuses
index growth past the budget, jobs run on their cron expressions (and by hand) with
their outcome recorded."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

import embedops
from embedops.config import load_settings
from embedops.errors import ConfigError, MemoryBudgetExceeded
from embedops.jobs.kinds import JobContext
from embedops.jobs.schedule import JobSpec, job_specs
from embedops.jobs.scheduler import JobScheduler
from embedops.monitor.memory import cgroup_limit, memory_budget
from embedops.store import estimate_memory
from tests.e2e.conftest import Cli


def test_status_reports_memory_alerts_past_80_percent(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "d.txt").write_text("a document")
    cli.ingest(str(tmp_path / "d.txt"))
    calm = cli.json("status")
    assert calm["alerts"] == [] and calm["memory"]["budget_source"] in (
        "machine RAM", "cgroup limit")
    used = calm["memory"]["index_bytes"]
    for budget, level in ((int(used / 0.85), "warning"), (used - 1, "critical")):
        report = json.loads(cli.run("status", "--json", env_extra={
            "EMBEDOPS_MEMORY_BUDGET_BYTES": str(budget)}).stdout)
        (alert,) = report["alerts"]
        assert alert["alert"] == "index_memory" and alert["level"] == level
        assert f"{budget:,}" in alert["reason"]


def test_index_growth_past_the_budget_is_refused(tmp_path: Path) -> None:
    vectors = np.random.default_rng(0).normal(size=(400, 16)).astype(np.float32)
    with embedops.open(tmp_path / "s") as db:
        db.create_collection("c", dim=16)
        db.upsert("c", [str(i) for i in range(40)], vectors[:40])
        assert db.store.wait_merged(60)
        used = db.store.index_memory_bytes()
    assert used > 0
    # the index fills 95% of the budget: 360 more points cannot fit, replacements can
    growth = estimate_memory(360, 16) - estimate_memory(0, 16)
    assert growth > 0.05 * used / 0.95
    with embedops.open(tmp_path / "s", memory_budget_bytes=int(used / 0.95)) as db:
        db.store.search("c", vectors[0], k=1)  # (the index loads on first use)
        assert db.store.index_memory_bytes() == used
        with pytest.raises(MemoryBudgetExceeded, match="memory budget"):
            db.upsert("c", [str(i) for i in range(40, 400)], vectors[40:])
        assert db.count("c") == 40  # nothing of the refused batch was written
        assert db.upsert("c", ["0", "1"], vectors[:2]) == 2  # replacing does not grow


def test_budget_sources(tmp_path: Path) -> None:
    assert memory_budget(load_settings(memory_budget_bytes=123)) == (123, "memory_budget_bytes")
    limit = tmp_path / "memory.max"
    limit.write_text("1073741824\n")
    assert cgroup_limit((str(limit),)) == 1 << 30
    limit.write_text("max\n")
    assert cgroup_limit((str(limit),)) is None


def test_jobs_are_checked_and_run_on_their_schedule(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cron"):
        job_specs([{"name": "x", "cron": "every night", "kind": "stale"}])
    with pytest.raises(ConfigError, match="kind must be one of"):
        job_specs([{"name": "x", "cron": "* * * * *", "kind": "vacuum"}])
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("the first version")
    with embedops.open(tmp_path / "s", model="testing/hash-64") as db:
        db.ingest([tmp_path / "docs"])
        (tmp_path / "docs" / "a.txt").write_text("the second version of it")
        assert db.ledger is not None
        spec = JobSpec("nightly", "* * * * *", "reembed-stale", {"collection": "default"})
        scheduler = JobScheduler([spec], JobContext(db, db.ledger))
        scheduler.next_runs["nightly"] = datetime.now(UTC)  # due now
        scheduler.start()
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and "nightly" not in db.ledger.last_job_runs():
            time.sleep(0.05)
        scheduler.stop()
        run = db.ledger.last_job_runs()["nightly"]
        assert run["outcome"] == "ok" and "re-embedded 1 documents" in run["detail"]
        assert db.get("a.txt").text == "the second version of it"
        assert scheduler.next_runs["nightly"] > datetime.now(UTC)


def test_jobs_commands_and_failed_jobs_raise_alerts(cli: Cli, tmp_path: Path) -> None:
    (tmp_path / "d.txt").write_text("a document")
    cli.ingest(str(tmp_path / "d.txt"))
    config = tmp_path / "embedops.toml"
    config.write_text('[[jobs]]\nname = "stale-report"\ncron = "0 3 * * *"\nkind = "stale"\n'
                      'args = { collection = "default" }\n'
                      '[[jobs]]\nname = "broken"\ncron = "0 4 * * *"\nkind = "stale"\n'
                      'args = { collection = "missing" }\n')
    env = {"EMBEDOPS_CONFIG": str(config)}
    listed = json.loads(cli.run("jobs", "list", "--json", env_extra=env).stdout)
    assert [(j["name"], j["cron"]) for j in listed] == [("stale-report", "0 3 * * *"),
                                                        ("broken", "0 4 * * *")]
    ran = json.loads(cli.run("jobs", "run", "stale-report", "--json", env_extra=env).stdout)
    assert ran["outcome"] == "ok" and "stale_documents 0" in ran["detail"]
    failed = cli.run("jobs", "run", "broken", "--json", env_extra=env, check=False)
    assert failed.returncode == 1 and json.loads(failed.stdout)["outcome"] == "failed"
    status = json.loads(cli.run("status", "--json", env_extra=env).stdout)
    assert status["jobs"]["stale-report"]["outcome"] == "ok"
    assert [a["name"] for a in status["alerts"] if a["alert"] == "job"] == ["broken"]
