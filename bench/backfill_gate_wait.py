"""How long another writer of the service waits for the write gate while the scheduled
``backfill`` job sets a payload field on every point of a collection: the wait an HTTP
upsert or the real-time worker's micro-batch sees on top of its own work.

Writes ``--n`` synthetic points (``--dim`` dimensions, a small payload each) into an
embedded store, then runs the ``backfill`` job in a thread while a probe thread takes
the gate every ``--every`` seconds and times each wait. Two variants, alternating,
``--runs`` times each, the field removed again before every run:

* ``whole_run``: the job under the gate for its whole run, one update statement (the
  baseline: how the job ran before);
* ``per_page``: the job as the service runs it (``JobContext.gate``): the points read
  with no lock held, the gate held for one page's update at a time
  (``freshness.fields.paged_update``).

Prints JSON: per variant the job's seconds, and the probe's longest and 99th-percentile
wait in milliseconds (median, min and max over the runs), with the ratio of the
baseline's longest wait to the new one's.

    .venv/bin/python bench/backfill_gate_wait.py --n 200000 --runs 3
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

import embedops
from embedops.ingest.ordering import WriteGate
from embedops.jobs.kinds import KINDS, JobContext
from gate_probe import arguments, beside_a_job, gate_summary  # (in bench/)

ARGS = {"collection": "c", "field": "lang", "default": "en"}


def one_run(db: Any, variant: str, every: float) -> dict[str, float]:
    db.store.update_payload("c", {"lang": None}, filter={"field": "lang", "exists": True})
    gate = WriteGate(db.new_ledger_handle())

    def job() -> None:
        if variant == "per_page":
            KINDS["backfill"](JobContext(db, db.new_ledger_handle(), gate.lock, None, gate),
                              ARGS)
        else:
            with gate.lock:
                KINDS["backfill"](JobContext(db, db.new_ledger_handle()), ARGS)

    figures = beside_a_job(job, gate.lock, every)
    assert db.store.count("c", {"field": "lang", "exists": False}) == 0
    return figures


def main() -> None:
    args = arguments(__doc__, n=200_000, dim=16)
    variants = ("whole_run", "per_page")
    results: dict[str, list[dict[str, float]]] = {v: [] for v in variants}
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as folder, embedops.open(Path(folder) / "s") as db:
        db.store.create_collection("c", args.dim, fingerprint="fp")
        for at in range(0, args.n, 10_000):
            count = min(10_000, args.n - at)
            db.store.upsert("c", [f"p{i}" for i in range(at, at + count)],
                            rng.standard_normal((count, args.dim)).astype("float32"),
                            [{"doc": i, "title": f"passage {i}"}
                             for i in range(at, at + count)], fingerprint="fp")
        for _ in range(args.runs):
            for variant in variants:
                results[variant].append(one_run(db, variant, args.every))
    out: dict[str, Any] = {"points": args.n, "dim": args.dim, "runs": args.runs,
                           **gate_summary(results, "whole_run", "per_page", "job_s")}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
