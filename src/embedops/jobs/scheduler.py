"""The service's job thread: runs each configured job when its cron expression comes
due, one job at a time, and exposes the last outcomes for ``status`` and ``/metrics``."""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime

from embedops.jobs.kinds import JobContext
from embedops.jobs.schedule import JobSpec, run_job

_log = logging.getLogger("embedops.jobs")


class JobScheduler:
    """Start with ``start()``; ``stop()`` lets the running job finish."""

    def __init__(self, specs: list[JobSpec], ctx: JobContext) -> None:
        self.specs, self.ctx = specs, ctx
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        now = datetime.now(UTC)
        self.next_runs = {s.name: s.next_run(now) for s in specs}

    def start(self) -> None:
        if not self.specs:
            return
        self._thread = threading.Thread(target=self._loop, name="embedops-jobs",
                                        daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            now = datetime.now(UTC)
            for spec in self.specs:
                if self.next_runs[spec.name] <= now and not self._stop.is_set():
                    self.run(spec)
            soonest = min(self.next_runs.values())
            self._stop.wait(max(0.05, min(30.0, (soonest - datetime.now(UTC))
                                          .total_seconds())))

    def run(self, spec: JobSpec) -> None:
        try:
            run_job(spec, self.ctx)
        except Exception:  # a bug in one job must not stop the others
            _log.exception("job %s crashed", spec.name)
        self.next_runs[spec.name] = spec.next_run(datetime.now(UTC))
