"""Job definitions from the settings, their cron expressions (parsed by croniter), and
running one job with its outcome recorded in the ledger."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from croniter import croniter

from embedops.errors import ConfigError, EmbedOpsError
from embedops.jobs.kinds import KINDS, JobContext, JobFailed

_log = logging.getLogger("embedops.jobs")


@dataclass(frozen=True)
class JobSpec:
    """One scheduled job: ``name``, ``cron`` (five fields, UTC), ``kind``, ``args``."""

    name: str
    cron: str
    kind: str
    args: dict[str, Any] = field(default_factory=dict)

    def next_run(self, after: datetime) -> datetime:
        return croniter(self.cron, after).get_next(datetime)  # type: ignore[no-any-return]


def job_specs(raw: list[dict[str, Any]]) -> list[JobSpec]:
    """The jobs of the settings, checked; ConfigError names the bad one."""
    specs, names = [], set()
    for i, item in enumerate(raw):
        where = f"jobs[{i}]" + (f" ({item.get('name')})" if isinstance(item, dict) else "")
        if not isinstance(item, dict) or not {"name", "cron", "kind"} <= set(item):
            raise ConfigError(f"{where}: a job needs name, cron and kind")
        spec = JobSpec(str(item["name"]), str(item["cron"]), str(item["kind"]),
                       dict(item.get("args") or {}))
        if spec.kind not in KINDS:
            raise ConfigError(f"{where}: kind must be one of {', '.join(KINDS)}")
        if not croniter.is_valid(spec.cron) or len(spec.cron.split()) != 5:
            raise ConfigError(f"{where}: {spec.cron!r} is not a 5-field cron expression")
        if spec.name in names:
            raise ConfigError(f"{where}: two jobs are named {spec.name!r}")
        names.add(spec.name)
        specs.append(spec)
    return specs


def run_job(spec: JobSpec, ctx: JobContext) -> dict[str, Any]:
    """Run ``spec`` now; record and return its outcome (``ok``, ``alert`` or
    ``failed``), duration and detail. Never raises for the job's own failures."""
    started = datetime.now(UTC)
    clock = time.perf_counter()
    try:
        detail, outcome = KINDS[spec.kind](ctx, spec.args), "ok"
    except JobFailed as exc:
        detail, outcome = str(exc), "alert"
    except EmbedOpsError as exc:
        detail, outcome = f"{exc.code}: {exc.message}", "failed"
    seconds = round(time.perf_counter() - clock, 3)
    ctx.ledger.record_job_run(spec.name, started.isoformat(timespec="seconds"), seconds,
                              outcome, detail)
    log = _log.info if outcome == "ok" else _log.error
    log("job %s (%s): %s in %.1f s: %s", spec.name, spec.kind, outcome, seconds, detail)
    return {"job": spec.name, "kind": spec.kind, "outcome": outcome, "seconds": seconds,
            "detail": detail, "started_at": started.isoformat(timespec="seconds")}
