"""The batch driver: sources -> preprocess -> chunk -> embed -> upsert -> ledger commit.

Two stages connected by a bounded queue: a reader thread decodes, cleans, hashes and
chunks documents while the calling thread embeds and writes. A batch holds whole
documents (about ``batch_size`` chunks); each batch is written to the store first and
committed to the ledger second, so a crash at any moment costs at most the batch in
flight, which the next run embeds again under the same ids.

Once every document of a file is committed, the file's byte digest is recorded (with a
digest of the preprocessing options and chunking plan); a later run skips a file whose
bytes and options are unchanged without decoding it, which makes re-runs over unchanged
corpora cost little more than reading the files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import queue
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from embedops.config import Settings
from embedops.embedders import Embedder, load_embedder, load_matching_embedder, load_tokenizer
from embedops.embedders.weights import canonical_name
from embedops.errors import (
    CollectionChanged,
    CollectionExists,
    CollectionNotFound,
    ModelConflict,
    WrongCollectionKind,
)
from embedops.ingest.chunking import Chunker, make_chunker
from embedops.ingest.ordering import WriteGate
from embedops.ingest.sources import SourceFile, file_digest, scan
from embedops.ingest.stages import Work, classify
from embedops.ingest.targets import EmbedderPool, extra_targets
from embedops.ingest.write import Target, delete_documents, write_documents
from embedops.ledger import DocRecord, Ledger
from embedops.ledger.claims import Claims, retry_pauses
from embedops.preprocess.pipeline import PreprocessOptions, preprocess_file, source_id
from embedops.store.protocol import (
    EXTERNAL_MODEL,
    CollectionInfo,
    VectorStore,
    room_waits_deferred,
    still_named,
)
from embedops.types import Document, Rejection


@dataclass(frozen=True)
class IngestOptions:
    collection: str = "default"
    dtype: str = "float32"
    batch_size: int = 512
    prune: bool = False
    include: Sequence[str] = ()
    exclude: Sequence[str] = ()
    preprocess: PreprocessOptions = field(default_factory=PreprocessOptions)
    # Read every file even when its bytes are unchanged (``dlq retry`` does).
    reread_unchanged: bool = False
    # The model the caller asked for explicitly; an existing collection of another
    # model is refused (a model change is a migration), None accepts the collection's.
    model: str | None = None


@dataclass
class IngestSummary:
    """Counts of one run (the `--json` output of `embedops ingest`)."""

    collection: str = ""
    documents_new: int = 0
    documents_changed: int = 0
    documents_unchanged: int = 0
    documents_metadata_updated: int = 0
    documents_failed: int = 0
    documents_deleted: int = 0
    chunks_embedded: int = 0
    chunks_deleted: int = 0
    seconds: float = 0.0
    chunks_per_second: float = 0.0
    files_found: int = 0
    files_taken: int = 0
    files_skipped: dict[str, int] = field(default_factory=dict)

    @property
    def documents_taken(self) -> int:
        """Documents this run ingested or found already ingested (not the failed)."""
        return (self.documents_new + self.documents_changed + self.documents_unchanged
                + self.documents_metadata_updated)

    def to_dict(self) -> dict[str, object]:
        return {**asdict(self), "documents_taken": self.documents_taken}


# (event, amount): "files" (total), "file" (one read), "document" (done), "planned"
# (chunks to embed, known once a document is chunked), "chunks" (embedded)
Progress = Callable[[str, int], None]
_DONE = object()


@dataclass(frozen=True)
class _FileDone:
    """Every document of a file has been queued. ``digest`` None: not recordable.

    A file with rejected parts is recorded too: the same bytes would be rejected the same
    way; ``dlq retry`` re-reads them on request. A file with a document that failed to
    embed (possibly a transient failure) is not recorded, so the next run tries again."""

    source: SourceFile
    source_id: str
    digest: str | None


@dataclass(frozen=True)
class _FileSkipped:
    """A file whose bytes and options are unchanged since all its documents committed."""

    source: SourceFile
    doc_ids: list[str]


class BatchIngest:
    """One ingest run into one collection. Not thread-safe; one run at a time."""

    def __init__(self, store: VectorStore, ledger: Ledger, settings: Settings,
                 options: IngestOptions, progress: Progress | None = None,
                 gate: WriteGate | None = None) -> None:
        """``gate`` orders this run against real-time writes in the same process (see
        ``ingest/ordering.py``); without it the run behaves as a lone writer."""
        self.store, self.ledger, self.settings, self.options = store, ledger, settings, options
        self.gate = gate
        self.progress = progress or (lambda event, n: None)
        self.summary = IngestSummary()
        self._info: CollectionInfo | None = self._existing_collection()
        self._check_model()
        self._embedder: Embedder | None = None
        self._chunker: Chunker | None = None
        self._pool: EmbedderPool | None = None  # embedders of dual-write targets
        self._embedder_lock = threading.Lock()
        self._seen: set[str] = set()
        self._claimed: set[str] = set()  # ids a source of this run has given
        self._ready_files: list[_FileDone] = []
        self._failed_sources: set[str] = set()
        self._options_hash = ""
        self._claims = Claims(ledger, settings.claim_ttl_s)
        self._deferred: list[Work] = []  # documents another run was embedding
        self._held_files: list[_FileDone] = []  # recorded once the deferred are done

    def _existing_collection(self) -> CollectionInfo | None:
        try:
            return self.store.get_collection(self.options.collection)
        except CollectionNotFound:
            return None

    def _check_model(self) -> None:
        info, wanted = self._info, self.options.model
        if info is None:
            return
        if info.model == EXTERNAL_MODEL:
            raise WrongCollectionKind(
                f"collection {info.name!r} holds vectors computed elsewhere (model "
                "external): documents cannot be ingested into it; write them to a "
                "collection of a model")
        if wanted is not None and canonical_name(wanted) != info.model:
            raise ModelConflict(
                f"collection {info.name!r} holds vectors of {info.model}, not {wanted}: "
                "vectors of two models never share a collection. Ingest without --model "
                f"to use {info.model}, or move the collection to {wanted} with "
                f"`embedops migrate start {info.name} --to {wanted}`")

    @property
    def collection(self) -> str:
        return self._info.name if self._info else self.options.collection

    # --- the run -------------------------------------------------------------------------

    def run(self, paths: Sequence[Path]) -> IngestSummary:
        """Ingest every document under ``paths``; bad documents become dead letters."""
        found = scan(paths, self.options.include, self.options.exclude)
        self.summary.files_found = found.found
        self.summary.files_skipped = dict(sorted(found.skipped.items()))
        return self.run_files(found.files)

    def run_files(self, files: Sequence[SourceFile]) -> IngestSummary:
        """Ingest the given source files (ids relative to each file's root)."""
        started = time.perf_counter()
        self.summary.files_taken = len(files)
        self.progress("files", len(files))
        run_id = self.ledger.start_run(self.collection)
        status = "failed"
        try:
            items, stop, reader = self._start_reader(files)
            try:
                self._consume(items)
            except BaseException:
                _stop_reader(items, stop, reader)
                raise
            if self.options.prune:
                self._prune()
            status = "done"
        finally:
            self.summary.collection = self.collection
            self.summary.seconds = round(time.perf_counter() - started, 3)
            self.summary.chunks_per_second = round(
                self.summary.chunks_embedded / max(self.summary.seconds, 1e-9), 2)
            self.ledger.finish_run(run_id, status, self.summary.to_dict())
        return self.summary

    def _prepare_reading(self) -> tuple[dict[str, DocRecord], dict[str | None, list[str]],
                                        Chunker, ReadPlan]:
        """What reading this run needs from the ledger: the collection's document records,
        their ids by source, the chunker and the :class:`ReadPlan`."""
        known = self.ledger.documents(self.collection) if self._info else {}
        digests = self.ledger.source_digests(self.collection) if self._info else {}
        by_source: dict[str | None, list[str]] = {}
        for record in known.values():
            by_source.setdefault(record.source, []).append(record.doc_id)
        model = self._info.model if self._info else self.settings.model
        chunker = make_chunker(self.settings, load_tokenizer(model, self.settings.cache_dir))
        self._chunker = chunker
        self._options_hash = _options_hash(chunker.plan, self.options.preprocess)
        plan = ReadPlan(digests, self._options_hash, self.options.preprocess,
                        self.options.reread_unchanged)
        return known, by_source, chunker, plan

    def _start_reader(self, files: Sequence[SourceFile]
                      ) -> tuple[queue.Queue[object], threading.Event, threading.Thread]:
        """A thread reading ``files`` into a queue (bounded: it waits while the queue is
        full), the event that stops it after its current item, and the thread."""
        known, by_source, chunker, plan = self._prepare_reading()
        out: queue.Queue[object] = queue.Queue(maxsize=4096)
        stop = threading.Event()

        def read_file(source: SourceFile) -> None:
            mark = 0

            def take_mark() -> None:
                nonlocal mark
                mark = self.gate.read_mark() if self.gate else 0

            for item in read_source(source, plan, by_source, take_mark):
                if stop.is_set():
                    return
                if isinstance(item, Document):
                    work = classify(item, known.get(item.id), chunker, self._load_embedder)
                    if work.chunks:
                        self.progress("planned", len(work.chunks))
                    work.read_mark = mark
                    work.origin = (str(source.path), str(source.root))
                    out.put(work)
                else:
                    out.put(item)

        def read() -> None:
            try:
                for source in files:
                    if stop.is_set():
                        break
                    read_file(source)
            except BaseException as exc:  # handed to the consumer, which re-raises it
                out.put(exc)
            finally:
                out.put(_DONE)

        reader = threading.Thread(target=read, name="embedops-reader", daemon=True)
        reader.start()
        return out, stop, reader

    def _consume(self, items: queue.Queue[object]) -> None:
        pending: list[Work] = []
        pending_chunks = 0
        while (item := items.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            if isinstance(item, tuple | _FileDone | _FileSkipped):
                self._handle_side_item(item)
                continue
            assert isinstance(item, Work)
            if item.doc.id in self._claimed:
                # Two sources of this run give the same id: the first one wins, so the id
                # stays one document with one set of chunks (no orphans, no flip-flop).
                self._duplicate(item)
                continue
            self._claimed.add(item.doc.id)
            self._seen.add(item.doc.id)
            if item.status == "unchanged":
                self.summary.documents_unchanged += 1
                self.progress("document", 1)
                continue
            pending.append(item)
            pending_chunks += len(item.chunks)
            if pending_chunks >= self.options.batch_size or len(pending) >= 1000:
                self._flush(pending)
                pending, pending_chunks = [], 0
        if pending:
            self._flush(pending)
        self._finish_deferred()
        ready, self._held_files = self._held_files + self._ready_files, []
        self._ready_files = []
        self._record_files(ready)

    def _handle_side_item(self, item: object) -> None:
        if isinstance(item, _FileDone):
            self._ready_files.append(item)
            self.progress("file", 1)
            return
        if isinstance(item, _FileSkipped):
            self._seen.update(item.doc_ids)
            self._claimed.update(item.doc_ids)
            self.summary.documents_unchanged += len(item.doc_ids)
            self.progress("document", len(item.doc_ids))
            self.progress("file", 1)
            return
        assert isinstance(item, tuple)
        what, source = item
        if isinstance(what, Rejection):
            self._seen.add(what.source)
            with self._gated():
                self.ledger.record_dead_letter(self.collection, what.source,
                                               str(source.path), what.stage, what.reason,
                                               what.detail, root=str(source.root))
            self.summary.documents_failed += 1
            self.progress("document", 1)

    # --- one batch -----------------------------------------------------------------------

    def _flush(self, batch: list[Work]) -> None:
        # Files whose end was seen before this batch have all their documents in it or
        # in earlier batches: once it is written, they are complete (unless a document
        # of theirs waits for another run: then they are recorded at the end).
        ready, self._ready_files = self._ready_files, []
        name = self.collection
        batch, held = self._claim(name, batch)
        # (a write that fills the store's pending segment waits for room once the gate and
        # the claims are released: see ordering)
        with room_waits_deferred(self.store):
            try:
                if batch and self.gate is None:
                    self._write(batch, {})
                elif batch:
                    assert self.gate is not None
                    with self._gated():
                        admitted, versions = self.gate.admit(self.collection, batch)
                        self.progress("document", len(batch) - len(admitted))
                        kept = {id(w) for w in admitted}
                        self._failed_sources.update(str(w.doc.source) for w in batch
                                                    if id(w) not in kept)
                        self._write(admitted, versions)
            finally:
                self._claims.release(name, held)
        if self._deferred:
            self._held_files += ready
        else:
            self._record_files(ready)

    def _check_unchanged(self) -> None:
        """Under the write gate: raise ``CollectionChanged`` unless the collection this
        run resolved is still there under its name, the same one (another writer of the
        service may have dropped it, made it again, or renamed it behind an alias while
        the gate was free). A swap that points the run's alias at another collection is
        no change: the run writes on to the collection it started with, and dual-write
        keeps the other one current."""
        if self._info is None:
            return
        if still_named(self.store, self._info.name, self._info) is None:
            raise CollectionChanged(
                f"collection {self._info.name!r} was dropped or renamed while this run "
                "waited to write; nothing more was written to it: run it again")

    # --- claims (several runs over overlapping sources) ------------------------------------

    def _claim(self, name: str, batch: list[Work]) -> tuple[list[Work], set[str]]:
        """The documents of ``batch`` to write now, and the ids claimed for them. A
        document another live run holds is deferred; one whose ledger record changed
        since this run read it (another run committed it) is classified again, and
        counted as unchanged when that run wrote this same content."""
        held = self._claims.take(name, [w.doc.id for w in batch])
        self._deferred += [w for w in batch if w.doc.id not in held]
        mine = [w for w in batch if w.doc.id in held]
        current = self.ledger.documents(name, [w.doc.id for w in mine]) if mine else {}
        todo = []
        for work in mine:
            if self._refresh(work, current.get(work.doc.id)):
                todo.append(work)
            else:
                self.summary.documents_unchanged += 1
                self.progress("document", 1)
        return todo, held

    def _refresh(self, work: Work, record: DocRecord | None) -> bool:
        """Bring ``work`` up to date with the ledger's ``record``; False when nothing is
        left to write."""
        if record == work.previous:
            return True
        if record is not None and (record.content_hash, record.plan) == (work.digest,
                                                                        work.plan):
            work.previous, work.chunks = record, []
            work.status = "unchanged" if record.meta_hash == work.meta_digest else "metadata"
            return work.status != "unchanged"
        if not work.chunks:  # read as a metadata-only change: its content is new now
            assert self._chunker is not None
            work.chunks = classify(work.doc, None, self._chunker, lambda: None).chunks
        work.previous, work.status = record, "changed" if record else "new"
        return True

    def _finish_deferred(self) -> None:
        """Write the documents other runs held, once their claims are gone: most are
        then committed by those runs already (unchanged); a dead run's are taken over."""
        pauses = retry_pauses()
        while self._deferred:
            waiting, self._deferred = self._deferred, []
            self._flush(waiting)
            if self._deferred:
                time.sleep(next(pauses))

    def _record_files(self, files: list[_FileDone]) -> None:
        """Remember the digests of files that were read whole and fully committed."""
        complete = [(str(f.source.path), f.source_id, f.digest, self._options_hash)
                    for f in files if f.digest and f.source_id not in self._failed_sources]
        if complete and self._info is not None:
            with self._gated():
                self.ledger.record_sources(self.collection,
                                           complete,  # type: ignore[arg-type]
                                           asdict(self.options.preprocess))

    @contextmanager
    def _gated(self) -> Iterator[None]:
        """With a gate: the gate held, and the run's collection checked unchanged under
        it (``_check_unchanged``), around everything the run writes or records in the
        ledger (a batch, files read, dead letters, a prune). Without one (a lone
        writer): nothing."""
        if self.gate is None:
            yield
            return
        with self.gate.lock:
            self._check_unchanged()
            yield

    def _write(self, batch: list[Work], versions: dict[str, int]) -> None:
        result = write_documents(self.store, self.ledger, self._targets(), batch,
                                 self._dead_letter)
        self.summary.chunks_deleted += result.chunks_deleted
        if self.gate is not None:
            self.gate.applied(self.collection,
                              {w.doc.id: versions[w.doc.id] for w in result.committed})
        self._count(result.committed, result.chunks_embedded)

    def _targets(self) -> list[Target]:
        """This run's collection, then the collections a model migration keeps current
        beside it (dual-write)."""
        embedder = self._get_embedder()
        assert self._info is not None and self._chunker is not None
        return [Target(self._info, embedder, self._chunker), *self._extra_targets()]

    def _extra_targets(self) -> list[Target]:
        if self._info is None:
            return []
        if self._pool is None:
            self._pool = EmbedderPool(self.settings)
        return extra_targets(self.store, self._pool, self.ledger, self._info.name)

    def _duplicate(self, work: Work) -> None:
        """A second document with an id this run already took: a dead letter of its own
        (keyed by id and source, so committing the first one does not clear it)."""
        self._record_failure(work, f"{work.doc.id}@{work.doc.source}", "parse",
                             "duplicate_id", f"document id {work.doc.id!r} already came "
                             "from another source in this run; the first one is kept")

    def _dead_letter(self, work: Work, stage: str, reason: str, detail: str) -> None:
        self._record_failure(work, work.doc.id, stage, reason, detail)
        if self.gate is not None:
            self.gate.failed(self.collection, work.doc.id, f"{stage}: {reason}")

    def _record_failure(self, work: Work, letter_id: str, stage: str, reason: str,
                        detail: str) -> None:
        """Dead-letter ``work`` under ``letter_id``; its file will be read again next run."""
        self._failed_sources.add(str(work.doc.source))
        path, root = work.origin or (work.doc.source, None)
        with self._gated():
            self.ledger.record_dead_letter(self.collection, letter_id, path, stage, reason,
                                           detail, root=root)
        self.summary.documents_failed += 1
        self.progress("document", 1)

    def _count(self, works: list[Work], chunks: int) -> None:
        for work in works:
            name = {"new": "documents_new", "changed": "documents_changed",
                    "metadata": "documents_metadata_updated"}[work.status]
            setattr(self.summary, name, getattr(self.summary, name) + 1)
        self.summary.chunks_embedded += chunks
        self.progress("document", len(works))
        self.progress("chunks", chunks)

    # --- embedder and collection ---------------------------------------------------------

    def _load_embedder(self) -> Embedder:
        """Loaded on first use, so a run with nothing to embed never loads a model. The
        reader thread calls this before it chunks the first document to embed: importing
        an inference engine while the tokenizer's thread pool runs in another thread can
        crash the process, so load and tokenize happen on the same thread."""
        with self._embedder_lock:
            if self._embedder is None:
                self._extra_targets()  # load a migration's models on this thread too
                s = self.settings
                if self._info:
                    self._embedder = load_matching_embedder(
                        self._info.model, self._info.fingerprint, s.cache_dir, s.backend,
                        s.batch_size, settings=s)
                else:
                    self._embedder = load_embedder(s.model, s.cache_dir, s.backend,
                                                   s.batch_size, settings=s)
            return self._embedder

    def _get_embedder(self) -> Embedder:
        """The embedder, creating the collection on the first write if it is new (or
        taking the one another writer of the store created meanwhile, after checking
        its model)."""
        embedder = self._load_embedder()
        if self._info is None:
            info = embedder.info
            try:
                self._info = self.store.create_collection(
                    self.options.collection, info.dim, fingerprint=info.fingerprint,
                    dtype=self.options.dtype, model=info.name)  # type: ignore[arg-type]
            except CollectionExists:
                self._info = self._existing_collection()
                self._check_model()
                return self._load_embedder()
        return embedder

    def _prune(self) -> None:
        with self._gated():
            gone = [d for d in self.ledger.documents(self.collection) if d not in self._seen]
            if gone:
                names = [self.collection, *self.ledger.dual_write_targets(self.collection)]
                self.summary.chunks_deleted += delete_documents(self.store, self.ledger,
                                                                names, gone)
        self.summary.documents_deleted += len(gone)


READER_STOP_S = 30.0  # the longest a failed run waits for its reader's current item


def _stop_reader(items: queue.Queue[object], stop: threading.Event,
                 reader: threading.Thread) -> None:
    """Stop a reader thread whose consumer failed (it would otherwise wait for good to
    put into a full queue, holding what it read): it ends after its current item, the
    queue drained meanwhile so that an item it is waiting to put goes in. A cluster
    run's current item is a batch its workers embed: past ``READER_STOP_S`` the error
    goes up anyway, and the thread (a daemon) ends when that batch does."""
    stop.set()
    deadline = time.monotonic() + READER_STOP_S
    while reader.is_alive() and time.monotonic() < deadline:
        with contextlib.suppress(queue.Empty):
            items.get(timeout=0.05)


@dataclass(frozen=True)
class ReadPlan:
    """What reading a source file needs besides the file: the ledger's file digests
    (path -> (source id, byte digest, options hash)) and this run's options. Plain data,
    so the workers of a cluster job read with the same rules."""

    digests: Mapping[str, tuple[str, str, str]]
    options_hash: str
    preprocess: PreprocessOptions
    reread_unchanged: bool = False

    def unchanged(self, source: SourceFile, rel: str, digest: str | None) -> bool:
        """True when every document of ``source`` committed under these same bytes and
        options: the file need not be read."""
        return bool(digest) and not self.reread_unchanged and (
            self.digests.get(str(source.path)) == (rel, digest, self.options_hash))


def read_source(source: SourceFile, plan: ReadPlan, by_source: Mapping[str | None, list[str]],
                before_read: Callable[[], None] = lambda: None) -> Iterator[object]:
    """The items one source file gives, in order: a ``_FileSkipped`` (with the ids
    ``by_source`` knows for it) when :meth:`ReadPlan.unchanged`; else its rejections as
    ``(Rejection, source)``, its ``Document``s, then ``_FileDone``. ``before_read`` runs
    right before the file's content is read."""
    rel = source_id(source.path, source.root)
    digest = file_digest(source.path)
    if plan.unchanged(source, rel, digest):
        yield _FileSkipped(source, list(by_source.get(rel, [])))
        return
    before_read()
    result = preprocess_file(source.path, source.root, plan.preprocess)
    for rejection in result.rejections:
        yield (rejection, source)
    yield from result.documents
    yield _FileDone(source, rel, digest)


def _options_hash(plan: str, options: PreprocessOptions) -> str:
    """Digest of everything besides a file's bytes that decides its documents' chunks."""
    blob = json.dumps([plan, asdict(options)], sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]
