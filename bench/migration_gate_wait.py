"""How long another writer of the service waits for the write gate while a model
migration backfills its shadow collection: the wait an HTTP upsert or the real-time
worker's micro-batch sees on top of its own work during a migration.

Ingests ``--docs`` passages of ``../shared/data/msmarco-5k`` (exits with status 2 when
the data is missing) with ``--model`` (default all-MiniLM-L6-v2) into a template store,
then, per run, copies it, starts a migration to ``--to`` (default all-mpnet-base-v2)
and backfills it while a probe thread takes the gate every ``--every`` seconds and times
each wait. Two variants, alternating, ``--runs`` times each:

* ``whole_batch``: each backfill batch under the gate from reading its documents to
  writing them, embedding included (the baseline: how a batch held it before);
* ``write_only``: the backfill as the service runs it (``Migrations(write_lock=...)``):
  a batch read and embedded with no lock held, the gate held for its write.

Prints JSON: per variant the backfill's seconds, and the probe's longest and
99th-percentile wait in milliseconds (median, min and max over the runs), with the
ratio of the baseline's longest wait to the new one's.

    .venv/bin/python bench/migration_gate_wait.py --docs 256 --runs 3
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import embedops
from embedops.ingest.ordering import WriteGate
from embedops.migrate import Migrations
from gate_probe import GateProbe, arguments, gate_summary, passage_files  # (in bench/)


def one_run(template: Path, folder: Path, variant: str, model: str, to: str,
            every: float) -> dict[str, float]:
    store = folder / f"run-{variant}"
    shutil.rmtree(store, ignore_errors=True)
    shutil.copytree(template, store)
    with embedops.open(store, model=model) as db:
        gate = WriteGate(db.new_ledger_handle())
        migrations = Migrations(db, write_lock=gate.lock)
        migrations.start("docs", to)  # (loads the new model: not timed)
        started = time.perf_counter()
        with GateProbe(gate.lock, every) as probe:
            if variant == "write_only":
                phase = migrations.backfill("docs").phase
            else:
                phase = "backfilling"
                while phase == "backfilling":
                    with gate.lock:
                        phase = migrations.backfill("docs", max_batches=1).phase
        took = time.perf_counter() - started
        assert phase == "ready", phase
        assert db.count(migrations.current("docs").shadow) == db.count("docs")
    return {"backfill_s": took, **probe.figures()}


def main() -> None:
    args = arguments(__doc__, docs=256, model="all-MiniLM-L6-v2", to="all-mpnet-base-v2")
    variants = ("whole_batch", "write_only")
    results: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        docs = passage_files(folder / "docs", args.docs)
        with embedops.open(folder / "template", model=args.model) as db:
            db.ingest([docs], collection="docs")
        for _ in range(args.runs):
            for variant in variants:
                results[variant].append(one_run(folder / "template", folder, variant,
                                                args.model, args.to, args.every))
    out: dict[str, Any] = {"docs": args.docs, "model": args.model, "to": args.to,
                           "runs": args.runs,
                           **gate_summary(results, "whole_batch", "write_only", "backfill_s")}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
