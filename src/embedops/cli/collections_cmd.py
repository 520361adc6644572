"""`embedops collections`, `embedops verify` and `embedops store rebuild`."""

from __future__ import annotations

from typing import Annotated, Any

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

store_app = typer.Typer(help="Maintenance of the embedded store.", no_args_is_help=True)


def collections(ctx: typer.Context, store: StoreOption = None,
                json_out: JsonOption = False) -> None:
    """List collections: points, documents, model, dim, dtype, index memory."""
    settings = settings_from(ctx, store=store)
    rows = []
    with handle_errors(), open_client(settings, read_only=True) as client:
        vstore, ledger = client.store, client.ledger
        aliases = vstore.list_aliases()
        for info in vstore.list_collections():
            stats = vstore.stats(info.name)
            rows.append({
                "name": info.name, "points": info.points,
                "documents": ledger.document_count(info.name) if ledger else 0,
                "model": info.model, "fingerprint": info.fingerprint, "dim": info.dim,
                "dtype": info.dtype, "metric": info.metric,
                "index_bytes": stats.get("index_bytes", 0),
                "disk_bytes": stats.get("disk_bytes", 0),
                "aliases": sorted(a for a, c in aliases.items() if c == info.name),
            })
    if wants_json(ctx, json_out):
        print_json(rows)
        return
    table = Table(title=f"collections in {settings.store}")
    for column in ("name", "points", "documents", "model", "dim", "dtype", "index MiB",
                   "aliases"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["name"], str(r["points"]), str(r["documents"]), r["model"],
                      str(r["dim"]), r["dtype"],
                      "n/a" if r["index_bytes"] is None else f"{r['index_bytes'] / 2**20:.2f}",
                      ", ".join(r["aliases"]))
    console.print(table)


def verify(ctx: typer.Context,
           collection: Annotated[str | None, typer.Option(help="Only this collection.")] = None,
           repair: Annotated[bool, typer.Option(
               help="Fix drift the ledger owns: its documents' stray chunks and points of "
               "another model; documents that lost chunks are embedded again next ingest."
           )] = False,
           delete_unknown: Annotated[bool, typer.Option(
               "--delete-unknown", help="With --repair, also delete points of documents "
               "the ledger never wrote (e.g. vectors upserted directly).")] = False,
           sample: Annotated[int, typer.Option(
               "--sample", min=0, help="Re-embed N stored chunks from the ledger's content "
               "and compare them with the stored vectors (vector_drift): finds vectors "
               "overwritten or produced by other weights.")] = 0,
           store: StoreOption = None, json_out: JsonOption = False) -> None:
    """Check the ledger against the store (missing chunks, unknown points, fingerprints)."""
    from embedops.ingest.reconcile import reconcile

    settings = settings_from(ctx, store=store)
    with handle_errors(), open_client(settings, read_only=not repair) as client:
        vstore, ledger = client.store, client.ledger
        names = [collection] if collection else [c.name for c in vstore.list_collections()]
        reports = [reconcile(vstore, ledger, name, repair=repair,
                             delete_unknown=delete_unknown, sample=sample,
                             embedder=_sample_embedder(client, name, sample))
                   for name in names]
    if wants_json(ctx, json_out):
        print_json(reports)
    else:
        for r in reports:
            state = "[green]ok[/green]" if r["ok"] else "[red]drift[/red]"
            console.print(f"{r['collection']}: {state} — missing {len(r['missing_points'])}, "
                          f"unknown {len(r['unknown_points'])}, fingerprint mismatches "
                          f"{len(r['fingerprint_mismatches'])}, vector drift "
                          f"{len(r.get('vector_drift', []))}"
                          + (f", repaired: {r['repaired']}" if repair else ""))
    if not all(r["ok"] or repair for r in reports):
        raise typer.Exit(1)


def _sample_embedder(client: Any, name: str, sample: int) -> Any:
    if not sample or client.store.get_collection(name).model == "external":
        return None
    return client.embedder(name)


@store_app.command("rebuild")
def rebuild(ctx: typer.Context,
            collection: Annotated[str, typer.Argument(help="Collection to rebuild.")],
            store: StoreOption = None, json_out: JsonOption = False) -> None:
    """Regenerate a collection's ANN index from the SQLite source of truth."""
    from embedops.errors import ConfigError
    from embedops.store import IndexMaintenance

    settings = settings_from(ctx, store=store)
    with handle_errors(), open_client(settings) as client:
        if not isinstance(client.store, IndexMaintenance):
            raise ConfigError(f"store {settings.store} maintains no index of its own")
        result = client.store.rebuild_index(collection)
    if wants_json(ctx, json_out):
        print_json(result)
    else:
        console.print(f"rebuilt index of {collection}: {result}")


@store_app.command("stats")
def stats(ctx: typer.Context,
          collection: Annotated[str, typer.Argument(help="Collection or alias.")],
          store: StoreOption = None, json_out: JsonOption = False) -> None:
    """Points, tombstones, index memory and disk bytes of a collection."""
    settings = settings_from(ctx, store=store)
    with handle_errors(), open_client(settings, read_only=True) as client:
        result = client.store.stats(collection)
    if wants_json(ctx, json_out):
        print_json(result)
    else:
        for key, value in result.items():
            console.print(f"[bold]{key}[/bold]: {value}")
