"""Durability: SIGKILL a real writer process at random moments, reopen, check everything.

Each trial resumes the same store, so recovery runs on top of earlier recoveries, index
checkpoints and tombstone pruning.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from embedops.store import open_store

from .crash_writer import DELETES, REPLACES

SCRIPT = Path(__file__).with_name("crash_writer.py")
BATCH = 60
TRIALS = 24
SAMPLE = 3000


def _expected(ops: list[tuple[str, int]]) -> set[str]:
    ids: set[str] = set()
    for op, batch in ops:
        if op == "U":
            ids |= {f"{batch}-{i}" for i in range(BATCH)}
            if batch > 0:
                ids |= {f"{batch - 1}-{i}" for i in range(DELETES, REPLACES)}
        else:
            ids -= {f"{batch}-{i}" for i in range(DELETES)}
    return ids


def _writer(store: Path, segment_size: int | None) -> subprocess.Popen[str]:
    """A writer process started ahead of its trial: it imports while the last trial is
    checked, and opens the store when ``_run_and_kill`` tells it its first batch."""
    more = [] if segment_size is None else [str(segment_size)]
    return subprocess.Popen([sys.executable, str(SCRIPT), str(store), str(BATCH), *more],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def _run_and_kill(proc: subprocess.Popen[str], first: int, rng: random.Random
                  ) -> list[tuple[str, int]]:
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(f"{first}\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(rng.uniform(0.0, 0.25))
    proc.send_signal(signal.SIGKILL)
    out, _ = proc.communicate()
    return [(line.split()[0], int(line.split()[1])) for line in out.splitlines() if line]


def _ids(path: Path) -> set[str]:
    store = open_store(path, read_only=True)
    try:
        return {p.id for page in store.scan("crash", page_size=5000) for p in page}
    finally:
        store.close()


def _check_index(path: Path, ids: set[str], read_only: bool) -> None:
    store = open_store(path, read_only=read_only)
    try:
        assert store.count("crash") == len(ids)
        report = store.verify_index("crash")
        assert report["missing"] == report["ghosts"] == report["mismatched"] == []
        assert report["index_points"] == len(ids)
        points = [p for page in store.scan("crash", 5000, with_vectors=True) for p in page]
        sample = random.Random(len(points)).sample(points, min(len(points), SAMPLE))
        hits = store.search("crash", np.stack([p.vector for p in sample]), k=1, ef=128)
        found = sum(h[0].id == p.id for h, p in zip(hits, sample, strict=True))
        # HNSW is approximate: a few nodes of a random 32-d graph are hard to reach.
        assert found >= 0.99 * len(sample)
    finally:
        store.close()


@pytest.mark.slow
@pytest.mark.parametrize(("segment_size", "trials"), [(None, TRIALS), (400, TRIALS // 2)],
                         ids=["one-graph", "segments"])
def test_sigkill_at_random_moments_loses_nothing(tmp_path: Path, segment_size: int | None,
                                                 trials: int) -> None:
    """The index of one graph, and one of segments of 400 points (the writer fills
    several, and checkpoints them every 700 changes)."""
    rng = random.Random(1234)
    path = tmp_path / "store"
    ops: list[tuple[str, int]] = []
    writer = _writer(path, segment_size)
    try:
        for trial in range(trials):
            first = ops[-1][1] + 1 if ops else 0
            new_ops = _run_and_kill(writer, first, rng)
            # the next trial's writer, importing during the checks below
            writer = _writer(path, segment_size)
            ops += new_ops
            if new_ops and new_ops[-1][0] == "U":
                in_flight = ("D", new_ops[-1][1])
            else:
                in_flight = ("U", ops[-1][1] + 1 if ops else 0)
            actual = _ids(path)
            before, after = _expected(ops), _expected([*ops, in_flight])
            assert actual in (before, after), f"trial {trial}: lost or extra points"
            if actual == after != before:
                ops.append(in_flight)
            _check_index(path, actual, read_only=trial % 2 == 0)
    finally:
        writer.kill()  # the spare writer (still waiting for its first batch), or a failed one
        writer.communicate()
    assert sum(op == "U" for op, _ in ops) >= trials
    if segment_size is not None:  # (the checkpoint of the last read-write check's close)
        (manifest,) = (path / "index").glob("*.json")
        assert len(json.loads(manifest.read_text())["segments"]) >= 2
