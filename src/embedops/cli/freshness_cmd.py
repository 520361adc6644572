"""`embedops stale`, `embedops reembed`, `embedops backfill` and `embedops schema`:
keeping a collection's vectors and payloads fresh."""

from __future__ import annotations

import json
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

CollectionOpt = Annotated[str, typer.Option(help="Collection or alias.")]
schema_app = typer.Typer(help="Declared payload fields of a collection.", no_args_is_help=True)


def _show(title: str, data: dict[str, Any]) -> None:
    table = Table(title=title)
    table.add_column("")
    table.add_column("value")
    for key, value in data.items():
        table.add_row(key, json.dumps(value) if isinstance(value, dict | list) else str(value))
    console.print(table)


def stale(ctx: typer.Context, collection: CollectionOpt = "default",
          store: StoreOption = None, json_out: JsonOption = False) -> None:
    """Count stale documents by reason (content_changed, model_changed, source_missing),
    with examples. Read-only: works while the service runs."""
    from embedops.freshness.stale import find_stale

    settings = settings_from(ctx, store=store)
    with handle_errors(), open_client(settings, read_only=True) as client:
        if client.ledger is None:
            report = {"collection": collection, "stale_documents": 0}
        else:
            report = find_stale(client.store, client.ledger, collection).to_dict()
    if wants_json(ctx, json_out):
        print_json(report)
    else:
        _show(f"stale documents of {report['collection']}", report)


def reembed(
    ctx: typer.Context,
    collection: CollectionOpt = "default",
    stale_only: Annotated[bool, typer.Option(
        "--stale", help="The stale documents: changed sources are read again, documents "
        "of another model re-embedded from the ledger.")] = False,
    changed_since: Annotated[str | None, typer.Option(
        "--changed-since", help="Documents embedded at or after TIME (ISO).")] = None,
    older_than: Annotated[str | None, typer.Option(
        "--older-than", help="Documents embedded longer ago than DURATION (7d, 12h).")]
    = None,
    store: StoreOption = None, json_out: JsonOption = False,
) -> None:
    """Re-embed exactly the chosen documents in place (same ids, orphans removed)."""
    from embedops.freshness import reembed as ops
    from embedops.freshness.stale import find_stale

    if not (stale_only or changed_since or older_than):
        raise typer.BadParameter("say which documents: --stale, --changed-since or "
                                 "--older-than")
    settings = settings_from(ctx, store=store)
    with handle_errors(), open_client(settings) as client:
        assert client.ledger is not None
        name = client.store.resolve(collection)
        runs = []
        since = ops.parse_time(changed_since) if changed_since else None
        older = ops.parse_duration(older_than) if older_than else None
        if stale_only:
            report = find_stale(client.store, client.ledger, name)
            runs += ops.reread_files(client, name, report.files)
            model_changed = report.by_reason["model_changed"]
            if model_changed:
                runs.append(ops.reembed_documents(client, name, sorted(model_changed)))
        if since is not None or older is not None:
            chosen = ops.select_by_time(client.ledger, name, since, older)
            runs.append(ops.reembed_documents(client, name, chosen))
        summary = ops.merge(runs, name).to_dict()
    if wants_json(ctx, json_out):
        print_json(summary)
    else:
        _show(f"reembed {name}", summary)


def backfill(
    ctx: typer.Context,
    collection: CollectionOpt,
    field: Annotated[str, typer.Option("--field", help="Payload field to set.")],
    default: Annotated[str, typer.Option("--default", help="Value for points that lack it "
                                         "(JSON for numbers, booleans, lists).")],
    where: Annotated[str | None, typer.Option(help="Only points matching this filter.")]
    = None,
    store: StoreOption = None, json_out: JsonOption = False,
) -> None:
    """Set FIELD on every point that lacks it, by payload updates alone: no embedding."""
    from embedops.freshness.fields import backfill_field

    settings = settings_from(ctx, store=store)
    with handle_errors(), open_client(settings) as client:
        value = _typed_default(client, collection, field, default)
        result = backfill_field(client.store, client.ledger, collection, field, value, where)
    if wants_json(ctx, json_out):
        print_json(result)
    else:
        _show(f"backfill {field} in {result['collection']}", result)


def _typed_default(client: Any, collection: str, field: str, text: str) -> Any:
    from embedops.payload_schema import parse_default

    declared = {s.field: s for s in client.ledger.payload_fields(
        client.store.resolve(collection))} if client.ledger else {}
    if field in declared:
        return parse_default(declared[field].type, text)
    try:
        return json.loads(text)
    except ValueError:
        return text


@schema_app.command("show")
def schema_show(ctx: typer.Context,
                collection: Annotated[str, typer.Argument(help="Collection or alias.")],
                store: StoreOption = None, json_out: JsonOption = False) -> None:
    """The declared payload fields: name, type, default, indexed."""
    settings = settings_from(ctx, store=store)
    with handle_errors(), open_client(settings, read_only=True) as client:
        name = client.store.resolve(collection)
        fields = [f.to_dict() for f in client.ledger.payload_fields(name)] \
            if client.ledger else []
    if wants_json(ctx, json_out):
        print_json({"collection": name, "fields": fields})
        return
    table = Table(title=f"payload fields of {name}")
    for column in ("field", "type", "default", "indexed"):
        table.add_column(column)
    for f in fields:
        table.add_row(f["field"], f["type"], json.dumps(f["default"]), str(f["indexed"]))
    console.print(table)


@schema_app.command("add-field")
def schema_add_field(
    ctx: typer.Context,
    collection: Annotated[str, typer.Argument(help="Collection or alias.")],
    field: Annotated[str, typer.Argument(help="Payload field name.")],
    type_: Annotated[str, typer.Option("--type", help="str, int, float, bool or list.")],
    default: Annotated[str | None, typer.Option(help="Default (and backfill) value.")]
    = None,
    index: Annotated[bool, typer.Option("--index", help="Index the field for filters.")]
    = False,
    store: StoreOption = None, json_out: JsonOption = False,
) -> None:
    """Declare a payload field; with --default, every point that lacks it gets the
    default (payload updates only) and new writes get it too; wrong types are refused."""
    from embedops.freshness.fields import add_field
    from embedops.payload_schema import FieldSpec, parse_default

    settings = settings_from(ctx, store=store)
    with handle_errors(), open_client(settings) as client:
        assert client.ledger is not None
        value = parse_default(type_, default) if default is not None else None
        spec = FieldSpec(field, type_, value, index)
        result = add_field(client.store, client.ledger, collection, spec)
    if wants_json(ctx, json_out):
        print_json(result)
    else:
        _show(f"field {field} of {result['collection']}", result)
