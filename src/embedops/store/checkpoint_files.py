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
# file. A checkpoint without pending points is written as format 2, which releases that
# know no pending file read as well.
MANIFEST_FORMAT = 3
READABLE_FORMATS = (2, 3)
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


def write(folder: Path, cid: int, image: IndexImage,
          cancelled: Callable[[], bool] | None = None) -> Path:
    """Write ``image`` as collection ``cid``'s checkpoint; returns the graph file's path.
    Files of earlier checkpoints of ``cid`` are removed once the manifest names the new
    ones. Raises ``IndexFailure`` if a file cannot be written, or once ``cancelled()``
    is true while they are (the previous checkpoint then stays, whole)."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = _free_stem(folder, cid, image.seq)
    graph_file, labels_file = folder / f"{stem}.faiss", folder / f"{stem}.labels.npy"
    groups: Path | None = None
    pending: Path | None = None
    prints: Path | None = None
    try:
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
    except (ValueError, RuntimeError, OSError) as exc:
        for partial in [*folder.glob(f"{stem}.*"), *folder.glob(f".{stem}.*.tmp")]:
            partial.unlink(missing_ok=True)  # (no manifest names this stem)
        raise IndexFailure(f"cannot save index checkpoint: {exc}") from exc
    manifest = {
        **image.manifest, "format": MANIFEST_FORMAT if pending else 2, "seq": image.seq,
        "file": graph_file.name, "labels": labels_file.name,
        "groups": groups.name if groups else None, "pending": pending.name if pending else None,
        "prints": prints.name if prints else None,
        "faiss_version": faiss.__version__, "saved_at": datetime.now(UTC).isoformat(),
    }
    durable_files.write_json(manifest_path(folder, cid), manifest)
    for old in folder.glob(f"{cid}-*"):
        if old not in (graph_file, labels_file, groups, pending, prints):
            durable_files.remove_gradually(old)
    for stale in folder.glob(f".{cid}-*.tmp"):  # (of a write a crash cut short)
        stale.unlink(missing_ok=True)
    return graph_file


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
                   keys: tuple[str, ...] = ("file", "labels", "groups", "pending", "prints")
                   ) -> list[Path]:
    """The data files a manifest names under ``keys`` (by default all of them)."""
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
    while any((folder / f"{stem}{suffix}").exists() for suffix in SUFFIXES):
        n += 1
        stem = f"{cid}-{seq}-{n}"
    return stem
