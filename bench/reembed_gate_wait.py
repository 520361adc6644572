"""How long another writer of the service waits for the write gate while the scheduled
stale re-embed job runs: the wait an HTTP upsert or the real-time worker's micro-batch
sees on top of its own work.

Ingests ``--docs`` passages of ``../shared/data/msmarco-5k`` (exits with status 2 when
the data is missing) with ``--model`` (default all-MiniLM-L6-v2), marks every document
as embedded by another model (the ledger's fingerprint), then runs the
``reembed-stale`` job in a thread while a probe thread takes the gate every
``--every`` seconds and times each wait. Two variants, alternating, ``--runs`` times
each, the documents marked stale again before every run:

* ``whole_run``: the job under the gate for its whole run (the baseline: how the job
  held it before);
* ``per_page``: the job as the service runs it (``JobContext.gate``): the gate a page
  of 64 documents, or a batch of a re-read file, at a time.

Prints JSON: per variant the job's seconds, and the probe's longest and 99th-percentile
wait in milliseconds (median, min and max over the runs), with the ratio of the
baseline's longest wait to the new one's.

    .venv/bin/python bench/reembed_gate_wait.py --docs 256 --runs 3
"""

from __future__ import annotations

import json
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

import embedops
from embedops.ingest.ordering import WriteGate
from embedops.jobs.kinds import KINDS, JobContext
from gate_probe import arguments, beside_a_job, gate_summary, passage_files  # (in bench/)


def one_run(db: Any, store_dir: Path, variant: str, every: float) -> dict[str, float]:
    with sqlite3.connect(store_dir / "ledger.db") as conn:  # stale: another model's
        conn.execute("UPDATE documents SET fingerprint = 'another-model'")
    gate = WriteGate(db.new_ledger_handle())
    if variant == "per_page":
        context = JobContext(db, db.new_ledger_handle(), gate.lock, None, gate)
    else:
        context = JobContext(db, db.new_ledger_handle())

    def job() -> None:
        if variant == "per_page":
            KINDS["reembed-stale"](context, {"collection": "default"})
        else:
            with gate.lock:
                KINDS["reembed-stale"](context, {"collection": "default"})

    return beside_a_job(job, gate.lock, every)


def main() -> None:
    args = arguments(__doc__, docs=256, model="all-MiniLM-L6-v2")
    variants = ("whole_run", "per_page")
    results: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as folder:
        docs = passage_files(Path(folder) / "docs", args.docs)
        with embedops.open(Path(folder) / "s", model=args.model) as db:
            db.ingest([docs])
            for _ in range(args.runs):
                for variant in variants:
                    results[variant].append(one_run(db, Path(folder) / "s", variant,
                                                    args.every))
    out: dict[str, Any] = {"docs": args.docs, "model": args.model, "runs": args.runs,
                           **gate_summary(results, "whole_run", "per_page", "job_s")}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
