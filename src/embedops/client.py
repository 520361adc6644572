"""The public Python client: ``embedops.open(...)``. The CLI, the server and user code
all work through it; none of them assembles stores, ledgers and embedders by hand.

Text-level operations (``ingest``, ``search``, ``get``) run the pipeline; vector-level
operations carry the ``VectorStore`` protocol's names and arguments.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from embedops.config import Settings, load_settings
from embedops.embedders import Embedder, load_embedder, load_matching_embedder
from embedops.embedders.routing import batch_settings
from embedops.errors import (
    CollectionNotFound,
    ConfigError,
    DocumentNotFound,
    ModelConflict,
    ModelNotFound,
    StoreError,
)
from embedops.ledger import Ledger, StoredDocument
from embedops.ledger.postgres import is_postgres_url, ledger_exists, open_ledger
from embedops.store import EXTERNAL_FINGERPRINT, EXTERNAL_MODEL, local_directory, open_store
from embedops.store.protocol import (
    CollectionInfo,
    Filter,
    Point,
    VectorStore,
    external_fingerprint,
)
from embedops.types import Document


def ledger_location(settings: Settings) -> str | Path:
    """Where the ledger lives: ``settings.ledger`` (a SQLite file or a PostgreSQL URL),
    else beside the embedded store."""
    if settings.ledger is not None:
        return settings.ledger if is_postgres_url(settings.ledger) else Path(settings.ledger)
    directory = local_directory(settings.store)
    if directory is None:
        raise ConfigError(f"store {settings.store!r} is remote: set `ledger` "
                          "(--ledger, EMBEDOPS_LEDGER) to the ledger's SQLite file or "
                          "postgresql:// URL")
    return directory / "ledger.db"


class Client:
    """A handle on one store and its ledger. Use as a context manager, or ``close()``.

    Read-only clients never take the store's writer lock (they work while a service
    runs); their ``ledger`` is None when nothing was ever written."""

    def __init__(self, settings: Settings, read_only: bool = False) -> None:
        self.settings, self.read_only = settings, read_only
        directory = local_directory(settings.store)
        if read_only and directory is not None and not directory.exists():
            raise StoreError(f"no store at {directory}: run `embedops ingest` first")
        location = ledger_location(settings)
        from embedops.monitor.memory import memory_budget

        self.store: VectorStore = open_store(settings.store, read_only=read_only,
                                             memory_budget_bytes=memory_budget(settings)[0],
                                             hit_cache_bytes=settings.hit_cache_bytes)
        try:
            self.ledger: Ledger | None = (
                None if read_only and not ledger_exists(location)
                else open_ledger(location, read_only))
        except BaseException:
            self.store.close()
            raise
        self._embedders: dict[str, Embedder] = {}

    def new_ledger_handle(self) -> Ledger:
        """A second connection to the same ledger (for another thread of a service)."""
        return open_ledger(ledger_location(self.settings), self.read_only)

    def _writable_ledger(self) -> Ledger:
        if self.ledger is None or self.read_only:
            raise StoreError("this client is read-only")
        return self.ledger

    # --- text level ----------------------------------------------------------------------

    def embedder(self, collection: str) -> Embedder:
        """The embedder of ``collection``'s model (same fingerprint), loaded once."""
        return self.embedder_for(self.store.get_collection(collection))

    def embedder_for(self, info: CollectionInfo) -> Embedder:
        """The embedder whose vectors carry ``info``'s fingerprint, loaded once."""
        if info.model == EXTERNAL_MODEL:
            raise StoreError(f"collection {info.name!r} holds external vectors: search it "
                             "with a vector, not a text")
        if info.fingerprint not in self._embedders:
            s = self.settings
            try:
                self._embedders[info.fingerprint] = load_matching_embedder(
                    info.model, info.fingerprint, s.cache_dir, s.backend, s.batch_size,
                    settings=s)
            except ModelNotFound as exc:
                raise ModelNotFound(
                    f"collection {info.name!r} holds vectors of {info.model}, a model "
                    f"embedops cannot load here ({exc.message}): embed queries with that "
                    "model where it lives and search with the vector") from exc
        return self._embedders[info.fingerprint]

    def ingest(self, paths: Sequence[str | Path], collection: str = "default", *,
               model: str | None = None, dtype: str = "float32", prune: bool = False,
               include: Sequence[str] = (), exclude: Sequence[str] = (),
               batch_size: int = 512, id_field: str | None = None,
               text_field: str | None = None, title_field: str | None = None,
               progress: Any = None, cluster: Any = None, **more: Any) -> Any:
        """Ingest files or directories into ``collection`` (created with ``model``, or the
        settings' model, on first write); returns the ``IngestSummary``. Idempotent.
        ``cluster`` (an ``ingest.ray_runner.ClusterOptions``) runs the job on Ray Data."""
        from embedops.ingest.batch import BatchIngest, IngestOptions
        from embedops.preprocess.pipeline import PreprocessOptions

        preprocess = PreprocessOptions.from_settings(
            self.settings, id_field=id_field, text_field=text_field, title_field=title_field)
        options = IngestOptions(collection=collection, dtype=dtype, batch_size=batch_size,
                                prune=prune, include=include, exclude=exclude,
                                preprocess=preprocess, model=model, **more)
        settings = batch_settings(self.settings)  # hybrid routing: the batch path's model
        if model is not None:
            settings = settings.model_copy(update={"model": model})
        if cluster is not None:
            from embedops.ingest.ray_runner import RayIngest

            job = RayIngest(self.store, self._writable_ledger(), settings, options, cluster,
                            progress)
        else:
            job = BatchIngest(self.store, self._writable_ledger(), settings, options,
                              progress)
            from embedops.ingest.modalities import run_batch, run_modalities

            # the files this model embeds: text, images (CLIP, image models) or audio
            return run_batch(job, [Path(p) for p in paths],
                             run_modalities(self.store, collection, model, settings))
        return job.run([Path(p) for p in paths])

    def ingest_by_modality(self, paths: Sequence[str | Path], routes: Sequence[Any], *,
                           prune: bool = False, include: Sequence[str] = (),
                           exclude: Sequence[str] = (), progress: Any = None,
                           dtype: str = "float32", batch_size: int = 512,
                           id_field: str | None = None, text_field: str | None = None,
                           title_field: str | None = None) -> Any:
        """Ingest a folder of text, images and audio: for each ``Route`` (see
        ``ingest/modalities.py``) the files of its modality go to its collection, embedded
        by its model; files of a modality without a route are skipped (``no_model:…``).
        Returns a ``RoutedSummary``: each route's ``IngestSummary`` by modality, plus the
        totals and each collection's summary; each collection is an ordinary batch run
        (idempotent, dead-lettered on its own). Raises ConfigError for two routes of one
        modality or a route whose model does not embed its modality."""
        from embedops.ingest.batch import IngestOptions
        from embedops.ingest.modalities import ingest_by_modality
        from embedops.preprocess.pipeline import PreprocessOptions

        preprocess = PreprocessOptions.from_settings(
            self.settings, id_field=id_field, text_field=text_field, title_field=title_field)
        options = IngestOptions(prune=prune, include=include, exclude=exclude, dtype=dtype,
                                batch_size=batch_size, preprocess=preprocess)
        return ingest_by_modality(self.store, self._writable_ledger(),
                                  batch_settings(self.settings), [Path(p) for p in paths],
                                  routes, options, progress)

    def put_documents(self, documents: Sequence[Mapping[str, Any]],
                      collection: str = "default", *, chunk: bool = True,
                      embedder: Embedder | None = None) -> Any:
        """Write documents given as data — ``{"id", "text", "metadata"?, "title"?}`` —
        through the same pipeline as files: cleaned and validated, chunked (``chunk=False``
        keeps each document one chunk unless it exceeds the model's context), embedded,
        committed with their content. Idempotent by id and content. ``embedder``: a model
        of the caller's (an adapter of another framework's embeddings); the collection is
        created for it and must carry its fingerprint. Returns the ingest summary; bad
        documents become dead letters."""
        from embedops.ingest.batch import IngestSummary
        from embedops.ingest.chunking import WholeDocumentChunker
        from embedops.ingest.realtime import document_from_body
        from embedops.ingest.stages import Work, classify
        from embedops.ingest.targets import EmbedderPool, resolve_targets
        from embedops.ingest.write import Target, write_documents
        from embedops.preprocess.pipeline import PreprocessOptions

        ledger = self._writable_ledger()
        pool = EmbedderPool(self.settings)
        if embedder is not None:
            pool.offer(embedder)
        self._ensure_collection(collection, embedder)
        targets = resolve_targets(self.store, pool, collection, ledger)
        if not chunk:
            targets = [Target(t.info, t.embedder, WholeDocumentChunker(t.embedder.tokenizer))
                       for t in targets]
        primary = targets[0]
        summary = IngestSummary(collection=primary.name)
        options = PreprocessOptions.from_settings(self.settings)
        ids = [str(d.get("id", "")) for d in documents]
        previous = ledger.documents(primary.name, ids)
        works: list[Work] = []

        def failed(work: Work, stage: str, reason: str, detail: str) -> None:
            ledger.record_dead_letter(primary.name, work.doc.id, work.doc.source, stage,
                                      reason, detail)
            summary.documents_failed += 1

        for doc_id, item in zip(ids, documents, strict=True):
            body = {k: item.get(k) for k in ("text", "title", "metadata") if item.get(k)
                    is not None}
            doc = document_from_body(doc_id, body, options) if doc_id else (
                "validate", "missing_id", "every document needs an id")
            if not isinstance(doc, tuple) and not _plain_json(doc.metadata):
                doc = ("validate", "invalid_metadata", "metadata must be plain JSON: "
                       "strings, numbers, booleans, null, lists and objects (no NaN)")
            if isinstance(doc, tuple):
                failed(Work(Document(doc_id or "?", ""), "new", "", "", None), *doc)
                continue
            work = classify(doc, previous.get(doc_id), primary.chunker, lambda: None)
            if work.status == "unchanged":
                summary.documents_unchanged += 1
            works.append(work)
        result = write_documents(self.store, ledger, targets, works, failed)
        for work in result.committed:
            name = {"new": "documents_new", "changed": "documents_changed",
                    "metadata": "documents_metadata_updated"}[work.status]
            setattr(summary, name, getattr(summary, name) + 1)
        summary.chunks_embedded, summary.chunks_deleted = (result.chunks_embedded,
                                                           result.chunks_deleted)
        return summary

    def delete_documents(self, doc_ids: Sequence[str], collection: str = "default") -> int:
        """Remove documents (every chunk, their ledger records and content) from the
        collection and from any collection a migration keeps beside it; returns the
        points removed."""
        from embedops.ingest.write import delete_documents

        ledger = self._writable_ledger()
        name = self.store.resolve(collection)
        return delete_documents(self.store, ledger, [name, *ledger.dual_write_targets(name)],
                                list(doc_ids))

    def _ensure_collection(self, name: str, embedder: Embedder | None) -> None:
        """Create ``name`` on first write: for ``embedder`` when given, else for the
        settings' model. An existing collection of another model is refused."""
        try:
            info = self.store.get_collection(name)
        except CollectionNotFound:
            model = embedder or self.embedder_for_model(self.settings.model)
            self.store.create_collection(name, model.info.dim,
                                         fingerprint=model.info.fingerprint,
                                         model=model.info.name)
            return
        if embedder is not None and embedder.info.fingerprint != info.fingerprint:
            raise ModelConflict(
                f"collection {info.name!r} holds vectors of {info.model} (fingerprint "
                f"{info.fingerprint}), not of {embedder.info.name} ({embedder.info.fingerprint})")

    def embedder_for_model(self, model: str) -> Embedder:
        """The embedder of model ``model`` (loaded once per fingerprint)."""
        s = self.settings
        embedder = load_embedder(model, s.cache_dir, s.backend, s.batch_size, settings=s)
        return self._embedders.setdefault(embedder.info.fingerprint, embedder)

    def search(self, query: str | bytes | Sequence[float] | np.ndarray,
               collection: str = "default", k: int = 10, filter: Filter | None = None,
               exact: bool = False, *, modality: str | None = None) -> list[Any]:
        """Top-``k`` hits for a text (embedded in the query role with the model of the
        collection the name points at now), an image or audio file's bytes (``modality``
        ``image``/``audio``, else sniffed; see ``media_search.py``) or a vector: ``id``,
        ``doc_id``, ``score``, ``text``, ``payload``, ``highlight``."""
        from embedops.retrieval import Searcher, text_hits

        if isinstance(query, bytes | bytearray):
            from embedops.media_search import media_query_vector

            info = self.store.get_collection(collection)
            vector = media_query_vector(self.embedder_for(info), info, bytes(query), modality)
            return text_hits("", self.store.search(info.name, vector, k=k, filter=filter,
                                                   exact=exact)[0])
        if isinstance(query, str):
            # one resolution of the name: an alias swapped meanwhile never pairs one
            # collection with the other's model
            info = self.store.get_collection(collection)
            return Searcher(self.store, info, self.embedder_for(info)).search(
                query, k, filter, exact)
        vector = np.asarray(query, dtype=np.float32)
        hits = self.store.search(collection, vector, k=k, filter=filter, exact=exact)[0]
        return text_hits("", hits)

    def get(self, doc_id: str, collection: str = "default") -> StoredDocument:
        """The document as the ledger keeps it: text, metadata, chunks and, per chunk,
        the fingerprint and ``last_embedded_at``. Raises DocumentNotFound."""
        name = self.store.resolve(collection)
        found = self.ledger.stored(name, doc_id) if self.ledger is not None else None
        if found is None:
            raise DocumentNotFound(f"no document {doc_id!r} in collection {name!r}")
        return found

    # --- vector level (the VectorStore protocol) --------------------------------------------

    def create_collection(self, name: str, dim: int | None = None, *,
                          model: str | None = None, fingerprint: str | None = None,
                          **options: Any) -> CollectionInfo:
        """A collection for ``model`` (dimension and fingerprint from the model), or, with
        neither ``model`` nor ``fingerprint``, one for external vectors of ``dim``."""
        if model is not None:
            s = self.settings
            info = load_embedder(model, s.cache_dir, s.backend, s.batch_size, settings=s).info
            if dim is not None and dim != info.dim:
                raise ConfigError(f"{model} gives {info.dim}-d vectors, not {dim}")
            return self.store.create_collection(name, info.dim, fingerprint=info.fingerprint,
                                                model=info.name, **options)
        if dim is None:
            raise ConfigError("a collection of external vectors needs its dimension")
        return self.store.create_collection(
            name, dim, fingerprint=fingerprint or EXTERNAL_FINGERPRINT,
            model=options.pop("model_name", EXTERNAL_MODEL), **options)

    def drop_collection(self, name: str) -> None:
        self.store.drop_collection(name)
        if self.ledger is not None and not self.read_only:
            self.ledger.drop_collection(name)

    def upsert(self, collection: str, ids: Sequence[str], vectors: np.ndarray,
               payloads: Sequence[Mapping[str, Any]] | None = None, *,
               fingerprint: str | None = None) -> int:
        """Raw vectors: a collection of external vectors takes them as they are; a
        collection bound to a model only with that model's fingerprint."""
        fingerprint = fingerprint or external_fingerprint(self.store, collection)
        return self.store.upsert(collection, ids, vectors, payloads, fingerprint=fingerprint)

    def delete(self, collection: str, ids: Sequence[str] | None = None,
               filter: Filter | None = None) -> int:
        return self.store.delete(collection, ids=ids, filter=filter)

    def update_payload(self, collection: str, patch: Mapping[str, Any],
                       ids: Sequence[str] | None = None, filter: Filter | None = None) -> int:
        return self.store.update_payload(collection, patch, ids=ids, filter=filter)

    def get_points(self, collection: str, ids: Sequence[str],
                   with_vectors: bool = False) -> list[Point]:
        return self.store.get(collection, ids, with_vectors=with_vectors)

    def scan(self, collection: str, page_size: int = 1000, filter: Filter | None = None,
             with_vectors: bool = False) -> Iterator[list[Point]]:
        return self.store.scan(collection, page_size, filter, with_vectors)

    def count(self, collection: str, filter: Filter | None = None) -> int:
        return self.store.count(collection, filter)

    def list_collections(self) -> list[CollectionInfo]:
        return self.store.list_collections()

    def get_collection(self, name: str) -> CollectionInfo:
        return self.store.get_collection(name)

    def create_alias(self, alias: str, collection: str) -> None:
        self.store.create_alias(alias, collection)

    def repoint_alias(self, alias: str, collection: str) -> str:
        return self.store.repoint_alias(alias, collection)

    def delete_alias(self, alias: str) -> None:
        self.store.delete_alias(alias)

    def list_aliases(self) -> dict[str, str]:
        return self.store.list_aliases()

    def resolve(self, name: str) -> str:
        return self.store.resolve(name)

    # --- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Release the store (and its writer lock), the ledger and API clients."""
        try:
            if self.ledger is not None:
                self.ledger.close()
        finally:
            self.store.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open(store: str | Path | None = None, *, read_only: bool = False,
         settings: Settings | None = None, **overrides: Any) -> Client:
    """Open a store (a directory or a URL; default ``./.embedops`` or ``EMBEDOPS_STORE``)
    and its ledger. ``overrides`` are settings (``model=``, ``ledger=`` ...)."""
    if settings is None:
        settings = load_settings(store=store, **overrides)
    elif store is not None or overrides:
        settings = settings.model_copy(update={**overrides, **(
            {"store": str(store)} if store is not None else {})})
    return Client(settings, read_only=read_only)


def _plain_json(value: Any) -> bool:
    import json

    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        return False
    return True
