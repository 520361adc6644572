"""Ingest by modality: which files a run takes for its model, and a mixed folder routed
to the collection configured for each modality.

A text model's run walks text files only (images and audio are skipped as
``unsupported_type``); an image model's run walks images; a CLIP model's run walks text
and images into one collection. :func:`ingest_by_modality` scans the paths once, sorts
the files by modality and runs one batch ingest per collection with the files of its
route(s), so a folder of text, images and audio lands in, say, a text collection, a CLIP
or EfficientNet collection and an audio collection, each written by the model of its
modality, each idempotent on its own. Files of a modality without a route are counted
as skipped (``no_model:audio``), never read.

:func:`configured_routes` builds the routes of `embedops ingest` from the settings'
``media`` table and the ``--image-*`` / ``--audio-*`` flags.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from embedops.config import MediaRoute, Settings
from embedops.embedders.media_registry import document_modalities
from embedops.errors import CollectionNotFound, ConfigError
from embedops.ingest.batch import BatchIngest, IngestOptions, IngestSummary
from embedops.ingest.sources import SourceFile, scan
from embedops.ledger import Ledger
from embedops.preprocess.media import media_modality
from embedops.store.protocol import VectorStore

MODALITIES = ("text", "image", "audio")
MEDIA_MODALITIES = ("image", "audio")


@dataclass(frozen=True)
class Route:
    """Files of ``modality`` go to ``collection``, embedded by ``model`` (None: the
    collection's model, or the settings' model for a new collection)."""

    modality: str
    collection: str
    model: str | None = None


class RoutedSummary(dict[str, IngestSummary]):
    """The summary of each route by modality (routes sharing a collection share one), and
    the whole run: ``total`` counts every file found (``files_skipped`` includes the
    files of a modality without a route, as ``no_model:MODALITY``), ``collections`` the
    summary of each collection written."""

    def __init__(self, by_modality: Mapping[str, IngestSummary],
                 collections: Mapping[str, IngestSummary], routes: Sequence[Route],
                 files_found: int, files_skipped: Mapping[str, int]) -> None:
        super().__init__(by_modality)
        self.collections = dict(collections)
        self.routes = {route.modality: route.collection for route in routes}
        self.total = _totals(self.collections.values(), files_found, files_skipped)

    def to_dict(self) -> dict[str, object]:
        """The totals under the keys of one run's summary, plus ``routes`` (modality ->
        collection) and ``collections`` (each collection's own summary)."""
        return {**self.total.to_dict(), "routes": dict(self.routes),
                "collections": {name: s.to_dict() for name, s in self.collections.items()}}


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


def file_modality(source: SourceFile) -> str:
    """``image`` or ``audio`` by the file's suffix, else ``text``."""
    return media_modality(source.path.name) or "text"


def configured_routes(store: VectorStore, settings: Settings, collection: str,
                      model: str | None, flags: Mapping[str, MediaRoute] | None = None
                      ) -> list[Route] | None:
    """The routes of one `embedops ingest`: the run's own collection and model take the
    modalities that model embeds (text for a text model, text and images for CLIP); each
    other media modality goes where the settings' ``media`` table, overridden field by
    field by ``flags`` (from ``--image-model`` …), sends it; a route without a collection
    writes ``COLLECTION-MODALITY``. None when nothing is routed (a plain run).

    ConfigError when a flag routes a modality that the run's own model embeds already."""
    media = dict(settings.media)
    explicit = set()
    for modality, flag in (flags or {}).items():
        if flag.model is None and flag.collection is None:
            continue
        explicit.add(modality)
        configured = media.get(modality) or MediaRoute()
        media[modality] = MediaRoute(model=flag.model or configured.model,
                                     collection=flag.collection or configured.collection)
    if not media:
        return None
    main = run_modalities(store, collection, model, settings)
    routes = [Route(modality, collection, model) for modality in main]
    for modality in MEDIA_MODALITIES:
        route = media.get(modality)
        if route is None:
            continue
        if modality in main:
            if modality in explicit:
                raise ConfigError(
                    f"--{modality}-model/--{modality}-collection: the model of "
                    f"{collection!r} ({model or settings.model}) embeds {modality} files "
                    "itself; route them elsewhere with a text model as --model")
            continue  # the run's own model takes them (a CLIP run takes the images)
        routes.append(Route(modality, route.collection or f"{collection}-{modality}",
                            route.model))
    return routes


def ingest_by_modality(store: VectorStore, ledger: Ledger, settings: Settings,
                       paths: Sequence[Path], routes: Sequence[Route],
                       options: IngestOptions | None = None,
                       progress: Callable[[str, int], None] | None = None,
                       ) -> RoutedSummary:
    """Ingest ``paths`` by modality: one batch run per collection with the files of its
    route(s). Returns the summaries by modality (a :class:`RoutedSummary`, which also
    holds the totals and each collection's summary). Raises ConfigError, before any
    file is read, when two routes claim one modality, a route's model does not embed
    its modality, or two routes give one collection two models."""
    check_routes(store, settings, routes)
    base = options or IngestOptions()
    found = scan(paths, base.include, base.exclude, MODALITIES)
    skipped: Counter[str] = Counter(found.skipped)
    routed = {route.modality for route in routes}
    for source in found.files:
        modality = file_modality(source)
        if modality not in routed:
            skipped[f"no_model:{modality}"] += 1
    groups: dict[str, list[Route]] = {}
    for route in routes:
        groups.setdefault(route.collection, []).append(route)
    by_modality: dict[str, IngestSummary] = {}
    collections: dict[str, IngestSummary] = {}
    for name, group in groups.items():
        taken = {route.modality for route in group}
        files = [source for source in found.files if file_modality(source) in taken]
        summary = _run(store, ledger, settings, base, name, group[0].model, files, progress)
        collections[name] = summary
        for route in group:
            by_modality[route.modality] = summary
    return RoutedSummary(by_modality, collections, routes, found.found,
                         dict(sorted(skipped.items())))


def _run(store: VectorStore, ledger: Ledger, settings: Settings, base: IngestOptions,
         collection: str, model: str | None, files: Sequence[SourceFile],
         progress: Callable[[str, int], None] | None) -> IngestSummary:
    if not files and not base.prune:  # nothing to write: no model loaded
        return IngestSummary(collection=collection)
    run_settings = settings.model_copy(update={"model": model}) if model else settings
    job_options = IngestOptions(**{**_fields(base), "collection": collection,
                                   "model": model})
    job = BatchIngest(store, ledger, run_settings, job_options, progress)
    job.summary.files_found = len(files)
    return job.run_files(files)


def check_routes(store: VectorStore, settings: Settings, routes: Sequence[Route]) -> None:
    """ConfigError when two routes claim one modality, a route's model (its own, the
    collection's, or the settings') does not embed the route's modality, or two routes
    into one collection name two models."""
    seen: dict[str, Route] = {}
    models: dict[str, Route] = {}
    for route in routes:
        if route.modality not in MODALITIES:
            raise ConfigError(f"route {route}: the modality must be one of "
                              f"{', '.join(MODALITIES)}")
        if route.modality in seen:
            raise ConfigError(f"two routes for {route.modality}: {seen[route.modality]} "
                              f"and {route}")
        seen[route.modality] = route
        other = models.setdefault(route.collection, route)
        if other.model != route.model:
            raise ConfigError(f"routes {other} and {route} write one collection with two "
                              "models")
        modalities = run_modalities(store, route.collection, route.model, settings)
        if route.modality not in modalities:
            if route.model is None and not _exists(store, route.collection):
                raise ConfigError(
                    f"no model for the {route.modality} files: collection "
                    f"{route.collection!r} is new; name its model ([media] "
                    f"{route.modality} = {{model = \"…\"}} in embedops.toml, or "
                    f"--{route.modality}-model)")
            raise ConfigError(f"route {route.modality} -> {route.collection}: its model "
                              f"embeds {', '.join(modalities)}, not {route.modality}")


def _exists(store: VectorStore, collection: str) -> bool:
    try:
        store.get_collection(collection)
    except CollectionNotFound:
        return False
    return True


def _totals(summaries: Iterable[IngestSummary], files_found: int,
            files_skipped: Mapping[str, int]) -> IngestSummary:
    parts = list(summaries)
    total = IngestSummary(collection=",".join(s.collection for s in parts),
                          files_found=files_found, files_skipped=dict(files_skipped))
    for name in ("documents_new", "documents_changed", "documents_unchanged",
                 "documents_metadata_updated", "documents_failed", "documents_deleted",
                 "chunks_embedded", "chunks_deleted", "files_taken"):
        setattr(total, name, sum(getattr(s, name) for s in parts))
    total.seconds = round(sum(s.seconds for s in parts), 3)
    total.chunks_per_second = round(total.chunks_embedded / total.seconds, 1) \
        if total.seconds > 0 else 0.0
    return total


def _fields(options: IngestOptions) -> Mapping[str, object]:
    return {f.name: getattr(options, f.name) for f in fields(options)}
