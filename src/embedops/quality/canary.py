"""Canaries: a labelled query set run against an alias, recall@10 against a baseline.

A run queries the collection the canary's name points at *now*, with that collection's
model in the query role (as ``Client.search`` does), maps chunk hits to documents and
scores them with the same trec_eval code as ``embedops eval``. The first run becomes the
baseline. A run whose recall@10 falls more than ``canary_alert_drop_points`` below the
baseline's is an alert: an error log line, the Prometheus gauges, and a POST to
``alert_webhook``.

``run_canary`` is the one entry point for the CLI and for a scheduler.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from embedops.alerts import raise_alert
from embedops.client import Client
from embedops.embedders import Embedder
from embedops.errors import ConfigError, InputRejected, StoreError
from embedops.ledger import Ledger
from embedops.ledger.canaries import CanaryQuery, CanaryRun
from embedops.metrics import Metrics
from embedops.quality.canary_sets import load_query_set
from embedops.quality.ir_metrics import evaluate
from embedops.quality.synthetic import synthetic_queries
from embedops.retrieval import Searcher, doc_scores
from embedops.store.protocol import VectorStore

# recall@10 and nDCG@10 need each query's top 10 documents. A document scores its best
# chunk, so the documents rank in the order they first appear among the chunk hits: the
# top 10 are exact once the hits hold 10 distinct documents. Searches start shallow and
# go deeper only for the queries whose hits hold fewer.
TOP_DOCUMENTS = 10
FIRST_DEPTH, MAX_DEPTH = 30, 1000


def create_canary(store: VectorStore, ledger: Ledger, name: str, collection: str, *,
                  source: Path | None = None, synthetic: int | None = None,
                  split: str = "test", seed: int = 0, exact: bool = False,
                  replace: bool = False) -> dict[str, Any]:
    """Keep canary ``name`` in the ledger, querying ``collection`` (a collection or an
    alias, resolved at every run). Queries come from ``source`` (a BEIR directory or a
    JSONL file) or, with ``synthetic=N``, from N of the collection's own documents.
    ``exact``: its runs search exactly, past the ANN index (an integrity check that
    index settings and search effort do not move).

    Raises ``ConfigError`` unless exactly one of the two is given, ``InputRejected``
    when no query is usable or none of the relevant ids is a document the ledger knows
    in the collection, ``CanaryExists`` for a taken name without ``replace``."""
    if (source is None) == (synthetic is None):
        raise ConfigError("give exactly one of a query set (--from PATH) and --synthetic N")
    resolved = store.get_collection(collection).name
    if synthetic is not None:
        if synthetic < 1:
            raise ConfigError("--synthetic needs a positive number of queries")
        queries = synthetic_queries(ledger, resolved, synthetic, seed)
        origin = f"synthetic: {synthetic} queries, seed {seed}, from {resolved}"
        if not queries:
            raise InputRejected("empty", f"collection {resolved!r} has no text document "
                                "in the ledger to derive queries from")
    else:
        assert source is not None
        queries = load_query_set(source, split)
        origin = str(source.resolve())
    unknown = _unknown_relevant(ledger, resolved, queries)
    ledger.create_canary(name, collection, origin, queries, synthetic=synthetic is not None,
                         exact=exact, replace=replace)
    return {"canary": name, "target": collection, "collection": resolved,
            "queries": len(queries), "synthetic": synthetic is not None, "exact": exact,
            "source": origin, "relevant_unknown": unknown}


def _unknown_relevant(ledger: Ledger, collection: str, queries: list[CanaryQuery]) -> int:
    """How many relevant ids the ledger does not know in ``collection``. All of them
    (when it knows some documents) means the ids do not match: refused."""
    wanted = {d for q in queries for d, grade in q.relevant.items() if grade > 0}
    known = set(ledger.documents(collection, wanted))
    if not known and ledger.document_count(collection):
        example = next(iter(sorted(wanted)))
        raise InputRejected("unknown_ids", f"none of the relevant ids (e.g. {example!r}) is a "
                            f"document of {collection!r}: were the documents ingested with "
                            "these ids (--id-field)?")
    return len(wanted - known)


def run_canary(client: Client, name: str, *, ledger: Ledger | None = None,
               embedder: Embedder | None = None, metrics: Metrics | None = None,
               threshold_points: float | None = None, notify: bool = True) -> dict[str, Any]:
    """Run canary ``name`` once, keep the run in the ledger and return it: ``recall@10``,
    ``ndcg@10``, ``baseline_recall@10``, ``drop_points``, ``alert`` and what it ran
    against (collection, model fingerprint, dtype, index parameters).

    ``ledger``: where the canary lives (default the client's; a writable handle when the
    client is read-only). ``embedder``: the query model, default the collection's own; it
    must carry the collection's fingerprint. ``metrics``: gauges to set. ``notify``:
    log and POST an alert when the run is one. Raises ``CanaryNotFound``,
    ``CollectionNotFound`` and ``FingerprintMismatch``."""
    ledger = ledger if ledger is not None else client.ledger
    if ledger is None:
        raise StoreError("no ledger: nothing was ever written to this store")
    canary = ledger.canary(name)
    queries = ledger.canary_queries(name)
    info = client.store.get_collection(canary.collection)  # the alias's target now
    searcher = Searcher(client.store, info, embedder or client.embedder_for(info))
    ran_at = datetime.now(UTC).isoformat(timespec="milliseconds")
    scores, seconds = _measure(searcher, queries, canary.exact)
    baseline = (ledger.canary_run(name, canary.baseline_run_id)
                if canary.baseline_run_id is not None else None)
    base_recall = baseline.recall if baseline is not None else scores["recall@10"]
    drop = (base_recall - scores["recall@10"]) * 100
    threshold = (client.settings.canary_alert_drop_points if threshold_points is None
                 else threshold_points)
    record = {
        "ran_at": ran_at, "collection": info.name, "model": info.model,
        "fingerprint": info.fingerprint, "query_fingerprint": searcher.embedder.info.fingerprint,
        "dtype": info.dtype, "metric": info.metric, "index_params": dict(info.index_params),
        "exact": canary.exact, "points": info.points, "queries": len(queries),
        "recall": scores["recall@10"], "ndcg": scores["ndcg@10"], "metrics": scores,
        "baseline_recall": base_recall, "drop_points": drop, "threshold_points": threshold,
        "alert": drop > threshold + 1e-9, "seconds": seconds,
    }
    run_id = ledger.record_canary_run(name, record)
    result = _result(ledger.canary_run(name, run_id), canary.collection,
                     baseline.run_id if baseline is not None else run_id)
    if metrics is not None:
        set_gauges(metrics, result)
        if result["alert"]:
            metrics.alerts.labels("canary").inc()
    result["webhook"] = _alert(client, result) if result["alert"] and notify else None
    return result


def _measure(searcher: Searcher, queries: list[CanaryQuery],
             exact: bool) -> tuple[dict[str, float], float]:
    """recall@10, nDCG@10 and MRR@10 of ``queries``, and the seconds they took."""
    started = time.perf_counter()
    ranked = top_documents(searcher, [q.text for q in queries], exact=exact)
    run = {q.query_id: docs for q, docs in zip(queries, ranked, strict=True)}
    scores = evaluate({q.query_id: q.relevant for q in queries}, run)
    # recall@100 would need 100 documents per query: only the @10 metrics are kept
    return ({k: v for k, v in scores.items() if k.endswith("@10")},
            time.perf_counter() - started)


def top_documents(searcher: Searcher, texts: list[str], n: int = TOP_DOCUMENTS,
                  exact: bool = False) -> list[dict[str, float]]:
    """The ``n`` best documents (id -> score) of each query, embedded in the query role
    (``exact``: by exact search rather than the ANN index)."""
    vectors = searcher.embedder.embed(texts, "query")
    out: list[dict[str, float]] = [{} for _ in texts]
    pending, depth = list(range(len(texts))), FIRST_DEPTH
    while pending:
        hits = searcher.store.search(searcher.info.name, vectors[pending], k=depth,
                                     exact=exact)
        deeper = []
        for i, chunk_hits in zip(pending, hits, strict=True):
            scores = doc_scores(chunk_hits)
            if len(scores) < n and len(chunk_hits) == depth < MAX_DEPTH:
                deeper.append(i)
            else:
                out[i] = dict(sorted(scores.items(), key=lambda kv: -kv[1])[:n])
        pending, depth = deeper, min(depth * 4, MAX_DEPTH)
    return out


def _result(run: CanaryRun | None, target: str, baseline_run_id: int) -> dict[str, Any]:
    """The run as JSON: the verdict first, then what it ran against."""
    assert run is not None
    return {
        "canary": run.canary, "run_id": run.run_id, "ran_at": run.ran_at,
        "recall@10": round(run.recall, 4), "ndcg@10": round(run.ndcg, 4),
        "baseline_recall@10": round(run.baseline_recall, 4),
        "drop_points": round(run.drop_points, 2), "threshold_points": run.threshold_points,
        "alert": run.alert, "baseline_run_id": baseline_run_id, "target": target,
        "collection": run.collection, "model": run.model, "fingerprint": run.fingerprint,
        "query_fingerprint": run.query_fingerprint, "dtype": run.dtype, "metric": run.metric,
        "index_params": run.index_params, "exact": run.exact, "points": run.points,
        "queries": run.queries,
        "metrics": {k: round(v, 4) for k, v in run.metrics.items()},
        "seconds": round(run.seconds, 3),
    }


def _alert(client: Client, result: dict[str, Any]) -> str:
    message = (f"canary {result['canary']} on {result['collection']}: recall@10 "
               f"{result['recall@10']:.4f} is {result['drop_points']:.2f} points below its "
               f"baseline {result['baseline_recall@10']:.4f} (threshold "
               f"{result['threshold_points']:g})")
    body = {key: result[key] for key in (
        "canary", "target", "collection", "model", "fingerprint", "recall@10", "ndcg@10",
        "baseline_recall@10", "drop_points", "threshold_points", "run_id", "baseline_run_id",
        "queries")}
    body["time"] = result["ran_at"]
    return raise_alert(client.settings, "canary", message, body)


def set_gauges(metrics: Metrics, run: dict[str, Any]) -> None:
    """Set the canary gauges from one run (a ``run_canary`` result or a history row)."""
    label = run["canary"]
    metrics.canary_recall.labels(label).set(run["recall@10"])
    metrics.canary_ndcg.labels(label).set(run["ndcg@10"])
    metrics.canary_baseline_recall.labels(label).set(run["baseline_recall@10"])
    metrics.canary_drop_points.labels(label).set(run["drop_points"])
    metrics.canary_alert.labels(label).set(1.0 if run["alert"] else 0.0)


def publish_canary_metrics(metrics: Metrics, ledger: Ledger) -> None:
    """Set the gauges of every canary from its latest run (for a process that did not
    run them itself, such as the service after a restart)."""
    for canary in ledger.canaries():
        latest = ledger.canary_runs(canary.name, limit=1)
        if latest:
            set_gauges(metrics, latest[0].to_dict())


def set_baseline(ledger: Ledger, name: str, run_id: int | None = None,
                 clear: bool = False) -> dict[str, Any]:
    """Make run ``run_id`` (default: the latest run) the baseline; ``clear``: the next run
    sets it. Raises ``CanaryNotFound``, and ``InputRejected`` for an unknown run."""
    ledger.canary(name)
    if clear:
        ledger.set_canary_baseline(name, None)
        return {"canary": name, "baseline_run_id": None, "baseline_recall@10": None}
    if run_id is None:
        latest = ledger.canary_runs(name, limit=1)
        if not latest:
            raise InputRejected("no_runs", f"canary {name!r} has not run yet: its first run "
                                "sets the baseline")
        run_id = latest[0].run_id
    run = ledger.canary_run(name, run_id)
    if run is None:
        raise InputRejected("unknown_run", f"canary {name!r} has no run {run_id}")
    ledger.set_canary_baseline(name, run_id)
    return {"canary": name, "baseline_run_id": run_id,
            "baseline_recall@10": round(run.recall, 4), "collection": run.collection,
            "ran_at": run.ran_at}


def canary_history(ledger: Ledger, name: str, limit: int | None = None) -> dict[str, Any]:
    """The canary and its runs, oldest first (the latest ``limit``): the trend."""
    canary = ledger.canary(name)
    runs = []
    for run in ledger.canary_runs(name, limit):
        row = run.to_dict()
        for key in ("recall@10", "ndcg@10", "baseline_recall@10"):
            row[key] = round(row[key], 4)
        row.update(drop_points=round(run.drop_points, 2), seconds=round(run.seconds, 3))
        row.pop("metrics")
        runs.append(row)
    return {**canary.to_dict(), "canary": canary.name, "runs": runs}
