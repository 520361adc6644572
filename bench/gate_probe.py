"""What another writer of the service sees while a background writer runs: a thread that
takes the write gate every few milliseconds and times each wait, and the summary the
``bench/*_gate_wait.py`` scripts print (each variant's figures over its runs, and the
baseline's longest wait over the new code's, run by run)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from run_stats import summary  # bench/ is the script's directory

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "msmarco-5k" / "corpus.jsonl"


def passages(n: int) -> list[str]:
    """The first ``n`` passages of msmarco-5k (``DATA``)."""
    texts = []
    with DATA.open() as lines:
        for line in lines:
            texts.append(json.loads(line)["text"])
            if len(texts) == n:
                break
    return texts


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
