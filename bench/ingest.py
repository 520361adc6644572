"""End-to-end ingest vs the bare model, side by side in one run. Prints JSON.

Measures on msmarco-5k (first --limit passages for throughput):
- bare ``SentenceTransformer.encode`` over exactly the chunks the pipeline embeds (baseline)
- ``embedops ingest`` end to end with the PyTorch backend (pipeline overhead) and with the
  default backend
- re-runs over the whole corpus: unchanged, and with one passage edited
- eval: nDCG@10 of the stored collection (float32 and int8) vs exact brute force over the
  same vectors
- ingest of the essays folder (long documents)

    .venv/bin/python bench/ingest.py [--limit 1000] [--no-quality] [--no-essays]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from machine_info import machine  # (bench/)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"


def _subset(src: Path, n: int, out: Path) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    # split on "\n" only: str.splitlines also splits at U+2028 and friends inside JSON strings
    lines = [line for line in src.read_text(encoding="utf-8").split("\n") if line][:n]
    target = out / "corpus.jsonl"
    target.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return target


def _ingest(store_dir: Path, paths: list[Path], backend: str, dtype: str = "float32",
            collection: str = "default") -> dict:
    from embedops.config import load_settings
    from embedops.ingest.batch import BatchIngest, IngestOptions
    from embedops.ledger import Ledger
    from embedops.preprocess.pipeline import PreprocessOptions
    from embedops.store import open_store

    settings = load_settings(store=store_dir, backend=backend)
    with open_store(store_dir) as store:
        ledger = Ledger(store_dir)
        options = IngestOptions(collection=collection, dtype=dtype,
                                preprocess=PreprocessOptions.from_settings(settings))
        summary = BatchIngest(store, ledger, settings, options).run(paths).to_dict()
        ledger.close()
    return summary


def _chunk_texts(store_dir: Path) -> list[str]:
    from embedops.store import open_store

    with open_store(store_dir, read_only=True) as store:
        return [p.payload["text"] for page in store.scan("default") for p in page]


def throughput(work: Path, limit: int) -> dict:
    from sentence_transformers import SentenceTransformer

    from embedops.embedders.weights import resolve_model_dir

    corpus = _subset(DATA / "msmarco-5k" / "corpus.jsonl", limit, work / "subset")
    torch_run = _ingest(work / "torch", [corpus], "torch")
    texts = _chunk_texts(work / "torch")
    model = SentenceTransformer(str(resolve_model_dir("all-MiniLM-L6-v2", Path.home() /
                                                      ".cache" / "embedops")), device="cpu")
    model.encode(texts[:16])
    started = time.perf_counter()
    model.encode(texts, batch_size=32, normalize_embeddings=True)
    bare = len(texts) / (time.perf_counter() - started)
    default_run = _ingest(work / "default", [corpus], "auto")
    # The ingest runs include loading their model; time that load alone (warm, as in the run)
    from embedops.embedders import load_embedder

    started = time.perf_counter()
    load_embedder("all-MiniLM-L6-v2", Path.home() / ".cache" / "embedops", "torch")
    torch_load_s = time.perf_counter() - started
    torch_embed_s = torch_run["seconds"] - torch_load_s
    return {
        "chunks": len(texts),
        "bare_encode_chunks_per_s": round(bare, 1),
        "ingest_torch_chunks_per_s": torch_run["chunks_per_second"],
        "ingest_torch_vs_bare": round(torch_run["chunks_per_second"] / bare, 3),
        "torch_model_load_s": round(torch_load_s, 2),
        "ingest_torch_vs_bare_excluding_model_load": round(
            len(texts) / torch_embed_s / bare, 3),
        "ingest_default_chunks_per_s": default_run["chunks_per_second"],
        "ingest_default_vs_bare": round(default_run["chunks_per_second"] / bare, 3),
    }


def rerun(work: Path) -> dict:
    """The whole msmarco-5k corpus with the default backend, then again unchanged, then
    again with one passage edited (the file is read again, 4,999 passages unchanged)."""
    corpus = _subset(DATA / "msmarco-5k" / "corpus.jsonl", 10**9, work / "full")
    first = _ingest(work / "rerun", [corpus], "auto")
    second = _ingest(work / "rerun", [corpus], "auto")
    lines = [line for line in corpus.read_text(encoding="utf-8").split("\n") if line]
    record = json.loads(lines[0])
    record["text"] += " Edited."
    lines[0] = json.dumps(record)
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    third = _ingest(work / "rerun", [corpus], "auto")
    return {
        "documents": first["documents_new"], "first_run_s": first["seconds"],
        "unchanged_rerun_s": second["seconds"],
        "unchanged_rerun_chunks_embedded": second["chunks_embedded"],
        "unchanged_rerun_speedup": round(first["seconds"] / max(second["seconds"], 1e-9), 1),
        "one_edit_rerun_s": third["seconds"],
        "one_edit_rerun_chunks_embedded": third["chunks_embedded"],
        "one_edit_rerun_speedup": round(first["seconds"] / max(third["seconds"], 1e-9), 1),
    }


def quality(work: Path) -> dict:
    import numpy as np

    from embedops.config import load_settings
    from embedops.ledger import Ledger
    from embedops.quality.beir import load_qrels, load_queries
    from embedops.quality.evaluate import run_eval
    from embedops.quality.ir_metrics import evaluate
    from embedops.retrieval import Searcher, doc_scores
    from embedops.store import open_store

    dataset = DATA / "msmarco-5k"
    out = {}
    store_dir = work / "quality"
    settings = load_settings(store=store_dir)
    with open_store(store_dir) as store:
        ledger = Ledger(store_dir)
        for dtype in ("float32", "int8"):
            name = f"msmarco-{dtype}"
            ann = run_eval(store, ledger, settings, dataset, name, dtype=dtype)
            exact = run_eval(store, ledger, settings, dataset, name, dtype=dtype, exact=True)
            out[dtype] = {"ann": {k: ann[k] for k in ("ndcg@10", "recall@10", "recall@100",
                                                      "mrr@10")},
                          "exact_store": exact["ndcg@10"],
                          "ingest_seconds": ann["ingest"]["seconds"]}
        # brute force over the float32 collection's vectors, outside the store's search
        points = [p for page in store.scan("msmarco-float32", with_vectors=True) for p in page]
        matrix = np.vstack([p.vector for p in points]).astype(np.float32)
        queries, qrels = load_queries(dataset), load_qrels(dataset)
        judged = [q for q in queries if qrels.get(q)]
        qv = Searcher(store, settings, "msmarco-float32").embedder.embed(
            [queries[q] for q in judged])
        scores = qv @ matrix.T
        run = {}
        for row, qid in enumerate(judged):
            top = np.argsort(-scores[row])[:200]
            hits = [type("H", (), {"id": points[j].id, "score": float(scores[row, j]),
                                   "payload": points[j].payload}) for j in top]
            run[qid] = doc_scores(hits)  # type: ignore[arg-type]
        brute = evaluate(qrels, run)["ndcg@10"]
        ledger.close()
    out["brute_force_ndcg@10"] = round(brute, 4)
    for dtype in ("float32", "int8"):
        out[dtype]["delta_vs_brute_points"] = round(
            100 * (out[dtype]["ann"]["ndcg@10"] - brute), 2)
    return out


def essays(work: Path) -> dict:
    summary = _ingest(work / "essays", [DATA / "essays"], "auto")
    return {k: summary[k] for k in ("documents_new", "documents_failed", "chunks_embedded",
                                    "seconds", "chunks_per_second")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--limit", type=int, default=1000)
    parser.add_argument("--no-quality", action="store_true")
    parser.add_argument("--no-essays", action="store_true")
    args = parser.parse_args()
    if not (DATA / "msmarco-5k").is_dir():
        print(json.dumps({"skipped": f"no data at {DATA}"}))
        return
    report: dict = {"machine": machine()}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        report["throughput"] = throughput(work, args.limit)
        report["rerun"] = rerun(work)
        if not args.no_quality:
            report["quality"] = quality(work)
        if not args.no_essays:
            report["essays"] = essays(work)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
