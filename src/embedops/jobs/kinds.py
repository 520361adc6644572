"""The kinds of scheduled job and what each runs: the same functions as the CLI command
of the same purpose (``reembed --stale``, ``canary run``, ``backfill``, ``stale``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from embedops.client import Client
from embedops.errors import CollectionChanged, ConfigError
from embedops.ledger import Ledger

if TYPE_CHECKING:
    from embedops.ingest.ordering import WriteGate


@dataclass
class JobContext:
    """What a job runs against: a read-write client, a ledger handle for this thread,
    and the lock that orders its writes against the service's other writers. In the
    service that lock is ``gate.lock``, and ``gate`` is the service's write gate, which
    the stale re-embed job's batch runs take a batch at a time."""

    client: Client
    ledger: Ledger
    write_lock: Any = field(default_factory=contextlib.nullcontext)
    metrics: Any = None
    gate: WriteGate | None = None


class JobFailed(Exception):
    """A job ran and reports a failure it found (a canary alert): outcome ``alert``."""


def _collection(args: dict[str, Any]) -> str:
    return str(args.get("collection", "default"))


def reembed_stale(ctx: JobContext, args: dict[str, Any]) -> str:
    """Re-embed the stale documents of a collection. The write lock is held a batch (or
    a page of documents) at a time, as the service's batch path holds it, not for the
    whole run: the real-time writes queued behind it wait for one batch's embedding, not
    for every stale document's."""
    from embedops.freshness import reembed as ops
    from embedops.freshness.stale import find_stale

    asked = _collection(args)
    name = ctx.client.store.resolve(asked)
    report = find_stale(ctx.client.store, ctx.ledger, name)  # (reads only)
    if ctx.gate is not None:  # (each batch admitted by the gate: ingest/ordering.py)
        runs: list[Any] = []  # (the first attempt's re-embedded documents count too)
        try:
            ops.reread_files(ctx.client, name, report.files, gate=ctx.gate, into=runs)
        except CollectionChanged:
            now = ctx.client.store.resolve(asked)  # (CollectionNotFound when dropped)
            if now == name:  # dropped and made again: another collection, not the job's
                raise
            name = now  # renamed behind its alias (``migrate start``): once more there
            ops.reread_files(ctx.client, name, report.files, gate=ctx.gate, into=runs)
    else:
        with ctx.write_lock:
            runs = ops.reread_files(ctx.client, name, report.files)
    if report.by_reason["model_changed"]:
        runs.append(ops.reembed_documents(ctx.client, name,
                                          sorted(report.by_reason["model_changed"]),
                                          lock=ctx.write_lock, skip_missing=True))
    summary = ops.merge(runs, name)
    return (f"{len(report.stale)} stale; re-embedded {summary.documents_changed} documents "
            f"({summary.chunks_embedded} chunks)")


def stale(ctx: JobContext, args: dict[str, Any]) -> str:
    from embedops.freshness.stale import find_stale

    report = find_stale(ctx.client.store, ctx.ledger, _collection(args)).to_dict()
    return ", ".join(f"{k} {report[k]}" for k in ("stale_documents", "content_changed",
                                                   "model_changed", "source_missing"))


def canary(ctx: JobContext, args: dict[str, Any]) -> str:
    from embedops.quality.canary import run_canary

    if "name" not in args:
        raise ConfigError("a canary job needs args.name")
    result = run_canary(ctx.client, str(args["name"]), ledger=ctx.ledger,
                        metrics=ctx.metrics)
    detail = (f"recall@10 {result['recall@10']:.4f} (baseline "
              f"{result['baseline_recall@10']:.4f}, drop {result['drop_points']:.2f} points)")
    if result["alert"]:
        raise JobFailed(detail)
    return detail


def backfill(ctx: JobContext, args: dict[str, Any]) -> str:
    from embedops.freshness.fields import backfill_field

    for key in ("field", "default"):
        if key not in args:
            raise ConfigError(f"a backfill job needs args.{key}")
    # in the service, the write lock is held a page at a time (``paged_update``)
    result = backfill_field(ctx.client.store, ctx.ledger, _collection(args),
                            str(args["field"]), args["default"], args.get("where"),
                            lock=ctx.write_lock if ctx.gate is not None else None)
    return f"{result['points_updated']} points updated, 0 embedding calls"


KINDS: dict[str, Callable[[JobContext, dict[str, Any]], str]] = {
    "reembed-stale": reembed_stale, "stale": stale, "canary": canary, "backfill": backfill,
}
