"""Embedding throughput: plain SentenceTransformer.encode (the baseline) vs every embedops
path, side by side in one run on msmarco-5k passages; cosine agreement, nDCG@10 and cold
start. Prints JSON.

Each of ``--runs`` rounds times every path once over the same passages, the order turned
by one path each round (so no path always runs first or last), and each path's speed-up
is its own round's baseline time over its time. Reported: the median and range over the
rounds of passages/s and of the speed-up; cosines from the first round.

    .venv/bin/python bench/embed_throughput.py [--limit 1000] [--runs 3] [--ndcg] [--data DIR]
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

import numpy as np

from machine_info import machine  # (bench/)
from run_stats import summary  # (bench/)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "msmarco-5k"
MODEL = "all-MiniLM-L6-v2"

COLD_BASELINE = """
import time, os; t = time.perf_counter()
from sentence_transformers import SentenceTransformer
from embedops.embedders.weights import resolve_model_dir
from pathlib import Path
m = SentenceTransformer(str(resolve_model_dir("{model}", Path("{cache}"))), device="cpu")
m.encode(["cold start"]); print(time.perf_counter() - t)
"""
COLD_EMBEDOPS = """
import time; t = time.perf_counter()
from embedops.embedders import load_embedder
from pathlib import Path
load_embedder("{model}", Path("{cache}"), backend="{backend}").embed(["cold start"])
print(time.perf_counter() - t)
"""


def timed(fn, texts):  # type: ignore[no-untyped-def]
    fn(texts[:16])  # warm-up: first-call allocations are not throughput
    start = time.perf_counter()
    vectors = fn(texts)
    return np.asarray(vectors, dtype=np.float32), time.perf_counter() - start


def cold_start(code: str) -> float:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"})
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=1000, help="passages for throughput")
    parser.add_argument("--runs", type=int, default=3, help="rounds of every path (median)")
    parser.add_argument("--ndcg", action="store_true", help="also embed the whole corpus "
                        "with the baseline and the default path and compare nDCG@10")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "embedops")
    args = parser.parse_args()
    if not (args.data / "corpus.jsonl").is_file():
        print(json.dumps({"skipped": f"no dataset at {args.data}"}))
        return

    from sentence_transformers import SentenceTransformer

    from embedops.embedders import load_embedder
    from embedops.embedders.factory import AUTO_BACKEND
    from embedops.embedders.weights import resolve_model_dir
    from embedops.quality.beir import load_corpus, passage_text

    corpus = load_corpus(args.data)
    ids = list(corpus)
    texts = [passage_text(corpus[i]) for i in ids[: args.limit]]
    baseline_model = SentenceTransformer(str(resolve_model_dir(MODEL, args.cache)), device="cpu")

    def baseline(batch):  # type: ignore[no-untyped-def]
        return baseline_model.encode(batch, batch_size=32, normalize_embeddings=True)

    paths = {"baseline": baseline}
    for backend in ("torch", "onnx", "onnx-int8"):
        paths[f"embedops-{backend}"] = load_embedder(MODEL, args.cache, backend).embed
    tokenizer = load_embedder(MODEL, args.cache, "onnx").tokenizer
    real_tokens = sum(min(c, 254) for c in tokenizer.count(texts))

    names = list(paths)
    seconds: dict[str, list[float]] = {name: [] for name in names}
    vectors: dict[str, np.ndarray] = {}
    load_at_start = round(os.getloadavg()[0], 2)
    for run in range(args.runs):
        for name in names[run % len(names):] + names[:run % len(names)]:
            found, took = timed(paths[name], texts)
            seconds[name].append(took)
            vectors.setdefault(name, found)
    reference = vectors["baseline"]
    results: dict[str, dict[str, Any]] = {}
    for name in names:
        cosine = (vectors[name] * reference).sum(axis=1)
        results[name] = {
            "passages_per_s": summary([len(texts) / t for t in seconds[name]], 1),
            "tokens_per_s": summary([real_tokens / t for t in seconds[name]], 0),
            "speedup_vs_baseline": summary(
                [b / t for b, t in zip(seconds["baseline"], seconds[name], strict=True)], 2),
            "cosine_mean": round(float(cosine.mean()), 5),
            "cosine_min": round(float(cosine.min()), 5),
        }
    report = {
        "machine": machine(), "model": MODEL, "passages": len(texts), "runs": args.runs,
        "load_at_start": load_at_start, "load_at_end": round(os.getloadavg()[0], 2),
        "default_backend": AUTO_BACKEND, "paths": results,
        "cold_start_s": {
            "baseline": round(cold_start(COLD_BASELINE.format(model=MODEL, cache=args.cache)), 2),
            f"embedops-{AUTO_BACKEND}": round(cold_start(COLD_EMBEDOPS.format(
                model=MODEL, cache=args.cache, backend=AUTO_BACKEND)), 2),
        },
    }
    if args.ndcg:
        report["ndcg"] = ndcg_comparison(args.data, corpus, ids, baseline,
                                         paths[f"embedops-{AUTO_BACKEND}"])
    print(json.dumps(report, indent=2))


def ndcg_comparison(data, corpus, ids, baseline, default):  # type: ignore[no-untyped-def]
    from embedops.quality.beir import load_qrels, load_queries, passage_text
    from embedops.quality.ir_metrics import evaluate

    queries = load_queries(data)
    qrels = load_qrels(data)
    qids = list(queries)
    docs = [passage_text(corpus[i]) for i in ids]
    out = {}
    for name, fn in (("baseline", baseline), ("default", default)):
        doc_vecs = np.asarray(fn(docs), dtype=np.float32)
        q_vecs = np.asarray(fn([queries[q] for q in qids]), dtype=np.float32)
        scores = q_vecs @ doc_vecs.T
        run = {}
        for row, qid in enumerate(qids):
            top = np.argsort(-scores[row])[:100]
            run[qid] = {ids[j]: float(scores[row, j]) for j in top}
        out[name] = {k: round(v, 4) for k, v in evaluate(qrels, run).items()}
    out["ndcg_delta_points"] = round(100 * (out["default"]["ndcg@10"] -
                                            out["baseline"]["ndcg@10"]), 2)
    return out


if __name__ == "__main__":
    main()
