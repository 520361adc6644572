"""`embedops migrate plan|start|status|list|pause|resume|evaluate|swap|rollback|finalize`.

With no service on the store, a command runs the step itself (``start`` and ``resume``
run the backfill in the foreground with a progress bar, unless ``--detach``). While
``embedops serve`` owns the store, a command hands the step to the service through the
ledger and waits for its answer; the service runs backfills in the background.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from embedops.cli.context import (
    JsonOption,
    StoreOption,
    console,
    err_console,
    handle_errors,
    open_client,
    print_json,
    settings_from,
    wants_json,
)

if TYPE_CHECKING:  # (imported when a command runs)
    from embedops.config import Settings
from embedops.errors import MigrationError, StoreLocked

app = typer.Typer(help="Model migrations: shadow collection, backfill, dual-write, "
                  "evaluation gate, atomic alias swap, rollback window.",
                  no_args_is_help=True)
AliasArg = Annotated[str, typer.Argument(help="The alias (or collection) to migrate.")]
ToOption = Annotated[str, typer.Option("--to", help="The model to migrate to.")]
DtypeOption = Annotated[str | None, typer.Option(
    help="Storage dtype of the shadow (default: the live collection's).")]
RateOption = Annotated[float | None, typer.Option(
    "--max-rate", help="Backfill speed limit, chunks per second.", min=0.001)]
DetachOption = Annotated[bool, typer.Option(
    "--detach", help="Do not run the backfill here: leave it to `embedops serve` or a "
    "later `migrate resume`.")]
REQUEST_TIMEOUT_S = 120.0


def _step(ctx: typer.Context, store: str | None, alias: str, action: str,
          args: dict[str, Any], json_out: bool, show: Callable[[Any], None] | None = None,
          foreground_backfill: bool = False) -> Any:
    """Run ``action`` here, or hand it to the serving process that owns the store."""
    from embedops.migrate.requests import apply_request

    settings = settings_from(ctx, store=store)
    with handle_errors():
        try:
            with open_client(settings) as client:
                result = apply_request(client, alias, action, args)
                if foreground_backfill and result.get("phase") == "backfilling":
                    result = _backfill_foreground(client, alias)
        except StoreLocked:
            result = _through_service(settings, alias, action, args)
    if wants_json(ctx, json_out):
        print_json(result)
    elif show is not None:
        show(result)
    else:
        _show_status(result)
    return result


def _through_service(settings: Settings, alias: str, action: str,
                     args: dict[str, Any]) -> Any:
    from embedops.client import ledger_location
    from embedops.ledger.postgres import open_ledger

    ledger = open_ledger(ledger_location(settings))
    try:
        request = ledger.request_migration_action(alias, action, args)
        err_console.print(f"the service owns the store: {action} handed to it…",
                          highlight=False)
        deadline = time.monotonic() + REQUEST_TIMEOUT_S
        while time.monotonic() < deadline:
            done, result, error = ledger.migration_request(request)
            if done:
                if error:
                    raise MigrationError(error)
                return result
            time.sleep(0.2)
    finally:
        ledger.close()
    raise MigrationError(f"the service did not answer the {action} request within "
                         f"{REQUEST_TIMEOUT_S:.0f} s; is `embedops serve` running?")


def _backfill_foreground(client: Any, alias: str) -> dict[str, Any]:
    from embedops.migrate import Migrations

    migrations = Migrations(client)
    with Progress(TextColumn("[bold]backfill {task.fields[alias]}"), BarColumn(),
                  MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                  TimeRemainingColumn(), console=err_console, transient=False) as bar:
        task = bar.add_task("backfill", total=None, alias=alias, rate="")
        started, chunks = time.perf_counter(), 0

        def progress(done: int, total: int, embedded: int) -> None:
            nonlocal chunks
            chunks += embedded
            rate = chunks / max(time.perf_counter() - started, 1e-9)
            bar.update(task, completed=done, total=total, rate=f"{rate:.1f} chunks/s")

        migrations.backfill(alias, progress=progress)
    return migrations.status(alias)


def _show_status(result: Any) -> None:
    if not isinstance(result, dict):
        console.print(result)
        return
    table = Table(title=f"migration of {result.get('alias', '')}")
    table.add_column("")
    table.add_column("value")
    for key, value in result.items():
        if key not in ("history", "evaluation", "alias"):
            table.add_row(key, str(value))
    console.print(table)


@app.command("plan")
def plan(ctx: typer.Context, alias: AliasArg, to: ToOption, dtype: DtypeOption = None,
         max_rate: RateOption = None, store: StoreOption = None,
         json_out: JsonOption = False) -> None:
    """What a migration would create and cost: shadow collection, memory and disk, the
    re-embed time at the target model's speed measured here, the API cost."""
    def show(result: dict[str, Any]) -> None:
        table = Table(title=f"plan: {alias} → {to}")
        table.add_column("")
        table.add_column("value")
        for part in ("live", "shadow", "estimate"):
            for key, value in result[part].items():
                table.add_row(f"{part}.{key}", str(value))
        console.print(table)

    _step(ctx, store, alias, "plan", {"to": to, "dtype": dtype, "max_rate": max_rate},
          json_out, show)


@app.command("start")
def start(ctx: typer.Context, alias: AliasArg, to: ToOption, dtype: DtypeOption = None,
          max_rate: RateOption = None, detach: DetachOption = False,
          store: StoreOption = None, json_out: JsonOption = False) -> None:
    """Create the shadow collection and turn dual-write on, then backfill it from the
    ledger's stored content (here, with a progress bar, unless --detach or a service
    owns the store)."""
    _step(ctx, store, alias, "start", {"to": to, "dtype": dtype, "max_rate": max_rate},
          json_out, foreground_backfill=not detach)


@app.command("status")
def status(ctx: typer.Context, alias: AliasArg, store: StoreOption = None,
           json_out: JsonOption = False) -> None:
    """Phase, documents done / total, rate, ETA, shadow lag, dead letters, evaluation."""
    from embedops.migrate import Migrations

    settings = settings_from(ctx, store=store)
    with handle_errors(), open_client(settings, read_only=True) as client:
        if client.ledger is None:
            raise MigrationError(f"no migration of {alias!r}: nothing was ingested yet")
        report = Migrations(client).status(alias)
    if wants_json(ctx, json_out):
        print_json(report)
    else:
        _show_status(report)


@app.command("list")
def list_(ctx: typer.Context, store: StoreOption = None, json_out: JsonOption = False) -> None:
    """Every migration and its phase."""
    from embedops.migrate import Migrations

    settings = settings_from(ctx, store=store)
    with handle_errors(), open_client(settings, read_only=True) as client:
        rows: list[dict[str, Any]] = []
        if client.ledger is not None:
            rows = Migrations(client).list()
    if wants_json(ctx, json_out):
        print_json(rows)
        return
    table = Table(title=f"{len(rows)} migrations")
    for column in ("alias", "phase", "live", "shadow", "model", "done", "gate"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["alias"], r["phase"], r["live"], r["shadow"], r["model"],
                      f"{r['documents_done']}/{r['documents_total']}", str(r["gate_passed"]))
    console.print(table)


@app.command("pause")
def pause(ctx: typer.Context, alias: AliasArg, store: StoreOption = None,
          json_out: JsonOption = False) -> None:
    """Stop the backfill after its current batch; dual-write goes on."""
    _step(ctx, store, alias, "pause", {}, json_out)


@app.command("resume")
def resume(ctx: typer.Context, alias: AliasArg, detach: DetachOption = False,
           max_rate: RateOption = None, store: StoreOption = None,
           json_out: JsonOption = False) -> None:
    """Continue the backfill from its last committed batch (``--max-rate`` sets a new
    speed limit)."""
    _step(ctx, store, alias, "resume", {"max_rate": max_rate}, json_out,
          foreground_backfill=not detach)


@app.command("evaluate")
def evaluate(ctx: typer.Context, alias: AliasArg,
             dataset: Annotated[Path, typer.Option(
                 help="BEIR directory (or a shipped dataset name) of labelled queries.")],
             split: Annotated[str, typer.Option(help="qrels split.")] = "test",
             store: StoreOption = None, json_out: JsonOption = False) -> None:
    """The same labelled queries against live and shadow (each embedding queries with its
    own model): recall@10 and nDCG@10 side by side, and the gate. Exit 1 if it fails."""
    def show(report: dict[str, Any]) -> None:
        table = Table(title=f"evaluate {alias} on {report['dataset']}")
        for column in ("side", "collection", "model", "recall@10", "ndcg@10"):
            table.add_column(column)
        for side in ("live", "shadow"):
            r = report[side]
            table.add_row(side, r["collection"], r["model"], f"{r['recall@10']:.4f}",
                          f"{r['ndcg@10']:.4f}")
        console.print(table)
        console.print("gate: " + ("[green]passed[/green]" if report["gate_passed"]
                                  else "[red]failed[/red]"))

    report = _step(ctx, store, alias, "evaluate", {"dataset": str(dataset), "split": split},
                   json_out, show)
    if not report["gate_passed"]:
        raise typer.Exit(1)


@app.command("swap")
def swap(ctx: typer.Context, alias: AliasArg,
         force: Annotated[bool, typer.Option(
             "--force", help="Swap although the gate did not pass (recorded).")] = False,
         store: StoreOption = None, json_out: JsonOption = False) -> None:
    """Point the alias at the shadow atomically; the old collection stays for the
    rollback window, kept current by dual-write."""
    _step(ctx, store, alias, "swap", {"force": force}, json_out)


@app.command("rollback")
def rollback(ctx: typer.Context, alias: AliasArg, store: StoreOption = None,
             json_out: JsonOption = False) -> None:
    """Point the alias back at the previous collection at once."""
    _step(ctx, store, alias, "rollback", {}, json_out)


@app.command("finalize")
def finalize(ctx: typer.Context, alias: AliasArg, store: StoreOption = None,
             json_out: JsonOption = False) -> None:
    """Drop the collection the alias no longer points at; dual-write ends."""
    _step(ctx, store, alias, "finalize", {}, json_out)
