"""Checkpoint files flushed to disk a slice at a time and removed a slice at a time, so
a commit's fsync beside them never waits for a whole graph file (``durable_files``)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from embedops.store import durable_files, hnsw_graph
from embedops.store.checkpoint_files import read_manifest
from embedops.store.hnsw_index import HnswIndex


class _CountingSync:
    """The real ``fsync``, recording the file's size at each call."""

    def __init__(self) -> None:
        self.sizes: list[int] = []

    def __call__(self, fd: int) -> None:
        self.sizes.append(os.fstat(fd).st_size)
        os.fsync(fd)


def test_a_flushing_file_flushes_every_slice_and_keeps_every_byte(tmp_path: Path) -> None:
    sync = _CountingSync()
    out = durable_files.FlushingFile(tmp_path / "f", flush_bytes=1000, sync=sync)
    chunks = [bytes([i]) * 700 for i in range(10)]
    for chunk in chunks:
        assert out.write(chunk) == 700
    out.write(memoryview(b"tail"))
    out.close()
    # flushed once 1,000 bytes were unflushed: after the 2nd, 4th, ... 10th chunk
    assert sync.sizes == [1400, 2800, 4200, 5600, 7000]
    assert (tmp_path / "f").read_bytes() == b"".join(chunks) + b"tail"
    out.close()  # (a second close does nothing)


def test_replacing_renames_only_a_whole_file(tmp_path: Path) -> None:
    target = tmp_path / "x.npy"
    durable_files.write_npy(target, np.arange(5))
    with pytest.raises(RuntimeError), durable_files.replacing(target) as out:
        out.write(b"half of a new file")
        raise RuntimeError("the write failed")
    assert np.array_equal(np.load(target), np.arange(5))  # the old file, untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy"]  # no temporary left
    durable_files.write_json(tmp_path / "m.json", {"b": 1, "a": [2]})
    assert (tmp_path / "m.json").read_text() == '{\n  "a": [\n    2\n  ],\n  "b": 1\n}'


def test_a_big_file_is_removed_from_its_end_a_slice_at_a_time(tmp_path: Path) -> None:
    victim = tmp_path / "big"
    victim.write_bytes(b"\1" * 100_000)
    sync = _CountingSync()
    assert durable_files.remove_gradually(victim, step=16_000, sync=sync) == 6
    assert sync.sizes == [84_000, 68_000, 52_000, 36_000, 20_000, 4_000]
    assert not victim.exists()
    assert durable_files.remove_gradually(victim) == 0  # (nothing there: nothing to do)


def test_a_checkpoints_graph_reaches_the_disk_in_slices_and_loads_back(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A graph bigger than the flush size is flushed several times while written, the
    checkpoint it replaces is cut down before it goes, and the index loads back."""
    sync = _CountingSync()
    monkeypatch.setattr(hnsw_graph, "WRITE_BLOCK_BYTES", 16 << 10)
    monkeypatch.setattr(durable_files, "FLUSH_BYTES", 64 << 10)
    monkeypatch.setattr(durable_files, "TRUNCATE_BYTES", 64 << 10)
    monkeypatch.setattr(durable_files, "_datasync", sync)
    rng = np.random.default_rng(4)
    vectors = rng.standard_normal((3000, 64)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    index = HnswIndex(64, "cosine", "float32", {}, None)
    index.add(np.arange(3000), vectors)
    first = index.save(tmp_path, 1, 7)
    graph_bytes = first.stat().st_size  # 3,000 x 64 floats and the links: ~1 MB
    flushed = [size for size in sync.sizes if size < graph_bytes]
    assert len(flushed) >= graph_bytes // (64 << 10) - 1
    assert flushed == sorted(flushed)  # growing: written and flushed a slice at a time
    sync.sizes.clear()
    index.remove(np.arange(100))
    second = index.save(tmp_path, 1, 8)
    assert not first.exists() and second.exists()
    cuts = [size for size in sync.sizes if size < graph_bytes]
    assert any(size == graph_bytes - (64 << 10) for size in cuts)  # the old graph, cut
    loaded = HnswIndex.load(tmp_path, 1, 64, "cosine", "float32", {}, None)
    assert loaded is not None and loaded[1] == 8 and len(loaded[0]) == 2900
    keys, _ = loaded[0].search(vectors[100:110], 1)
    assert keys[:, 0].tolist() == list(range(100, 110))
    manifest = read_manifest(tmp_path, 1)
    assert manifest is not None and manifest["seq"] == 8
