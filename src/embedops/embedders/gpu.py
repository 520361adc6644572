"""The accelerated path for local sentence-transformers models on a CUDA device.

What it does differently from ``SentenceTransformer.encode``:

- **Half precision.** The transformer runs in fp16 by default (``gpu_dtype``; bf16 for
  models whose activations overflow fp16, fp32 for the reference vectors). Pooling and
  normalisation run in fp32 on the device. fp16 and bf16 vectors get a fingerprint of
  their own (they differ from fp32 by ~1e-3); fp32 shares the CPU backends' fingerprint.
- **Batches by a token budget.** Texts are tokenized without padding, ordered by length
  and cut into batches of at most ``token_budget`` padded tokens (rows x padded length,
  the length rounded up to a multiple of 8), so a batch of short passages holds many
  rows and a batch of long ones few; padding waste stays small and memory bounded.
- **Tokenization in parallel, ahead of the GPU.** Tokenizing runs in worker processes
  (spawned: a pool forked after the fast tokenizer has run deadlocks), all jobs of a
  call are submitted at once and the device works on one job while the next are
  tokenized.
- **Copies that overlap.** Host batches are built in pinned memory and copied with
  ``non_blocking=True``; vectors stay on the device until the call ends and come back
  in one asynchronous copy into pinned memory.
- **SDPA attention** (``attn_implementation="sdpa"``): fused attention kernels.

Not done: unpadded (varlen) attention and CUDA graphs for the few bucket shapes; both
need a GPU to measure, and length bucketing already keeps the padding small.

The same code runs on the CPU (``device="cpu"``), which is how the tests check the
bucketing, the ordering and the fp32 vectors against sentence-transformers.
"""

from __future__ import annotations

import json
import multiprocessing
import os
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from embedops.config import Settings
from embedops.embedders.base import BaseEmbedder
from embedops.embedders.local import LocalModel
from embedops.errors import ConfigError

PAD_MULTIPLE = 8
# Texts per tokenization job: large enough to amortise a process hop, small enough that
# the device starts soon and the workers stay ahead of it.
JOB_TEXTS = 1024
# Below this many texts a call tokenizes in the calling thread (no process hop).
POOL_MIN_TEXTS = 2 * JOB_TEXTS
ST_MODULES = ("Transformer", "Pooling", "Normalize")
DTYPES = ("fp16", "bf16", "fp32")


@dataclass(frozen=True)
class Bucket:
    """Rows ``start:end`` of the length-sorted order, padded to ``length`` tokens."""

    start: int
    end: int
    length: int


def padded(length: int, multiple: int = PAD_MULTIPLE) -> int:
    return max(multiple, -(-length // multiple) * multiple)


def token_budget_buckets(sorted_lengths: Sequence[int], budget: int,
                         multiple: int = PAD_MULTIPLE) -> list[Bucket]:
    """Cut ascending token lengths into batches of at most ``budget`` padded tokens
    (rows x the batch's longest length, rounded up to ``multiple``). Every row is in one
    bucket, in order; a single row longer than the budget is a bucket of its own."""
    buckets: list[Bucket] = []
    start = 0
    n = len(sorted_lengths)
    while start < n:
        end = start + 1
        while end < n and (end + 1 - start) * padded(sorted_lengths[end], multiple) <= budget:
            end += 1
        buckets.append(Bucket(start, end, padded(sorted_lengths[end - 1], multiple)))
        start = end
    return buckets


def pad_rows(flat: np.ndarray, starts: np.ndarray, lengths: np.ndarray, width: int,
             pad_id: int) -> np.ndarray:
    """Rows ``flat[starts[r] : starts[r] + lengths[r]]`` padded with ``pad_id`` to
    ``width`` columns (int64), without a Python loop over the rows."""
    ids = np.full((len(lengths), width), pad_id, dtype=np.int64)
    filled = np.arange(width)[None, :] < lengths[:, None]
    ends = np.cumsum(lengths)
    within = np.arange(int(ends[-1]) if len(ends) else 0) - np.repeat(ends - lengths, lengths)
    ids[filled] = flat[np.repeat(starts, lengths) + within]
    return ids


# --- tokenization (in spawned workers, or in the calling thread) ------------------------

_worker_tokenizer: Any = None


def _load_tokenizer(tokenizer_json: str, max_length: int) -> Any:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(tokenizer_json)
    tokenizer.enable_truncation(max_length)
    tokenizer.no_padding()
    return tokenizer


def _init_worker(tokenizer_json: str, max_length: int) -> None:
    global _worker_tokenizer
    os.environ["TOKENIZERS_PARALLELISM"] = "false"  # one process per core is the parallelism
    _worker_tokenizer = _load_tokenizer(tokenizer_json, max_length)


def _encode(tokenizer: Any, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Token ids of ``texts`` (special tokens added, truncated), flat, and the lengths."""
    encodings = tokenizer.encode_batch(texts)
    lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(texts))
    flat = np.fromiter((i for e in encodings for i in e.ids), dtype=np.int32,
                       count=int(lengths.sum()))
    return flat, lengths


def _encode_in_worker(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    return _encode(_worker_tokenizer, texts)


class TokenizerPool:
    """Tokenizes in ``workers`` spawned processes (0: in the calling thread), in jobs of
    ``job_texts``; a call of fewer than ``pool_min_texts`` texts stays in the thread."""

    def __init__(self, tokenizer_json: Path, max_length: int, workers: int,
                 job_texts: int = JOB_TEXTS, pool_min_texts: int = POOL_MIN_TEXTS) -> None:
        self._args = (str(tokenizer_json), max_length)
        self._local = _load_tokenizer(*self._args)
        self.workers, self.job_texts, self.pool_min_texts = workers, job_texts, pool_min_texts
        self._pool: ProcessPoolExecutor | None = None

    def submit(self, texts: list[str]) -> list[Future[tuple[np.ndarray, np.ndarray]]]:
        """One future per job, in order."""
        size = self.job_texts
        jobs = [texts[i : i + size] for i in range(0, len(texts), size)]
        if self.workers == 0 or len(texts) < self.pool_min_texts:
            return [_done(_encode(self._local, job)) for job in jobs]
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker, initargs=self._args)
        return [self._pool.submit(_encode_in_worker, job) for job in jobs]

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


def _done(value: tuple[np.ndarray, np.ndarray]) -> Future[tuple[np.ndarray, np.ndarray]]:
    future: Future[tuple[np.ndarray, np.ndarray]] = Future()
    future.set_result(value)
    return future


# --- the embedder -----------------------------------------------------------------------


def check_modules(directory: Path) -> None:
    """ConfigError unless the model is a plain Transformer -> Pooling (-> Normalize)."""
    path = directory / "modules.json"
    if not path.is_file():
        return
    kinds = [m.get("type", "").rsplit(".", 1)[-1] for m in json.loads(path.read_text())]
    if any(k not in ST_MODULES for k in kinds):
        raise ConfigError(f"the GPU path runs Transformer, Pooling and Normalize modules; "
                          f"{directory.name} has {', '.join(kinds)}")


class GpuEmbedder(BaseEmbedder):
    """A local sentence-transformers model on a device (CUDA; the CPU for tests), with
    the batching described in the module docstring. Vectors: L2-normalised float32."""

    def __init__(self, model: LocalModel, device: str = "cuda", dtype: str = "fp16",
                 token_budget: int = 65536, tokenizer_workers: int = 4,
                 pool: TokenizerPool | None = None) -> None:
        """``pool``: the tokenizer processes to use (default: ``tokenizer_workers`` of
        them, jobs of ``JOB_TEXTS``)."""
        super().__init__(batch_size=8 * JOB_TEXTS)  # texts per call; buckets inside
        if dtype not in DTYPES:
            raise ConfigError(f"gpu_dtype must be one of {', '.join(DTYPES)}, not {dtype!r}")
        check_modules(model.directory)
        import torch
        from transformers import AutoModel
        from transformers.utils import logging as hf_logging

        if device.startswith("cuda") and not torch.cuda.is_available():
            raise ConfigError(f"device {device!r}: no CUDA device is visible to torch "
                              f"{torch.__version__}")
        hf_logging.set_verbosity_error()
        self._torch = torch
        self.device = torch.device(device)
        self._dtype = {"fp16": torch.float16, "bf16": torch.bfloat16,
                       "fp32": torch.float32}[dtype]
        self._model = AutoModel.from_pretrained(
            str(model.directory), dtype=self._dtype, attn_implementation="sdpa"
        ).to(self.device).eval()
        self._pooling = model.pooling
        self._pin = self.device.type == "cuda"
        self.token_budget = token_budget
        self.tokenizer = model.tokenizer()
        self._pad_id = _pad_id(model.directory / "tokenizer.json")
        self._tokens = pool or TokenizerPool(model.directory / "tokenizer.json",
                                             model.max_seq_length, tokenizer_workers)
        self.info = model.info(backend=f"torch-{self.device.type}", precision=dtype)

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        torch = self._torch
        out = torch.empty((len(texts), self.info.dim), dtype=torch.float32, device=self.device)
        offset = 0
        with torch.inference_mode():
            for job in self._tokens.submit(texts):
                flat, lengths = job.result()
                self._embed_job(flat, lengths, out, offset)
                offset += len(lengths)
            host = torch.empty(out.shape, dtype=torch.float32, pin_memory=self._pin)
            host.copy_(out, non_blocking=True)
            if self.device.type == "cuda":
                torch.cuda.current_stream(self.device).synchronize()
        return host.numpy()

    def _embed_job(self, flat: np.ndarray, lengths: np.ndarray, out: Any, offset: int) -> None:
        """Embed one tokenized job into rows ``offset:`` of ``out``, bucket by bucket."""
        torch = self._torch
        starts = np.concatenate(([0], np.cumsum(lengths)[:-1]))
        order = np.argsort(lengths, kind="stable")
        for bucket in token_budget_buckets(lengths[order].tolist(), self.token_budget):
            rows = order[bucket.start : bucket.end]
            host_ids = torch.from_numpy(pad_rows(flat, starts[rows], lengths[rows],
                                                 bucket.length, self._pad_id))
            host_len = torch.from_numpy(lengths[rows].astype(np.int64))
            if self._pin:
                host_ids, host_len = host_ids.pin_memory(), host_len.pin_memory()
            dev_ids = host_ids.to(self.device, non_blocking=True)
            dev_len = host_len.to(self.device, non_blocking=True)
            mask = (torch.arange(bucket.length, device=self.device)[None, :]
                    < dev_len[:, None]).to(torch.long)
            hidden = self._model(input_ids=dev_ids, attention_mask=mask).last_hidden_state
            index = torch.from_numpy(rows + offset).to(self.device, non_blocking=True)
            out[index] = self._pool(hidden, mask)

    def _pool(self, hidden: Any, mask: Any) -> Any:
        """Mean (or CLS) pooling and L2 normalisation in fp32, on the device."""
        torch = self._torch
        if self._pooling == "cls":
            pooled = hidden[:, 0].float()
        else:
            weights = mask.unsqueeze(-1).to(torch.float32)
            pooled = (hidden.float() * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
        return torch.nn.functional.normalize(pooled, dim=1)

    def close(self) -> None:
        """Stop the tokenizer processes."""
        self._tokens.close()


def _pad_id(tokenizer_json: Path) -> int:
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(tokenizer_json))
    for token in ("[PAD]", "<pad>"):
        found = tokenizer.token_to_id(token)
        if found is not None:
            return int(found)
    return 0


def gpu_embedder(model: LocalModel, settings: Settings, dtype: str | None = None
                 ) -> GpuEmbedder:
    """The GPU path for ``model`` with the settings' device, precision and budgets."""
    return GpuEmbedder(model, settings.device, dtype or settings.gpu_dtype,
                       settings.gpu_token_budget, settings.gpu_tokenizer_workers)


def matching_gpu_embedder(model: LocalModel, fingerprint: str,
                          settings: Settings) -> GpuEmbedder | None:
    """The GPU path at the precision whose vectors carry ``fingerprint`` (the settings'
    precision first), or None when none does."""
    for dtype in dict.fromkeys([settings.gpu_dtype, *DTYPES]):
        if model.info(f"torch-{settings.device}", dtype).fingerprint == fingerprint:
            return gpu_embedder(model, settings, dtype)
    return None
