"""`embedops status`: what a store holds and what is pending, at a glance."""

from __future__ import annotations

import time
from typing import Any

import typer
from rich.table import Table

from embedops.cli.context import (
    JsonOption,
    StoreOption,
    console,
    handle_errors,
    open_client,
    print_json,
    settings_from,
    wants_json,
)


def status(ctx: typer.Context, store: StoreOption = None, json_out: JsonOption = False) -> None:
    """Store, collections, aliases, dead letters, real-time queue depth and indexing lag."""
    settings = settings_from(ctx, store=store)
    from embedops.client import ledger_location
    from embedops.config import mask_url
    from embedops.store import local_directory

    directory = local_directory(settings.store)
    with handle_errors():
        ledger = mask_url(str(ledger_location(settings)))  # never print a password
    report: dict[str, Any] = {"store": mask_url(str(settings.store)), "ledger": ledger,
                              "exists": directory is None or directory.exists()}
    if report["exists"]:
        with handle_errors(), open_client(settings, read_only=True) as client:
            report.update(_describe(client.store, client.ledger))
            report.update(_health(client.store, client.ledger, settings))
    if wants_json(ctx, json_out):
        print_json(report)
        return
    if not report["exists"]:
        console.print(f"no store at {settings.store} yet: `embedops ingest PATH` creates it")
        return
    table = Table(title=f"embedops store {report['store']}")
    table.add_column("")
    table.add_column("value", justify="right")
    table.add_row("ledger", ledger)
    for key in ("collections", "points", "documents", "dead_letters", "queue_depth",
                "indexing_lag_s", "aliases"):
        table.add_row(key.replace("_", " "), str(report[key]))
    memory = report["memory"]
    table.add_row("index memory", f"{memory['index_bytes'] / 2**20:.1f} MiB of "
                  f"{memory['budget_bytes'] / 2**20:.0f} MiB ({memory['share']:.0%})")
    for name, run in report["jobs"].items():
        table.add_row(f"job {name}", f"{run['outcome']} at {run['last_run']} "
                      f"({run['seconds']} s)")
    for m in report["migrations"]:
        table.add_row(f"migration {m['alias']}", f"{m['phase']} "
                      f"{m['documents_done']}/{m['documents_total']}")
    for b in report["backfills"]:
        table.add_row(f"backfill {b['collection']}.{b['field']}",
                      f"{b['points_updated']}/{b['points_total']} points")
    console.print(table)
    for alert in report["alerts"]:
        colour = "red" if alert["level"] == "critical" else "yellow"
        console.print(f"[{colour}]{alert['level']}[/{colour}] {alert['reason']}",
                      highlight=False)


def _describe(vs: Any, ledger: Any) -> dict[str, Any]:
    collections = vs.list_collections()
    depth, oldest = ledger.queue_stats() if ledger else (0, None)
    # the age of the oldest queued write; nothing queued is no lag at all
    lag = 0.0 if oldest is None else max(0.0, time.time() - oldest)
    return {
        "collections": len(collections),
        "points": sum(c.points for c in collections),
        "documents": sum(ledger.document_count(c.name) for c in collections) if ledger else 0,
        "dead_letters": len(ledger.dead_letters()) if ledger else 0,
        "queue_depth": depth,
        "indexing_lag_s": round(lag, 3),
        "aliases": len(vs.list_aliases()),
        "by_collection": [{"name": c.name, "model": c.model, "points": c.points,
                           "dtype": c.dtype} for c in collections],
    }


def _health(store: Any, ledger: Any, settings: Any) -> dict[str, Any]:
    """Index memory against its budget, active alerts, the last job runs, and the
    migrations and field backfills in progress."""
    from embedops.ledger.migrations import ACTIVE_PHASES
    from embedops.migrate import Migrations
    from embedops.monitor.alerts import active_alerts
    from embedops.monitor.memory import memory_state

    memory = memory_state(store, settings)
    migrations = []
    if ledger is not None:
        summaries = Migrations.summaries(store, ledger)
        migrations = [m for m in summaries if m["phase"] in ACTIVE_PHASES]
    return {"memory": memory.to_dict(),
            "alerts": active_alerts(store, ledger, settings, memory),
            "jobs": ledger.last_job_runs() if ledger is not None else {},
            "migrations": migrations,
            "backfills": ledger.backfills(state="running") if ledger is not None else []}
