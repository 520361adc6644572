"""A model migration end to end on a real corpus, timed phase by phase. Prints JSON.

Ingests a BEIR corpus with the live model, then migrates the collection's alias to the
target model: start (shadow + dual-write), backfill from the ledger's content (while a
reader measures search latency on the alias, compared with the same reader before the
migration), evaluate both sides on the corpus's labelled queries (the gate), swap,
rollback, swap again, finalize.

    .venv/bin/python bench/migration_demo.py \\
        --dataset ../shared/data/msmarco-5k --live all-MiniLM-L6-v2 --to all-mpnet-base-v2
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import embedops
from embedops.migrate import Migrations
from embedops.quality.beir import load_queries, resolve_dataset
from machine_info import machine  # (bench/)


def _timed(fn: Any, *args: Any, **kwargs: Any) -> tuple[Any, float]:
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, round(time.perf_counter() - started, 2)


def _latencies(store: Path, alias: str, queries: list[str], stop: threading.Event | None,
               limit: int) -> list[float]:
    """Search the alias with each query in turn (read-only client, as a reader process
    would), until ``stop`` is set or ``limit`` searches were made."""
    out: list[float] = []
    with embedops.open(store, read_only=True) as reader:
        i = 0
        while len(out) < limit and not (stop is not None and stop.is_set()):
            started = time.perf_counter()
            hits = reader.search(queries[i % len(queries)], collection=alias, k=10)
            out.append((time.perf_counter() - started) * 1000)
            if not hits:
                raise AssertionError("a search on the alias came back empty")
            i += 1
    return out


def _summary(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {"searches": len(ms), "p50_ms": round(statistics.median(ordered), 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dataset", default="docs-qa")
    parser.add_argument("--live", default="all-MiniLM-L6-v2")
    parser.add_argument("--to", default="all-mpnet-base-v2")
    parser.add_argument("--max-rate", type=float, default=None)
    parser.add_argument("--searches", type=int, default=300)
    args = parser.parse_args()
    dataset = resolve_dataset(args.dataset)
    queries = list(load_queries(dataset).values())
    alias = "corpus"
    report: dict[str, Any] = {"machine": machine(),
                              "dataset": str(dataset), "live": args.live, "to": args.to}
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        with embedops.open(store, model=args.live) as db:
            ingest, report["ingest_s"] = _timed(db.ingest, [dataset / "corpus.jsonl"],
                                                collection=alias, id_field="_id")
            report["chunks"] = ingest.chunks_embedded
            report["search_before"] = _summary(_latencies(store, alias, queries, None,
                                                          args.searches))
            migrations = Migrations(db)
            plan, report["plan_s"] = _timed(migrations.plan, alias, args.to,
                                            max_rate=args.max_rate)
            report["plan"] = plan["estimate"]
            _, report["start_s"] = _timed(migrations.start, alias, args.to,
                                          max_rate=args.max_rate)
            stop, during = threading.Event(), []

            def read() -> None:
                during.extend(_latencies(store, alias, queries, stop, 10**9))

            reader = threading.Thread(target=read)
            reader.start()
            _, report["backfill_s"] = _timed(migrations.backfill, alias)
            stop.set()
            reader.join()
            report["search_during_backfill"] = _summary(during)
            evaluation, report["evaluate_s"] = _timed(migrations.evaluate, alias, dataset)
            report["evaluation"] = {side: {k: evaluation[side][k] for k in (
                "collection", "model", "ndcg@10", "recall@10")} for side in ("live", "shadow")}
            report["gate_passed"] = evaluation["gate_passed"]
            force = not evaluation["gate_passed"]
            for step in ("swap", "rollback", "swap", "finalize"):
                extra = {"force": force} if step == "swap" else {}
                key = f"{step}_s" if f"{step}_s" not in report else f"{step}_again_s"
                _, report[key] = _timed(getattr(migrations, step), alias, **extra)
            report["search_after"] = _summary(_latencies(store, alias, queries, None,
                                                         args.searches))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
