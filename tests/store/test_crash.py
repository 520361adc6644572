"""Durability: SIGKILL a real writer process at random moments, reopen, check everything.

Each trial resumes the same store, so recovery runs on top of earlier recoveries, index
checkpoints and tombstone pruning.
"""

from __future__ import annotations

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


def _writer(store: Path) -> subprocess.Popen[str]:
    """A writer process started ahead of its trial: it imports while the last trial is
    checked, and opens the store when ``_run_and_kill`` tells it its first batch."""
    return subprocess.Popen([sys.executable, str(SCRIPT), str(store), str(BATCH)],
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
def test_sigkill_at_random_moments_loses_nothing(tmp_path: Path) -> None:
    rng = random.Random(1234)
    path = tmp_path / "store"
    ops: list[tuple[str, int]] = []
    writer = _writer(path)
    try:
        for trial in range(TRIALS):
            first = ops[-1][1] + 1 if ops else 0
            new_ops = _run_and_kill(writer, first, rng)
            writer = _writer(path)  # the next trial's, importing during the checks below
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
    assert sum(op == "U" for op, _ in ops) >= TRIALS
