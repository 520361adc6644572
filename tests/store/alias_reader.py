"""Alias-atomicity reader: resolve and search through an alias in a loop, report failures.

Usage: python alias_reader.py STORE SECONDS
Prints one JSON line: {"loops": n, "errors": [...], "seen": {collection: count}}.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

from embedops.errors import StoreError
from embedops.store import open_store


def main(path: str, seconds: float) -> None:
    store = open_store(path, read_only=True)
    query = np.ones(8, dtype=np.float32)
    loops = 0
    errors: list[str] = []
    seen: dict[str, int] = {}
    print("ready", flush=True)
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            target = store.resolve("live")
            hits = store.search("live", query, k=3)[0]
            if len(hits) != 3:
                errors.append(f"{len(hits)} hits")
            origin = {h.payload["collection"] for h in hits}
            seen[target] = seen.get(target, 0) + 1
            if len(origin) != 1 or not origin <= {"blue", "green"}:
                errors.append(f"hits from {origin}: not one collection")
        except StoreError as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
        loops += 1
    store.close()
    print(json.dumps({"loops": loops, "errors": errors[:20], "seen": seen}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], float(sys.argv[2]))
