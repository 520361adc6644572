"""The `embedops` command: a thin Typer layer over the Python API."""

from __future__ import annotations

from typing import Annotated

import typer

from embedops.cli import (
    canary_cmd,
    chunk_cmd,
    collections_cmd,
    cost_cmd,
    dlq_cmd,
    finetune_cmd,
    freshness_cmd,
    get_cmd,
    ingest_cmd,
    jobs_cmd,
    keys_cmd,
    migrate_cmd,
    models_cmd,
    search_cmd,
    serve_cmd,
    status_cmd,
)

app = typer.Typer(
    name="embedops",
    help="Turn raw content into vectors that stay correct over time.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


@app.callback()
def root(
    ctx: typer.Context,
    store: Annotated[
        str | None,
        typer.Option("--store", envvar="EMBEDOPS_STORE",
                     help="Store directory or URL (default ./.embedops)."),
    ] = None,
    ledger: Annotated[
        str | None,
        typer.Option("--ledger", envvar="EMBEDOPS_LEDGER",
                     help="The ledger: a SQLite file (default <store>/ledger.db) or a "
                     "postgresql:// URL that several machines share."),
    ] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON on every command.")] = False,
) -> None:
    """embedops: preprocess, embed, store and search, idempotently."""
    ctx.obj = {"store": store, "ledger": ledger, "json": json_out}
    _show_notices()


def _show_notices() -> None:
    """embedops' own notices (a model prepared for the CPU on first use, say) on stderr;
    third-party loggers stay quiet."""
    import logging

    log = logging.getLogger("embedops")
    if not log.handlers:
        handler = logging.StreamHandler()  # stderr: --json output stays clean
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


app.command(name="models")(models_cmd.models)
app.command(name="embed")(models_cmd.embed)
app.command(name="chunk")(chunk_cmd.chunk)
app.command(name="ingest")(ingest_cmd.ingest)
app.command(name="search")(search_cmd.search)
app.command(name="get")(get_cmd.get)
app.command(name="eval")(search_cmd.eval_)
app.command(name="collections")(collections_cmd.collections)
app.command(name="verify")(collections_cmd.verify)
app.command(name="cost")(cost_cmd.cost)
app.command(name="serve")(serve_cmd.serve)
app.command(name="status")(status_cmd.status)
app.add_typer(dlq_cmd.app, name="dlq")
app.command(name="stale")(freshness_cmd.stale)
app.command(name="reembed")(freshness_cmd.reembed)
app.command(name="backfill")(freshness_cmd.backfill)
app.add_typer(freshness_cmd.schema_app, name="schema")
app.add_typer(keys_cmd.app, name="keys")
app.add_typer(jobs_cmd.app, name="jobs")
app.add_typer(migrate_cmd.app, name="migrate")
app.add_typer(canary_cmd.app, name="canary")
app.add_typer(finetune_cmd.app, name="finetune")
app.add_typer(collections_cmd.store_app, name="store")


def main() -> None:
    app()
