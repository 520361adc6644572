"""A read-only store handle whose graph maps its checkpoint file, searching on request.

Usage: python mapped_reader.py STORE DIM
Maps every graph file (``mapped_files.MAP_MIN_BYTES`` lowered to one byte), answers one
search, prints ``{"mapped": bool, "ids": [...]}``, then for each line read on stdin
searches the same queries again and prints the ids as one JSON line; exits at the end
of stdin. A search through a mapping whose file was cut short dies with SIGBUS.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from embedops.store import mapped_files, open_store


def main(path: str, dim: int) -> None:
    mapped_files.MAP_MIN_BYTES = 1
    queries = np.random.default_rng(3).standard_normal((20, dim)).astype(np.float32)
    with open_store(path, read_only=True) as store:
        def ids() -> list[str]:
            return [hits[0].id for hits in store.search("c", queries, k=1)]
        first = ids()
        print(json.dumps({"mapped": store.stats("c")["index_mapped"], "ids": first}),
              flush=True)
        for _ in sys.stdin:
            print(json.dumps(ids()), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
