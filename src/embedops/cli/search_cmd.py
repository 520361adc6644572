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
    query: Annotated[str | None, typer.Argument(
        help="What to search for (or --image / --audio).")] = None,
    collection: CollectionOption = "default",
    k: Annotated[int, typer.Option("-k", "--k", help="Number of hits.", min=1)] = 10,
    filter: Annotated[str | None, typer.Option(help='Payload filter, e.g. \'lang = "en"\'.')]
    = None,
    exact: Annotated[bool, typer.Option(help="Exact (brute-force) search.")] = False,
    image: Annotated[Path | None, typer.Option(
        help="Search with this image file (an image or CLIP collection).")] = None,
    audio: Annotated[Path | None, typer.Option(
        help="Search with this audio file (an audio collection).")] = None,
    store: StoreOption = None,
    backend: BackendOption = None,
    api_base: ApiBaseOption = None,
    json_out: JsonOption = False,
) -> None:
    """Search a collection with a text query, an image or a sound; prints ranked hits."""
    given = [q for q in (query, image, audio) if q is not None]
    if len(given) != 1:
        err_console.print("[red]error[/red]: give exactly one of QUERY, --image and --audio")
        raise typer.Exit(2)
    if query is not None and not query.strip():
        err_console.print("[red]error[/red]: the query is empty; give the text to search for")
        raise typer.Exit(2)
    media = _read_media(image, "image") or _read_media(audio, "audio")
    settings = settings_from(ctx, store=store, backend=backend, api_base=api_base)
    with handle_errors(), open_client(settings, read_only=True) as client:
        if media is not None:
            hits = client.search(media[1], collection, k, filter, exact, modality=media[0])
        else:
            hits = client.search(str(query), collection, k, filter, exact)
    if wants_json(ctx, json_out):
        print_json([h.to_dict() for h in hits])
        return
    if media is not None:
        _print_media_hits(hits, str(image or audio))
        return
    table = Table(title=f"{len(hits)} hits for {query!r}", show_lines=True)
    for column in ("#", "score", "doc / chunk", "text"):
        table.add_column(column)
    for rank, hit in enumerate(hits, start=1):
        title = hit.payload.get("title") or ""
        label = f"{hit.doc_id}\n{hit.id}" + (f"\n[italic]{title}[/italic]" if title else "")
        table.add_row(str(rank), f"{hit.score:.3f}", label, _highlighted(hit.text, hit.highlight))
    console.print(table)


def _read_media(path: Path | None, modality: str) -> tuple[str, bytes] | None:
    """(modality, bytes) of a query file; exit 2 with one line when it cannot be read."""
    if path is None:
        return None
    try:
        return modality, path.read_bytes()
    except OSError as exc:
        err_console.print(f"[red]error[/red]: cannot read {path}: {exc.strerror or exc}")
        raise typer.Exit(2) from exc


def _print_media_hits(hits: list, query: str) -> None:  # type: ignore[type-arg]
    """Rank, score, source and what the file is (dimensions or duration)."""
    table = Table(title=f"{len(hits)} hits for {query}", show_lines=True)
    for column in ("#", "score", "doc", "media"):
        table.add_column(column)
    for rank, hit in enumerate(hits, start=1):
        p = hit.payload
        if p.get("kind") == "image":
            what = f"image {p.get('width')}x{p.get('height')} {p.get('format', '')}"
        elif p.get("kind") == "audio":
            what = f"audio {p.get('duration')} s {p.get('sample_rate')} Hz"
        else:
            what = (hit.text or "")[:80]
        table.add_row(str(rank), f"{hit.score:.3f}", str(p.get("source") or hit.doc_id), what)
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
