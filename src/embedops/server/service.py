"""What the collection endpoints share: the store this process owns, its ledger, the
write gate, the real-time worker, the embedders and the waiters of ``?wait=true``.

The store is opened on first use (or at startup, as ``embedops serve`` does so a restart
drains what a crash left queued). The process holds the store's single-writer lock for
its lifetime; the batch path runs inside it through :meth:`Service.batch_ingest`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from embedops.client import Client, ledger_location
from embedops.config import Settings
from embedops.embedders.base import Embedder, Role
from embedops.errors import (
    CollectionExists,
    CollectionNotFound,
    ServiceUnavailable,
    WrongCollectionKind,
)
from embedops.ingest.ordering import WriteGate
from embedops.ingest.realtime import RealtimeWorker
from embedops.ingest.targets import EmbedderPool
from embedops.jobs.kinds import JobContext
from embedops.jobs.schedule import job_specs
from embedops.jobs.scheduler import JobScheduler
from embedops.ledger import Ledger
from embedops.ledger.keys import ApiKey
from embedops.ledger.outbox import Outcome
from embedops.ledger.postgres import ledger_exists, open_ledger
from embedops.metrics import Metrics
from embedops.migrate.runner import MigrationRunner
from embedops.monitor.exposition import publish_health
from embedops.quality.canary import publish_canary_metrics
from embedops.server.batching import DynamicBatcher
from embedops.server.field_backfills import FieldBackfills
from embedops.server.timeseries import Sampler
from embedops.store import EXTERNAL_MODEL, VectorStore, estimate_memory
from embedops.store.protocol import CollectionInfo


class Waiters:
    """Futures of requests waiting for a document version to be applied."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiting: dict[tuple[str, str], list[tuple[int, asyncio.Future[Outcome]]]] = {}

    def register(self, collection: str, doc_id: str, version: int) -> asyncio.Future[Outcome]:
        future: asyncio.Future[Outcome] = asyncio.get_running_loop().create_future()
        with self._lock:
            self._waiting.setdefault((collection, doc_id), []).append((version, future))
        return future

    def discard(self, collection: str, doc_id: str, future: asyncio.Future[Outcome]) -> None:
        with self._lock:
            left = [w for w in self._waiting.get((collection, doc_id), []) if w[1] is not future]
            if left:
                self._waiting[(collection, doc_id)] = left
            else:
                self._waiting.pop((collection, doc_id), None)

    def notify(self, collection: str, outcomes: Sequence[Outcome]) -> None:
        """Resolve every waiter whose version is covered by an outcome (any thread)."""
        for outcome in outcomes:
            with self._lock:
                waiting = self._waiting.pop((collection, outcome.doc_id), [])
                keep = [(v, f) for v, f in waiting if v > outcome.version]
                if keep:
                    self._waiting[(collection, outcome.doc_id)] = keep
            for version, future in waiting:
                if version <= outcome.version:
                    _resolve(future, outcome)


def _resolve(future: asyncio.Future[Outcome], outcome: Outcome) -> None:
    loop = future.get_loop()
    if not loop.is_closed():
        loop.call_soon_threadsafe(lambda: future.done() or future.set_result(outcome))


class Service:
    """The serving process's handle on its store. Thread-safe."""

    def __init__(self, settings: Settings, metrics: Metrics) -> None:
        self.settings, self.metrics = settings, metrics
        self.waiters = Waiters()
        self.pool: EmbedderPool | None = None
        self.served: DynamicBatcher | None = None
        self._batchers: dict[tuple[str, Role], DynamicBatcher] = {}
        self._open_lock = threading.Lock()
        self._client: Client | None = None
        self._store: VectorStore | None = None
        self._api_ledger: Ledger | None = None
        self._keys_ledger: Ledger | None = None
        self._auth_on = False  # an API key exists (auth_required)
        self.gate: WriteGate | None = None
        self.worker: RealtimeWorker | None = None
        self._gauged: set[str] = set()  # collections with gauges in the exposition
        self.migrator: MigrationRunner | None = None
        self.jobs: JobScheduler | None = None
        self.backfills: FieldBackfills | None = None
        self.sampler: Sampler | None = None  # the dashboard's time series

    # --- lifecycle -----------------------------------------------------------------------

    def attach(self, served: DynamicBatcher) -> None:
        """Called at startup with the batcher of the served model."""
        self.served = served
        self.pool = EmbedderPool(self.settings, [served.embedder],
                                 background_threads=self.settings.background_threads)
        served._model_lock = self.pool.model_lock
        self.pool.model_lock.on_wait = self._observe_model_wait
        self._batchers[(served.embedder.info.fingerprint, served.role)] = served

    def _observe_model_wait(self, priority: str, seconds: float) -> None:
        self.metrics.model_wait.labels(priority).observe(seconds)

    def open(self) -> VectorStore:
        """Open the store, the ledger and start the worker (once); raises StoreLocked
        when another process writes the store."""
        with self._open_lock:
            if self._store is None:
                if self.pool is None:
                    raise ServiceUnavailable("the service is still starting")
                client = Client(self.settings)
                try:
                    worker_ledger = client.new_ledger_handle()
                    self.gate = WriteGate(worker_ledger)
                    self.gate.subscribe(self.waiters.notify)
                    self.worker = RealtimeWorker(client.store, worker_ledger, self.gate,
                                                 self.pool, self.settings, self.metrics)
                    if self.settings.realtime_apply:
                        self.worker.start()
                    self.migrator = MigrationRunner(client, client.new_ledger_handle(),
                                                    self.pool, self.gate.lock)
                    self.migrator.start()
                    self.jobs = JobScheduler(
                        job_specs(self.settings.jobs),
                        JobContext(client, client.new_ledger_handle(), self.gate.lock,
                                   self.metrics, self.gate))
                    self.jobs.start()
                    self.backfills = FieldBackfills(client.store, client.new_ledger_handle(),
                                                    self.gate.lock)
                    self.backfills.start()
                    if client.ledger is not None:  # canary gauges survive a restart
                        publish_canary_metrics(self.metrics, client.ledger)
                except BaseException:
                    client.close()  # release the writer lock, or every retry is StoreLocked
                    raise
                self._client, self._api_ledger = client, client.ledger
                self._store = client.store
                self.sampler = Sampler(self, self.settings.dashboard_sample_s)
                self.sampler.start()
            return self._store

    @property
    def client(self) -> Client:
        self.open()
        assert self._client is not None
        return self._client

    async def close(self) -> None:
        if self.sampler is not None:
            await asyncio.to_thread(self.sampler.stop)
        for batcher in self._batchers.values():
            if batcher is not self.served:
                await batcher.stop()
        if self.worker is not None:
            self.worker.stop()
        if self.migrator is not None:
            self.migrator.stop()
            self.migrator.ledger.close()
        if self.jobs is not None:
            self.jobs.stop()
            self.jobs.ctx.ledger.close()
        if self.backfills is not None:
            self.backfills.stop()
            self.backfills.ledger.close()
        for ledger in (self.gate.ledger if self.gate else None, self._keys_ledger):
            if ledger is not None:
                ledger.close()
        if self._client is not None:
            self._client.close()

    @property
    def store(self) -> VectorStore:
        return self._store or self.open()

    @property
    def ledger(self) -> Ledger:
        self.open()
        assert self._api_ledger is not None
        return self._api_ledger

    @property
    def write_gate(self) -> WriteGate:
        self.open()
        assert self.gate is not None
        return self.gate

    def migrations(self) -> MigrationRunner:
        """The runner that performs every migration step of this process."""
        self.open()
        assert self.migrator is not None
        return self.migrator

    def ready(self) -> bool:
        return self.served is not None and (
            self._store is None or not self.settings.realtime_apply
            or (self.worker is not None and self.worker.alive()))

    # --- keys ----------------------------------------------------------------------------

    def _keys(self) -> Ledger | None:
        """The ledger handle that answers key checks: a connection of its own, used for
        nothing else, so the check every request makes never waits behind a write on
        the service's other ledger connections (a document enqueued while the worker
        commits a large one waits for SQLite's write lock, holding its connection)."""
        if self._keys_ledger is None:
            with self._open_lock:
                location = ledger_location(self.settings)
                if self._keys_ledger is None and ledger_exists(location):
                    self._keys_ledger = open_ledger(location)
        return self._keys_ledger or self._api_ledger

    def auth_required(self) -> bool:
        """Whether requests need an API key: once any key was created, for good (a
        revoked key does not turn authentication off), so only the "no key yet" answer
        is asked again."""
        if self._auth_on:
            return True
        ledger = self._keys()
        self._auth_on = ledger is not None and ledger.keys_configured()
        return self._auth_on

    def lookup_key(self, key: str) -> ApiKey | None:
        ledger = self._keys()
        return ledger.lookup_key(key) if ledger is not None else None

    # --- collections and embedding --------------------------------------------------------

    def collection_for_write(self, name: str) -> CollectionInfo:
        """The collection ``name`` (or its alias target); created with the served model on
        first write. Raises WrongCollectionKind for a collection of external vectors."""
        try:
            info = self.store.get_collection(name)
            if info.model == EXTERNAL_MODEL:
                raise WrongCollectionKind(
                    f"collection {info.name!r} holds external vectors (model external): it "
                    "takes points (POST /collections/{c}/points), not documents")
            return info
        except CollectionNotFound:
            assert self.served is not None
            info = self.served.embedder.info
            try:
                return self.store.create_collection(name, info.dim,
                                                    fingerprint=info.fingerprint,
                                                    model=info.name)
            except CollectionExists:
                return self.store.get_collection(name)

    def batcher_for(self, info: CollectionInfo, role: Role = "query") -> DynamicBatcher:
        """The batcher of the collection's model in ``role`` (call on the event loop)."""
        if info.model == EXTERNAL_MODEL:
            raise WrongCollectionKind(f"collection {info.name!r} holds external vectors: "
                                      "search it with a `vector`, not a `query` text")
        assert self.pool is not None
        return self.batcher(self.pool.get(info.model, info.fingerprint), role)

    def batcher(self, embedder: Embedder, role: Role) -> DynamicBatcher:
        """The dynamic batcher of ``embedder`` in ``role``, keyed by (fingerprint, role)
        and started on first use (call on the event loop)."""
        key = (embedder.info.fingerprint, role)
        if key not in self._batchers:
            assert self.pool is not None
            s = self.settings
            batcher = DynamicBatcher(embedder, s.server_max_batch_size, s.server_max_wait_ms,
                                     self.metrics, lock=self.pool.model_lock, role=role)
            batcher.start()
            self._batchers[key] = batcher
        return self._batchers[key]

    def refresh_gauges(self) -> None:
        """Queue depth, indexing lag, points and index memory, for a metrics scrape.

        Cheap at any store size, so frequent scrapes never hold up searches or writes:
        one outbox query, one catalog read (the store keeps each collection's point
        count), and the index memory estimated from the point count. The store's full
        ``stats`` (it sums every stored vector and walks the store's directory, under
        the store's lock) is left to ``GET /collections/{c}``."""
        if self._store is None or self._api_ledger is None:
            return
        depth, oldest = self._api_ledger.queue_stats()
        self.metrics.queue_depth.set(depth)
        self.metrics.indexing_lag.set(max(0.0, time.time() - oldest) if oldest else 0.0)
        seen = set()
        for info in self._store.list_collections():
            seen.add(info.name)
            self.metrics.collection_points.labels(info.name).set(info.points)
            self.metrics.index_memory.labels(info.name).set(_index_estimate(info))
        for gone in self._gauged - seen:  # a dropped collection leaves the exposition
            self.metrics.collection_points.remove(gone)
            self.metrics.index_memory.remove(gone)
        self._gauged = seen
        publish_health(self.metrics, self._store, self._api_ledger, self.settings)

    def batch_ingest(self, paths: Sequence[Path], options: Any, progress: Any = None) -> Any:
        """Run the batch path inside this process, ordered against real-time writes.
        ``options`` is an ``IngestOptions`` (``progress`` as for ``BatchIngest``); returns
        its ``IngestSummary``."""
        from embedops.ingest.batch import BatchIngest

        store = self.store
        ledger = self.client.new_ledger_handle()
        try:
            job = BatchIngest(store, ledger, self.settings, options, progress,
                              gate=self.write_gate)
            return job.run(paths)
        finally:
            ledger.close()


def _index_estimate(info: CollectionInfo) -> int:
    """Resident bytes of the collection's ANN index, estimated from its point count."""
    connectivity = int(info.index_params.get("connectivity", 16))
    try:
        return estimate_memory(info.points, info.dim, info.dtype, connectivity)
    except ValueError:  # a backend's own dtype: no estimate
        return 0
