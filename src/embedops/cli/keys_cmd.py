"""`embedops keys create|list|revoke`: API keys of the HTTP service (stored hashed)."""

from __future__ import annotations

from contextlib import closing
from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from embedops.cli.context import (
    JsonOption,
    StoreOption,
    console,
    handle_errors,
    print_json,
    settings_from,
    wants_json,
)

if TYPE_CHECKING:  # (imported when a command runs)
    from embedops.ledger import Ledger

app = typer.Typer(help="API keys of `embedops serve`: create (shown once), list, revoke.",
                  no_args_is_help=True)


@app.callback()
def keys_group(ctx: typer.Context, json_out: JsonOption = False) -> None:
    """API keys of `embedops serve`: create (shown once), list, revoke."""
    root = ctx.find_root()
    if json_out and isinstance(root.obj, dict):
        root.obj["json"] = True


def _ledger(ctx: typer.Context, store: str | None) -> closing[Ledger]:
    """The store's ledger for one command, closed afterwards."""
    from embedops.client import ledger_location
    from embedops.ledger.postgres import open_ledger

    settings = settings_from(ctx, store=store)
    with handle_errors():
        return closing(open_ledger(ledger_location(settings)))


@app.command("create")
def create(
    ctx: typer.Context,
    scope: Annotated[list[str], typer.Option(
        "--scope", help="read, write, admin or embed (repeatable; admin includes write "
        "and embed, write includes read; embed is /v1/embeddings and /v1/models).")],
    collection: Annotated[list[str] | None, typer.Option(
        "--collection", help="Limit the key to this collection (repeatable).")] = None,
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
    store: StoreOption = None,
    json_out: JsonOption = False,
) -> None:
    """Create a key and print it once; only its hash is stored."""
    with handle_errors(), _ledger(ctx, store) as ledger:
        key, record = ledger.create_key(scope, collection or None, name)
    if wants_json(ctx, json_out):
        print_json({"key": key, **record.to_dict()})
        return
    console.print(f"key [bold]{key}[/bold]\nid {record.key_id}, scopes "
                  f"{', '.join(record.scopes)}; it is shown only now.")


@app.command("list")
def list_keys(ctx: typer.Context, store: StoreOption = None,
              json_out: JsonOption = False) -> None:
    """Every key ever created (ids, scopes, collections; never the secret)."""
    with handle_errors(), _ledger(ctx, store) as ledger:
        keys = ledger.list_keys()
    if wants_json(ctx, json_out):
        print_json([k.to_dict() for k in keys])
        return
    table = Table(title="API keys")
    for column in ("id", "name", "scopes", "collections", "created", "revoked"):
        table.add_column(column)
    for k in keys:
        table.add_row(k.key_id, k.name, ",".join(k.scopes),
                      ",".join(k.collections) if k.collections else "*", k.created_at,
                      k.revoked_at or "")
    console.print(table)


@app.command("revoke")
def revoke(
    ctx: typer.Context,
    key_id: Annotated[str, typer.Argument(help="The key's id (see `embedops keys list`).")],
    store: StoreOption = None,
    json_out: JsonOption = False,
) -> None:
    """Revoke a key: requests with it get 401 from then on."""
    from embedops.errors import ConfigError

    with handle_errors():
        with _ledger(ctx, store) as ledger:
            done = ledger.revoke_key(key_id)
        if not done:
            raise ConfigError(f"no active key with id {key_id!r}")
    if wants_json(ctx, json_out):
        print_json({"key_id": key_id, "revoked": True})
        return
    console.print(f"revoked {key_id}")
