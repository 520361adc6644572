"""Self-hosted embedding speed per local model, the figures behind `embedops cost`.

Every local model with the default backend on the same texts: documents of ``--tokens``
tokens (default 200, the cost model's default) made by joining consecutive msmarco-5k
passages, and the passages as they are (about 80 tokens). The models take turns on small
rounds of texts, with a short untimed pause between turns (ONNX Runtime's idle threads
spin for a while after a call and would slow the next model's turn). Each turn records how
much CPU other processes used meanwhile (``/proc/stat``); a round counts as quiet when the
others used under ``--quiet`` of the CPUs in every turn. Prints JSON: tokens/s per model
and length over the quiet rounds and over all rounds, and the speed relative to the first
model.

    flock /tmp/embedops-bench.lock .venv/bin/python bench/self_hosted_speed.py [--limit 200]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from machine_info import machine  # (bench/)

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "msmarco-5k"
MODELS = ("all-MiniLM-L6-v2", "all-mpnet-base-v2")
PAUSE_S = 0.2  # lets the previous model's spinning worker threads go idle


def joined_documents(passages: list[str], tokenizer, target: int,  # type: ignore[no-untyped-def]
                     limit: int) -> list[str]:
    """Consecutive passages joined, then cut after the ``target``-th token of the model."""
    docs: list[str] = []
    current: list[str] = []
    for passage in passages:
        current.append(passage)
        offsets = tokenizer.offsets(" ".join(current))
        if len(offsets) >= target:
            docs.append(" ".join(current)[: offsets[target - 1][1]])
            current = []
            if len(docs) == limit:
                break
    return docs


def _busy_seconds() -> float | None:
    """CPU seconds all processes have used since boot (``/proc/stat``), None if unknown."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def _timed(embedder, batch: list[str]) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """(seconds, share of all CPUs that other processes used meanwhile) of one embed."""
    busy0, own0, began = _busy_seconds(), sum(os.times()[:2]), time.perf_counter()
    embedder.embed(batch)
    took = time.perf_counter() - began
    busy1, own1 = _busy_seconds(), sum(os.times()[:2])
    if busy0 is None or busy1 is None:
        return took, 0.0
    others = max(0.0, (busy1 - busy0) - (own1 - own0))
    return took, others / (took * (os.cpu_count() or 1))


def interleaved(embedders: dict, texts: dict[str, list[str]],  # type: ignore[type-arg]
                round_size: int, quiet: float) -> dict[str, dict[str, float]]:
    """Each model embeds ``round_size`` of its texts in turn until all are done.

    A round is quiet when other processes used under ``quiet`` of the CPUs during every
    model's turn. Returns per model: texts, mean tokens (as the model sees them), tokens/s
    and docs/s over the quiet rounds and over all rounds, and the speed relative to the
    first model over the quiet rounds.
    """
    names = list(embedders)
    rounds: list[dict[str, tuple[int, int, float, float]]] = []
    for n in names:
        embedders[n].embed(texts[n][:8])  # warm-up: first-call allocations
    for start in range(0, min(len(t) for t in texts.values()), round_size):
        one = {}
        for n in names:
            batch = texts[n][start : start + round_size]
            time.sleep(PAUSE_S)
            took, others = _timed(embedders[n], batch)
            one[n] = (len(batch), _tokens(embedders[n], batch), took, others)
        rounds.append(one)
    quiet_rounds = [r for r in rounds if all(v[3] < quiet for v in r.values())]

    def speed(n: str, chosen: list[dict[str, tuple[int, int, float, float]]]) -> dict:  # type: ignore[type-arg]
        texts_, tokens, seconds = (sum(r[n][i] for r in chosen) for i in range(3))
        return {"texts": texts_, "mean_tokens": round(tokens / texts_, 1) if texts_ else None,
                "tokens_per_s": round(tokens / seconds) if seconds else None,
                "docs_per_s": round(texts_ / seconds, 2) if seconds else None}

    out: dict[str, dict[str, float]] = {}
    for n in names:
        quiet_speed, all_speed = speed(n, quiet_rounds), speed(n, rounds)
        base = speed(names[0], quiet_rounds)["tokens_per_s"]
        out[n] = {"quiet_rounds": len(quiet_rounds), "rounds": len(rounds),
                  "quiet": quiet_speed, "all": all_speed,
                  f"quiet_speed_vs_{names[0]}": (round(quiet_speed["tokens_per_s"] / base, 4)
                                                 if base and quiet_speed["tokens_per_s"]
                                                 else None)}
    return out


def _tokens(embedder, texts: list[str]) -> int:  # type: ignore[no-untyped-def]
    cap = embedder.tokenizer.max_content_tokens
    return sum(min(c, cap) for c in embedder.tokenizer.count(texts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--limit", type=int, default=200, help="texts per model and length")
    parser.add_argument("--tokens", type=int, default=200, help="length of joined documents")
    parser.add_argument("--round", type=int, default=10, help="texts per turn")
    parser.add_argument("--quiet", type=float, default=0.05,
                        help="most CPU share other processes may use in a quiet round")
    parser.add_argument("--cache", type=Path, default=Path.home() / ".cache" / "embedops")
    args = parser.parse_args()
    if not (args.data / "corpus.jsonl").is_file():
        print(json.dumps({"skipped": f"no dataset at {args.data}"}))
        return

    from embedops.embedders import load_embedder
    from embedops.embedders.factory import AUTO_BACKEND
    from embedops.quality.beir import load_corpus, passage_text

    passages = [passage_text(doc) for doc in load_corpus(args.data).values()]
    embedders = {name: load_embedder(name, args.cache, AUTO_BACKEND) for name in MODELS}
    docs = {n: joined_documents(passages, e.tokenizer, args.tokens, args.limit)
            for n, e in embedders.items()}
    load_before = os.getloadavg()
    report = {
        "machine": machine(),
        "backend": AUTO_BACKEND,
        "dims": {n: e.info.dim for n, e in embedders.items()},
        f"docs_{args.tokens}_tokens": interleaved(embedders, docs, args.round, args.quiet),
        "passages": interleaved(embedders, dict.fromkeys(MODELS, passages[: args.limit]),
                                args.round, args.quiet),
        "load_average_before_after": [round(load_before[0], 2), round(os.getloadavg()[0], 2)],
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
