"""Ingest by modality: which files a run takes for its model, and a mixed folder routed
to the collection configured for each modality.

A text model's run walks text files only (images and audio are skipped as
``unsupported_type``); an image model's run walks images; a CLIP model's run walks text
and images into one collection. :func:`ingest_by_modality` runs one batch ingest per
route over the same paths, so a folder of text, images and audio lands in, say, a text
collection, a CLIP or EfficientNet collection and an audio collection, each written
by the model of its modality, each idempotent on its own.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from embedops.config import Settings
from embedops.embedders.media_registry import document_modalities
from embedops.errors import CollectionNotFound, ConfigError
from embedops.ingest.batch import BatchIngest, IngestOptions, IngestSummary
from embedops.ingest.sources import scan
from embedops.ledger import Ledger
from embedops.store.protocol import VectorStore


@dataclass(frozen=True)
class Route:
    """Files of ``modality`` go to ``collection``, embedded by ``model`` (None: the
    collection's model, or the settings' model for a new collection)."""

    modality: str
    collection: str
    model: str | None = None


def run_modalities(store: VectorStore, collection: str, model: str | None,
                   settings: Settings) -> tuple[str, ...]:
    """What a run into ``collection`` embeds: the modalities of the collection's model
    when it exists, else of ``model`` or the settings' model."""
    try:
        return document_modalities(store.get_collection(collection).model)
    except CollectionNotFound:
        return document_modalities(model or settings.model)


def run_batch(job: BatchIngest, paths: Sequence[Path], modalities: Sequence[str]
              ) -> IngestSummary:
    """``job.run(paths)``, walking the suffixes of ``modalities`` instead of text only."""
    if tuple(modalities) == ("text",):
        return job.run(paths)
    found = scan(paths, job.options.include, job.options.exclude, modalities)
    job.summary.files_found = found.found
    job.summary.files_skipped = dict(sorted(found.skipped.items()))
    return job.run_files(found.files)


def ingest_by_modality(store: VectorStore, ledger: Ledger, settings: Settings,
                       paths: Sequence[Path], routes: Sequence[Route],
                       options: IngestOptions | None = None,
                       progress: Callable[[str, int], None] | None = None,
                       ) -> dict[str, IngestSummary]:
    """Ingest ``paths`` once per route (each route's files only); returns each route's
    summary by modality. Raises ConfigError, before any route runs, when two routes
    claim one modality or a route's model does not embed its modality."""
    check_routes(store, settings, routes)
    base = options or IngestOptions()
    summaries: dict[str, IngestSummary] = {}
    for route in routes:
        model = route.model
        run_settings = settings.model_copy(update={"model": model}) if model else settings
        job_options = IngestOptions(**{**_fields(base), "collection": route.collection,
                                       "model": model})
        job = BatchIngest(store, ledger, run_settings, job_options, progress)
        summaries[route.modality] = run_batch(job, paths, (route.modality,))
    return summaries


def check_routes(store: VectorStore, settings: Settings, routes: Sequence[Route]) -> None:
    """ConfigError when two routes claim one modality, or a route's model (its own, the
    collection's, or the settings') does not embed the route's modality."""
    seen: dict[str, Route] = {}
    for route in routes:
        if route.modality in seen:
            raise ConfigError(f"two routes for {route.modality}: {seen[route.modality]} "
                              f"and {route}")
        seen[route.modality] = route
        modalities = run_modalities(store, route.collection, route.model, settings)
        if route.modality not in modalities:
            raise ConfigError(f"route {route.modality} -> {route.collection}: its model "
                              f"embeds {', '.join(modalities)}, not {route.modality}")


def _fields(options: IngestOptions) -> Mapping[str, object]:
    return {name: getattr(options, name) for name in options.__dataclass_fields__}
