"""`embedops ingest PATH...`: batch ingestion with progress and a summary."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from embedops.cli.context import (
    BackendOption,
    JsonOption,
    ModelOption,
    StoreOption,
    console,
    handle_errors,
    open_store_and_ledger,
    print_json,
    settings_from,
    wants_json,
)


def ingest(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Files or directories to ingest.")],
    collection: Annotated[str, typer.Option(help="Collection (or alias) to write.")] = "default",
    model: ModelOption = None,
    backend: BackendOption = None,
    chunker: Annotated[str | None, typer.Option(help="tokens or sentences.")] = None,
    chunk_tokens: Annotated[int | None, typer.Option(help="Max tokens per chunk.")] = None,
    overlap: Annotated[int | None, typer.Option(help="Token overlap between chunks.")] = None,
    dtype: Annotated[str, typer.Option(help="float32, float16 or int8 (new collections).")]
    = "float32",
    id_field: Annotated[str | None, typer.Option(help="Record id field (JSON/JSONL).")] = None,
    text_field: Annotated[str | None, typer.Option(help="Record text field.")] = None,
    title_field: Annotated[str | None, typer.Option(help="Record title field.")] = None,
    include: Annotated[list[str] | None, typer.Option(help="Only paths matching GLOB.")] = None,
    exclude: Annotated[list[str] | None, typer.Option(help="Skip paths matching GLOB.")] = None,
    prune: Annotated[bool, typer.Option(help="Delete documents missing from the source.")]
    = False,
    batch_size: Annotated[int, typer.Option(help="Chunks per committed batch.")] = 512,
    store: StoreOption = None,
    json_out: JsonOption = False,
) -> None:
    """Ingest files, directories or JSONL corpora: idempotent and resumable."""
    from embedops.ingest.batch import BatchIngest, IngestOptions
    from embedops.preprocess.pipeline import PreprocessOptions

    settings = settings_from(ctx, store=store, model=model, backend=backend, chunker=chunker,
                             chunk_tokens=chunk_tokens, chunk_overlap=overlap)
    quiet = wants_json(ctx, json_out) or not sys.stderr.isatty()
    with handle_errors(), open_store_and_ledger(settings) as (vector_store, ledger):
        options = IngestOptions(
            collection=collection, dtype=dtype, batch_size=batch_size, prune=prune,
            include=include or (), exclude=exclude or (),
            preprocess=PreprocessOptions.from_settings(
                settings, id_field=id_field, text_field=text_field, title_field=title_field))
        with _progress(quiet) as report:
            job = BatchIngest(vector_store, ledger, settings, options, progress=report)
            summary = job.run(paths)
    if wants_json(ctx, json_out):
        print_json(summary.to_dict())
        return
    table = Table(title=f"ingest into {summary.collection}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in summary.to_dict().items():
        if key != "collection":
            table.add_row(key, str(value))
    console.print(table)


class _progress:
    """A rich progress bar fed by the ingest driver's events; silent when quiet."""

    def __init__(self, quiet: bool) -> None:
        self.bar = None if quiet else Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("docs {task.fields[docs]} · chunks {task.fields[chunks]} "
                       "({task.fields[rate]}/s)"),
            TimeElapsedColumn(), TimeRemainingColumn(), transient=False)
        self.task = None
        self.chunks = 0
        self.docs = 0

    def __enter__(self):  # type: ignore[no-untyped-def]
        if self.bar is None:
            return lambda event, n: None
        self.bar.start()
        self.task = self.bar.add_task("files", total=None, docs=0, chunks=0, rate="-")
        return self._update

    def _update(self, event: str, amount: int) -> None:
        assert self.bar is not None and self.task is not None
        if event == "files":
            self.bar.update(self.task, total=amount)
        elif event == "file":
            self.bar.advance(self.task, amount)
        elif event == "document":
            self.docs += amount
            self.bar.update(self.task, docs=self.docs)
        elif event == "chunks":
            self.chunks += amount
            elapsed = self.bar.tasks[0].elapsed or 1e-9
            self.bar.update(self.task, chunks=self.chunks, rate=f"{self.chunks / elapsed:.1f}")

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
