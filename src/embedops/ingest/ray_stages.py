"""The stages of a cluster ingest job, as Ray Data runs them on its workers.

Each stage is a callable over a batch of rows in numpy format; a row carries one item
of the local runner's stream (a document, a rejection, the end or skip of a file) in
the ``item`` column, so the driver can hand the stream to the same bookkeeping as the
local runner (``ingest/batch.py``). Nothing here imports Ray: the stages are plain
classes, which keeps them testable without a cluster.

- :func:`read_files` (CPU tasks): read, decode, validate and clean source files with the
  local runner's :func:`~embedops.ingest.batch.read_source`.
- :class:`ChunkStage` (CPU actors): classify each document against the ledger snapshot
  the driver took and chunk it with the model's tokenizer (:func:`classify`).
- :class:`EmbedStage` (one actor per GPU, or per CPU slot): loads the model once and
  embeds the new and changed documents' chunks (document role), isolating failures.
- :class:`WriteStage` (worker writes, remote stores only): commits batches through the
  one write stage, ``write_documents``, via :class:`ClusterWriter`.
"""

from __future__ import annotations

import queue
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from embedops.config import Settings, mask_url
from embedops.embedders import Embedder, load_embedder, load_matching_embedder, load_tokenizer
from embedops.embedders.base import EmbedderInfo, Tokenizer
from embedops.errors import ConfigError
from embedops.ingest.batch import (
    _DONE,
    BatchIngest,
    IngestOptions,
    IngestSummary,
    ReadPlan,
    read_source,
)
from embedops.ingest.chunking import make_chunker
from embedops.ingest.precomputed import PrecomputedEmbedder
from embedops.ingest.sources import SourceFile
from embedops.ingest.stages import Failure, Work, classify, embed_isolating_failures
from embedops.ledger import DocRecord, Ledger
from embedops.ledger.postgres import ledger_exists, open_ledger
from embedops.store import open_store
from embedops.store.protocol import CollectionInfo, VectorStore
from embedops.types import Document

Batch = dict[str, np.ndarray]


def objects(values: Sequence[Any]) -> np.ndarray:
    """A 1-d object column (numpy would otherwise unpack tuples into a 2-d array)."""
    column = np.empty(len(values), dtype=object)
    column[:] = list(values)
    return column


@dataclass(frozen=True)
class Unchunked:
    """A document read from a file, on its way to the chunk stage."""

    doc: Document
    origin: tuple[str, str]


@dataclass(frozen=True)
class Embedded:
    """What the embed stage adds to a document: its vectors (one row per chunk), or why
    it could not be embedded, and the identity of the embedder that ran."""

    vectors: np.ndarray | None
    failure: Failure | None
    info: EmbedderInfo | None


@dataclass
class Outcome:
    """What a write actor did with one batch: summary counts to add, the ids it saw
    and the sources whose documents failed (their files are read again next run)."""

    counts: dict[str, int]
    seen: list[str]
    failed_sources: list[str]


# --- read and chunk ---------------------------------------------------------------------


def read_files(batch: Batch, plan: ReadPlan) -> Batch:
    """Rows of files (``path``, ``root``) -> rows of items, in file order."""
    items: list[object] = []
    for path, root in zip(batch["path"], batch["root"], strict=True):
        source = SourceFile(Path(path), Path(root))
        for item in read_source(source, plan, {}):
            if isinstance(item, Document):
                item = Unchunked(item, (str(source.path), str(source.root)))
            items.append(item)
    return {"item": objects(items)}


class ChunkStage:
    """Classify documents against the ledger snapshot and chunk the new and changed ones
    with the tokenizer of the collection's model (loaded once per actor)."""

    def __init__(self, settings: Settings, model: str, known: dict[str, DocRecord]) -> None:
        self.chunker = make_chunker(settings, load_tokenizer(model, settings.cache_dir))
        self.known = known

    def __call__(self, batch: Batch) -> Batch:
        items = []
        for item in batch["item"]:
            if isinstance(item, Unchunked):
                work = classify(item.doc, self.known.get(item.doc.id), self.chunker,
                                lambda: None)
                work.origin = item.origin
                item = work
            items.append(item)
        return {"item": objects(items)}


# --- embed ------------------------------------------------------------------------------


def cluster_embedder(settings: Settings, collection: CollectionInfo | None) -> Embedder:
    """The embedder a job's vectors come from: the collection's (same fingerprint), or
    the settings' model for a new collection — as the local runner loads it."""
    s = settings
    if collection is not None:
        return load_matching_embedder(collection.model, collection.fingerprint, s.cache_dir,
                                      s.backend, s.batch_size, settings=s)
    return load_embedder(s.model, s.cache_dir, s.backend, s.batch_size, settings=s)


class EmbedStage:
    """Loads the model once; embeds the chunks of every new or changed document of a
    batch in one call (one bad document is isolated, see ``embed_isolating_failures``)."""

    def __init__(self, settings: Settings, collection: CollectionInfo | None) -> None:
        self.embedder = cluster_embedder(settings, collection)

    def __call__(self, batch: Batch) -> Batch:
        items = list(batch["item"])
        works = [w for w in items if isinstance(w, Work) and w.status in ("new", "changed")]
        failures: dict[int, Failure] = {}

        def failed(work: Work, stage: str, reason: str, detail: str) -> None:
            failures[id(work)] = (stage, reason, detail)

        vectors = {id(w): m for w, m in embed_isolating_failures(self.embedder, works, failed)}
        info = self.embedder.info
        out = [Embedded(vectors.get(id(i)), failures.get(id(i)), info)
               if isinstance(i, Work) and i.status in ("new", "changed") else None
               for i in items]
        return {"item": objects(items), "embedded": objects(out)}


def collection_info_embedder(info: CollectionInfo) -> EmbedderInfo:
    """An identity for a batch with nothing to embed (metadata updates only)."""
    return EmbedderInfo(name=info.model, revision="", dim=info.dim, max_tokens=0,
                        modality="text", backend="cluster", source="",
                        fingerprint=info.fingerprint)


# --- write ------------------------------------------------------------------------------


class ClusterWriter(BatchIngest):
    """The local runner's consumer with the embed actors' vectors: batches go through
    the same ``_flush`` -> ``write_documents`` -> ledger commit, dead letters and file
    bookkeeping; the model is never loaded here (dual-write targets excepted, whose
    models load where the write runs)."""

    def __init__(self, store: VectorStore, ledger: Ledger, settings: Settings,
                 options: IngestOptions, progress: Any = None) -> None:
        super().__init__(store, ledger, settings, options, progress)
        self._embedded: dict[int, tuple[Work, Embedded]] = {}
        self._worker_info: EmbedderInfo | None = None
        self._tokenizer: Tokenizer | None = None

    def take(self, work: Work, embedded: Embedded | None) -> None:
        """Remember what the embed stage computed for ``work`` until it is written."""
        if embedded is not None:
            self._embedded[id(work)] = (work, embedded)
            self._worker_info = embedded.info or self._worker_info

    def _load_embedder(self) -> Embedder:
        if self._embedder is None:
            raise RuntimeError("cluster writes take their vectors from the embed stage")
        return self._embedder

    def _write(self, batch: list[Work], versions: dict[str, int]) -> None:
        pairs = [p for w in batch if (p := self._embedded.pop(id(w), None)) is not None]
        info = self._worker_info
        if info is None:
            assert self._info is not None, "a new collection's first batch has vectors"
            info = collection_info_embedder(self._info)
        if self._tokenizer is None:
            model = self._info.model if self._info is not None else self.settings.model
            self._tokenizer = load_tokenizer(model, self.settings.cache_dir)
        if self._chunker is None:  # a write actor reads nothing: the target's chunker
            self._chunker = make_chunker(self.settings, self._tokenizer)
        self._embedder = PrecomputedEmbedder(
            info, self._tokenizer, [(w, e.vectors, e.failure) for w, e in pairs])
        try:
            super()._write(batch, versions)
        finally:
            self._embedder = None

    def _duplicate(self, work: Work) -> None:
        self._embedded.pop(id(work), None)
        super()._duplicate(work)


class WriteStage:
    """Worker-side writes (a remote store with a ledger every worker reaches): each
    actor opens the store and the ledger once and commits its batches through a
    :class:`ClusterWriter`. Files' ends pass through to the driver, which records a
    file as complete once every row before its end has been written."""

    def __init__(self, settings: Settings, options: IngestOptions, ledger_path: str) -> None:
        if not ledger_exists(ledger_path):  # never start a second, empty ledger
            raise ConfigError(f"the ledger {mask_url(ledger_path)} is not reachable from "
                              "this worker: write on the driver, or share the ledger")
        self.store = open_store(settings.store)
        self.ledger = open_ledger(ledger_path)
        self.writer = ClusterWriter(self.store, self.ledger, settings, options)

    def __call__(self, batch: Batch) -> Batch:
        writer = self.writer
        before = _counts(writer.summary)
        seen_before = set(writer._seen)
        failed_before = set(writer._failed_sources)
        works: queue.Queue[object] = queue.Queue()
        passed: list[object] = []
        for item, embedded in zip(batch["item"], batch["embedded"], strict=True):
            if isinstance(item, Work):
                writer.take(item, embedded)
                works.put(item)
            else:
                passed.append(item)
        works.put(_DONE)
        writer._consume(works)
        after = _counts(writer.summary)
        outcome = Outcome({k: after[k] - before[k] for k in after if after[k] != before[k]},
                          sorted(writer._seen - seen_before),
                          sorted(writer._failed_sources - failed_before))
        return {"item": objects([outcome, *passed])}


def _counts(summary: IngestSummary) -> dict[str, int]:
    return {f.name: getattr(summary, f.name) for f in fields(summary)
            if isinstance(getattr(summary, f.name), int)}
