"""`embedops canary …`: labelled query sets run against an alias, recall@10 against a
baseline, an alert (exit 1, an error line, the webhook) past the threshold.

The store is opened read-only (a canary works while `embedops serve` owns the store);
the canary's queries and runs go to the ledger through a handle of its own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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

if TYPE_CHECKING:
    from embedops.client import Client
    from embedops.ledger import Ledger

app = typer.Typer(help="Canaries: a labelled query set run against an alias; recall@10 "
                  "against a baseline, an alert past the threshold.", no_args_is_help=True)
NameArg = Annotated[str, typer.Argument(help="The canary's name.")]
_SPARK = "▁▂▃▄▅▆▇█"


@app.callback()
def canary_group(ctx: typer.Context, json_out: JsonOption = False) -> None:
    """Canaries: labelled query sets, recall@10 against a baseline, alerts."""
    root = ctx.find_root()
    if json_out and isinstance(root.obj, dict):
        root.obj["json"] = True


@contextmanager
def _session(ctx: typer.Context, store: str | None) -> Iterator[tuple[Client, Ledger]]:
    """A read-only client and a writable ledger handle, both closed afterwards."""
    from embedops.client import ledger_location
    from embedops.ledger.postgres import open_ledger

    settings = settings_from(ctx, store=store)
    with handle_errors(), open_client(settings, read_only=True) as client, \
            closing(open_ledger(ledger_location(settings))) as ledger:
        yield client, ledger


@app.command("create")
def create(
    ctx: typer.Context,
    name: NameArg,
    collection: Annotated[str, typer.Option(help="Collection or alias the canary queries "
                                            "(an alias is resolved at every run).")],
    source: Annotated[Path | None, typer.Option(
        "--from", help="A BEIR directory (queries.jsonl, qrels/<split>.tsv) or a JSONL file "
        'of {"query": ..., "relevant_ids": [...]} lines.')] = None,
    synthetic: Annotated[int | None, typer.Option(
        help="Derive N queries from the collection's own documents (a title or a "
        "sentence; the document is the relevant one).", min=1)] = None,
    split: Annotated[str, typer.Option(help="BEIR qrels split.")] = "test",
    seed: Annotated[int, typer.Option(help="Seed of the synthetic sample.")] = 0,
    exact: Annotated[bool, typer.Option(
        help="Search exactly, past the ANN index: an integrity check that index settings "
        "and search effort do not move (slower on large collections).")] = False,
    replace: Annotated[bool, typer.Option(
        help="Replace a canary of that name (its runs and baseline too).")] = False,
    store: StoreOption = None, json_out: JsonOption = False,
) -> None:
    """Create a canary; its queries and relevant ids are kept in the ledger."""
    from embedops.quality.canary import create_canary

    with _session(ctx, store) as (client, ledger):
        result = create_canary(client.store, ledger, name, collection, source=source,
                               synthetic=synthetic, split=split, seed=seed, exact=exact,
                               replace=replace)
    if wants_json(ctx, json_out):
        print_json(result)
        return
    console.print(f"canary {name}: {result['queries']} queries on {collection} "
                  f"({'synthetic' if result['synthetic'] else result['source']})")
    if result["relevant_unknown"]:
        console.print(f"[yellow]{result['relevant_unknown']} relevant ids are not documents "
                      f"of {result['collection']}[/yellow]")


@app.command("run")
def run(ctx: typer.Context, name: NameArg, store: StoreOption = None,
        json_out: JsonOption = False) -> None:
    """Run the canary: recall@10 and nDCG@10 against its baseline.

    The first run sets the baseline. Exit 1 when recall@10 fell more than
    canary_alert_drop_points below it, after the alert was logged and POSTed to
    alert_webhook."""
    from embedops.quality.canary import run_canary

    with _session(ctx, store) as (client, ledger):
        result = run_canary(client, name, ledger=ledger)
    if wants_json(ctx, json_out):
        print_json(result)
    else:
        state = "[red]ALERT[/red]" if result["alert"] else "[green]ok[/green]"
        console.print(f"canary {name} on {result['collection']}: {state} recall@10 "
                      f"{result['recall@10']:.4f} (baseline {result['baseline_recall@10']:.4f}"
                      f", drop {result['drop_points']:.2f} points), nDCG@10 "
                      f"{result['ndcg@10']:.4f}, {result['queries']} queries in "
                      f"{result['seconds']:.2f} s")
    if result["alert"]:
        raise typer.Exit(1)


@app.command("baseline")
def baseline(
    ctx: typer.Context, name: NameArg,
    run_id: Annotated[int | None, typer.Option(
        "--run", help="The run to compare with (default: the latest).")] = None,
    clear: Annotated[bool, typer.Option(help="No baseline: the next run sets it.")] = False,
    store: StoreOption = None, json_out: JsonOption = False,
) -> None:
    """Reset the baseline to the latest run (or --run ID); --clear: the next run."""
    from embedops.quality.canary import set_baseline

    with _session(ctx, store) as (_client, ledger):
        result = set_baseline(ledger, name, run_id, clear)
    if wants_json(ctx, json_out):
        print_json(result)
    elif result["baseline_run_id"] is None:
        console.print(f"canary {name}: no baseline; the next run sets it")
    else:
        console.print(f"canary {name}: baseline is run {result['baseline_run_id']} "
                      f"(recall@10 {result['baseline_recall@10']:.4f})")


@app.command("history")
def history(ctx: typer.Context, name: NameArg,
            limit: Annotated[int | None, typer.Option(help="Only the latest N runs.",
                                                      min=1)] = None,
            store: StoreOption = None, json_out: JsonOption = False) -> None:
    """The canary's runs, oldest first: recall@10, nDCG@10, drop and alerts over time."""
    from embedops.quality.canary import canary_history

    with _session(ctx, store) as (_client, ledger):
        result = canary_history(ledger, name, limit)
    if wants_json(ctx, json_out):
        print_json(result)
    else:
        _history_table(result)


def _history_table(result: dict[str, Any]) -> None:
    runs = result["runs"]
    table = Table(title=f"canary {result['canary']} on {result['collection']}: recall@10 "
                  f"{_sparkline([r['recall@10'] for r in runs])}")
    for column in ("run", "time", "collection", "model", "recall@10", "nDCG@10", "drop",
                   "alert"):
        table.add_column(column)
    for r in runs:
        table.add_row(f"{r['run_id']}{' (baseline)' if r['is_baseline'] else ''}",
                      r["ran_at"], r["collection"], r["model"], f"{r['recall@10']:.4f}",
                      f"{r['ndcg@10']:.4f}", f"{r['drop_points']:.2f}",
                      "[red]yes[/red]" if r["alert"] else "no")
    console.print(table)


def _sparkline(values: list[float]) -> str:
    if not values:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    return "".join(_SPARK[round((v - low) / span * (len(_SPARK) - 1))] for v in values)


@app.command("list")
def list_(ctx: typer.Context, store: StoreOption = None, json_out: JsonOption = False) -> None:
    """Every canary: the name it queries, its queries, baseline and latest run."""
    with _session(ctx, store) as (_client, ledger):
        rows = []
        for c in ledger.canaries():
            latest = ledger.canary_runs(c.name, limit=1)
            rows.append({**c.to_dict(), "latest": latest[0].to_dict() if latest else None})
    if wants_json(ctx, json_out):
        print_json(rows)
        return
    table = Table(title="canaries")
    for column in ("name", "collection", "queries", "synthetic", "exact",
                   "latest recall@10", "alert"):
        table.add_column(column)
    for r in rows:
        latest = r["latest"]
        table.add_row(r["name"], r["collection"], str(r["queries"]), str(r["synthetic"]),
                      str(r["exact"]), f"{latest['recall@10']:.4f}" if latest else "-",
                      ("yes" if latest["alert"] else "no") if latest else "-")
    console.print(table)


@app.command("delete")
def delete(ctx: typer.Context, name: NameArg, store: StoreOption = None,
           json_out: JsonOption = False) -> None:
    """Delete a canary, its queries and its runs."""
    with _session(ctx, store) as (_client, ledger):
        ledger.delete_canary(name)
    if wants_json(ctx, json_out):
        print_json({"canary": name, "deleted": True})
    else:
        console.print(f"deleted canary {name}")
