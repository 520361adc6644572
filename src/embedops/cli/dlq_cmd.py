"""`embedops dlq list|show|retry|purge`: dead letters."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

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

app = typer.Typer(help="Dead letters: documents that could not be embedded.",
                  no_args_is_help=True)
CollectionOpt = Annotated[str | None, typer.Option(help="Only this collection.")]


@app.command("list")
def list_(ctx: typer.Context, collection: CollectionOpt = None, store: StoreOption = None,
          json_out: JsonOption = False) -> None:
    """List dead letters (doc id, stage, reason, attempts, last seen)."""
    settings = settings_from(ctx, store=store)
    with handle_errors(), open_client(settings, read_only=True) as client:
        letters = client.ledger.dead_letters(collection) if client.ledger else []
    if wants_json(ctx, json_out):
        print_json([d.to_dict() for d in letters])
        return
    table = Table(title=f"{len(letters)} dead letters")
    for column in ("collection", "doc id", "stage", "reason", "attempts", "last seen"):
        table.add_column(column)
    for d in letters:
        table.add_row(d.collection, d.doc_id, d.stage, d.reason, str(d.attempts), d.last_seen)
    console.print(table)


@app.command("show")
def show(ctx: typer.Context, doc_id: Annotated[str, typer.Argument(help="Document id.")],
         collection: CollectionOpt = None, store: StoreOption = None,
         json_out: JsonOption = False) -> None:
    """Show every field of one dead letter."""
    settings = settings_from(ctx, store=store)
    with handle_errors(), open_client(settings, read_only=True) as client:
        letters = client.ledger.dead_letters(collection, [doc_id]) if client.ledger else []
    if not letters:
        console.print(f"no dead letter for {doc_id!r}")
        raise typer.Exit(1)
    if wants_json(ctx, json_out):
        print_json([d.to_dict() for d in letters])
        return
    for d in letters:
        for key, value in d.to_dict().items():
            console.print(f"[bold]{key}[/bold]: {value}")


@app.command("retry")
def retry(ctx: typer.Context, collection: CollectionOpt = None, store: StoreOption = None,
          json_out: JsonOption = False) -> None:
    """Re-run the sources of dead letters; those that now succeed leave the queue."""
    from embedops.ingest.batch import BatchIngest, IngestOptions
    from embedops.ingest.sources import SourceFile, source_of_dead_letter
    from embedops.preprocess.pipeline import PreprocessOptions

    settings = settings_from(ctx, store=store)
    results = {}
    with handle_errors(), open_client(settings) as client:
        vstore, ledger = client.store, client.ledger
        assert ledger is not None
        by_collection: dict[str, set[SourceFile]] = {}
        for d in ledger.dead_letters(collection):
            if d.source and Path(d.source).is_file():
                by_collection.setdefault(d.collection, set()).add(source_of_dead_letter(d))
        for name, sources in sorted(by_collection.items()):
            preprocess = PreprocessOptions.from_settings(settings)
            options = IngestOptions(collection=name, preprocess=preprocess,
                                    reread_unchanged=True)
            job = BatchIngest(vstore, ledger, settings, options)
            results[name] = job.run_files(sorted(sources, key=str)).to_dict()
        remaining = len(ledger.dead_letters(collection))
    if wants_json(ctx, json_out):
        print_json({"runs": results, "remaining": remaining})
        return
    console.print(f"retried {sum(len(v) for v in by_collection.values())} sources; "
                  f"{remaining} dead letters remain")


@app.command("purge")
def purge(ctx: typer.Context, collection: CollectionOpt = None,
          doc_id: Annotated[list[str] | None, typer.Option(help="Only these ids.")] = None,
          store: StoreOption = None, json_out: JsonOption = False) -> None:
    """Delete dead letters (all, or of one collection, or the given ids)."""
    settings = settings_from(ctx, store=store)
    with handle_errors(), open_client(settings) as client:
        assert client.ledger is not None
        removed = client.ledger.purge_dead_letters(collection, doc_id)
    if wants_json(ctx, json_out):
        print_json({"purged": removed})
    else:
        console.print(f"purged {removed} dead letters")
