"""`embedops search` and `embedops eval`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from embedops.cli.context import (
    ApiBaseOption,
    BackendOption,
    JsonOption,
    ModelOption,
    StoreOption,
    console,
    err_console,
    handle_errors,
    open_client,
    print_json,
    settings_from,
    wants_json,
)

CollectionOption = Annotated[str, typer.Option(help="Collection or alias to search.")]


def search(
    ctx: typer.Context,
    query: Annotated[str, typer.Argument(help="What to search for.")],
    collection: CollectionOption = "default",
    k: Annotated[int, typer.Option("-k", "--k", help="Number of hits.", min=1)] = 10,
    filter: Annotated[str | None, typer.Option(help='Payload filter, e.g. \'lang = "en"\'.')]
    = None,
    exact: Annotated[bool, typer.Option(help="Exact (brute-force) search.")] = False,
    store: StoreOption = None,
    backend: BackendOption = None,
    api_base: ApiBaseOption = None,
    json_out: JsonOption = False,
) -> None:
    """Search a collection with a text query; prints ranked chunks."""
    if not query.strip():
        err_console.print("[red]error[/red]: the query is empty; give the text to search for")
        raise typer.Exit(2)
    settings = settings_from(ctx, store=store, backend=backend, api_base=api_base)
    with handle_errors(), open_client(settings, read_only=True) as client:
        hits = client.search(query, collection, k, filter, exact)
    if wants_json(ctx, json_out):
        print_json([h.to_dict() for h in hits])
        return
    table = Table(title=f"{len(hits)} hits for {query!r}", show_lines=True)
    for column in ("#", "score", "doc / chunk", "text"):
        table.add_column(column)
    for rank, hit in enumerate(hits, start=1):
        title = hit.payload.get("title") or ""
        label = f"{hit.doc_id}\n{hit.id}" + (f"\n[italic]{title}[/italic]" if title else "")
        table.add_row(str(rank), f"{hit.score:.3f}", label, _highlighted(hit.text, hit.highlight))
    console.print(table)


def _highlighted(text: str, span: tuple[int, int], width: int = 400) -> Text:
    start, end = span
    if end <= start:
        return Text(text[:width] + ("…" if len(text) > width else ""))
    lo = max(0, start - 120)
    out = Text("…" if lo else "")
    out.append(text[lo:start])
    out.append(text[start:end], style="bold yellow")
    tail = text[end : end + max(0, width - (end - lo))]
    out.append(tail + ("…" if end + len(tail) < len(text) else ""))
    return out


def eval_(
    ctx: typer.Context,
    dataset: Annotated[Path, typer.Option(
        help="BEIR directory (corpus, queries, qrels), or a shipped set: docs-qa, "
        "multilingual-qa.")],
    collection: Annotated[str | None, typer.Option(help="Collection (default: dataset name).")]
    = None,
    k: Annotated[int, typer.Option("-k", "--k", help="Cut-off for the run.", min=1)] = 10,
    split: Annotated[str, typer.Option(help="qrels split.")] = "test",
    exact: Annotated[bool, typer.Option(help="Exact search instead of the ANN index.")] = False,
    dtype: Annotated[str, typer.Option(help="Storage dtype if the corpus is ingested.")]
    = "float32",
    model: ModelOption = None,
    backend: BackendOption = None,
    api_base: ApiBaseOption = None,
    store: StoreOption = None,
    json_out: JsonOption = False,
) -> None:
    """Evaluate retrieval on a BEIR dataset: nDCG@10, recall@10/100, MRR@10."""
    from embedops.quality.evaluate import run_eval

    settings = settings_from(ctx, store=store, model=model, backend=backend,
                             api_base=api_base)
    name = collection or dataset.resolve().name
    with handle_errors(), open_client(settings) as client:
        report = run_eval(client, dataset, name, k=k, split=split, exact=exact, dtype=dtype,
                          model=model)
    if wants_json(ctx, json_out):
        print_json(report)
        return
    table = Table(title=f"eval {dataset.name} on {name} ({report['queries']} judged queries)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("ndcg@10", "recall@10", "recall@100", "mrr@10"):
        table.add_row(key, f"{report[key]:.4f}")
    console.print(table)
