"""The real vectors of the store's MiniLM benchmarks: msmarco-5k embedded with all-MiniLM-L6-v2.

Embeds the corpus's passages in its file order with sentence-transformers (float32, unit
vectors) and writes the first ``--base`` of them to ``<out>/minilm-base.npy`` and the
rest to ``<out>/minilm-queries.npy``: the ``--npy`` / ``--queries-npy`` inputs of
``bench/graph_library.py``, ``bench/thread_layers.py`` and ``bench/graph_search.py``.
Prints JSON (counts, seconds, the files). Takes 2–6 minutes on a 2-core machine.

    .venv/bin/python bench/minilm_vectors.py --out /tmp
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "msmarco-5k"
MODEL = "sentence-transformers/all-MiniLM-L6-v2"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--base", type=int, default=4500,
                        help="passages indexed; the rest are the queries")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "embedops")
    args = parser.parse_args()
    if not (args.data / "corpus.jsonl").is_file():
        print(json.dumps({"skipped": f"no dataset at {args.data}"}))
        return
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import SentenceTransformer

    from embedops.embedders.weights import resolve_model_dir
    from embedops.quality.beir import load_corpus, passage_text

    corpus = load_corpus(args.data)
    texts = [passage_text(corpus[i]) for i in corpus]
    if not 0 < args.base < len(texts):
        parser.error(f"--base must be between 1 and {len(texts) - 1}")
    model = SentenceTransformer(str(resolve_model_dir(MODEL, args.cache)), device="cpu")
    started = time.perf_counter()
    vectors = np.asarray(model.encode(texts, batch_size=64, normalize_embeddings=True),
                         dtype=np.float32)
    seconds = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    base, queries = args.out / "minilm-base.npy", args.out / "minilm-queries.npy"
    np.save(base, vectors[:args.base])
    np.save(queries, vectors[args.base:])
    print(json.dumps({"passages": len(texts), "base": args.base,
                      "queries": len(texts) - args.base, "dim": int(vectors.shape[1]),
                      "embed_s": round(seconds, 1), "files": [str(base), str(queries)]},
                     indent=2))


if __name__ == "__main__":
    main()
