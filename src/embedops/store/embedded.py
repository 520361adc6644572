"""The embedded vector store: one directory, SQLite (WAL) as truth, an HNSW graph as index.

Layout (see docs/store.md)::

    <store>/store.sqlite        catalog, points (id, payload JSON), vectors, tombstones
    <store>/LOCK                single-writer lock (fcntl.flock), holder's pid
    <store>/index/<cid>.json    checkpoint manifest: index file name + change seq it covers
    <store>/index/<cid>-<seq>.faiss     the checkpointed HNSW graph (faiss format)
    <store>/index/<cid>-<seq>.labels.npy  its node keys by graph position
    <store>/index/<cid>-<seq>.groups.npy  members of nodes shared by identical vectors
    <store>/index/<cid>-<seq>.pending.npy points pending a merge at the checkpoint

A handle opened read-write holds the writer lock until ``close``. Read-only handles take no
lock; they read committed data (WAL snapshots) and catch their in-memory index up with the
writer's changes before every search. A handle is safe to share between threads.

Threads and locks: writes and admin calls use the handle's own connection and run one
at a time under ``_lock``. Reads do not take it: each reads through a connection of its
own (``read_pool``); searches also hold the index lock (``shared_lock``) shared, so
reads run side by side and never wait for a write's commit. A write holds the index
lock exclusive only while it applies its committed change to the in-memory index; the
background merger holds it one slice at a time. The same background thread writes the
checkpoints that writes make due, holding no lock while it writes the graph file.
Lock order: ``_lock`` before the index lock.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import logging
import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, ParamSpec, TypeVar

import numpy as np
import orjson

from embedops.errors import (
    AliasConflict,
    CollectionChanged,
    CollectionExists,
    FingerprintMismatch,
    IndexFailure,
    InvalidCollectionSpec,
    MemoryBudgetExceeded,
    StoreError,
)
from embedops.store import catalog, hnsw_graph, quantization, schema
from embedops.store.batch import check_batch, check_dim, lookup_ids, payload_text
from embedops.store.catalog import (
    POINTS_WITH_VECTORS,
    POINTS_WITH_VECTORS_IN_KEY_ORDER,
    CollectionRow,
    by_cid,
    lookup,
    row_bytes,
    row_bytes_sql,
    sql_errors,
    totals,
    transaction,
    translate_sql_error,
)
from embedops.store.checkpoint_files import read_manifest, remove_checkpoints
from embedops.store.compaction import Cancelled, build_from_snapshot, needs_compaction
from embedops.store.filters import compile_filter, json_path
from embedops.store.guards import check_writable, serialised
from embedops.store.hit_cache import HIT_CACHE_BYTES, HitCache
from embedops.store.hnsw_index import estimate_memory
from embedops.store.index_manager import MAX_PENDING, CheckpointJob, IndexManager, LiveIndex
from embedops.store.payload_json import payload_of
from embedops.store.protocol import (
    DEFAULT_K,
    DTYPES,
    EXTERNAL_MODEL,
    METRICS,
    CollectionInfo,
    Filter,
    Hit,
    Point,
    check_ef,
)
from embedops.store.read_pool import Reader, ReadPool
from embedops.store.search import DirectPlan, Searcher
from embedops.store.segmented_index import AnnIndex
from embedops.store.shared_lock import SharedLock
from embedops.store.wal import BACKSTOP_PAGES as WAL_BACKSTOP_PAGES
from embedops.store.wal import WalCheckpointer

P = ParamSpec("P")
R = TypeVar("R")
DB_FILE = "store.sqlite"
MERGE_PAUSE_S = 0.002  # the merger's shortest pause: between slices when a thread waits
MERGE_YIELD_RATIO = 3.0  # while searches run: 3x a slice's time off the lock after it
MERGE_YIELD_WINDOW_S = 0.5  # "searches run": one came in this recently
# While searches run, the merger's and a compaction's inserts leave a core to them: their
# OpenMP team has one thread fewer than the cores (``hnsw_graph.cap_team``); otherwise
# it spreads over every core.
# (The cores this process may run on: a container's CPU set, not the machine's count.)
BACKGROUND_THREADS = max(1, len(os.sched_getaffinity(0)) - 1) if hasattr(
    os, "sched_getaffinity") else max(1, (os.cpu_count() or 1) - 1)
# A compaction applies the writes made during its build off the locks this many times
# at most before its swap (``_catch_up_compaction``).
CATCH_UP_ROUNDS = 3
DIRECT_PLANS = 64  # ways kept for plain single searches (``_keep_direct``)
WRITE_YIELD_WINDOW_S = 0.01  # "writes come back to back": the last ended this recently
# The writing connection's page cache, in KiB (SQLite's default: 2 MiB). An upsert of
# 1,000 384-d points changes more pages than 2 MiB holds: the connection read them back
# from the file. Its statements also keep their journals in memory (``temp_store =
# MEMORY`` for the upsert's transaction alone): the undo of a statement that fails
# half-way inside a transaction, the old content of every page it changes, went to a
# file on disk a page at a time. An upsert's statements change at most
# ``UPSERT_SLICE_BYTES`` of vectors and their rows each; other writes (a payload update
# or a delete by filter over millions of points, a payload index's sort) keep SQLite's
# default, which spills to disk.
WRITER_CACHE_KIB = 65_536
WARM_MIN = 5_000  # points to replay before a read-only handle loads an index in the background
# Past ``MAX_PENDING`` a writer merges some pending points itself, but it cannot while a
# checkpoint writes the graph (frozen) or the merger inserts into a copy of it; past this
# many, a writer waits after its write until the merger has brought the pending segment
# back under it (``_wait_for_merger``): memory, and the exact scoring of pending points in
# every search, stay bounded. Without the wait a 10M int8 build's pending segment passed
# 2.5M points (18 GB resident) with the graph at 0.4M nodes: checkpoints froze the graph
# for longer each time, writing the ever larger segment to their files.
PENDING_MAX = 4 * MAX_PENDING
# (a bound, not an expected wait: past it the write returns with the segment still full
# rather than hang, say behind a merger that failed)
BACKLOG_WAIT_S = 600.0
BACKLOG_LOOK_S = 0.02  # between two looks at the pending segment while waiting
# A delete's change to the collection's totals (``catalog.totals``): the points exactly;
# for a delete by ids alone, the bytes as the mean row's times the rows deleted (0 once
# none is left): reading each removed row's length took a seek per row that the id index
# alone does not need, ~2.4 µs a row, 12-20% of the rate of deletes by id beside
# searches. A delete with a filter sums the rows' lengths (``DELETE_EXACT_TOTALS``).
# Every change to ``row_bytes`` stops at 0: after deletes by id the figure is an
# estimate, which an exact removal could otherwise take below 0. (The right-hand sides
# read the row as it was before the update.)
DELETE_TOTALS = ("UPDATE collections SET seq = ?, row_bytes = CASE WHEN points <= ? THEN 0 "
                 "ELSE row_bytes - row_bytes * ? / points END, points = MAX(0, points - ?) "
                 "WHERE cid = ?")
DELETE_EXACT_TOTALS = ("UPDATE collections SET seq = ?, points = MAX(0, points - ?), "
                       "row_bytes = MAX(0, row_bytes - ?) WHERE cid = ?")
# An upsert's rows: a new id inserts, an existing one is replaced in place (its rowkey
# kept). Two statements write the batch, or a slice of about ``UPSERT_SLICE_BYTES`` of
# vectors, ids and payload texts (``_write_rows``): the points' rows, then their vectors
# by row key (schema migration 3). ``UPSERT_POINTS``: parameters 1 and 2 are the
# collection and the change sequence, 3 a JSON array of [id, payload text] pairs;
# ``UPSERT_VECTORS``: 1 the vectors' BLOBs end to end, 2 bytes each, 3 a JSON array of
# their row keys (``executemany`` ran a statement per row, and each let go of the
# interpreter lock: beside a searching thread, a batch of 1,000 waited up to 1,000 times
# for a search's Python steps to give it back). ``WHERE true`` tells SQLite's parser that
# ON CONFLICT belongs to the INSERT, not to a join.
UPSERT_SLICE_BYTES = 64 << 20
UPSERT_POINTS = ("INSERT INTO points (cid, id, payload, seq) "
                 "SELECT ?1, json_extract(value, '$[0]'), json_extract(value, '$[1]'), ?2 "
                 "FROM json_each(?3) WHERE true "
                 "ON CONFLICT (cid, id) DO UPDATE SET payload = excluded.payload, "
                 "seq = excluded.seq")
UPSERT_VECTORS = ("INSERT INTO vectors (rowkey, vector) "
                  "SELECT value, substr(?1, key * ?2 + 1, ?2) FROM json_each(?3) WHERE true "
                  "ON CONFLICT (rowkey) DO UPDATE SET vector = excluded.vector")
_log = logging.getLogger("embedops.store")


# Handles not closed yet: their background threads are stopped at interpreter exit.
_open_handles: weakref.WeakSet[EmbeddedStore] = weakref.WeakSet()


@atexit.register
def _stop_background_work() -> None:
    """At interpreter exit, stop the background threads of the handles left open. A
    checkpoint being written then is given up (the last one stays; SQLite is the truth
    and the next open replays the rest): faiss's file writer calls back into Python for
    every block, which a thread cannot do once the interpreter shuts down (the process
    would abort with a fatal error)."""
    for store in list(_open_handles):
        store._stop_background()


# Serialise calls on a handle and translate sqlite3 errors at the boundary.
_guarded = serialised(sqlite3.DatabaseError, translate_sql_error)


def _writes(method: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        store = args[0]
        assert isinstance(store, EmbeddedStore)
        check_writable(store.read_only, store.path, method.__name__)
        store._writing += 1
        try:
            return method(*args, **kwargs)
        finally:
            store._writing -= 1
            store._last_write = time.monotonic()
            store._writes_done += 1  # invalidates the read path's catalog cache
            if store._wal is not None:
                store._wal.wake()

    return _guarded(wrapper)


class _ThreadState(threading.local):
    """A store handle's state per thread. The defaults are class attributes: reading an
    attribute a thread has not set finds them, where ``getattr(local, name, None)`` on
    a bare ``threading.local`` raised and caught an ``AttributeError`` each time (~1 µs
    of a ~90 µs search, three reads a search)."""

    reader: Reader | None = None  # this thread's read connection (``_reads``)
    lazy = False  # inside a ``_reads`` call, which checks one out when first needed
    room_waits: dict[int, int] | None = None  # (``room_waits_deferred``)


def _reads(method: Callable[P, R]) -> Callable[P, R]:
    """A read that runs on a pooled read connection (``self.conn`` is that connection
    for the calling thread meanwhile) instead of waiting for the handle's lock. The
    connection is checked out of the pool on the first use of ``self.conn`` and given
    back at the end: a search answered from the loaded index and the hit cache runs no
    SQL and takes none (checking one out and in again took ~2 µs of a ~100 µs
    search)."""
    @functools.wraps(method)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        store = args[0]
        assert isinstance(store, EmbeddedStore)
        if store._conn is None:
            raise StoreError("store handle is closed")
        local = store._local
        if local.lazy:  # nested in another read (a reader is only checked out inside one)
            return method(*args, **kwargs)
        local.lazy = True
        try:
            return method(*args, **kwargs)
        except sqlite3.DatabaseError as exc:
            raise translate_sql_error(exc) from exc
        finally:
            store._end_read(local)

    return wrapper


class EmbeddedStore:
    """The default ``VectorStore``: see the module docstring for layout and guarantees."""

    def __init__(self, path: str | Path, read_only: bool = False,
                 memory_budget_bytes: int | None = None,
                 hit_cache_bytes: int = HIT_CACHE_BYTES) -> None:
        """``memory_budget_bytes``: an upsert that would grow the resident index past it
        is refused (``MemoryBudgetExceeded``) instead of letting the machine swap.
        ``hit_cache_bytes``: memory for the ids and payloads of returned points, served
        to later searches without SQLite (``embedops.store.hit_cache``; 0 turns it off)."""
        from embedops.store.locking import WriterLock

        self.path = Path(path)
        self.read_only = read_only
        self.memory_budget_bytes = memory_budget_bytes
        self._lock = threading.RLock()
        # A read-write handle's plain single searches straight to the compiled graph
        # search, per (collection, k, ef): (the index lock's generation, the catalog
        # row, the plan or None, the loaded index it was made for) (``_search_read``).
        # The generation decides whether a plan stands (the loaded index is checked
        # too, a belt: every change of the indexes a search sees runs under the lock's
        # exclusive side); emptying the map as each exclusive section of the index lock
        # ends only frees what the plans hold (no plan keeps an index alive that has
        # gone)
        self._direct: dict[tuple[str, int, int | None],
                           tuple[int, CollectionRow, DirectPlan | None, LiveIndex]] = {}
        self._index_lock = SharedLock(on_exclusive_end=self._direct.clear)
        self._local = _ThreadState()
        self._writes_done = 0
        # A read-write handle's catalog rows for searches, each tagged with the handle's
        # write count when read (``_search_row``)
        self._search_rows: dict[str, tuple[Any, CollectionRow]] = {}
        self._writer: WriterLock | None = None
        self._conn: sqlite3.Connection | None = None
        if not read_only:
            self.path.mkdir(parents=True, exist_ok=True)
            self._writer = WriterLock(self.path / "LOCK")
            self._writer.acquire()
        try:
            with sql_errors():
                self._conn = self._connect()
        except BaseException:
            if self._writer:
                self._writer.release()
            raise
        # checkpoints the write-ahead log off the write path (store/wal.py)
        self._wal = None if read_only else WalCheckpointer(self.path / DB_FILE)
        self._indexes = IndexManager(self._conn, self.path / "index", read_only,
                                     background_checkpoints=not read_only)
        self._search = Searcher(lambda: self.conn, self._indexes, HitCache(hit_cache_bytes))
        self._readers = ReadPool(self.path / DB_FILE)
        # merges pending points into the HNSW graphs in the background (see hnsw_index)
        self._merge_wanted = threading.Event()
        self._merge_pass_done = threading.Event()  # the merger found nothing left to do
        # Held by whoever inserts into the graphs (a merge slice, a writer's excess, a
        # merge made on a copy): a copy made off the index lock holds the graph's own
        # lock, and an insert waiting for that with the index lock held would hold back
        # every search.
        self._inserting = threading.Lock()
        self._merger: threading.Thread | None = None
        # compacts collections whose tombstones call for it (see store/compaction.py):
        # one long-lived thread, woken by ``_maybe_compact``, so a write never waits for a
        # thread to start; ``_compaction`` guards the queue and the flag
        self._compactor: threading.Thread | None = None
        self._compaction = threading.Condition()
        self._compact_wanted: dict[int, None] = {}  # collections to compact, in order
        self._compacting = False
        # read-only handles: collections whose index loads in the background (_warm)
        self._warming: dict[int, threading.Thread] = {}
        self._warming_lock = threading.Lock()
        self._closing = False
        self._last_search = 0.0
        self._writing, self._last_write = 0, 0.0  # the merger gives way to writes
        self._backlogged = 0  # writers waiting for the merger (``_wait_for_merger``)
        self._backlog_lock = threading.Lock()
        _open_handles.add(self)
        if not read_only:
            # Started here, by the thread that opens the store: a thread inherits its
            # creator's scheduling priority, and a merger started by a lowered-priority
            # writer (the service's real-time worker) would hold the index lock while
            # the OS runs everything else first, with searches waiting behind it. A
            # read-only handle starts its merger when a catch-up first defers a writer's
            # changes to it (``_start_merging``).
            self._start_merger()
            self._compactor = threading.Thread(target=self._compaction_loop, daemon=True,
                                               name="embedops-index-compact")
            self._compactor.start()

    @property
    def hit_cache_bytes(self) -> int:
        """Memory for the ids and payloads of returned points (``hit_cache``; 0: off)."""
        return self._search.hit_cache.budget_bytes

    @hit_cache_bytes.setter
    def hit_cache_bytes(self, value: int) -> None:
        self._search.hit_cache = HitCache(value)

    def _connect(self) -> sqlite3.Connection:
        db = self.path / DB_FILE
        if self.read_only:
            if not db.is_file():
                raise StoreError(f"no embedops store at {self.path}")
            conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None,
                                   check_same_thread=False)
            conn.execute("PRAGMA busy_timeout = 5000")
            schema.check_current(conn)
            return conn
        conn = sqlite3.connect(db, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = FULL")
            conn.execute(f"PRAGMA wal_autocheckpoint = {WAL_BACKSTOP_PAGES}")
            conn.execute(f"PRAGMA cache_size = -{WRITER_CACHE_KIB}")
            migrated = schema.migrate(conn)
            catalog.restore_payload_indexes(conn)
            if migrated:  # (the log the migrations grew, cut back: at 1M, 2 GB)
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except BaseException:
            conn.close()
            raise
        return conn

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction on the handle's connection (``catalog.transaction``) that
        sends searches to read their catalog row again as soon as it commits: a search
        that took the row from before the commit could pair it with rows read after it
        (kept filter matches, ``filter_matches``) while the write applies its change to
        the index, which may take a merge's time before the write returns."""
        with transaction(self.conn) as conn:
            yield conn
        self._writes_done += 1

    @property
    def conn(self) -> sqlite3.Connection:
        """The calling thread's read connection inside a ``_reads`` call (checked out
        now if it has none yet), else the handle's own connection."""
        reader = self._thread_reader()
        if reader is not None:
            return reader.conn
        assert self._conn is not None
        return self._conn

    def _thread_reader(self) -> Reader | None:
        """The calling thread's read connection (``conn``), or None outside reads."""
        local = self._local
        reader = local.reader
        if reader is None and local.lazy:
            reader = local.reader = self._readers.checkout()
        return reader

    # --- collections -------------------------------------------------------------------

    @_writes
    def create_collection(self, name: str, dim: int, *, fingerprint: str,
                          metric: str = "cosine", dtype: str = "float32", model: str = "",
                          index_params: Mapping[str, Any] | None = None,
                          payload_indexes: Sequence[str] = ()) -> CollectionInfo:
        """Create an empty collection; see ``VectorStore.create_collection``."""
        catalog.check_name(name)
        params = dict(index_params or {})
        _check_collection_args(dim, metric, dtype, fingerprint, params)
        fields = tuple(dict.fromkeys(payload_indexes))
        for field in fields:
            json_path(field)
        with self._transaction():
            catalog.insert_collection(self.conn, name, int(dim), metric, dtype, fingerprint,
                                      model, params, fields)
        return lookup(self.conn, name).info(points=0)

    @_writes
    def create_payload_index(self, collection: str, field: str) -> None:
        """Declare an SQLite expression index on a payload field (idempotent)."""
        row = lookup(self.conn, collection)
        fields = tuple(dict.fromkeys((*row.payload_indexes, field)))
        with self._transaction():
            catalog.create_payload_index(self.conn, row.cid, field)
            self.conn.execute("UPDATE collections SET payload_indexes = ? WHERE cid = ?",
                              (json.dumps(list(fields)), row.cid))

    @_writes
    def drop_collection(self, name: str) -> None:
        """Delete a collection, its points and index files; refused while an alias targets it."""
        row = lookup(self.conn, name)
        with self._transaction():
            catalog.delete_collection(self.conn, row)
        with self._index_lock.exclusive():
            self._indexes.drop(row.cid)
            self._search.dense.drop(row.cid)
            self._search.hit_cache.drop(row.cid)
        remove_checkpoints(self.path / "index", row.cid)

    @_reads
    def list_collections(self) -> list[CollectionInfo]:
        return [self._info(row) for row in catalog.all_collections(self.conn)]

    @_reads
    def get_collection(self, name: str) -> CollectionInfo:
        return self._info(lookup(self.conn, name))

    def _info(self, row: CollectionRow) -> CollectionInfo:
        names = [a for a, c in catalog.aliases(self.conn).items() if c == row.name]
        return row.info(points=self._search.point_count(row), aliases=names)

    # --- points ------------------------------------------------------------------------

    def upsert(self, collection: str, ids: Sequence[str], vectors: np.ndarray,
               payloads: Sequence[Mapping[str, Any]] | None = None, *,
               fingerprint: str) -> int:
        """Insert or replace points in one transaction; see ``VectorStore.upsert``. A
        write that leaves the pending segment past ``PENDING_MAX`` returns once the
        merger has merged as many points as it wrote (``_wait_for_merger``)."""
        check_writable(self.read_only, self.path, "upsert")
        count, backlog = self._upsert(collection, ids, vectors, payloads,
                                      fingerprint=fingerprint)
        if backlog is not None:
            deferred = self._local.room_waits
            if deferred is None:
                self._wait_for_merger(*backlog)
            else:  # (``room_waits_deferred``: the block's end waits, for all its writes)
                cid, target = backlog
                deferred[cid] = min(target, deferred.get(cid, target))
        return count

    @contextlib.contextmanager
    def room_waits_deferred(self) -> Iterator[None]:
        """Within the block, in this thread, an upsert that leaves the pending segment
        past ``PENDING_MAX`` returns at once; the block's end waits for the merger, for
        every such write it made (``WriteBackPressure``). The service opens it around
        its write gate: a write waiting for room holds no lock another writer needs.
        Blocks nest (the outermost waits)."""
        if self._local.room_waits is not None:
            yield
            return
        waits: dict[int, int] = {}
        self._local.room_waits = waits
        try:
            yield
        finally:
            self._local.room_waits = None
            for cid, target in waits.items():
                self._wait_for_merger(cid, target)

    @_writes
    def _upsert(self, collection: str, ids: Sequence[str], vectors: np.ndarray,
                payloads: Sequence[Mapping[str, Any]] | None, *, fingerprint: str
                ) -> tuple[int, tuple[int, int] | None]:
        """``upsert`` with the handle's lock held: the points written, and, when the write
        left the collection's pending segment past ``PENDING_MAX``, the collection and
        the size the segment must come back to (None: no wait)."""
        row = lookup(self.conn, collection)
        check_fingerprint(row.name, row.model, row.fingerprint, fingerprint)
        ids, arr, texts = _prepare_batch(row, ids, vectors, payloads)
        if not ids:
            return 0, None
        self._sync_index(row)
        self._check_budget(row, ids)
        seq = row.seq + 1
        blobs = quantization.encode(arr, row.dtype)
        with catalog.temp_store(self.conn, "MEMORY"), self._transaction():
            if row.dtype == "int8" and row.clip is None:
                self.conn.execute("UPDATE collections SET quant_scale = ? WHERE cid = ?",
                                  (quantization.calibrate(arr), row.cid))
            before = self._existing(row, ids)
            keys = self._write_rows(row.cid, ids, blobs, texts, seq, before)
            self.conn.execute(
                "UPDATE collections SET seq = ?, points = points + ?, "
                "row_bytes = MAX(0, row_bytes + ?) WHERE cid = ?",
                (seq, len(ids) - len(before), sum(map(row_bytes, ids, blobs, texts))
                 - sum(size for _, size in before.values()), row.cid))
        after = lookup(self.conn, row.name)
        vectors = quantization.decode(blobs, row.dim, row.dtype)
        with self._index_lock.exclusive():
            over = self._indexes.apply_upsert(after, keys, vectors)
        if over:  # a writer faster than the merger pays for the graph itself, merging at
            # most twice what it wrote: a backlog left by a checkpoint's freeze drains a
            # write at a time instead of stalling one write for seconds
            self._merge_excess(after.cid, min(over, 2 * len(ids)))
        self._start_merging()
        self._maybe_compact(after.cid)
        pending = self._pending_of(after.cid)
        if pending <= PENDING_MAX:
            return len(ids), None
        return len(ids), (after.cid, max(PENDING_MAX, pending - len(ids)))

    def _write_rows(self, cid: int, ids: list[str], blobs: list[bytes], texts: list[str],
                    seq: int, before: dict[str, tuple[int, int]]) -> np.ndarray:
        """Insert or replace the rows and vectors of an upsert (``UPSERT_POINTS``,
        ``UPSERT_VECTORS``), in as few statements as ``UPSERT_SLICE_BYTES`` allows: each
        statement's BLOB and JSON text must stay under SQLite's length limit (1e9 bytes by
        default), which a batch of 100,000 3,072-d float32 vectors alone passes. Returns
        the points' row keys, in the order of ``ids``."""
        width, start = len(blobs[0]), 0
        keys: list[np.ndarray] = []
        while start < len(ids):
            end, size = start + 1, width + len(ids[start]) + len(texts[start])
            while end < len(ids) and size < UPSERT_SLICE_BYTES:
                size += width + len(ids[end]) + len(texts[end])
                end += 1
            pairs = [[i, t] for i, t in zip(ids[start:end], texts[start:end], strict=True)]
            self.conn.execute(UPSERT_POINTS, (cid, seq, orjson.dumps(pairs).decode()))
            keys.append(self._rowkeys(cid, ids[start:end], before))
            self.conn.execute(UPSERT_VECTORS, (b"".join(blobs[start:end]), width,
                                               orjson.dumps(keys[-1].tolist()).decode()))
            start = end
        return np.concatenate(keys)

    def _pending_of(self, cid: int) -> int:
        """Points pending a merge in collection ``cid``'s index (0: none loaded). Reads a
        size: any thread, no lock."""
        live = self._indexes.live.get(cid)
        return live.index.pending if live is not None else 0

    def _wait_for_merger(self, cid: int, target: int) -> None:
        """Wait, without the handle's lock (the merger takes it to finish a checkpoint),
        until the merger has brought collection ``cid``'s pending segment down to
        ``target`` points: back under ``PENDING_MAX``, or, when the segment held more
        before the write (a replay after a crash, a compaction's catch-up), by as many
        points as the write added. The merger does not give way to writes meanwhile
        (``_give_way_to_writes``), but still to searches. Returns early when the handle
        closes, when the merger has stopped (a failure it logged), and after
        ``BACKLOG_WAIT_S``."""
        deadline = time.monotonic() + BACKLOG_WAIT_S
        with self._backlog_lock:
            self._backlogged += 1
        try:
            while (self._pending_of(cid) > target and not self._closing
                   and time.monotonic() < deadline
                   and self._merger is not None and self._merger.is_alive()):
                self._merge_wanted.set()
                time.sleep(BACKLOG_LOOK_S)
        finally:
            with self._backlog_lock:
                self._backlogged -= 1

    def _sync_index(self, row: CollectionRow) -> None:
        """Load or catch up the collection's index before a write, taking the exclusive
        lock (which waits for searches in flight) only when there is work to do."""
        if not self._indexes.is_synced(row):
            with self._index_lock.exclusive():
                self._indexes.synced(row)
            self._start_merging()  # (a checkpoint loaded with points pending a merge)

    def _start_merger(self) -> None:
        self._merger = threading.Thread(target=self._merge_loop, daemon=True,
                                        name="embedops-index-merge")
        self._merger.start()

    def _start_merging(self) -> None:
        """Wake the background merger (pending points, checkpoints due), starting a
        read-only handle's the first time. Call with ``_lock``."""
        if self._indexes.pending() or self._indexes.checkpoints_due():
            if self._merger is None and not self._closing:
                self._start_merger()
            self._merge_wanted.set()

    def _merge_loop(self) -> None:
        """Write the checkpoints writes made due (``_checkpoint_in_background``), and
        merge pending points into the graphs one slice (~10 ms) at a time, with the
        index lock held per slice only, so searches and writes interleave. While
        searches are running, the merger holds the lock at most a quarter of the time
        (pending points are searched exactly meanwhile); otherwise it runs flat out,
        pausing between slices only when a thread waits for the lock. While a writer
        waits for room (``_wait_for_merger``) and no search runs, its slices are wide
        (``IndexManager.merge_step``): enough points for faiss to use every core."""
        while True:
            self._merge_wanted.wait()
            self._merge_wanted.clear()
            while True:
                self._give_way_to_writes()
                self._background_team()
                if not self._checkpoint_in_background():
                    return
                if not self._build_key_maps():
                    return
                with self._inserting:
                    if self._insert_off_lock() is not None:
                        continue
                    with self._index_lock.exclusive():
                        if self._closing or self._conn is None:
                            return
                        started = time.perf_counter()
                        try:  # (a writer waits for the merger: slices on every core)
                            left = self._indexes.merge_step(
                                wide=bool(self._backlogged) and not self._searching())
                        except Exception:  # a bug here must not kill the thread; reads
                            _log.exception("merging pending points into the index failed")
                            left = 0  # rebuild
                        held = time.perf_counter() - started
                if not left and not self._indexes.checkpoints_due():
                    self._merge_pass_done.set()  # (wait_merged)
                    break
                if self._searching():
                    time.sleep(max(MERGE_PAUSE_S, held * MERGE_YIELD_RATIO))
                elif self._index_lock.waiting():
                    time.sleep(MERGE_PAUSE_S)  # (their turn: they are woken, not in yet)
                # else straight on: a pause nobody waits for slows the drain by a quarter

    def _build_key_maps(self) -> bool:
        """Build the key -> position maps of graphs that take writes with no index lock
        held (``KeyMapJob``: 0.01-0.14 s at 1M nodes, 10x that at 10M, in numpy's sort
        without the interpreter lock; until a map is built, writes scan the labels
        instead). A map that a rename made stale meanwhile is dropped and built again on
        a later pass (``HnswGraph.take_key_map``). A build is not interrupted: closing
        waits for it. False when the handle is closing."""
        with self._index_lock.shared():
            if self._closing or self._conn is None:
                return False
            jobs = self._indexes.key_map_jobs()
        for graph, job in jobs:
            try:
                job.build()
            except Exception:  # (out of memory, say) writes go on scanning the labels
                _log.exception("building the key map of a graph failed")
                continue
            with self._index_lock.exclusive():
                if self._closing or self._conn is None:
                    return False
                self._indexes.take_key_map(graph, job)
        return True

    def _insert_off_lock(self) -> int | None:
        """A merge that would reallocate all of faiss's arrays in place, if one is due
        (the first into a graph read from a file, or one outgrowing the arrays:
        ``HnswGraph.copy_due``): prepared with the index lock shared, made on a copy of
        the graph with no index lock held (searches and deferred writes go on; the
        insert in place copied all of faiss's arrays with the lock held: 0.43 s at 1M
        int8 nodes), then swapped in with the lock exclusive. Returns the points it
        merged (0: the copy failed or was dropped), None when none was due. Call with
        ``_inserting`` held."""
        with self._index_lock.shared():
            if self._closing or self._conn is None:
                return None
            due = self._indexes.start_off_lock_insert(self.memory_budget_bytes)
            if due is None:
                return None
            index, job = due
        try:
            index.make_copy(job)  # (the graph's own lock keeps inserts out meanwhile)
        except IndexFailure:  # (out of memory for the copy, say: merged in place next)
            _log.exception("merging into a copy of the graph failed")
            return 0
        replaced = None
        with self._index_lock.exclusive():
            if not self._closing and self._conn is not None:
                replaced = self._indexes.finish_off_lock_insert(index, job)
        merged = 0 if replaced is None else len(job.keys)
        del replaced, job  # (the old graph and an unused copy are freed here, unlocked)
        return merged

    def _merge_excess(self, cid: int, count: int) -> None:
        """Merge up to ``count`` pending points of collection ``cid`` in place, with the
        index lock held, for a writer that outpaces the merger. Skipped while the merger
        inserts into a graph (a copy takes seconds at 1M nodes, and an insert in place
        would wait for it with the index lock held, and every search with it), and when
        the merge would reallocate faiss's arrays: the merger makes that one on a copy
        (``_insert_off_lock``; it does not give way to writes while one is due and
        ``MAX_PENDING`` points are pending, as they are whenever a writer merges its
        excess). The pending segment runs past ``MAX_PENDING`` meanwhile."""
        if not self._inserting.acquire(blocking=False):
            return
        try:
            with self._index_lock.exclusive():
                if self._closing or self._conn is None:
                    return
                if self._indexes.copy_due(cid, count):
                    self._merge_wanted.set()
                    return
                self._indexes.merge_excess(cid, count)
        finally:
            self._inserting.release()

    def _checkpoint_in_background(self) -> bool:
        """Write every checkpoint that is due: the index's image taken under the index
        lock (milliseconds), the files written with no lock held while searches and
        writes go on, the deleted points' vectors it covers swept with the handle's lock
        alone (``_sweep``), the covered tombstones pruned under both locks. False when the
        handle is closing."""
        for cid in self._indexes.checkpoints_due():
            with self._index_lock.exclusive():
                if self._closing or self._conn is None:
                    return False
                job = self._indexes.start_checkpoint(cid)
            if job is None:
                continue
            try:
                self._indexes.write_checkpoint(job, cancelled=lambda: self._closing)
            except Exception:  # (a full disk, say) a bug here must not kill the thread:
                # the old checkpoint stays, SQLite is the truth, the next write retries
                if not self._closing:  # (closing cancels it: close() checkpoints itself)
                    _log.exception("checkpointing the index of collection %s failed", cid)
            if not self._sweep(job):
                return False
            with self._lock, self._index_lock.exclusive():
                if self._conn is None:
                    return False
                try:
                    self._indexes.finish_checkpoint(job)
                except Exception:  # (the tombstones stay until the next checkpoint)
                    _log.exception("pruning the tombstones the checkpoint of collection %s "
                                   "covers failed", cid)
        return not self._closing

    def _sweep(self, job: CheckpointJob) -> bool:
        """Delete the vectors of the points deleted up to the checkpoint ``job`` wrote, a
        slice at a time with the handle's lock alone: searches go on (the prune after it,
        under the index lock, then finds them gone), a write waits for one slice at most.
        A failure is logged: the prune sweeps what is left. False when the handle closed."""
        try:
            with self._lock:
                if self._conn is None or self._closing:
                    return False
                slices = self._indexes.unswept(job)
            for keys in slices:
                with self._lock:
                    if self._conn is None or self._closing:  # (close() checkpoints itself)
                        return False
                    self._indexes.sweep(keys)
            job.swept = True
        except Exception:  # (a full disk, say: the tombstones stay, the prune retries)
            _log.exception("sweeping the deleted vectors of collection %s failed", job.cid)
        return True

    def wait_checkpointed(self, timeout: float = 60.0) -> bool:
        """Block until no checkpoint is due or being written (tests, benchmarks); False
        on timeout."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._conn is None or not self._indexes.checkpoints_due():
                    return True
                self._merge_wanted.set()
            time.sleep(0.01)
        return False

    def _give_way_to_writes(self) -> None:
        """Hold back the next merge slice while writes come back to back: a slice holds
        the index lock (and the interpreter) for up to ``MERGE_SLICE_S``, which a write
        would wait out. The pending segment absorbs the burst; past ``MAX_PENDING`` the
        writer merges the excess itself, so a sustained stream still pays for the graph.
        A merge due to go through a copy of the graph (``_insert_off_lock``), which no
        writer makes, waits for the burst too, until ``MAX_PENDING`` points are pending:
        the copy and its inserts took most of a core beside a burst of 10,000 upserts."""
        while not self._closing and not self._backlogged and (
                not self._indexes.checkpoint_overdue()) and not self._indexes.copy_pressing() and (
                self._writing or time.monotonic() - self._last_write < WRITE_YIELD_WINDOW_S):
            time.sleep(MERGE_PAUSE_S)  # (a checkpoint that comes due meanwhile waits too:
            # its graph write's fsyncs compete with the commits'; past twice the interval
            # it goes ahead, which bounds the replay after a crash)

    def _searching(self) -> bool:
        """Did a search come in lately? Background work then yields the cores."""
        return time.monotonic() - self._last_search < MERGE_YIELD_WINDOW_S

    def _background_team(self) -> None:
        """Before a background thread's next inserts: while searches run, a core left
        to them (``BACKGROUND_THREADS``); otherwise every core."""
        hnsw_graph.cap_team(BACKGROUND_THREADS if self._searching() else 0)

    def _maybe_compact(self, cid: int) -> None:
        """Have collection ``cid`` compacted in the background when its tombstones call
        for it (``compaction``; one compaction at a time per handle, in the order asked).
        Call with ``_lock``; returns at once."""
        live = self._indexes.live.get(cid)
        if self._closing or self._compactor is None or live is None \
                or not needs_compaction(live.index):
            return
        with self._compaction:
            self._compact_wanted[cid] = None
            self._compaction.notify_all()

    def _compaction_loop(self) -> None:
        """The compaction thread: compact the collections asked for, one at a time, until
        the handle closes."""
        while True:
            with self._compaction:
                while not self._compact_wanted and not self._closing:
                    self._compaction.wait()
                if self._closing:
                    return
                cid = next(iter(self._compact_wanted))
                del self._compact_wanted[cid]
                self._compacting = True
            try:
                self._compact(cid)
            finally:
                with self._compaction:
                    self._compacting = False
                    self._compaction.notify_all()

    def _compact(self, cid: int) -> None:
        """Build a tombstone-free graph from a read snapshot, then swap it in; again while
        the writes made meanwhile left enough tombstones for another. Nothing to do when
        an earlier compaction has already cleared them (a collection asked for again
        while it was being compacted)."""
        try:
            while True:
                with self._lock:
                    live = self._indexes.live.get(cid)
                    if self._closing or live is None or not needs_compaction(live.index):
                        return
                self._background_team()
                with self._readers.reader() as reader:
                    fresh, covers = build_from_snapshot(reader.conn, cid,
                                                        self._compaction_pause)
                fresh, covers = self._catch_up_compaction(fresh, covers)
                with self._lock, self._index_lock.exclusive():
                    if self._closing or self._conn is None:
                        return
                    installed = self._indexes.install(fresh, covers)
                    if not installed:
                        return
                    self._start_merging()
        except Cancelled:
            return
        except Exception:  # a failed compaction leaves the old graph, which is correct
            if not self._closing:
                _log.exception("compacting the index of collection %s failed", cid)

    def _catch_up_compaction(self, fresh: AnnIndex, covers: CollectionRow
                             ) -> tuple[AnnIndex, CollectionRow]:
        """Apply to ``fresh`` (a compaction's graph, as of ``covers``) the changes
        committed while it was built, from a newer snapshot and still off the handle's
        locks, up to ``CATCH_UP_ROUNDS`` times while there are any: what is left for the
        swap to replay under the locks (into the pending segment, which every search
        scores exactly until the merger takes it) is then what came in during the last
        round, not during the whole build."""
        for _ in range(CATCH_UP_ROUNDS):
            with self._readers.reader() as reader:
                now = by_cid(reader.conn, covers.cid)
                # (dropped, or an int8 scale moved: the swap refuses the graph anyway)
                if now is None or now.seq == covers.seq or now.clip != fresh.clip:
                    break
                try:
                    fresh, covers = build_from_snapshot(reader.conn, covers.cid,
                                                        self._compaction_pause, fresh,
                                                        covers.seq)
                except IndexFailure:  # dropped meanwhile: the swap refuses it too
                    break
        return fresh, covers

    def _compaction_pause(self, held: float) -> None:
        """Between two slices of a compaction: stop if closing; while searches run, stay
        off the cores for 3x the slice's time (as the merger does)."""
        if self._closing:
            raise Cancelled
        if self._searching():
            time.sleep(held * MERGE_YIELD_RATIO)
        self._background_team()

    def wait_compacted(self, timeout: float = 120.0) -> bool:
        """Block until no compaction runs or waits to run (tests, benchmarks); False on
        timeout."""
        deadline = time.monotonic() + timeout
        with self._compaction:
            while self._compacting or (self._compact_wanted and not self._closing):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._compaction.wait(left)
        return True

    def wait_merged(self, timeout: float = 60.0) -> bool:
        """Block until no point is pending a merge (tests, benchmarks); False on timeout.
        Between two looks it waits for the merger to finish a pass, or 0.1 s at most: a
        look takes the index lock, which makes the merger pause for it."""
        deadline = time.monotonic() + timeout
        while True:
            self._merge_pass_done.clear()
            with self._index_lock.shared():
                if self._conn is None or not self._indexes.pending():
                    return True
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            self._merge_pass_done.wait(min(left, 0.1))

    def index_memory_bytes(self) -> int:
        """Resident memory of the indexes this handle holds now (cheap: no SQL, no disk)."""
        with self._index_lock.shared():
            return self._indexes.resident_bytes()

    def _check_budget(self, row: CollectionRow, ids: list[str]) -> None:
        """Refuse index growth past the memory budget. Cheap below 90% of it; above, the
        new points are counted (replacements do not grow the index)."""
        budget = self.memory_budget_bytes
        if budget is None:
            return
        used = self.index_memory_bytes()
        if used < 0.9 * budget:
            return
        (existing,) = self.conn.execute(
            "SELECT count(*) FROM points WHERE cid = ? AND id IN "
            "(SELECT value FROM json_each(?))", (row.cid, json.dumps(ids))).fetchone()
        new = len(ids) - int(existing)
        growth = estimate_memory(new, row.dim, row.dtype) - estimate_memory(0, row.dim,
                                                                            row.dtype)
        if new > 0 and used + growth > budget:
            raise MemoryBudgetExceeded(
                f"adding {new} points to {row.name!r} would grow the index "
                f"memory to {used + growth:,} bytes, past the memory budget of {budget:,} "
                "bytes (memory_budget_bytes): raise the budget, use int8, or add a machine")

    # The two lookups of an upsert return one row each, a JSON aggregate: every row
    # fetched lets go of the interpreter lock, which a searching thread then holds for a
    # whole search before the writer gets it back.

    def _existing(self, row: CollectionRow, ids: list[str]) -> dict[str, tuple[int, int]]:
        """The rows ``ids`` name that exist, before a write: id -> (row key, bytes)."""
        (found,) = self.conn.execute(
            f"SELECT json_group_array(json_array(id, rowkey, {row_bytes_sql(row)})) "
            "FROM points WHERE cid = ? AND id IN (SELECT value FROM json_each(?))",
            (row.cid, json.dumps(ids))).fetchone()
        return {id: (key, size) for id, key, size in orjson.loads(found)}

    def _rowkeys(self, cid: int, ids: list[str], before: dict[str, tuple[int, int]]
                 ) -> np.ndarray:
        """The row keys of ``ids`` just written: those that existed ``before`` keep
        theirs (an upsert replaces a row in place); the new ones are looked up."""
        new = [i for i in ids if i not in before] if before else ids
        found: dict[str, int] = {}
        if new:
            (text,) = self.conn.execute(
                "SELECT json_group_object(id, rowkey) FROM points WHERE cid = ? AND id IN "
                "(SELECT value FROM json_each(?))", (cid, json.dumps(new))).fetchone()
            found = orjson.loads(text)
        return np.asarray([before[i][0] if i in before else found[i] for i in ids],
                          dtype=np.int64)

    def _where(self, ids: Sequence[str] | None, filter: Filter | None,
               required: bool) -> tuple[str, list[Any]]:
        parts: list[str] = []
        params: list[Any] = []
        if ids is not None:
            ids = lookup_ids(ids)
            parts.append("id IN (SELECT value FROM json_each(?))")
            params.append(json.dumps(ids))
        if filter is not None:
            sql, fparams = compile_filter(filter)
            parts.append(sql)
            params.extend(fparams)
        if required and not parts:
            raise StoreError("pass ids, a filter, or both to select the points to change")
        return (" AND ".join(parts) or "1"), params

    @_writes
    def delete(self, collection: str, ids: Sequence[str] | None = None,
               filter: Filter | None = None) -> int:
        """Delete the points matching ``ids`` and ``filter`` (both when both are given)."""
        row = lookup(self.conn, collection)
        where, params = self._where(ids, filter, required=True)
        self._sync_index(row)
        seq = row.seq + 1
        # A handful of statements whatever the batch's size: each statement (and each row
        # fetched) lets go of the interpreter lock, which a searching thread then holds
        # for a whole graph search before the writer gets it back.
        with self._transaction():
            deleted = self.conn.execute(
                f"INSERT INTO tombstones (cid, rowkey, seq) SELECT cid, rowkey, ? "
                f"FROM points WHERE cid = ? AND {where}", (seq, row.cid, *params)).rowcount
            if not deleted:
                return 0
            size = None
            if filter is not None:  # (rows a filter chose are mostly read already)
                (size,) = self.conn.execute(
                    f"SELECT SUM({row_bytes_sql(row)}) FROM points WHERE rowkey IN "
                    "(SELECT rowkey "
                    "FROM tombstones WHERE cid = ? AND seq = ?)", (row.cid, seq)).fetchone()
            self.conn.execute("DELETE FROM points WHERE rowkey IN (SELECT rowkey FROM "
                              "tombstones WHERE cid = ? AND seq = ?)", (row.cid, seq))
            (keys,) = self.conn.execute("SELECT json_group_array(rowkey) FROM tombstones "
                                        "WHERE cid = ? AND seq = ?", (row.cid, seq)).fetchone()
            if size is None:
                self.conn.execute(DELETE_TOTALS, (seq, deleted, deleted, deleted, row.cid))
            else:
                self.conn.execute(DELETE_EXACT_TOTALS, (seq, deleted, size, row.cid))
        gone = np.asarray(orjson.loads(keys), np.int64)
        after = lookup(self.conn, row.name)
        with self._index_lock.exclusive():
            self._indexes.apply_delete(after, gone)
        self._start_merging()
        self._maybe_compact(after.cid)
        return len(gone)

    @_writes
    def update_payload(self, collection: str, patch: Mapping[str, Any],
                       ids: Sequence[str] | None = None, filter: Filter | None = None) -> int:
        """Merge ``patch`` into matching payloads (RFC 7396 merge patch); vectors untouched."""
        if not isinstance(patch, Mapping):
            raise StoreError("a payload patch is a JSON object")
        row = lookup(self.conn, collection)
        where, params = self._where(ids, filter, required=True)
        text = payload_text(patch)
        with self._transaction():
            # (the growth in one row, not one row per point changed: every row fetched
            # lets go of the interpreter lock to a searching thread)
            (growth,) = self.conn.execute(
                "SELECT COALESCE(SUM(LENGTH(CAST(json_patch(payload, ?) AS BLOB)) "
                f"- LENGTH(CAST(payload AS BLOB))), 0) FROM points WHERE cid = ? AND {where}",
                (text, row.cid, *params)).fetchone()
            changed = self.conn.execute(
                f"UPDATE points SET payload = json_patch(payload, ?) WHERE cid = ? AND {where}",
                (text, row.cid, *params)).rowcount
            if changed:
                self.conn.execute("UPDATE collections SET seq = seq + 1, "
                                  "row_bytes = MAX(0, row_bytes + ?) WHERE cid = ?",
                                  (growth, row.cid))
        if changed:
            after = lookup(self.conn, row.name)
            with self._index_lock.exclusive():
                self._indexes.note_seq(after)
        return int(changed)

    @_reads
    def get(self, collection: str, ids: Sequence[str], with_vectors: bool = False) -> list[Point]:
        """The existing points among ``ids``, in the order asked (missing ids are skipped)."""
        row = lookup(self.conn, collection)
        ids = lookup_ids(ids)
        found = {r[0]: r for r in self.conn.execute(
            f"SELECT id, payload, vector FROM {POINTS_WITH_VECTORS} WHERE cid = ? AND id IN "
            "(SELECT value FROM json_each(?))", (row.cid, json.dumps(ids)))}
        return [_point(row, found[i], with_vectors) for i in dict.fromkeys(ids) if i in found]

    @_reads
    def count(self, collection: str, filter: Filter | None = None) -> int:
        row = lookup(self.conn, collection)
        if filter is None:
            return self._search.point_count(row)
        where, params = compile_filter(filter)
        (n,) = self.conn.execute(f"SELECT COUNT(*) FROM points WHERE cid = ? AND {where}",
                                 (row.cid, *params)).fetchone()
        return int(n)

    def search(self, collection: str, vectors: np.ndarray, k: int = DEFAULT_K,
               filter: Filter | None = None, ef: int | None = None,
               exact: bool = False) -> list[list[Hit]]:
        """Top-``k`` hits per query, best first; see ``embedops.store.search`` for plans.

        Runs with the index lock shared, and on a read connection of its own when it
        reads SQLite (module docstring): concurrent searches proceed together and do not
        wait for writes. A search of a read-write handle answered from the loaded index
        and the hit cache runs no SQL at all, unless it is the first since a write (the
        catalog row is read again) or the index has not applied that write yet (the
        plan counts the points in the catalog).

        A ``_reads`` call written out: the decorator's packing and unpacking of the
        arguments cost ~1 µs of a ~60 µs search.
        """
        if self._conn is None:
            raise StoreError("store handle is closed")
        local = self._local
        if local.lazy:  # nested in another read
            return self._search_read(collection, vectors, k, filter, ef, exact)
        local.lazy = True
        try:
            return self._search_read(collection, vectors, k, filter, ef, exact)
        except sqlite3.DatabaseError as exc:
            raise translate_sql_error(exc) from exc
        finally:
            self._end_read(local)

    def _end_read(self, local: _ThreadState) -> None:
        """The end of a ``_reads`` call: the read connection it checked out (if any) goes
        back to the pool."""
        local.lazy = False
        reader = local.reader
        if reader is not None:  # (checked out by ``conn``)
            local.reader = None
            self._readers.checkin(reader)

    def _search_read(self, collection: str, vectors: np.ndarray, k: int,
                     filter: Filter | None, ef: int | None, exact: bool) -> list[list[Hit]]:
        """``search`` inside its read."""
        self._last_search = time.monotonic()  # the merger yields to searches (_merge_loop)
        if (type(k) is not int and (not isinstance(k, int) or isinstance(k, bool))) or k < 1:
            raise StoreError(f"k must be a positive integer, got {k!r}")
        if ef is not None:
            check_ef(ef)
        if not isinstance(collection, str):
            raise StoreError(f"collection must be a name, got {type(collection).__name__}")
        kept = self._search_rows.get(collection)  # (``_search_row``, its common case here)
        if kept is not None and kept[0] == self._writes_done and not self.read_only:
            row = kept[1]
        else:
            row = self._search_row(collection)
        # one plain query (the most common search) skips normalising (quantization.one_query)
        one = None if filter is not None or exact else \
            quantization.one_query(vectors, row.dim, row.metric)
        if one is None:
            queries = quantization.prepare(vectors, row.dim, row.metric)
            check_dim(row.name, row.dim, queries)
        where = compile_filter(filter) if filter is not None else None
        if where is not None and not exact:  # (off the index lock: writers need it)
            self._search.read_due_matches(row, where, len(queries))
        if not self._readers.idle and self._local.reader is None:
            self._readers.keep_one_idle()  # (so that none is opened under the index lock)
        lock = self._index_lock
        while True:
            with lock.shared():
                if self._conn is None:
                    raise StoreError("store handle is closed")
                direct = self._direct.get((collection, k, ef)) if one is not None else None
                if direct is not None:  # (this kind of search's way, if it stands)
                    if (direct[0] == lock.generation and direct[1] is row
                            and self._indexes.live.get(row.cid) is direct[3]):
                        plan = direct[2]
                        hits = None if plan is None else self._search.search_direct(
                            row, plan, one[0], one[1], k, ef)
                        if hits is not None:
                            return [hits]
                    else:
                        direct = None
                live = self._indexes.ready(row, not self.read_only)
                if live is not None:
                    if one is not None:
                        if direct is None:
                            self._keep_direct(collection, row, live, k, ef)
                        return [self._search.search_one(row, live, one[0], one[1], k, ef)]
                    return self._search.search(row, queries, k, where, ef, exact)
                if self.read_only and self._warming_up(row):  # answered exactly meanwhile
                    if one is not None:
                        queries = quantization.prepare(vectors, row.dim, row.metric)
                    return self._search.search_while_loading(row, queries, k, where)
            self._catch_up(row)

    def _keep_direct(self, collection: str, row: CollectionRow, live: LiveIndex, k: int,
                     ef: int | None) -> None:
        """Keep the way straight to the compiled graph search of a plain single search
        of ``row`` (``Searcher.direct_plan``), or that it has none, for the next
        searches with the same ``k`` and ``ef``. Under the index lock's shared side: the plan
        stands while the lock's generation stays (no exclusive holder has changed the
        indexes since; an even generation: none holds it now, the caller is not one
        that searches inside its own exclusive section). A read-write handle's alone:
        its catalog rows are kept while its writes are (``_search_row``)."""
        generation = self._index_lock.generation
        if self.read_only or generation & 1:
            return
        if len(self._direct) >= DIRECT_PLANS:  # (many k and ef: start again)
            self._direct.clear()
        # (None kept too: a search that has no such way does not look for it again)
        self._direct[(collection, k, ef)] = (generation, row,
                                             self._search.direct_plan(row, live, k, ef), live)

    def _search_row(self, collection: str) -> CollectionRow:
        """The catalog row of ``collection`` (or of the collection an alias names) for a
        search. A read-write handle holds the store's writer lock, so every commit is its
        own: a row it read stands until its write count moves (``_writes_done``), and
        is kept for every thread. A read-only handle asks its read connection whether
        another connection has committed since (``_read_lookup``)."""
        if self.read_only:
            reader = self._thread_reader()
            assert reader is not None  # (inside ``search``)
            return _read_lookup(reader, collection, self._writes_done)
        return _kept_row(self._search_rows, collection, self._writes_done,
                         lambda: self.conn)  # (a read connection only if not kept)

    def _warming_up(self, row: CollectionRow) -> bool:
        """Is ``row``'s index loading in the background now? Starts that when a read-only
        handle has no index of the collection and loading one means replaying at least
        ``WARM_MIN`` points (a collection written but not checkpointed yet, or a
        checkpoint far behind): searches then answer exactly instead of waiting seconds
        for the graph. Smaller catch-ups run inline, as before."""
        with self._warming_lock:
            thread = self._warming.get(row.cid)
            if thread is not None and thread.is_alive():
                return True
            if row.cid in self._indexes.live or self._closing:
                return False
            manifest = read_manifest(self.path / "index", row.cid) or {}
            since = int(manifest.get("seq", 0))
            since = since if row.pruned_seq <= since <= row.seq else 0
            (behind,) = self.conn.execute(
                "SELECT COUNT(*) FROM (SELECT 1 FROM points WHERE cid = ? AND seq > ? "
                "LIMIT ?)", (row.cid, since, WARM_MIN)).fetchone()
            if behind < WARM_MIN:
                return False
            thread = threading.Thread(target=self._warm, args=(row,), daemon=True,
                                      name="embedops-index-warm")
            self._warming[row.cid] = thread
            thread.start()
            return True

    def _warm(self, row: CollectionRow) -> None:
        """Load ``row``'s index off the handle's locks: its checkpoint (if usable) plus
        the changes after it, read from one snapshot, then install it with the changes
        committed meanwhile (``IndexManager.adopt``)."""
        try:
            while not self._closing:
                base = self._indexes.checkpointed(row)  # (reads files, runs no SQL)
                with self._readers.reader() as reader:
                    built, covers = build_from_snapshot(reader.conn, row.cid,
                                                        self._warm_pause, base.index,
                                                        base.seq)
                with self._lock, self._index_lock.exclusive():
                    if self._closing or self._conn is None:
                        return
                    if self._indexes.adopt(built, covers) or row.cid in self._indexes.live:
                        self._search.dense.drop(row.cid)  # held for the warm-up only
                        self._start_merging()  # (changes since the snapshot, deferred)
                        return
        except Cancelled:
            return
        except Exception:  # searches go on exactly; the next one after this tries inline
            if not self._closing:
                _log.exception("loading the index of collection %s failed", row.cid)

    def _warm_pause(self, held: float) -> None:
        if self._closing:
            raise Cancelled

    @_guarded
    def _catch_up(self, row: CollectionRow) -> None:
        """Load the collection's index, or replay changes it has not seen (a read-only
        handle behind the writer), on the handle's connection."""
        with self._index_lock.exclusive():
            self._indexes.synced(lookup(self.conn, row.name))
        self._start_merging()  # (a checkpoint loaded with points pending, a tail deferred)

    def search_one(self, collection: str, vector: np.ndarray, k: int = DEFAULT_K,
                   filter: Filter | None = None, ef: int | None = None,
                   exact: bool = False) -> list[Hit]:
        """Single-query convenience over ``search``."""
        return self.search(collection, np.asarray(vector).reshape(1, -1), k, filter, ef, exact)[0]

    def scan(self, collection: str, page_size: int = 1000, filter: Filter | None = None,
             with_vectors: bool = False) -> Iterator[list[Point]]:
        """Pages of points in row-key order; each page is one read snapshot."""
        if page_size < 1:
            raise StoreError("page_size must be positive")
        collection = self.resolve(collection)  # a repointed alias must not switch mid-scan
        last, walk, cid = -1, None, None
        while True:
            page, last, walk, cid = self._scan_page(collection, last, page_size, filter,
                                                    with_vectors, walk, cid)
            if not page:
                return
            yield page

    @_reads
    def _scan_page(self, collection: str, last: int, size: int, filter: Filter | None,
                   with_vectors: bool, walk: bool | None = None, cid: int | None = None
                   ) -> tuple[list[Point], int, bool, int]:
        """One page of ``scan`` after row key ``last``, with the scan's plan (``walk``,
        ``_walks_keys``) and its collection's id (``cid``); None: the first page, which
        chooses the plan for the whole scan. Raises ``CollectionChanged`` when the name
        now names another collection (dropped and made again, or an alias of that name
        moved, mid-scan). The vectors' table is read only for vectors asked for."""
        row = lookup(self.conn, collection)
        if cid is not None and row.cid != cid:
            raise CollectionChanged(f"{collection!r} names another collection than when "
                                    "the scan began (dropped and made again, or an alias "
                                    "moved): scan it again")
        where, params = self._where(None, filter, required=False)
        if walk is None:
            walk = self._walks_keys(row, where, params, size)
        if with_vectors:
            table = POINTS_WITH_VECTORS_IN_KEY_ORDER if walk else POINTS_WITH_VECTORS
            columns = "id, payload, vector, rowkey"
        else:
            table = "points NOT INDEXED" if walk else "points"
            columns = "id, payload, NULL, rowkey"
        rows = self.conn.execute(
            f"SELECT {columns} FROM {table} WHERE cid = ? AND rowkey > ? "
            f"AND {where} ORDER BY rowkey LIMIT ?", (row.cid, last, *params, size)).fetchall()
        points = [_point(row, r, with_vectors) for r in rows]
        return points, (rows[-1][3] if rows else last), walk, row.cid

    def _walks_keys(self, row: CollectionRow, where: str, params: list[Any],
                    size: int) -> bool:
        """Should a scan of ``row``'s points matching ``where``, ``size`` a page, walk the
        table's primary key (``points NOT INDEXED``) rather than take SQLite's plan?
        SQLite's plan is kept when it reads the points in row-key order itself.
        Otherwise, for every page, it reads R rows and sorts those past the page's
        start: a payload index searched by the filter's value (a range, ``in``, ``or``)
        reads the matches, an index on ``cid`` (``(cid, seq)``, or a payload index used
        for ``cid`` alone) every point of the collection: ~R²/(2 × size) rows over a
        scan (a backfill's scan of 200,000 points by a filter each matched took 7.8 s
        against 0.8 s walking the key, ``bench/scan_pages.py``). The walk passes the
        other collections' rows too: at most the table once over the scan, so it is
        taken when that is less."""
        plan = " / ".join(step[3] for step in self.conn.execute(
            "EXPLAIN QUERY PLAN SELECT rowkey FROM points WHERE cid = ? AND rowkey > ? "
            f"AND {where} ORDER BY rowkey LIMIT ?", (row.cid, -1, *params, size)))
        if "TEMP B-TREE" not in plan:
            return False
        if "<expr>" in plan:  # (the matches, counted through the same index)
            (rows,) = self.conn.execute(f"SELECT COUNT(*) FROM points WHERE cid = ? AND "
                                        f"{where}", (row.cid, *params)).fetchone()
        else:
            rows = totals(self.conn, row.cid).points
        (table,) = self.conn.execute(
            "SELECT COALESCE(SUM(points), 0) FROM collections").fetchone()
        return int(rows) * int(rows) >= 2 * size * int(table)

    # --- index maintenance and stats ------------------------------------------------------

    @_guarded
    def stats(self, collection: str) -> dict[str, Any]:
        """Points, index tombstones, resident index bytes, the default search depth, disk
        bytes, dtype and seqs."""
        row = lookup(self.conn, collection)
        with self._index_lock.exclusive():
            index = self._indexes.info(row)
        held = totals(self.conn, row.cid)  # (kept by every write: no scan)
        return {
            "collection": row.name, "points": held.points,
            "deleted": index["deleted"], "index_points": index["index_points"],
            "index_pending": index["index_pending"], "index_bytes": index["index_bytes"],
            "index_mapped": index["index_mapped"],  # (the graph maps its checkpoint file)
            "index_segments": index["index_segments"],  # (graphs: 1 but with segment_size)
            "search_depth": index["search_depth"],  # (ef of a search that sets none)
            "disk_bytes": held.row_bytes + index["checkpoint_bytes"],
            "store_disk_bytes": sum(p.stat().st_size for p in self.path.rglob("*")
                                    if p.is_file()),
            "dtype": row.dtype, "metric": row.metric, "seq": row.seq,
            "index_seq": index["index_seq"], "checkpoint_seq": index["checkpoint_seq"],
            # (the handle's hit cache, all collections together)
            "hit_cache_bytes": self._search.hit_cache.bytes,
            "hit_cache_hits": self._search.hit_cache.hits,
            "hit_cache_misses": self._search.hit_cache.misses,
            # (the row keys filters matched, kept until the collection changes: all of them)
            "filter_cache_bytes": 8 * self._search.filter_matches.held_keys,
        }

    @_writes
    def rebuild_index(self, collection: str) -> dict[str, Any]:
        """Regenerate the collection's index from SQLite and checkpoint it."""
        row = lookup(self.conn, collection)
        with self._index_lock.exclusive():
            index = self._indexes.rebuild(row)
        return {"collection": row.name, "points": len(index), "seq": row.seq}

    @_writes
    def checkpoint(self, collection: str) -> None:
        """Save the collection's index now (normally done every ``checkpoint_every`` points)."""
        row = lookup(self.conn, collection)
        with self._index_lock.exclusive():
            self._indexes.synced(row)
            self._indexes.checkpoint(row.cid)

    @_guarded
    def verify_index(self, collection: str) -> dict[str, Any]:
        """Compare the index with SQLite row by row.

        Returns ``missing`` (row keys in SQLite only), ``ghosts`` (in the index only) and
        ``mismatched`` (keys whose index vector differs from the SQLite vector).
        """
        row = lookup(self.conn, collection)
        with self._index_lock.exclusive():
            keys = set(self._indexes.synced(row).keys().tolist())
        rows, mismatched = set(), []
        cursor = self.conn.execute(f"SELECT rowkey, vector FROM {POINTS_WITH_VECTORS} "
                                   "WHERE cid = ?", (row.cid,))
        while page := cursor.fetchmany(10_000):
            page_keys = np.asarray([r[0] for r in page], dtype=np.int64)
            rows.update(page_keys.tolist())
            present = np.asarray([k in keys for k in page_keys.tolist()], dtype=bool)
            vectors = quantization.decode([r[1] for r in page], row.dim, row.dtype)
            with self._index_lock.shared():
                ok = self._indexes.loaded(row).matches_vectors(page_keys[present],
                                                               vectors[present])
            mismatched += page_keys[present][~ok].tolist()
        return {"points": len(rows), "index_points": len(keys), "missing": sorted(rows - keys),
                "ghosts": sorted(keys - rows), "mismatched": sorted(mismatched)}

    # --- aliases -----------------------------------------------------------------------

    @_writes
    def create_alias(self, alias: str, collection: str) -> None:
        with self._transaction():
            catalog.create_alias(self.conn, alias, collection)

    @_writes
    def repoint_alias(self, alias: str, collection: str) -> str:
        """Move ``alias`` to ``collection`` in one transaction; returns the previous target."""
        with self._transaction():
            return catalog.repoint_alias(self.conn, alias, collection)

    @_writes
    def rename_behind_alias(self, name: str, new_name: str) -> None:
        """Rename collection ``name`` to ``new_name`` and make ``name`` an alias of it, in
        one transaction: a reader of ``name`` sees the same points before and after.
        Aliases that pointed at ``name`` follow it."""
        with self._transaction():
            row = lookup(self.conn, name)
            if row.name != name:
                raise AliasConflict(f"{name!r} is already an alias (of {row.name!r})")
            catalog.check_name(new_name)
            if self.conn.execute("SELECT 1 FROM collections WHERE name = ? UNION SELECT 1 "
                                 "FROM aliases WHERE alias = ?", (new_name, new_name)).fetchone():
                raise CollectionExists(f"{new_name!r} already names a collection or alias")
            self.conn.execute("UPDATE collections SET name = ? WHERE cid = ?",
                              (new_name, row.cid))
            self.conn.execute("UPDATE aliases SET collection = ? WHERE collection = ?",
                              (new_name, name))
            self.conn.execute("INSERT INTO aliases (alias, collection, updated_at) "
                              "VALUES (?, ?, ?)", (name, new_name, catalog.now()))

    @_reads
    def resolve(self, name: str) -> str:
        return lookup(self.conn, name).name

    @_reads
    def list_aliases(self) -> dict[str, str]:
        return catalog.aliases(self.conn)

    @_writes
    def delete_alias(self, alias: str) -> None:
        with self._transaction():
            catalog.delete_alias(self.conn, alias)

    # --- lifecycle ---------------------------------------------------------------------

    def _stop_background(self) -> None:
        """Stop the handle's background threads: a checkpoint being written in the
        background is given up (the last one stays whole), a compaction stops where it is."""
        self._closing = True
        self._merge_wanted.set()
        with self._compaction:
            self._compaction.notify_all()
        for thread in (self._merger, self._compactor, *self._warming.values()):
            if thread is not None and thread is not threading.current_thread():
                thread.join(timeout=60)

    def close(self) -> None:
        """Checkpoint changed indexes, close SQLite and release the writer lock (idempotent)."""
        self._stop_background()
        if self._wal is not None:
            self._wal.close()
        with self._lock, self._index_lock.exclusive():
            if self._conn is None:
                return
            try:
                with sql_errors():
                    self._indexes.close()
            finally:
                self._readers.close()
                self._conn.close()
                self._conn = None
                if self._writer:
                    self._writer.release()

    def __enter__(self) -> EmbeddedStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_fingerprint(name: str, model: str, expected: str, given: object) -> None:
    """Refuse vectors whose fingerprint is not the collection's (there is no bypass)."""
    if given == expected:
        return
    if model == EXTERNAL_MODEL:
        raise FingerprintMismatch(
            f"collection {name!r} holds external vectors of fingerprint {expected!r}: "
            f"write them with that fingerprint (or none through the client or HTTP), not "
            f"{given!r}")
    raise FingerprintMismatch(
        f"collection {name!r} holds vectors of {model} (fingerprint {expected}); vectors "
        f"of fingerprint {given!r} are refused: embed with {model}, or write raw vectors "
        "to a collection created for external vectors")


def _check_collection_args(dim: int, metric: str, dtype: str, fingerprint: str,
                           params: dict[str, Any]) -> None:
    """Refuse a bad collection spec with a 4xx (``InvalidCollectionSpec``,
    ``InvalidIndexParams``), never a 500."""
    if not isinstance(dim, int) or isinstance(dim, bool) or not 0 < dim <= 65_536:
        raise InvalidCollectionSpec(f"dim must be an integer in 1..65536, got {dim!r}")
    if metric not in METRICS:
        raise InvalidCollectionSpec(f"metric must be one of {METRICS}, got {metric!r}")
    if dtype not in DTYPES:
        raise InvalidCollectionSpec(f"dtype must be one of {DTYPES}, got {dtype!r}")
    if not isinstance(fingerprint, str) or not fingerprint:
        raise InvalidCollectionSpec("a collection needs the embedder fingerprint of its "
                                    "vectors")
    catalog.check_index_params(params)


def _prepare_batch(row: CollectionRow, ids: Sequence[str], vectors: np.ndarray,
                   payloads: Sequence[Mapping[str, Any]] | None
                   ) -> tuple[list[str], np.ndarray, list[str]]:
    """Validate a batch (``batch.check_batch``): the ids, rows and payload texts to write."""
    arr, payloads, keep = check_batch(row.name, row.dim, row.metric, ids, vectors, payloads)
    if len(keep) == len(ids):  # (no id twice: every row, in order, copied no more)
        return list(ids), arr, [payload_text(p) for p in payloads]
    return ([ids[i] for i in keep], arr[keep], [payload_text(payloads[i]) for i in keep])


def _point(row: CollectionRow, record: Sequence[Any], with_vectors: bool) -> Point:
    vector = quantization.decode([record[2]], row.dim, row.dtype)[0] if with_vectors else None
    return Point(id=record[0], payload=payload_of(record[1]), vector=vector)


def _read_lookup(reader: Reader, name: str, writes_done: int) -> CollectionRow:
    """A read-only handle's catalog row for a search, reused until another connection
    commits (SQLite's ``data_version``) or this handle writes: saves a query per
    search."""
    (data_version,) = reader.conn.execute("PRAGMA data_version").fetchone()
    return _kept_row(reader.rows, name, (int(data_version), writes_done),
                     lambda: reader.conn)


def _kept_row(rows: dict[str, tuple[Any, CollectionRow]], name: str, version: Any,
              connection: Callable[[], sqlite3.Connection]) -> CollectionRow:
    """``name``'s catalog row as ``rows`` keeps it, if read at ``version``; else read now
    on ``connection()`` and kept (256 names at most)."""
    cached = rows.get(name)
    if cached is not None and cached[0] == version:
        return cached[1]
    row = lookup(connection(), name)
    if len(rows) > 256:
        rows.clear()
    rows[name] = (version, row)
    return row
