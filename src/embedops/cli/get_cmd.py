"""`embedops get DOC_ID`: a document as the ledger keeps it."""

from __future__ import annotations

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


def get(
    ctx: typer.Context,
    doc_id: Annotated[str, typer.Argument(help="The document's id.")],
    collection: Annotated[str, typer.Option(help="Collection or alias.")] = "default",
    store: StoreOption = None,
    json_out: JsonOption = False,
) -> None:
    """Show a document: its text, metadata and chunks, and per chunk the fingerprint it
    was embedded with and when."""
    settings = settings_from(ctx, store=store)
    with handle_errors(), open_client(settings, read_only=True) as client:
        document = client.get(doc_id, collection).to_dict()
    if wants_json(ctx, json_out):
        print_json(document)
        return
    for key in ("collection", "id", "title", "source", "modality", "content_hash",
                "fingerprint", "last_embedded_at", "metadata"):
        console.print(f"[bold]{key}[/bold]: {document[key]}", highlight=False)
    table = Table(title=f"{len(document['chunks'])} chunks")
    for column in ("#", "span", "tokens", "text"):
        table.add_column(column)
    for chunk in document["chunks"]:
        text = chunk["text"] or ""
        table.add_row(str(chunk["index"]), f"{chunk['start']}–{chunk['end']}",
                      str(chunk["tokens"]), text[:200] + ("…" if len(text) > 200 else ""))
    console.print(table)
