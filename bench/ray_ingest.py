"""The Ray runner's overhead against the local runner on this machine. Prints JSON.

Both runners ingest the same --limit passages of msmarco-5k with the default model into
a fresh store, through the real command (`embedops ingest ... --json`), --repeats times
each, alternating. Reported per runner: the wall time of the whole command (process
start, cluster start for Ray, model load, ingest), the ingest's own seconds from its
summary, their medians and ranges, and the machine's load average around the runs.

    .venv/bin/python bench/ray_ingest.py [--limit 2000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "msmarco-5k" / "corpus.jsonl"


def subset(n: int, out: Path) -> Path:
    lines = [line for line in DATA.read_text(encoding="utf-8").split("\n") if line][:n]
    out.mkdir(parents=True, exist_ok=True)
    (out / "corpus.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return out


def ingest(store: Path, corpus: Path, runner: str) -> tuple[float, dict[str, object]]:
    cmd = [sys.executable, "-m", "embedops", "--store", str(store), "ingest", str(corpus),
           "--runner", runner, "--json"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True,
                          env={**os.environ, "RAY_ADDRESS": ""})
    return time.perf_counter() - start, json.loads(proc.stdout)


def spread(values: list[float]) -> dict[str, object]:
    return {"median": round(statistics.median(values), 2),
            "range": [round(min(values), 2), round(max(values), 2)],
            "runs": [round(v, 2) for v in values]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="embedops-ray-bench-"))
    corpus = subset(args.limit, work / "corpus")
    ingest(work / "warm-up", corpus, "local")  # prepares the model once (cache)
    walls: dict[str, list[float]] = {"local": [], "ray": []}
    seconds: dict[str, list[float]] = {"local": [], "ray": []}
    chunks: dict[str, object] = {}
    load_before = os.getloadavg()
    for i in range(args.repeats):
        for runner in ("local", "ray"):
            wall, summary = ingest(work / f"{runner}-{i}", corpus, runner)
            walls[runner].append(wall)
            seconds[runner].append(float(summary["seconds"]))  # type: ignore[arg-type]
            chunks[runner] = summary["chunks_embedded"]
    result = {
        "passages": args.limit, "chunks": chunks, "cpus": os.cpu_count(),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        **{f"{r}_wall_s": spread(walls[r]) for r in walls},
        **{f"{r}_ingest_s": spread(seconds[r]) for r in seconds},
        "ray_over_local_wall": round(statistics.median(walls["ray"])
                                     / statistics.median(walls["local"]), 2),
        "ray_minus_local_wall_s": round(statistics.median(walls["ray"])
                                        - statistics.median(walls["local"]), 2),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
