"""What another writer of the service sees while a background writer runs: a thread that
takes the write gate every few milliseconds and times each wait, and the summary the
``bench/*_gate_wait.py`` scripts print (each variant's figures over its runs, and the
baseline's longest wait over the new code's, run by run)."""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from run_stats import summary  # bench/ is the script's directory

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "msmarco-5k" / "corpus.jsonl"


def passage_files(folder: Path, n: int) -> Path:
    """The first ``n`` passages of msmarco-5k (``DATA``) as text files in ``folder``;
    exits with status 2 when the data is missing."""
    if not DATA.is_file():
        print(f"no data at {DATA}", file=sys.stderr)
        sys.exit(2)
    folder.mkdir(parents=True, exist_ok=True)
    with DATA.open() as lines:
        for i, line in zip(range(n), lines, strict=False):
            (folder / f"p{i:05}.txt").write_text(json.loads(line)["text"])
    return folder


def arguments(description: str, **more: Any) -> argparse.Namespace:
    """The options every gate-wait script takes (``--runs``, ``--every``), plus
    ``more``: option name -> default."""
    parser = argparse.ArgumentParser(description=description.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--every", type=float, default=0.02, help="Seconds between probes.")
    for name, default in more.items():
        parser.add_argument(f"--{name}", type=type(default), default=default)
    return parser.parse_args()


def beside_a_job(job: Callable[[], None], lock: Any, every: float) -> dict[str, float]:
    """Run ``job`` in a thread that takes ``lock`` first (as a due job would), with a
    ``GateProbe`` beside it: its seconds (``job_s``) and the probe's figures."""
    started = time.perf_counter()
    runner = threading.Thread(target=job)
    runner.start()
    time.sleep(0.01)
    with GateProbe(lock, every) as probe:
        runner.join()
    return {"job_s": time.perf_counter() - started, **probe.figures()}


class GateProbe:
    """Within the block, a thread takes ``lock`` every ``every`` seconds and records how
    long each acquisition waited."""

    def __init__(self, lock: Any, every: float) -> None:
        self.lock, self.every = lock, every
        self.waits: list[float] = []
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._probe)

    def _probe(self) -> None:
        while not self._done.is_set():
            asked = time.perf_counter()
            with self.lock:
                self.waits.append(time.perf_counter() - asked)
            time.sleep(self.every)

    def __enter__(self) -> GateProbe:
        self._thread.start()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self._done.set()
        self._thread.join()

    def figures(self) -> dict[str, float]:
        """The longest and 99th-percentile wait (ms), and the acquisitions."""
        return {"longest_wait_ms": max(self.waits) * 1000,
                "p99_wait_ms": float(np.percentile(self.waits, 99)) * 1000,
                "probes": len(self.waits)}


def gate_summary(results: dict[str, list[dict[str, float]]], before: str, after: str,
                 seconds: str) -> dict[str, Any]:
    """Each variant's figures over its runs (``seconds`` to 2 digits, waits to 1), and
    ``longest_wait_<before>_over_<after>``, run by run."""
    out: dict[str, Any] = {}
    for variant, runs in results.items():
        out[variant] = {key: summary([r[key] for r in runs], 2 if key == seconds else 1)
                        for key in runs[0]}
    out[f"longest_wait_{before}_over_{after}"] = summary(
        [old["longest_wait_ms"] / new["longest_wait_ms"]
         for old, new in zip(results[before], results[after], strict=True)], 2)
    return out
