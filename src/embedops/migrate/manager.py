"""The migration operations of one store: plan, start, backfill, pause, resume,
evaluate, swap, rollback, finalize. The CLI, the service's admin endpoints and its
background runner all call these.

Every step commits its state to the ledger before and after touching the store, and
:meth:`Migrations.reconcile` repairs the one gap a crash can leave (an alias already
repointed while the ledger still says ``ready``), so a migration killed at any moment
shows the right phase and resumes without redoing committed batches.

Several processes may drive one migration (service replicas on a shared ledger, or a
foreground ``migrate start`` beside a service): each backfill batch is taken under a
claim on the migration (``ledger/claims.py``), so one process at a time reads the
cursor, embeds the batch and commits it; the others wait for the claim. A process that
dies holding it is taken over as the claims module describes.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from embedops.client import Client
from embedops.embedders import Embedder, load_embedder
from embedops.embedders.factory import is_api_model
from embedops.errors import CollectionNotFound, MigrationError, MigrationNotFound, StoreError
from embedops.ingest.precomputed import embed_ahead
from embedops.ingest.stages import Work, classify
from embedops.ingest.targets import EmbedderPool
from embedops.ingest.write import Target, write_documents
from embedops.ledger import Ledger, StoredDocument
from embedops.ledger.claims import Claims
from embedops.ledger.migrations import MigrationRecord
from embedops.migrate.evaluation import compare
from embedops.migrate.state import check_action
from embedops.store import EXTERNAL_MODEL, RenameBehindAlias, estimate_memory
from embedops.store.protocol import CollectionInfo, VectorStore, room_waits_deferred
from embedops.types import Document

# Progress callback: (documents done in the shadow, documents in live, chunks embedded now)
Progress = Callable[[int, int, int], None]
# List prices in USD per 1M tokens, for `plan` (a target not listed has no estimate).
API_PRICES_PER_MTOK: dict[str, float] = {
    "openai/text-embedding-3-small": 0.02,
    "openai/text-embedding-3-large": 0.13,
    "cohere/embed-english-v3.0": 0.10,
}
# Claims on migrations live under this name, which no collection can have.
MIGRATION_CLAIMS = "@migrations"
CLAIM_WAIT_S = 0.5  # between two looks at a backfill another process is running


def _now() -> datetime:
    return datetime.now(UTC)


def slug(model: str) -> str:
    """A collection-name-safe form of a model name."""
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", model.split("/")[-1]).strip("-.")[:60] or "model"


class Migrations:
    """Migrations of the store a :class:`Client` holds (read-write). ``pool`` shares
    embedders and the model lock with a service; ``write_lock`` orders backfill writes
    against the service's other writers (its write gate)."""

    def __init__(self, client: Client, pool: EmbedderPool | None = None,
                 write_lock: Any = None, ledger: Ledger | None = None) -> None:
        """A read-only client serves ``status`` and ``list``; every step needs a
        read-write one. ``ledger``: a handle of the client's ledger for this thread."""
        ledger = ledger or client.ledger
        if ledger is None:
            raise StoreError("migrations need the store's ledger")
        self.client, self.settings = client, client.settings
        self.store: VectorStore = client.store
        self.ledger: Ledger = ledger
        self.pool = pool or EmbedderPool(client.settings)
        self.write_lock = write_lock if write_lock is not None else threading.RLock()
        self.claims = Claims(ledger, client.settings.claim_ttl_s)

    # --- reading ---------------------------------------------------------------------------

    def current(self, alias: str) -> MigrationRecord:
        """The active migration of ``alias``, else its latest; MigrationError if none."""
        found = self.ledger.active_migration(alias) or next(
            iter(self.ledger.migrations(alias)), None)
        if found is None:
            raise MigrationNotFound(f"no migration of {alias!r}; start one with "
                                    f"`embedops migrate start {alias} --to MODEL`")
        return found

    def active(self, alias: str) -> MigrationRecord:
        found = self.ledger.active_migration(alias)
        if found is None:
            raise MigrationNotFound(f"{alias!r} has no migration in progress")
        return found

    def list(self) -> list[dict[str, Any]]:
        return [self._summary(m) for m in self.ledger.migrations()]

    @staticmethod
    def summaries(store: VectorStore, ledger: Ledger) -> list[dict[str, Any]]:
        """``list`` from a store and a (read-only) ledger alone."""
        reader = Migrations.__new__(Migrations)
        reader.store, reader.ledger = store, ledger
        return reader.list()

    def status(self, alias: str) -> dict[str, Any]:
        """Phase, documents done / total, chunks embedded, rate, ETA, shadow lag behind
        live, the backfill's dead letters, the last evaluation."""
        record = self.current(alias)
        return self._summary(record, detail=True)

    def _summary(self, m: MigrationRecord, detail: bool = False) -> dict[str, Any]:
        live_docs = self.ledger.document_count(m.live)
        shadow_docs = self.ledger.document_count(m.shadow)
        out: dict[str, Any] = {
            "alias": m.alias, "migration_id": m.migration_id, "phase": m.phase,
            "live": m.live, "shadow": m.shadow, "model": m.model, "dtype": m.dtype,
            "documents_total": live_docs, "documents_done": min(shadow_docs, live_docs),
            "chunks_done": m.chunks_done, "gate_passed": m.gate_passed, "forced": m.forced,
            "created_at": m.created_at, "swapped_at": m.swapped_at,
            "retain_until": m.retain_until, "finished_at": m.finished_at,
        }
        if not detail:
            return out
        started = _started_backfilling(m)
        elapsed = (_now() - started).total_seconds() if started else 0.0
        rate = m.chunks_done / elapsed if elapsed > 0 and m.chunks_done else 0.0
        left = max(0, live_docs - shadow_docs)
        per_doc = m.chunks_done / max(1, m.docs_done) if m.docs_done else 1.0
        out.update({
            "shadow_lag_documents": left,
            "rate_chunks_per_second": round(rate, 2),
            "eta_seconds": round(left * per_doc / rate, 1) if rate and m.phase in (
                "backfilling",) else None,
            "dead_letters": len(self.ledger.dead_letters(m.shadow)),
            "max_rate": m.max_rate, "evaluation": m.evaluation, "history": m.history,
        })
        return out

    # --- plan and start --------------------------------------------------------------------

    def plan(self, alias: str, to_model: str, dtype: str | None = None,
             max_rate: float | None = None) -> dict[str, Any]:
        """What a migration to ``to_model`` would create and cost, measured here."""
        live = self._live_info(alias)
        target = self._load_target(to_model)
        info = target.info
        dtype = dtype or live.dtype
        chunks = max(live.points, 1)
        rate = self._measure(target, live.name)
        effective = min(rate, max_rate) if max_rate else rate
        vector_bytes = {"float32": 4, "float16": 2, "int8": 1}[dtype] * info.dim
        stats = self.store.stats(live.name)
        payload_bytes = max(0, int(stats.get("disk_bytes") or 0) // chunks - 4 * live.dim)
        tokens = sum(t for d in self.ledger.iter_stored(live.name) for (_, _, t) in d.spans)
        price = API_PRICES_PER_MTOK.get(to_model)
        return {
            "alias": alias,
            "live": {"collection": live.name, "model": live.model, "dim": live.dim,
                     "dtype": live.dtype, "points": live.points,
                     "documents": self.ledger.document_count(live.name)},
            "shadow": {"collection": self._shadow_name(alias, to_model), "model": info.name,
                       "dim": info.dim, "dtype": dtype, "fingerprint": info.fingerprint},
            "estimate": {
                "chunks": live.points,
                "memory_bytes": estimate_memory(live.points, info.dim, dtype),
                "disk_bytes": live.points * (vector_bytes + 4 * info.dim + payload_bytes),
                "chunks_per_second_measured": round(rate, 2),
                "max_rate": max_rate,
                "reembed_seconds": round(live.points / effective, 1) if effective else None,
                "tokens": tokens,
                "api_cost_usd": round(tokens / 1e6 * price, 4) if price is not None else (
                    None if is_api_model(to_model) else 0.0),
            },
        }

    def start(self, alias: str, to_model: str, dtype: str | None = None,
              max_rate: float | None = None) -> MigrationRecord:
        """Create the shadow collection for ``to_model`` and turn dual-write on. A name
        that is a collection (not an alias) becomes an alias of it first."""
        self.finalize_expired()
        if self.ledger.active_migration(alias) is not None:
            raise MigrationError(f"{alias!r} already has a migration in progress: see "
                                 f"`embedops migrate status {alias}`")
        live = self._live_info(alias)
        target = self._load_target(to_model)
        if target.info.fingerprint == live.fingerprint:
            raise MigrationError(f"{alias!r} already holds vectors of {to_model}")
        if live.name == alias:
            with self.write_lock:
                live = self._alias_in_place(alias, live)
        shadow = self._shadow_name(alias, to_model)
        migration_id = self.ledger.create_migration(
            alias, live.name, shadow, target.info.name, target.info.fingerprint,
            dtype or live.dtype, max_rate, self.ledger.document_count(live.name))
        self._ensure_shadow(self.ledger.active_migration(alias))  # type: ignore[arg-type]
        self.ledger.update_migration(migration_id, "backfilling")
        return self.active(alias)

    def _alias_in_place(self, name: str, live: CollectionInfo) -> CollectionInfo:
        if not isinstance(self.store, RenameBehindAlias):
            raise MigrationError(f"{name!r} is a collection, and this store cannot rename "
                                 "it behind an alias: create an alias for it and migrate that")
        renamed = f"{name}.{slug(live.model)}"
        self.store.rename_behind_alias(name, renamed)
        self.ledger.rename_collection(name, renamed)
        return self.store.get_collection(name)

    def _shadow_name(self, alias: str, model: str) -> str:
        base = f"{alias}.{slug(model)}"
        taken = {c.name for c in self.store.list_collections()}
        n = 2
        name = base
        while name in taken:
            name, n = f"{base}-{n}", n + 1
        return name

    def _ensure_shadow(self, m: MigrationRecord) -> None:
        try:
            self.store.get_collection(m.shadow)
            return
        except CollectionNotFound:
            pass
        live = self.store.get_collection(m.live)
        target = self._load_target(m.model)
        self.store.create_collection(  # (the live one's index layout and parameters)
            m.shadow, target.info.dim, fingerprint=target.info.fingerprint,
            metric=live.metric, dtype=m.dtype, model=target.info.name,  # type: ignore[arg-type]
            index_params=live.index_params, payload_indexes=live.payload_indexes)

    # --- backfill --------------------------------------------------------------------------

    def backfill(self, alias: str, progress: Progress | None = None,
                 should_stop: Callable[[], bool] = lambda: False,
                 max_batches: int | None = None) -> MigrationRecord:
        """Re-embed every live document into the shadow from the ledger's content, one
        committed batch at a time, until done (phase ``ready``), paused, ``should_stop``
        or ``max_batches``. Resumes after the last committed batch."""
        m = self.reconcile(self.active(alias))
        check_action("backfill", m.phase, alias)
        if m.phase == "planned":
            self._ensure_shadow(m)
            self.ledger.update_migration(m.migration_id, "backfilling")
        shadow = self._target(m.shadow)
        batches = 0
        while not should_stop() and (max_batches is None or batches < max_batches):
            with self.claims.holding(MIGRATION_CLAIMS, [str(m.migration_id)]) as ours:
                if not ours:  # another process is running a batch of it: wait a moment
                    batches += 1
                    time.sleep(CLAIM_WAIT_S)
                    continue
                m = self.active(alias)  # read under the claim: the cursor is current
                if m.phase != "backfilling":
                    break
                started = time.perf_counter()
                embedded = self._backfill_batch(m, shadow)
                if embedded is None:
                    self.ledger.update_migration(m.migration_id, "ready",
                                                 backfilled_at=_now().isoformat())
                    break
            batches += 1
            if progress is not None:
                progress(self.ledger.document_count(m.shadow),
                         self.ledger.document_count(m.live), embedded)
            self._pace(m.max_rate, embedded, time.perf_counter() - started)
        return self.current(alias)

    def _backfill_batch(self, m: MigrationRecord, shadow: Target) -> int | None:
        """One batch: documents after the cursor, written to the shadow and committed
        with the new cursor. Returns the chunks embedded, None when nothing is left.

        The batch is read, chunked and embedded with no lock held (``embed_ahead``);
        the write lock is taken for the write. Under it the batch's documents are read
        again: a document as it was read, whose shadow record is as it was too, is
        written with the vectors computed ahead; one another writer changed, deleted or
        added since, in live or in the shadow, is taken as the code did before, from
        what the ledger holds now, classified against the shadow's record now and (if
        it still needs it) embedded under the lock by the shadow's model. Embedding the
        whole batch under the lock kept every other writer of the service (HTTP
        upserts, the real-time worker) waiting for the new model's embedding of it. A
        write that fills the store's pending segment waits for room after the lock
        (``room_waits_deferred``)."""
        batch = self.settings.migration_batch_documents
        with room_waits_deferred(self.store):
            stored = {d.doc_id: d for d in _take(
                self.ledger.iter_stored(m.live, batch, after=m.cursor), batch)}
            if not stored:
                return None
            previous = self.ledger.documents(m.shadow, list(stored))
            ahead = {doc.doc_id: classify(_document(doc), previous.get(doc.doc_id),
                                          shadow.chunker, lambda: None)
                     for doc in stored.values() if doc.text is not None}
            target = Target(shadow.info, embed_ahead(shadow.embedder, list(ahead.values())),
                            shadow.chunker)
            last = next(reversed(stored))  # (the ledger's order: ids ascending)
            with self.write_lock:
                now = self._read_again(m, last)
                records = self.ledger.documents(m.shadow, list(now))
                kept, taken_up = [], []
                for doc_id, doc in now.items():
                    if doc.text is None:
                        self.ledger.record_dead_letter(
                            m.shadow, doc_id, doc.source, "migrate", "no_content",
                            "the ledger holds no content for this document (written "
                            "before content was kept): ingest its source again")
                    elif (stored.get(doc_id) == doc
                          and records.get(doc_id) == previous.get(doc_id)):
                        kept.append(ahead[doc_id])  # (embedded ahead)
                    else:  # changed since it was read: as it is now, embedded now
                        taken_up.append(classify(_document(doc), records.get(doc_id),
                                                 shadow.chunker, lambda: None))
                failed = _dead_letter(self.ledger, m.shadow)
                chunks = write_documents(self.store, self.ledger, [target], kept,
                                         failed).chunks_embedded
                if taken_up:
                    chunks += write_documents(self.store, self.ledger, [shadow], taken_up,
                                              failed).chunks_embedded
                self.ledger.advance_backfill(m.migration_id, last, len(now), chunks)
        return chunks

    def _read_again(self, m: MigrationRecord, last: str) -> dict[str, StoredDocument]:
        """The live documents after the cursor up to ``last``, as the ledger holds them
        now (under the write lock)."""
        now = {}
        for doc in self.ledger.iter_stored(m.live, self.settings.migration_batch_documents,
                                           after=m.cursor):
            if doc.doc_id > last:
                break
            now[doc.doc_id] = doc
        return now

    @staticmethod
    def _pace(max_rate: float | None, chunks: int, spent: float) -> None:
        """Sleep so that the backfill stays at or under ``max_rate`` chunks/s."""
        if max_rate and chunks:
            time.sleep(max(0.0, chunks / max_rate - spent))

    def pause(self, alias: str) -> MigrationRecord:
        m = self.active(alias)
        check_action("pause", m.phase, alias)
        self.ledger.update_migration(m.migration_id, "paused")
        return self.active(alias)

    def resume(self, alias: str, max_rate: float | None = None) -> MigrationRecord:
        """Continue the backfill; ``max_rate`` (chunks/s) replaces the speed limit."""
        m = self.reconcile(self.active(alias))
        check_action("resume", m.phase, alias)
        fields = {"max_rate": max_rate} if max_rate is not None else {}
        if m.phase == "paused":
            self.ledger.update_migration(m.migration_id, "backfilling", **fields)
        elif fields:
            self.ledger.update_migration(m.migration_id, **fields)
        return self.active(alias)

    # --- evaluate, swap, rollback, finalize -----------------------------------------------

    def evaluate(self, alias: str, dataset: Path, split: str = "test") -> dict[str, Any]:
        """The same labelled queries against live and shadow, each embedded by its own
        model; the gate passes when the shadow meets the configured target."""
        m = self.reconcile(self.active(alias))
        check_action("evaluate", m.phase, alias)
        sides = {"live": self.store.get_collection(m.live),
                 "shadow": self.store.get_collection(m.shadow)}
        report = compare(self.store, {k: (info, self._embedder(info)) for k, info in
                                      sides.items()}, dataset, split, self.settings)
        report["alias"] = alias
        self.ledger.update_migration(m.migration_id, evaluation=report,
                                     gate_passed=int(report["gate_passed"]))
        return report

    def swap(self, alias: str, force: bool = False) -> MigrationRecord:
        """Point the alias at the shadow atomically; the live collection stays, dual-
        written, for the retention window. Refused unless the gate passed, or ``force``."""
        m = self.reconcile(self.active(alias))
        check_action("swap", m.phase, alias)
        if not m.gate_passed and not force:
            why = "was not evaluated" if m.gate_passed is None else "failed the gate"
            raise MigrationError(f"the shadow of {alias!r} {why}: run `embedops migrate "
                                 f"evaluate {alias} --dataset DIR`, or swap with --force")
        with self.write_lock:  # no write straddles the swap
            self.store.repoint_alias(alias, m.shadow)
        until = _now() + timedelta(hours=self.settings.migration_retention_hours)
        self.ledger.update_migration(
            m.migration_id, "swapped", swapped_at=_now().isoformat(),
            retain_until=until.isoformat(), forced=int(m.forced or (force and not
                                                                      m.gate_passed)),
            note="forced past the gate" if force and not m.gate_passed else None)
        return self.active(alias)

    def rollback(self, alias: str) -> MigrationRecord:
        """Point the alias back at the previous collection at once."""
        m = self.reconcile(self.active(alias))
        check_action("rollback", m.phase, alias)
        with self.write_lock:
            self.store.repoint_alias(alias, m.live)
        self.ledger.update_migration(m.migration_id, "rolled_back")
        return self.active(alias)

    def finalize(self, alias: str) -> MigrationRecord:
        """Drop the collection the alias no longer points at and end dual-write."""
        m = self.reconcile(self.active(alias))
        check_action("finalize", m.phase, alias)
        doomed = m.live if m.phase == "swapped" else m.shadow
        self.ledger.update_migration(m.migration_id, "finalized",
                                     finished_at=_now().isoformat(),
                                     note=f"dropped {doomed}")
        with self.write_lock, contextlib.suppress(CollectionNotFound):
            self.store.drop_collection(doomed)
        self.ledger.drop_collection(doomed)
        return self.current(alias)

    def finalize_expired(self) -> list[str]:
        """Finalize every swapped migration whose rollback window has passed."""
        done = []
        for m in self.ledger.migrations():
            if (m.phase == "swapped" and m.retain_until
                    and datetime.fromisoformat(m.retain_until) <= _now()):
                self.finalize(m.alias)
                done.append(m.alias)
        return done

    def reconcile(self, m: MigrationRecord) -> MigrationRecord:
        """Repair what a crash between a store step and its ledger commit leaves: the
        alias already on the shadow while the ledger says ready (or back on live while
        it says swapped); a shadow collection not created yet."""
        try:
            target = self.store.resolve(m.alias)
        except CollectionNotFound:
            return m
        if m.phase in ("ready", "rolled_back") and target == m.shadow:
            self.ledger.update_migration(m.migration_id, "swapped",
                                         swapped_at=_now().isoformat(), note="recovered")
        elif m.phase == "swapped" and target == m.live:
            self.ledger.update_migration(m.migration_id, "rolled_back", note="recovered")
        elif m.phase in ("planned", "backfilling"):
            self._ensure_shadow(m)
        return self.active(m.alias) if self.ledger.active_migration(m.alias) else m

    # --- helpers ---------------------------------------------------------------------------

    def _live_info(self, alias: str) -> CollectionInfo:
        live = self.store.get_collection(alias)
        if live.model == EXTERNAL_MODEL:
            raise MigrationError(f"{alias!r} holds external vectors: there is no content to "
                                 "re-embed with another model")
        return live

    def _load_target(self, model: str) -> Embedder:
        s = self.settings
        embedder = load_embedder(model, s.cache_dir, s.backend, s.batch_size, settings=s)
        self.pool.add(embedder)
        return embedder

    def _embedder(self, info: CollectionInfo) -> Embedder:
        return self.pool.locked(self.pool.get(info.model, info.fingerprint))

    def _target(self, name: str) -> Target:
        return self.pool.target(self.store.get_collection(name))

    def _measure(self, embedder: Embedder, live: str, sample: int = 32) -> float:
        """Chunks per second of ``embedder`` on this machine, on live chunks' text."""
        texts = [c["text"] for d in _take(self.ledger.iter_stored(live, 64), 64)
                 for c in d.chunks() if c["text"]][:sample]
        if not texts:
            return 0.0
        embedder.embed(texts[:2])  # warm-up: first calls pay one-time costs
        started = time.perf_counter()
        embedder.embed(texts)
        return len(texts) / max(time.perf_counter() - started, 1e-9)


def _take(items: Iterator[StoredDocument], n: int) -> Iterator[StoredDocument]:
    for i, item in enumerate(items):
        if i >= n:
            return
        yield item


def _document(stored: StoredDocument) -> Document:
    assert stored.text is not None
    return Document(stored.doc_id, stored.text, dict(stored.metadata), stored.title,
                    stored.source, stored.modality)


def _dead_letter(ledger: Ledger, collection: str) -> Callable[[Work, str, str, str], None]:
    def record(work: Work, stage: str, reason: str, detail: str) -> None:
        ledger.record_dead_letter(collection, work.doc.id, work.doc.source, stage, reason,
                                  detail)

    return record


def _started_backfilling(m: MigrationRecord) -> datetime | None:
    for event in m.history:
        if event.get("phase") == "backfilling":
            return datetime.fromisoformat(event["at"])
    return None
