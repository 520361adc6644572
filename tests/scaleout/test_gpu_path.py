"""The GPU embedding path, run on the CPU: token-budget buckets, order, the spawned
tokenizer pool, and vectors against sentence-transformers' fp32 reference."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from embedops.config import load_settings
from embedops.embedders import load_embedder, load_matching_embedder
from embedops.embedders.gpu import (
    GpuEmbedder,
    TokenizerPool,
    matching_gpu_embedder,
    pad_rows,
    padded,
    token_budget_buckets,
)
from embedops.embedders.local import LocalModel, TorchEmbedder
from embedops.errors import ConfigError

MODEL = "all-MiniLM-L6-v2"
WORDS = ("vector", "index", "embedding", "graph", "recall", "model", "passage", "query",
         "latency", "throughput", "tensor", "kernel", "batch", "token")


def _texts(n: int, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    # lengths from two words to past the model's 256-token limit, shuffled
    return [" ".join(rng.choice(WORDS) for _ in range(rng.choice([2, 9, 40, 300])))
            for _ in range(n)]


@given(st.lists(st.integers(1, 300), max_size=200), st.integers(8, 4096))
def test_buckets_cover_every_row_once_within_the_budget(lengths: list[int],
                                                        budget: int) -> None:
    ordered = sorted(lengths)
    buckets = token_budget_buckets(ordered, budget)
    assert [i for b in buckets for i in range(b.start, b.end)] == list(range(len(ordered)))
    for b in buckets:
        assert b.length == padded(max(ordered[b.start : b.end])) and b.length % 8 == 0
        assert (b.end - b.start) * b.length <= budget or b.end - b.start == 1


def test_buckets_hold_many_short_rows_or_few_long_ones() -> None:
    buckets = token_budget_buckets([10] * 100 + [250] * 10, 2048)
    # 100 rows padded to 16 tokens fit one batch; rows of 256 tokens go 8 at a time
    assert [(b.end - b.start, b.length) for b in buckets] == [(100, 16), (8, 256), (2, 256)]


def test_pad_rows_places_each_row_left_aligned() -> None:
    flat = np.arange(1, 11, dtype=np.int32)  # rows [1,2,3] [4] [5..10]
    starts, lengths = np.array([6, 0, 5]), np.array([4, 3, 1])
    got = pad_rows(flat, starts, lengths, 8, 0)
    assert got.tolist() == [[7, 8, 9, 10, 0, 0, 0, 0], [1, 2, 3, 0, 0, 0, 0, 0],
                            [6, 0, 0, 0, 0, 0, 0, 0]]


@pytest.fixture(scope="module")
def minilm(model_cache: Path) -> LocalModel:
    return LocalModel.resolve(MODEL, model_cache)


@pytest.fixture(scope="module")
def reference(minilm: LocalModel) -> TorchEmbedder:
    return TorchEmbedder(minilm, batch_size=32)


@pytest.mark.slow
def test_fp32_vectors_match_sentence_transformers_in_input_order(
        minilm: LocalModel, reference: TorchEmbedder) -> None:
    texts = _texts(48)
    gpu = GpuEmbedder(minilm, device="cpu", dtype="fp32", token_budget=1024,
                      tokenizer_workers=0)
    got = gpu.embed(texts)
    expected = reference.embed(texts)
    assert got.shape == (48, 384) and got.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(got, axis=1), 1.0, atol=1e-5)
    cosines = (got * expected).sum(axis=1)
    assert cosines.min() > 0.99999, cosines.min()
    # a shuffled call gives each text its own vector
    order = np.random.default_rng(1).permutation(48)
    np.testing.assert_allclose(gpu.embed([texts[i] for i in order]), got[order], atol=1e-5)
    assert gpu.info.fingerprint == reference.info.fingerprint  # fp32 vectors: one identity


@pytest.mark.slow
def test_spawned_tokenizer_workers_give_the_same_vectors(minilm: LocalModel) -> None:
    texts = _texts(70, seed=5)
    inline = GpuEmbedder(minilm, device="cpu", dtype="fp32", token_budget=2048,
                         tokenizer_workers=0)
    workers = TokenizerPool(minilm.directory / "tokenizer.json", minilm.max_seq_length,
                            workers=2, job_texts=16, pool_min_texts=0)  # five jobs
    pooled = GpuEmbedder(minilm, device="cpu", dtype="fp32", token_budget=2048,
                         pool=workers)
    try:
        np.testing.assert_allclose(pooled.embed(texts), inline.embed(texts), atol=1e-6)
    finally:
        pooled.close()


@pytest.mark.slow
def test_half_precision_is_close_to_fp32_and_has_its_own_fingerprint(
        minilm: LocalModel, reference: TorchEmbedder) -> None:
    texts = _texts(16, seed=9)  # (bf16 on a CPU without bf16 units is slow)
    bf16 = GpuEmbedder(minilm, device="cpu", dtype="bf16", tokenizer_workers=0)
    cosines = (bf16.embed(texts) * reference.embed(texts)).sum(axis=1)
    assert cosines.mean() > 0.99, cosines.mean()  # bf16 keeps 8 bits of mantissa
    assert bf16.info.fingerprint != reference.info.fingerprint
    settings = load_settings(device="cuda", gpu_dtype="fp16")
    assert matching_gpu_embedder(minilm, "no-such-fingerprint", settings) is None


@pytest.mark.slow
def test_cuda_without_a_device_is_a_clear_error(minilm: LocalModel) -> None:
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    settings = load_settings(device="cuda")
    with pytest.raises(ConfigError, match="no CUDA device"):
        load_embedder(MODEL, minilm.cache_dir, settings=settings)
    fingerprint = minilm.info("torch", "fp32").fingerprint
    with pytest.raises(ConfigError, match="no CUDA device"):
        load_matching_embedder(MODEL, fingerprint, minilm.cache_dir, settings=settings)
