"""The GPU path against sentence-transformers and the bare model, in one run. Prints JSON.

For all-MiniLM-L6-v2 over N real passages (msmarco-5k repeated to --n; each repeat is
a new text to the models, none of them caches), text in, normalised vectors out:

- ``SentenceTransformer.encode`` in fp32 and in fp16 (the model ``.half()``)
- the bare model in fp16: pre-tokenized, length-sorted, padded batches; only the forward
  pass and mean pooling are timed (the ceiling)
- embedops' GPU path (``embedders/gpu.py``): tokenization in spawned workers, token-budget
  batches, fp16, pooling and normalisation on the device
- agreement: mean and minimum cosine of the embedops vectors with the fp32 ones

    .venv/bin/python bench/gpu_embed.py [--n 100000] [--device cuda] [--dtype fp16]
        [--token-budget 65536] [--tokenizer-workers 8]

On a CPU (``--device cpu --n 2000``, fp32 by default) it runs the same code for a smoke
check; its numbers say nothing about a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "true")
ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "data" / "msmarco-5k" / "corpus.jsonl"


def passages(path: Path, n: int) -> list[str]:
    base = [json.loads(line)["text"] for line in path.read_text(encoding="utf-8").split("\n")
            if line.strip()]
    # a repeat gets a marker so every text is distinct (no cache could help anyone)
    return [base[i % len(base)] + ("" if i < len(base) else f" ({i // len(base)})")
            for i in range(n)]


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device: str, repeats: int) -> tuple[object, list[float]]:  # type: ignore[no-untyped-def]
    result, times = None, []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        result = fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return result, times


def rate(n: int, times: list[float]) -> dict[str, float]:
    best, median = min(times), statistics.median(times)
    return {"passages_per_s_median": round(n / median, 1),
            "passages_per_s_best": round(n / best, 1), "seconds": [round(t, 3) for t in times]}


def bare_model(model_dir: Path, texts: list[str], device: str, budget: int
               ) -> tuple[object, int]:
    """A closure running the fp16 transformer + mean pooling over pre-tokenized batches."""
    import numpy as np
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModel

    from embedops.embedders.gpu import pad_rows, token_budget_buckets

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    tok.enable_truncation(256)
    tok.no_padding()
    enc = tok.encode_batch(texts)
    lengths = [len(e.ids) for e in enc]
    order = np.argsort(lengths, kind="stable")
    flat = np.fromiter((i for e in enc for i in e.ids), dtype=np.int32)
    lens = np.asarray(lengths, dtype=np.int64)
    starts = np.concatenate(([0], np.cumsum(lens)[:-1]))
    batches = []
    for b in token_budget_buckets(lens[order].tolist(), budget):
        rows = order[b.start : b.end]
        ids = torch.from_numpy(pad_rows(flat, starts[rows], lens[rows], b.length, 0))
        mask = (ids != 0).long()
        batches.append((ids.to(device), mask.to(device)))
    dtype = torch.float16 if device.startswith("cuda") else torch.float32
    model = AutoModel.from_pretrained(str(model_dir), dtype=dtype,
                                      attn_implementation="sdpa").to(device).eval()

    def run() -> None:
        with torch.inference_mode():
            for ids, mask in batches:
                hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
                w = mask.unsqueeze(-1).to(hidden.dtype)
                torch.nn.functional.normalize((hidden * w).sum(1) / w.sum(1), dim=1)

    return run, int(sum(lengths))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--dtype", choices=["fp16", "bf16", "fp32"],
                        help="default: fp16 on CUDA, fp32 on the CPU (as the bare model)")
    parser.add_argument("--token-budget", type=int, default=65536)
    parser.add_argument("--tokenizer-workers", type=int, default=8)
    parser.add_argument("--st-batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    args.dtype = args.dtype or ("fp16" if args.device.startswith("cuda") else "fp32")

    import numpy as np
    import torch
    from sentence_transformers import SentenceTransformer

    from embedops.config import load_settings
    from embedops.embedders.gpu import GpuEmbedder
    from embedops.embedders.local import LocalModel

    texts = passages(CORPUS, args.n)
    model = LocalModel.resolve("all-MiniLM-L6-v2", load_settings().cache_dir)
    results: dict[str, object] = {
        "n": args.n, "device": args.device, "dtype": args.dtype,
        "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None,
        "torch": torch.__version__, "python": platform.python_version(),
        "cpus": os.cpu_count(), "token_budget": args.token_budget,
        "tokenizer_workers": args.tokenizer_workers,
    }

    st = SentenceTransformer(str(model.directory), device=args.device)

    def encode() -> object:
        return st.encode(texts, batch_size=args.st_batch_size, convert_to_numpy=True,
                         normalize_embeddings=True, show_progress_bar=False)

    reference, times = timed(encode, args.device, args.repeats)
    results["sentence_transformers_fp32"] = rate(args.n, times)
    if args.device.startswith("cuda"):
        st.half()
        _, times = timed(encode, args.device, args.repeats)
        results["sentence_transformers_fp16"] = rate(args.n, times)

    run, tokens = bare_model(model.directory, texts, args.device, args.token_budget)
    run()  # warm-up
    _, times = timed(run, args.device, args.repeats)
    results["bare_model"] = rate(args.n, times)
    results["mean_tokens"] = round(tokens / args.n, 1)

    embedder = GpuEmbedder(model, device=args.device, dtype=args.dtype,
                           token_budget=args.token_budget,
                           tokenizer_workers=args.tokenizer_workers)
    embedder.embed(texts[:4096])  # warm-up: kernels, the tokenizer processes
    vectors, times = timed(lambda: embedder.embed(texts), args.device, args.repeats)
    embedder.close()
    results["embedops"] = rate(args.n, times)
    cosines = (np.asarray(vectors) * np.asarray(reference)).sum(axis=1)
    results["cosine_vs_fp32"] = {"mean": round(float(cosines.mean()), 6),
                                 "min": round(float(cosines.min()), 6)}
    ours = results["embedops"]["passages_per_s_median"]  # type: ignore[index]
    for key in ("sentence_transformers_fp32", "sentence_transformers_fp16", "bare_model"):
        if key in results:
            base = results[key]["passages_per_s_median"]  # type: ignore[index]
            results[f"embedops_vs_{key}"] = round(ours / base, 2)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
