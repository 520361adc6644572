"""`embedops chunk FILE`: the cleaned text's chunks, with token counts and spans."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from embedops.cli.context import (
    BackendOption,
    JsonOption,
    ModelOption,
    console,
    err_console,
    handle_errors,
    print_json,
    settings_from,
    wants_json,
)


def chunk(
    ctx: typer.Context,
    file: Annotated[Path, typer.Argument(help="File to decode, clean and chunk.")],
    model: ModelOption = None,
    backend: BackendOption = None,
    chunker: Annotated[str | None, typer.Option(help="tokens or sentences.")] = None,
    chunk_tokens: Annotated[int | None, typer.Option(help="Max tokens per chunk.")] = None,
    overlap: Annotated[int | None, typer.Option(help="Token overlap between windows.")] = None,
    json_out: JsonOption = False,
) -> None:
    """Show how FILE is decoded, cleaned and chunked for the model's tokenizer."""
    from embedops.ingest.chunking import make_chunker
    from embedops.preprocess.pipeline import PreprocessOptions, preprocess_file

    settings = settings_from(ctx, model=model, backend=backend, chunker=chunker,
                             chunk_tokens=chunk_tokens, chunk_overlap=overlap)
    with handle_errors():
        result = preprocess_file(file, file.parent, PreprocessOptions.from_settings(settings))
        splitter = make_chunker(settings)
        docs = [(doc, splitter.chunk(doc.id, doc.text)) for doc in result.documents]
    if wants_json(ctx, json_out):
        print_json({
            "documents": [{"id": d.id, "title": d.title, "metadata": d.metadata,
                           "chunks": [c.__dict__ | {"id": c.id} for c in chunks]}
                          for d, chunks in docs],
            "rejections": [r.to_dict() for r in result.rejections],
        })
    else:
        _print_chunks(docs)
        for r in result.rejections:
            err_console.print(f"[yellow]rejected[/yellow] {r.source}: {r.reason} ({r.detail})")
    if not docs:
        raise typer.Exit(1)


def _print_chunks(docs: list) -> None:  # type: ignore[type-arg]
    for doc, chunks in docs:
        table = Table(title=f"{doc.id} — {len(chunks)} chunks")
        for column in ("id", "tokens", "span", "text"):
            table.add_column(column)
        for c in chunks:
            preview = c.text if len(c.text) <= 120 else c.text[:80] + " … " + c.text[-30:]
            table.add_row(c.id, str(c.tokens), f"{c.start}-{c.end}", preview)
        console.print(table)
