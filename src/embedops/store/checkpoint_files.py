"""The files of an HNSW index checkpoint, and the image of an index they are written from.

A checkpoint of collection ``cid`` covering change sequence ``seq`` is, in ``index/``:

* ``<cid>-<seq>.faiss``: the graph, in faiss's own index format;
* ``<cid>-<seq>.labels.npy``: each graph position's node key, -1 for removed ones;
* ``<cid>-<seq>.groups.npy`` (if any node is shared by identical vectors): ``(node, row
  key)`` int64 pairs;
* ``<cid>-<seq>.pending.npy`` (if points were pending a merge): a structured array of
  ``key`` (int64) and ``vector`` (float32) — the pending segment, restored as it was;
* ``<cid>-<seq>.prints.npy`` (if the index had its fingerprints made): ``(fingerprint,
  position)`` uint64 pairs sorted by fingerprint (``fingerprints``), so the first write
  after a load need not read every row back from the graph to make them again;
* ``<cid>.json``: the manifest naming those files and the sequence they cover.

An index of bounded segments (``segmented_index``) writes each segment's files under
``<cid>-<seq>.s<j>`` and one manifest (format 4) that lists them, oldest segment first;
a segment unchanged since an earlier checkpoint keeps the files that one wrote (its
entry in the new manifest names them), so a checkpoint of a growing collection writes
its growing segment, not every sealed one again.

All are NumPy's documented ``.npy`` format or faiss's, never pickles. Every file is written
under a temporary name, flushed to disk as it is written and renamed (``durable_files``:
commits beside a checkpoint never wait for a whole graph file to reach the disk); the
manifest is replaced atomically last, so a crash at any moment leaves the previous
checkpoint named and whole, and the files it replaces are then removed a slice at a
time. A manifest of another format (an index of an earlier release) is not read: the
graph is rebuilt from SQLite.

An ``IndexImage`` holds what a checkpoint needs, copied from the index while the
store's index lock is held exclusive (a few milliseconds); the graph itself is written
without that lock while the index keeps it frozen (``HnswIndex.freeze``): searches,
deletes and deferred writes go on meanwhile, and only merges into the graph wait.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import faiss
import numpy as np

from embedops.errors import IndexFailure
from embedops.store import durable_files
from embedops.store.hnsw_graph import HnswGraph

# 1: usearch graphs (not read: rebuilt from SQLite); 2: no pending file; 3: a pending
# file; 4: segments. A checkpoint without pending points is written as format 2, which
# releases that know no pending file read as well.
MANIFEST_FORMAT = 3
SEGMENTS_FORMAT = 4
READABLE_FORMATS = (2, 3, 4)
FILE_KEYS = ("file", "labels", "groups", "pending", "prints")
SUFFIXES = (".faiss", ".labels.npy", ".groups.npy", ".pending.npy", ".prints.npy")


@dataclass
class IndexImage:
    """An index as of change ``seq``: the (frozen) graph, copies of everything else."""

    seq: int
    graph: HnswGraph
    labels: np.ndarray  # graph position -> node key, -1 for removed
    groups: np.ndarray | None  # (node, row key) pairs of shared nodes
    pending_keys: np.ndarray
    pending_vectors: np.ndarray
    manifest: dict[str, Any]  # dim, metric, dtype, clip, sizes, params, next_group
    prints: np.ndarray | None = None  # (fingerprint, position) pairs, if made

    @property
    def pending_points(self) -> int:
        """Points the checkpoint holds pending a merge."""
        return len(self.pending_keys)


@dataclass
class SegmentsImage:
    """An index of bounded segments as of change ``seq``, oldest segment first: each
    segment's image to write, or, for one unchanged since an earlier checkpoint, that
    checkpoint's manifest entry for it (its files are kept); the figures of the whole;
    and, once ``write`` is done, every segment's entry in the manifest written
    (``written``). ``tags`` is the index's own note of each segment (``segmented_index``
    keeps what it wrote by them)."""

    seq: int
    segments: list[IndexImage | dict[str, Any]]
    manifest: dict[str, Any]  # dim, metric, dtype, clip, sizes, params
    tags: list[Any] | None = None
    written: list[dict[str, Any]] | None = None
    folder: Path | None = None  # where ``written`` went

    @property
    def pending_points(self) -> int:
        """Points the checkpoint holds pending a merge, in all segments."""
        return sum(part.pending_points if isinstance(part, IndexImage)
                   else int(part.get("pending_points") or 0) for part in self.segments)


def write(folder: Path, cid: int, image: IndexImage | SegmentsImage,
          cancelled: Callable[[], bool] | None = None) -> Path:
    """Write ``image`` as collection ``cid``'s checkpoint; returns the (first) graph
    file's path. Files of earlier checkpoints of ``cid`` are removed once the manifest
    names the new ones. Raises ``IndexFailure`` if a file cannot be written, or once
    ``cancelled()`` is true while they are (the previous checkpoint then stays, whole)."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = _free_stem(folder, cid, image.seq)
    segmented = isinstance(image, SegmentsImage)
    parts = image.segments if isinstance(image, SegmentsImage) else [image]
    missing = [path for part in parts if isinstance(part, dict)
               for path in manifest_files(folder, part) if not path.is_file()]
    if missing:  # (removed under the store since the image: ``segmented_index`` checks
        # each kept segment's files as it makes the image, so the next one writes it)
        raise IndexFailure(f"cannot save index checkpoint: {missing[0]} is gone")
    named: list[dict[str, Any]] = []
    try:
        for j, part in enumerate(parts):
            if isinstance(part, dict):
                named.append(part)
                continue
            names = _write_files(folder, f"{stem}.s{j}" if segmented else stem, part,
                                 cancelled)
            named.append({**part.manifest, **names, "pending_points": part.pending_points}
                         if segmented else names)
    except (ValueError, RuntimeError, OSError) as exc:
        for partial in [*folder.glob(f"{stem}.*"), *folder.glob(f".{stem}.*.tmp")]:
            partial.unlink(missing_ok=True)  # (no manifest names this stem)
        raise IndexFailure(f"cannot save index checkpoint: {exc}") from exc
    stamp = {"faiss_version": faiss.__version__, "saved_at": datetime.now(UTC).isoformat()}
    if isinstance(image, SegmentsImage):
        manifest = {**image.manifest, "format": SEGMENTS_FORMAT, "seq": image.seq,
                    "segments": named, **stamp}
    else:
        manifest = {**image.manifest, "seq": image.seq, **named[0], **stamp,
                    "format": MANIFEST_FORMAT if named[0]["pending"] else 2}
    durable_files.write_json(manifest_path(folder, cid), manifest)
    if isinstance(image, SegmentsImage):
        image.written, image.folder = named, folder
    kept = set(manifest_files(folder, manifest))
    for old in folder.glob(f"{cid}-*"):
        if old not in kept:
            durable_files.remove_gradually(old)
    for stale in folder.glob(f".{cid}-*.tmp"):  # (of a write a crash cut short)
        stale.unlink(missing_ok=True)
    return folder / str(named[0]["file"])


def _write_files(folder: Path, stem: str, image: IndexImage,
                 cancelled: Callable[[], bool] | None) -> dict[str, str | None]:
    """Write one graph's files under ``stem``; returns their names by manifest key."""
    graph_file, labels_file = folder / f"{stem}.faiss", folder / f"{stem}.labels.npy"
    with durable_files.replacing(graph_file, cancelled) as out:
        image.graph.write_graph(out.write)
    durable_files.write_npy(labels_file, image.labels, cancelled)
    groups = folder / f"{stem}.groups.npy" if image.groups is not None else None
    if groups is not None:
        durable_files.write_npy(groups, image.groups, cancelled)
    pending = folder / f"{stem}.pending.npy" if len(image.pending_keys) else None
    if pending is not None:
        durable_files.write_npy(pending, pending_records(
            image.pending_keys, image.pending_vectors), cancelled)
    prints = folder / f"{stem}.prints.npy" if image.prints is not None else None
    if prints is not None:
        durable_files.write_npy(prints, image.prints, cancelled)
    return {"file": graph_file.name, "labels": labels_file.name,
            "groups": groups.name if groups else None,
            "pending": pending.name if pending else None,
            "prints": prints.name if prints else None}


def pending_records(keys: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Pending points as one structured array: ``key`` int64, ``vector`` float32 rows."""
    records = np.empty(len(keys), dtype=[("key", "<i8"), ("vector", "<f4", vectors.shape[1])])
    records["key"], records["vector"] = keys, vectors
    return records


def read_pending(path: Path, dim: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The keys and vectors of a checkpoint's pending file, or ``None`` if it does not
    fit ``dim`` or cannot be read."""
    try:
        records = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    names = records.dtype.names or ()
    if (records.ndim != 1 or names != ("key", "vector")
            or records.dtype["key"] != np.int64 or records.dtype["vector"].shape != (dim,)):
        return None
    return (np.ascontiguousarray(records["key"]),
            np.ascontiguousarray(records["vector"], dtype=np.float32))


def manifest_path(folder: Path, cid: int) -> Path:
    """Where the checkpoint manifest of collection ``cid`` lives."""
    return folder / f"{cid}.json"


def read_manifest(folder: Path, cid: int) -> dict[str, Any] | None:
    """The checkpoint manifest of collection ``cid``, or ``None``."""
    try:
        data = json.loads(manifest_path(folder, cid).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("format") in READABLE_FORMATS else None


def manifest_files(folder: Path, manifest: dict[str, Any],
                   keys: tuple[str, ...] = FILE_KEYS) -> list[Path]:
    """The data files a manifest names under ``keys`` (by default all of them), every
    segment's for an index of segments."""
    parts = manifest.get("segments")
    if isinstance(parts, list):
        return [path for part in parts if isinstance(part, dict)
                for path in manifest_files(folder, part, keys)]
    return [folder / str(manifest[key]) for key in keys if manifest.get(key)]


def remove_checkpoints(folder: Path, cid: int) -> None:
    """Delete every checkpoint file of collection ``cid``."""
    for path in [manifest_path(folder, cid), *folder.glob(f"{cid}-*.faiss"),
                 *folder.glob(f"{cid}-*.usearch"), *folder.glob(f"{cid}-*.npy"),
                 *folder.glob(f".{cid}-*.tmp")]:
        durable_files.remove_gradually(path)


def _free_stem(folder: Path, cid: int, seq: int) -> str:
    """``<cid>-<seq>``, suffixed when a checkpoint of that seq exists: a re-save (a rebuild)
    never overwrites files the current manifest names, so a crash cannot pair a new graph
    with the old members file."""
    stem, n = f"{cid}-{seq}", 0
    while any((folder / f"{stem}{suffix}").exists() for suffix in SUFFIXES) or any(
            folder.glob(f"{stem}.s*")):
        n += 1
        stem = f"{cid}-{seq}-{n}"
    return stem
