"""Seconds an ``embedops`` invocation spends before a command runs: a fresh interpreter
importing the CLI (``embedops.cli.app``) and printing ``--help``, for this checkout's
code and, side by side, another checkout's (``--baseline-src``: its ``src`` directory,
put first on ``PYTHONPATH``), alternating, ``--runs`` times each.

Prints JSON: per side the seconds of ``embedops --help`` and of the import alone
(median, min, max), and baseline ÷ this checkout, run by run.

    git worktree add --detach /tmp/wt-base <commit>
    .venv/bin/python bench/cli_import.py --baseline-src /tmp/wt-base/src --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from run_stats import summary  # bench/ is the script's directory

HERE = Path(__file__).resolve().parents[1] / "src"
HELP = "import sys; sys.argv = ['embedops', '--help']; from embedops.cli.app import main; main()"
IMPORT = "import embedops.cli.app"


def seconds(src: Path, code: str) -> float:
    env = {**os.environ, "PYTHONPATH": str(src), "PYTHONDONTWRITEBYTECODE": "1"}
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], env=env, check=False,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline-src", required=True, type=Path)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    sides = {"baseline": args.baseline_src.resolve(), "this": HERE}
    times: dict[str, dict[str, list[float]]] = {
        side: {"help_s": [], "import_s": []} for side in sides}
    for src in sides.values():  # (bytecode on disk for both, as `make install` writes
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(src)], check=True)
        seconds(src, HELP)  # it; and the page cache warm)
    for _ in range(args.runs):
        for side, src in sides.items():
            times[side]["help_s"].append(seconds(src, HELP))
            times[side]["import_s"].append(seconds(src, IMPORT))
    out: dict[str, Any] = {"runs": args.runs, "baseline_src": str(sides["baseline"])}
    for side, values in times.items():
        out[side] = {key: summary(v, 3) for key, v in values.items()}
    for key in ("help_s", "import_s"):
        out[f"{key}_baseline_over_this"] = summary(
            [b / t for b, t in zip(times["baseline"][key], times["this"][key], strict=True)], 2)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
