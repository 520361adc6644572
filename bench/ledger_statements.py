"""What the ledger's serialised connection costs its statements: each statement of a
SQLite ledger handle runs under the handle's lock and is fetched there
(``ledger.serial_connection``), against the bare connection the handle had before.

One handle per variant, in a fresh ledger of ``--docs`` documents; each iteration is
what a service write and a read cost the ledger: one ``documents`` read of two ids, one
``read_mark`` and one ``enqueue`` (a transaction of several statements). The variants
alternate, ``--runs`` times each. Prints JSON: per variant the microseconds an iteration
takes (median, min and max over the runs), and the serialised ÷ bare ratio run by run.
The bare connection is what the handle held before; it is unsafe for threads sharing the
handle, which is why the serialised one exists.

    .venv/bin/python bench/ledger_statements.py --runs 5
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from embedops.ledger import DocRecord, Ledger
from run_stats import summary  # bench/ is the script's directory


def one_run(folder: Path, variant: str, docs: int, iterations: int) -> float:
    ledger = Ledger(folder / f"{variant}-{time.monotonic_ns()}.db")
    if variant == "bare":
        ledger._conn = ledger._conn._conn  # type: ignore[attr-defined]  # (the old handle)
    ledger.commit_documents("c", [DocRecord(f"d{i}", "h", "m", 1, None, "f", "t")
                                  for i in range(docs)])
    started = time.perf_counter()
    for i in range(iterations):
        ledger.documents("c", [f"d{i % docs}", f"d{(i + 7) % docs}"])
        ledger.read_mark()
        ledger.enqueue("c", [(f"e{i}", "delete", {})])
    took = time.perf_counter() - started
    ledger.close()
    return took / iterations * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--iterations", type=int, default=2000)
    args = parser.parse_args()
    variants = ("bare", "serialised")
    results: dict[str, list[float]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.runs):
            for variant in variants:
                results[variant].append(one_run(Path(folder), variant, args.docs,
                                                args.iterations))
    out: dict[str, Any] = {"runs": args.runs, "iterations": args.iterations}
    for variant, values in results.items():
        out[f"{variant}_us_per_iteration"] = summary(values)
    out["serialised_over_bare"] = summary(
        [new / old for old, new in zip(results["bare"], results["serialised"], strict=True)],
        3)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
