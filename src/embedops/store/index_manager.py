"""Keeps each collection's derived HNSW index in step with SQLite.

Recovery protocol: an index is loaded from its last checkpoint (which records the change
sequence ``S`` it covers) and then catches up by replaying, in one read snapshot, the
tombstones with ``seq > S`` (removals) and the point rows with ``seq > S`` (inserts or
replacements, which are idempotent). With no usable checkpoint the index starts empty at
``S = 0``, which replays every live point. Tombstones are pruned only up to a saved
checkpoint (``collections.pruned_seq``); a non-empty in-memory index older than that
reloads from the checkpoint instead of replaying.

Checkpoints due after writes run in the background (``start_checkpoint``, then the
files written with no store lock held, then ``finish_checkpoint``): a write that crosses
the checkpoint interval never waits for the graph file, which took 1.8 s for 100k
float32 points (the write behind it then ran at 13k deletes/s instead of 97k/s). The
explicit ones (``checkpoint``: on close, after a rebuild, on request) write at once.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embedops.errors import IndexFailure
from embedops.store import checkpoint_files, quantization
from embedops.store.catalog import CollectionRow, by_cid, lookup, transaction
from embedops.store.changes import ChangedRows
from embedops.store.checkpoint_files import (
    IndexImage,
    SegmentsImage,
    manifest_files,
    manifest_path,
    read_manifest,
)
from embedops.store.hnsw_graph import HnswGraph, KeyMapJob
from embedops.store.hnsw_index import DEFAULT_PARAMS, OffLockInsert
from embedops.store.segmented_index import AnnIndex, load_index, new_index

REPLAY_PAGE = 20_000
CALIBRATION_SAMPLE = 20_000
# Deleted points' vectors swept per transaction by a background checkpoint (``sweep``):
# ~0.3-0.6 s of a writer's wait at most (14-31 ms per 1,000 on this machine).
SWEEP_SLICE = 20_000
MAX_PENDING = 20_000  # pending points per index before a write merges some itself
MERGE_SLICE_S = 0.01  # the store lock is held this long per merge slice, about
MERGE_MIN, MERGE_MAX = 1, 4096
# faiss inserts a batch's points on all cores only past 100 points of one level (its
# OpenMP loop runs ``if (i1 > i0 + 100)``), and a 10 ms slice at 1M nodes holds ~20: a
# wide slice (``merge_step(wide=True)``) takes at least this many, for the merger to use
# every core when nothing waits on the lock but a writer that waits for it anyway
WIDE_MIN = 256
WIDE_SLICE_S = 0.05
BACKSTOP_MIN = 1_000  # tombstones before a delete rebuilds inline (past half the graph)
CHECKPOINT_SHARE = 0.05  # default checkpoint interval: this share of the index (or 50,000 points)


@dataclass
class LiveIndex:
    """An in-memory index, the change sequence it reflects and points since its checkpoint."""

    index: AnnIndex
    seq: int
    pending: int = 0
    saved_pending: int = 0  # points pending a merge in the checkpoint on disk
    # A replay put points in its pending segment (``synced``): a read-only handle merges
    # only such indexes (one that only searches keeps the pending points a checkpoint
    # was saved with, and its mapped graph, as they are)
    deferred: bool = False


@dataclass
class CheckpointJob:
    """A background checkpoint between ``start_checkpoint`` and ``finish_checkpoint``."""

    cid: int
    live: LiveIndex
    image: IndexImage | SegmentsImage
    counted: int  # the changed points it covers (``LiveIndex.pending`` at its start)
    written: bool = False
    swept: bool = False  # the deleted points' vectors it covers deleted (``sweep``)


class IndexManager:
    """Owns the in-memory indexes of one store handle.

    Callers serialise changes (every method but ``ready``, ``loaded``, ``pending``,
    ``checkpoints_due`` and ``write_checkpoint``) with the store's index lock held
    exclusive, and methods that run SQL with the handle's connection lock as well;
    searches hold the index lock shared.

    ``background_checkpoints``: a checkpoint due after a write is only noted
    (``checkpoints_due``) for the caller's background thread to run; otherwise the write
    saves it at once.
    """

    def __init__(self, conn: sqlite3.Connection, folder: Path, read_only: bool,
                 background_checkpoints: bool = False) -> None:
        self.conn = conn
        self.folder = folder
        self.read_only = read_only
        self.background_checkpoints = background_checkpoints
        self.live: dict[int, LiveIndex] = {}
        self._merge_rate = 1000.0  # points merged per second, measured as it goes
        self._wide_rate = 1000.0  # the same in wide slices (on every core)
        self._due: dict[int, int] = {}  # cid -> the interval that made a checkpoint due
        # held by whoever writes checkpoint files, from the image to the manifest: one
        # checkpoint at a time, so an older image never replaces a newer manifest
        self._writing = threading.Lock()

    def _fresh(self, row: CollectionRow) -> LiveIndex:
        return LiveIndex(new_index(row.dim, row.metric, row.dtype, row.index_params, row.clip),
                         0)

    def checkpointed(self, row: CollectionRow) -> LiveIndex:
        """The collection's last usable checkpoint (or an empty index at seq 0), loaded
        but not caught up and not installed (``synced`` and a handle's background
        warm-up start here)."""
        loaded = load_index(self.folder, row.cid, row.dim, row.metric, row.dtype,
                            row.index_params, row.clip)
        if loaded is None or loaded[1] < row.pruned_seq or loaded[1] > row.seq:
            return self._fresh(row)
        return LiveIndex(loaded[0], loaded[1], saved_pending=loaded[0].pending)

    def ready(self, row: CollectionRow, behind_ok: bool) -> LiveIndex | None:
        """``row``'s loaded index if a search can use it as it is, with no load or
        replay; else None.

        ``behind_ok``: the handle applies its own commits to the index right after
        making them (a read-write handle), so an index a commit behind what a reader's
        snapshot shows is about to catch up, and searches need not wait for it.
        """
        live = self.live.get(row.cid)
        if live is None or live.index.clip != row.clip:
            return None
        if live.seq < row.pruned_seq and len(live.index) > 0:
            return None
        return live if behind_ok or live.seq >= row.seq else None

    def loaded(self, row: CollectionRow) -> AnnIndex:
        """The collection's loaded index, as it is (see ``ready``)."""
        live = self.live.get(row.cid)
        if live is None:
            raise IndexFailure(f"the index of collection {row.name!r} is not loaded")
        return live.index

    def is_synced(self, row: CollectionRow) -> bool:
        """Is the collection's index loaded and caught up with ``row``? A cheap check a
        writer makes before taking the exclusive lock for ``synced``; the ``apply_*``
        methods resynchronise by themselves should the answer go stale meanwhile."""
        live = self.live.get(row.cid)
        return live is not None and not _outdated(live, row) and live.seq >= row.seq

    def synced(self, row: CollectionRow) -> AnnIndex:
        """The collection's index, caught up with every change committed up to ``row.seq``."""
        live = self.live.get(row.cid)
        if live is None or _outdated(live, row):
            live = self.checkpointed(row)
            self.live[row.cid] = live
        if live.seq < row.seq:
            # A mapped graph takes the changes since its checkpoint (a writer's tail, a
            # read-only handle's catch-up) in its pending segment: an insert in place
            # would read an owned copy of the whole graph with the index lock held
            # (mapped_files: 1.5 s at 1M float32); the handle's merger makes that copy
            # off the lock. Once it has, later catch-ups go the same way: an insert in
            # place would wait for a copy the merger is making.
            self._replay(row.cid, live, defer=live.index.mapped or live.deferred)
        return live.index

    def _replay(self, cid: int, live: LiveIndex, defer: bool = False) -> None:
        self.conn.execute("BEGIN")
        try:
            row = by_cid(self.conn, cid)
            if row is None:
                raise IndexFailure(f"collection {cid} was dropped")
            gone = [r for (r,) in self.conn.execute(
                "SELECT rowkey FROM tombstones WHERE cid = ? AND seq > ?", (cid, live.seq))]
            live.index.remove(np.asarray(gone, dtype=np.int64))
            applied = self._replay_points(row, live, defer)
        finally:
            self.conn.execute("COMMIT")
        live.seq = row.seq
        live.pending += applied + len(gone)
        live.deferred = live.deferred or (defer and applied > 0)

    def _replay_points(self, row: CollectionRow, live: LiveIndex, defer: bool) -> int:
        changed, applied = ChangedRows(self.conn, row.cid, live.seq), 0
        while rows := changed.page(REPLAY_PAGE):
            keys = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
            vectors = quantization.decode([r[1] for r in rows], row.dim, row.dtype)
            live.index.add(keys, vectors, defer=defer)
            applied += len(rows)
        return applied

    def apply_upsert(self, row: CollectionRow, keys: np.ndarray, vectors: np.ndarray) -> int:
        """Apply a committed upsert (``row`` is the catalog row after the commit); returns
        the points pending past ``MAX_PENDING`` now, which the writer merges itself
        (``EmbeddedStore._merge_excess``)."""
        live = self.live.get(row.cid)
        if live is not None and live.seq >= row.seq and live.index.clip == row.clip:
            return 0  # a replay (a search's catch-up) already applied this commit
        if live is None or live.seq != row.seq - 1 or live.index.clip != row.clip:
            self.live.pop(row.cid, None)
            self.synced(row)
            return 0
        try:
            # into the pending segment: searchable now, merged into the graph later
            live.index.add(keys, vectors, defer=True)
        except IndexFailure:
            # The rows are committed; the next read rebuilds the index from SQLite.
            self.live.pop(row.cid, None)
            return 0
        live.seq, live.pending = row.seq, live.pending + len(keys)
        self._maybe_checkpoint(row, live)
        return max(0, live.index.pending - MAX_PENDING)

    def install(self, fresh: AnnIndex, covers: CollectionRow) -> bool:
        """Swap in ``fresh``, an index built from a snapshot at ``covers.seq``
        (``compaction``), after replaying into it every change committed since. False
        (nothing changed) when that is impossible: the collection was dropped or its
        index unloaded, its int8 scale moved, or a checkpoint pruned tombstones the
        replay would need."""
        live = self.live.get(covers.cid)
        now = by_cid(self.conn, covers.cid)
        if (live is None or now is None or now.pruned_seq > covers.seq
                or now.clip != fresh.clip or live.index.clip != fresh.clip):
            return False
        candidate = LiveIndex(fresh, covers.seq)
        self._replay(covers.cid, candidate, defer=True)  # the merger takes them from here
        # the checkpoint on disk still holds the old graph: save the new one in time
        candidate.pending = live.pending + max(candidate.pending, 1)
        self.live[covers.cid] = candidate
        return True

    def adopt(self, built: AnnIndex, covers: CollectionRow) -> bool:
        """Install ``built``, an index of the collection as of the snapshot ``covers``
        (a read-only handle's warm-up), after replaying every change committed since;
        False when it can no longer be (dropped, int8 scale moved, tombstones pruned)
        or an index got loaded meanwhile."""
        now = by_cid(self.conn, covers.cid)
        if (covers.cid in self.live or now is None or now.pruned_seq > covers.seq
                or now.clip != built.clip):
            return False
        live = LiveIndex(built, covers.seq)
        self._replay(covers.cid, live, defer=built.mapped)  # (as ``synced``)
        self.live[covers.cid] = live
        return True

    def pending(self) -> int:
        """Points waiting in the pending segments this handle merges (``_merged``)."""
        return sum(live.index.pending for live in self._merged())

    def _merged(self) -> list[LiveIndex]:
        """The live indexes whose pending points this handle merges: all of them on a
        read-write handle; on a read-only one, those a replay deferred points to
        (``LiveIndex.deferred``)."""
        return [live for live in list(self.live.values()) if self._merges(live)]

    def _merges(self, live: LiveIndex) -> bool:
        return not self.read_only or live.deferred

    def copy_due(self, cid: int | None = None, count: int = MERGE_MAX, *,
                 pending_at_least: int = 1) -> bool:
        """Is a merge of up to ``count`` pending points (of collection ``cid``, or of any
        with ``pending_at_least`` points pending) due to go through a copy of its graph
        (``HnswGraph.copy_due``)? Those are the merger's to make
        (``EmbeddedStore._insert_off_lock``). Reads sizes only: the merger may ask
        without the index lock (a stale answer costs one pause)."""
        return any(
            live.index.pending >= pending_at_least and not live.index.frozen
            and live.index.copy_due(min(count, live.index.pending))
            for live in self._merged() if cid is None or self.live.get(cid) is live)

    def copy_pressing(self) -> bool:
        """Is a merge through a copy due in an index with ``MAX_PENDING`` or more points
        pending? Until then the merger leaves it to a pause in the writes
        (``EmbeddedStore._give_way_to_writes``)."""
        return self.copy_due(pending_at_least=MAX_PENDING)

    def key_map_jobs(self) -> list[tuple[HnswGraph, KeyMapJob]]:
        """The key -> position maps missing from graphs that take writes now (points
        pending), to be built off the index lock (``KeyMapJob``). Call with the index
        lock, shared at least."""
        return [(graph, job) for live in self._merged() if live.index.pending
                for graph in live.index.graphs if (job := graph.key_map_job()) is not None]

    def take_key_map(self, graph: HnswGraph, job: KeyMapJob) -> None:
        """Give ``graph`` the map ``job`` built, if the graph is still live (call with
        the index lock exclusive; ``HnswGraph.take_key_map``)."""
        if any(graph is held for live in self.live.values() for held in live.index.graphs):
            graph.take_key_map(job)

    def merge_excess(self, cid: int, count: int) -> None:
        """Merge up to ``count`` of collection ``cid``'s pending points into its graph now
        (a writer past ``MAX_PENDING``)."""
        live = self.live.get(cid)
        if live is None:
            return
        try:
            live.index.merge(count)
        except IndexFailure:
            self.live.pop(cid, None)  # (the rows are committed: the next read rebuilds)

    def merge_step(self, seconds: float = MERGE_SLICE_S, *, wide: bool = False) -> int:
        """Merge about ``seconds`` worth of pending points into one graph, the one with
        the most pending (the size of the slice follows the rate measured so far);
        returns the points still pending. The caller holds the store's lock, so a slice
        is atomic to searches. A ``wide`` slice takes ``WIDE_SLICE_S`` worth, at least
        ``WIDE_MIN`` points, which faiss spreads over every core (its rate is measured
        apart: it is not one thread's)."""
        for cid, live in sorted(self.live.items(), key=lambda item: -item[1].index.pending):
            index = live.index
            if not index.pending or not self._merges(live):
                continue
            if wide:
                seconds = WIDE_SLICE_S
                size = min(MERGE_MAX, max(WIDE_MIN, int(self._wide_rate * seconds)))
            else:
                size = max(MERGE_MIN, min(MERGE_MAX, int(self._merge_rate * seconds)))
            started = time.perf_counter()
            try:
                moved = index.merge(size)
            except IndexFailure:
                self.live.pop(cid, None)  # rebuilt from SQLite by the next read
                break
            took = time.perf_counter() - started
            if moved and took > 0:  # a moving average of the merge rate, which drops at
                # once when a slice ran long (a busy CPU): the next one is short again
                rate = moved / took
                last = self._wide_rate if wide else self._merge_rate
                rate = rate if took > 2 * seconds else 0.7 * last + 0.3 * rate
                if wide:
                    self._wide_rate = rate
                else:
                    self._merge_rate = rate
            break
        return self.pending()

    def start_off_lock_insert(self, budget_bytes: int | None = None
                              ) -> tuple[AnnIndex, OffLockInsert] | None:
        """A merge to be made on a copy of a graph off the lock, if one is due (the
        first into a graph read from a file, or one outgrowing faiss's arrays:
        ``HnswIndex.off_lock_insert``), for an index whose copy fits
        in what ``budget_bytes`` leaves of the resident indexes (None: no limit; the copy
        and its growth take up to twice the index for a moment; one that does not fit
        merges in place, the lock held for the copy). Call with the index lock, shared at
        least, from the merger thread (holding ``EmbeddedStore._inserting``)."""
        for live in self._merged():
            job = live.index.off_lock_insert(MERGE_MAX)
            if job is None:
                continue
            copied = job.owner if job.owner is not None else live.index  # (one segment's)
            if budget_bytes is not None and (
                    2 * copied.memory_bytes > budget_bytes - self.resident_bytes()):
                continue
            return live.index, job
        return None

    def finish_off_lock_insert(self, index: AnnIndex, job: OffLockInsert) -> Any:
        """Install the job's graph if ``index`` is still live and nothing changed; call
        with the index lock. Returns the graph replaced (None if none), to be let go of
        after the lock."""
        if not any(live.index is index for live in self.live.values()):
            return None
        return index.finish_off_lock_insert(job)

    def apply_delete(self, row: CollectionRow, keys: np.ndarray) -> None:
        """Apply a committed delete (``row`` is the catalog row after the commit)."""
        live = self.live.get(row.cid)
        if live is not None and live.seq >= row.seq:
            return  # a replay (a search's catch-up) already applied this commit
        if live is None or live.seq != row.seq - 1:
            self.live.pop(row.cid, None)
            self.synced(row)
            return
        live.index.remove(keys)
        live.seq, live.pending = row.seq, live.pending + len(keys)
        index = live.index
        if index.removed > max(BACKSTOP_MIN, index.nodes):
            # a backstop only: background compaction starts at 5% tombstones and keeps
            # them far below this unless writes outrun it by far or its builds keep
            # being dropped (a checkpoint pruned the tombstones they would replay)
            self.rebuild(row)
        else:
            self._maybe_checkpoint(row, live)

    def note_seq(self, row: CollectionRow) -> None:
        """A change that leaves vectors alone (payload update) advanced the sequence."""
        live = self.live.get(row.cid)
        if live is not None and live.seq == row.seq - 1:
            live.seq = row.seq

    def _maybe_checkpoint(self, row: CollectionRow, live: LiveIndex) -> None:
        """Checkpoint after ``checkpoint_every`` changed points when the collection sets
        it; by default after 50,000 or ``CHECKPOINT_SHARE`` of what a checkpoint
        rewrites (``rewritten_nodes``), whichever is more. A checkpoint rewrites the
        whole graph file of one graph, so a fixed interval makes a build's checkpoint
        writes grow with the square of its size (540 GB over a 10M int8 build at
        50,000); a share of the index keeps them proportional to it, at the price of a
        longer replay after a crash (at most that share; a clean close checkpoints). An
        index of segments writes only the segments changed since a checkpoint wrote
        them: a build (its growing segment) checkpoints every 50,000 points at any size,
        replacements scattered over every segment as seldom as one graph's."""
        given = row.index_params.get("checkpoint_every")
        every = int(given) if given is not None else max(
            int(DEFAULT_PARAMS["checkpoint_every"]),
            int(CHECKPOINT_SHARE * live.index.rewritten_nodes))
        if live.pending < every:
            return
        if self.background_checkpoints:
            self._due[row.cid] = every
        else:
            self.checkpoint(row.cid)

    def checkpoints_due(self) -> list[int]:
        """Collections whose checkpoint is due and waits for the background thread."""
        return list(self._due)

    def checkpoint_overdue(self) -> bool:
        """Has any collection changed by twice its checkpoint interval since its last
        checkpoint? (A due checkpoint waits for a pause in the writes until then.)"""
        return any(live.pending >= 2 * every for cid, every in list(self._due.items())
                   if (live := self.live.get(cid)) is not None)

    def checkpoint(self, cid: int) -> None:
        """Save the in-memory index now with the seq it covers (after any background
        checkpoint in flight), then prune covered tombstones."""
        live = self.live.get(cid)
        if live is None or self.read_only:
            return
        with self._writing:
            live.index.save(self.folder, cid, live.seq)
        self._prune(cid, live.seq)
        self._due.pop(cid, None)
        live.pending = live.saved_pending = 0

    def start_checkpoint(self, cid: int) -> CheckpointJob | None:
        """Begin the due checkpoint of ``cid``: the index's image as of now, its graph
        frozen. ``None`` when it is no longer due or another checkpoint is being
        written. The caller then runs ``write_checkpoint`` holding no store lock, and
        ``finish_checkpoint`` whatever happened."""
        every = self._due.get(cid)
        live = self.live.get(cid)
        if every is None or live is None or live.pending < every or self.read_only:
            self._due.pop(cid, None)
            return None
        if not self._writing.acquire(blocking=False):
            return None
        try:
            return CheckpointJob(cid, live, live.index.freeze(live.seq), live.pending)
        except BaseException:
            live.index.thaw()
            self._writing.release()
            raise

    def write_checkpoint(self, job: CheckpointJob,
                         cancelled: Callable[[], bool] | None = None) -> None:
        """Write the job's files (no store lock needed; given up with ``IndexFailure``
        once ``cancelled()`` is true), then thaw the graph."""
        try:
            checkpoint_files.write(self.folder, job.cid, job.image, cancelled)
            job.written = True
            job.live.index.written(job.image)
        finally:
            job.live.index.thaw()
            self._writing.release()

    def finish_checkpoint(self, job: CheckpointJob) -> None:
        """After ``write_checkpoint``: count the changes since the checkpoint and prune the
        tombstones it covers (should that fail, they stay for the next checkpoint to
        prune). A failed write leaves everything as it was; the checkpoint is due again
        after the next write."""
        if not job.written:
            self._due.pop(job.cid, None)
            return
        job.live.pending = max(0, job.live.pending - job.counted)
        job.live.saved_pending = job.image.pending_points
        every = self._due.get(job.cid)
        if every is not None and job.live.pending < every:
            self._due.pop(job.cid, None)
        if by_cid(self.conn, job.cid) is not None:  # (not dropped meanwhile)
            self._prune(job.cid, job.image.seq, sweep=not job.swept)

    def unswept(self, job: CheckpointJob, size: int = SWEEP_SLICE) -> list[list[int]]:
        """The row keys of the points deleted up to the written checkpoint ``job`` covers,
        whose vectors may be left (schema migration 3), in slices of ``size`` for
        ``sweep``; none when the checkpoint was not written."""
        if not job.written:
            return []
        (text,) = self.conn.execute(
            "SELECT json_group_array(rowkey) FROM tombstones WHERE cid = ? AND seq <= ?",
            (job.cid, job.image.seq)).fetchone()
        keys = json.loads(text)
        return [keys[i:i + size] for i in range(0, len(keys), size)]

    def sweep(self, keys: list[int]) -> None:
        """Delete the vectors of deleted points ``keys``, in one transaction. Needs no
        index lock: no point reads them (row keys are never reused)."""
        with transaction(self.conn):
            self.conn.execute("DELETE FROM vectors WHERE rowkey IN "
                              "(SELECT value FROM json_each(?))", (json.dumps(keys),))

    def _prune(self, cid: int, seq: int, sweep: bool = True) -> None:
        with transaction(self.conn):
            # The deleted points' vectors go with their tombstones (schema migration 3),
            # unless a background checkpoint swept them before, off the index lock.
            if sweep:
                self.conn.execute("DELETE FROM vectors WHERE rowkey IN (SELECT rowkey FROM "
                                  "tombstones WHERE cid = ? AND seq <= ?)", (cid, seq))
            self.conn.execute("DELETE FROM tombstones WHERE cid = ? AND seq <= ?", (cid, seq))
            self.conn.execute("UPDATE collections SET pruned_seq = MAX(pruned_seq, ?) "
                              "WHERE cid = ?", (seq, cid))

    def rebuild(self, row: CollectionRow) -> AnnIndex:
        """Regenerate the index from SQLite (recalibrating int8), checkpoint it, return it."""
        if row.dtype == "int8" and not self.read_only:
            sample = self._sample(row)
            if len(sample):
                with transaction(self.conn):
                    self.conn.execute("UPDATE collections SET quant_scale = ? WHERE cid = ?",
                                      (quantization.calibrate(sample), row.cid))
                row = lookup(self.conn, row.name)
        self.live.pop(row.cid, None)
        live = self._fresh(row)
        self.live[row.cid] = live
        self._replay(row.cid, live)
        self.checkpoint(row.cid)
        return live.index

    def _sample(self, row: CollectionRow) -> np.ndarray:
        blobs = [b for (b,) in self.conn.execute(
            "SELECT vector FROM vectors WHERE rowkey IN (SELECT rowkey FROM points "
            "WHERE cid = ? ORDER BY rowkey LIMIT ?)",
            (row.cid, CALIBRATION_SAMPLE))]
        return quantization.decode(blobs, row.dim, row.dtype)

    def drop(self, cid: int) -> None:
        """Forget the collection's index; waits for a checkpoint being written (the
        caller removes the files after)."""
        with self._writing:
            self.live.pop(cid, None)
            self._due.pop(cid, None)

    def info(self, row: CollectionRow) -> dict[str, Any]:
        """Index figures for ``stats``: resident bytes, tombstones, the default search
        depth, seqs, and the bytes of the checkpoint on disk (every file its manifest
        names, and the manifest)."""
        index = self.synced(row)
        manifest = read_manifest(self.folder, row.cid) or {}
        files = [*manifest_files(self.folder, manifest), manifest_path(self.folder, row.cid)]
        return {
            "index_points": len(index),
            "index_pending": index.pending,
            "index_segments": len(index.graphs),
            "index_mapped": index.mapped,
            "deleted": index.removed,
            "search_depth": index.search_depth,
            "index_bytes": index.memory_bytes,
            "index_seq": self.live[row.cid].seq,
            "checkpoint_seq": int(manifest.get("seq", 0)),
            "checkpoint_bytes": sum(path.stat().st_size for path in files if path.is_file()),
        }

    def resident_bytes(self) -> int:
        """Memory of the indexes loaded now (no disk access, no SQL)."""
        return sum(live.index.memory_bytes for live in self.live.values())

    def close(self) -> None:
        """Checkpoint every index with changes since its last checkpoint, or whose last
        checkpoint holds points pending a merge (a closed store's checkpoint is merged:
        the next open, read-only ones included, searches no pending segment)."""
        for cid, live in list(self.live.items()):
            if live.pending or live.saved_pending:
                self.checkpoint(cid)
        self.live.clear()


def _outdated(live: LiveIndex, row: CollectionRow) -> bool:
    """Must ``live`` be reloaded rather than caught up to ``row``? When the int8 scale
    moved, or a checkpoint pruned tombstones its replay would need."""
    return live.index.clip != row.clip or (live.seq < row.pruned_seq and len(live.index) > 0)
