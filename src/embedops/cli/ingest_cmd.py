"""`embedops ingest PATH...`: batch ingestion with progress and a summary."""

from __future__ import annotations

import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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

if TYPE_CHECKING:  # (imported when the command runs)
    from embedops.config import MediaRoute, Settings


class Runner(StrEnum):
    """Where `embedops ingest` runs its stages."""

    local = "local"
    ray = "ray"


def ingest(
    ctx: typer.Context,
    paths: Annotated[list[Path], typer.Argument(help="Files or directories to ingest.")],
    collection: Annotated[str, typer.Option(help="Collection (or alias) to write.")] = "default",
    model: ModelOption = None,
    backend: BackendOption = None,
    api_base: ApiBaseOption = None,
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
    allow_empty: Annotated[bool, typer.Option(
        "--allow-empty", help="Exit 0 even when no document was taken.")] = False,
    runner: Annotated[Runner, typer.Option(
        help="local: this process; ray: the same stages on a Ray cluster.")] = Runner.local,
    ray_address: Annotated[str | None, typer.Option(
        help="Ray cluster (--runner ray): auto, ray://host:10001; none starts a local one.")]
    = None,
    num_gpus: Annotated[int | None, typer.Option(
        min=0, help="GPUs to embed on (--runner ray), one actor each; default: all.")] = None,
    cpus_per_tokenizer: Annotated[float | None, typer.Option(
        min=0.1, help="CPUs per read-and-chunk worker (--runner ray).")] = None,
    image_model: Annotated[str | None, typer.Option(
        help="Model of the image files of a mixed folder (overrides [media] image).")] = None,
    image_collection: Annotated[str | None, typer.Option(
        help="Collection of the image files (default: COLLECTION-image).")] = None,
    audio_model: Annotated[str | None, typer.Option(
        help="Model of the audio files of a mixed folder (overrides [media] audio).")] = None,
    audio_collection: Annotated[str | None, typer.Option(
        help="Collection of the audio files (default: COLLECTION-audio).")] = None,
    store: StoreOption = None,
    json_out: JsonOption = False,
) -> None:
    """Ingest files, directories or JSONL corpora: idempotent and resumable. A mixed
    folder is routed by modality when `[media]` or an --image-*/--audio-* flag names
    where images and audio go."""
    settings = settings_from(ctx, store=store, model=model, backend=backend, api_base=api_base,
                             chunker=chunker,
                             chunk_tokens=chunk_tokens, chunk_overlap=overlap)
    if model is not None:
        model = settings.model  # a configured short name (clip_models) resolved
    flags = _media_flags(settings, image_model, image_collection, audio_model,
                         audio_collection)
    routed = bool(settings.media) or any(f.model or f.collection for f in flags.values())
    if routed and runner is Runner.ray:
        err_console.print("error: routing a mixed folder by modality ([media], --image-*, "
                          "--audio-*) needs --runner local", highlight=False)
        raise typer.Exit(2)
    cluster = None
    if runner is Runner.ray:
        from embedops.ingest.ray_runner import ClusterOptions

        cluster = ClusterOptions.from_settings(settings, address=ray_address,
                                               num_gpus=num_gpus,
                                               cpus_per_tokenizer=cpus_per_tokenizer)
    elif (ray_address, num_gpus, cpus_per_tokenizer) != (None, None, None):
        err_console.print("error: --ray-address, --num-gpus and --cpus-per-tokenizer need "
                          "--runner ray", highlight=False)
        raise typer.Exit(2)
    quiet = wants_json(ctx, json_out) or not sys.stderr.isatty()
    with handle_errors(), open_client(settings) as client, _progress(quiet) as report:
        routes = _routes(client, settings, collection, model, flags) if routed else None
        if routes is None:
            summary = client.ingest(paths, collection, model=model, dtype=dtype, prune=prune,
                                    include=include or (), exclude=exclude or (),
                                    batch_size=batch_size, id_field=id_field,
                                    text_field=text_field, title_field=title_field,
                                    progress=report, cluster=cluster)
            result = summary.to_dict()
        else:
            routed_summary = client.ingest_by_modality(
                paths, routes, prune=prune, include=include or (), exclude=exclude or (),
                progress=report, dtype=dtype, batch_size=batch_size, id_field=id_field,
                text_field=text_field, title_field=title_field)
            summary, result = routed_summary.total, routed_summary.to_dict()
    if wants_json(ctx, json_out):
        print_json(result)
    else:
        _print_summary(summary.collection, result)
    if summary.documents_taken == 0 and not allow_empty:
        skipped = ", ".join(f"{n} {why}" for why, n in summary.files_skipped.items())
        err_console.print(
            f"[yellow]warning[/yellow]: no document was taken from {summary.files_found} "
            f"files found ({summary.files_taken} read"
            + (f"; skipped: {skipped}" if skipped else "")
            + f"; {summary.documents_failed} failed, see `embedops dlq list`). "
            "Pass --allow-empty to accept an empty run.", highlight=False)
        raise typer.Exit(1)


def _media_flags(settings: Settings, image_model: str | None, image_collection: str | None,
                 audio_model: str | None, audio_collection: str | None
                 ) -> dict[str, MediaRoute]:
    """The --image-*/--audio-* flags as routes (short CLIP names resolved)."""
    from embedops.config import MediaRoute, resolve_clip_alias

    return {"image": MediaRoute(model=resolve_clip_alias(image_model, settings.clip_models),
                                collection=image_collection),
            "audio": MediaRoute(model=resolve_clip_alias(audio_model, settings.clip_models),
                                collection=audio_collection)}


def _routes(client: Any, settings: Settings, collection: str, model: str | None,
            flags: dict[str, MediaRoute]) -> Any:
    from embedops.ingest.modalities import configured_routes

    return configured_routes(client.store, settings, collection, model, flags)


def _print_summary(title: str, result: dict[str, Any]) -> None:
    table = Table(title=f"ingest into {title}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key, value in result.items():
        if key not in ("collection", "collections"):
            table.add_row(key, str(value))
    console.print(table)
    for name, part in (result.get("collections") or {}).items():
        counts = ", ".join(f"{key} {part[key]}" for key in (
            "files_taken", "documents_new", "documents_changed", "documents_unchanged",
            "documents_failed", "chunks_embedded"))
        console.print(f"  {name}: {counts}", highlight=False)


class _progress:
    """Two progress bars on stderr (so ``--json`` stays clean), fed by the ingest
    driver's events: documents read, and chunks embedded with their rate and an ETA
    from the chunks planned so far. Silent when quiet."""

    def __init__(self, quiet: bool) -> None:
        self.bar = None if quiet else Progress(
            TextColumn("[bold]{task.description:<16}"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TimeRemainingColumn(),
            console=err_console, transient=False)
        self.documents = self.chunks = None

    def __enter__(self):  # type: ignore[no-untyped-def]
        if self.bar is None:
            return lambda event, n: None
        self.bar.start()
        self.documents = self.bar.add_task("documents read", total=None, rate="")
        self.chunks = self.bar.add_task("chunks embedded", total=0, rate="- chunks/s")
        return self._update

    def _update(self, event: str, amount: int) -> None:
        bar = self.bar
        assert bar is not None and self.documents is not None and self.chunks is not None
        if event == "document":
            bar.advance(self.documents, amount)
        elif event == "planned":
            task = bar.tasks[self.chunks]
            bar.update(self.chunks, total=(task.total or 0) + amount)
        elif event == "chunks":
            bar.advance(self.chunks, amount)
            task = bar.tasks[self.chunks]
            rate = task.completed / max(task.elapsed or 1e-9, 1e-9)
            bar.update(self.chunks, rate=f"{rate:.1f} chunks/s")

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
