"""Chunking speed on ../shared/data/essays, side by side with the common baseline of
encoding the whole text and decoding fixed token windows (``tokenizer.decode`` of id
slices, as many pipelines do). Prints JSON.

    .venv/bin/python bench/chunking.py
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path

from machine_info import machine  # (bench/)

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "essays"


def main() -> None:
    if not DATA.is_dir():
        print(json.dumps({"skipped": f"no data at {DATA}"}))
        return
    from tokenizers import Tokenizer

    from embedops.embedders import load_tokenizer
    from embedops.embedders.weights import resolve_model_dir
    from embedops.preprocess.chunk_sentences import SentenceChunker
    from embedops.preprocess.chunk_tokens import TokenChunker
    from embedops.preprocess.clean import clean_text

    cache = Path.home() / ".cache" / "embedops"
    tokenizer = load_tokenizer("all-MiniLM-L6-v2", cache)
    raw = Tokenizer.from_file(str(resolve_model_dir("all-MiniLM-L6-v2", cache) /
                                  "tokenizer.json"))
    raw.no_truncation()
    raw.no_padding()
    texts = [clean_text(p.read_text(encoding="utf-8", errors="replace"))
             for p in sorted(DATA.glob("*.txt"))]

    def baseline(text: str) -> list[str]:
        ids = raw.encode(text, add_special_tokens=False).ids
        return [raw.decode(ids[i : i + 254]) for i in range(0, len(ids), 254 - 32)]

    token_chunker, sentence_chunker = TokenChunker(tokenizer), SentenceChunker(tokenizer)
    paths = {
        "baseline_encode_decode_windows": baseline,
        "embedops_token_chunker": lambda t: token_chunker.chunk("d", t),
        "embedops_sentence_chunker": lambda t: sentence_chunker.chunk("d", t),
    }
    words = [len(t.split()) for t in texts]
    big = [i for i, w in enumerate(words) if w >= 10_000]
    report: dict = {"machine": machine(),
                    "essays": len(texts), "words_total": sum(words),
                    "essays_over_10k_words": len(big)}
    for name, fn in paths.items():
        per_doc = []
        chunks = 0
        for text in texts:
            start = time.perf_counter()
            chunks += len(fn(text))
            per_doc.append(time.perf_counter() - start)
        report[name] = {
            "total_s": round(sum(per_doc), 3),
            "chunks": chunks,
            "words_per_s": round(sum(words) / sum(per_doc)),
            "median_ms_per_essay": round(1000 * statistics.median(per_doc), 2),
            "max_ms_10k_word_essay": round(1000 * max((per_doc[i] for i in big), default=0), 2),
        }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
