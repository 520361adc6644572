"""Local sentence-transformers models: what they are, and the PyTorch backend.

``LocalModel`` gathers everything that identifies a local model (directory, weight digest,
sequence length, pooling). Backends (PyTorch here, ONNX Runtime in ``onnx_runtime.py``)
turn it into an :class:`Embedder`. torch is imported only when the PyTorch backend loads.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from embedops.embedders.base import BaseEmbedder, EmbedderInfo, make_fingerprint
from embedops.embedders.hf_tokenizer import HFTokenizer
from embedops.embedders.weights import (
    canonical_name,
    read_model_config,
    resolve_model_dir,
    weights_digest,
)
from embedops.errors import ModelNotFound


@dataclass(frozen=True)
class LocalModel:
    """A resolved local model: where it lives and what determines its vectors."""

    name: str
    directory: Path
    digest: str
    max_seq_length: int
    pooling: str
    dim: int
    model_type: str
    cache_dir: Path

    @classmethod
    def resolve(cls, name: str, cache_dir: Path) -> LocalModel:
        directory = resolve_model_dir(name, cache_dir)
        cfg = read_model_config(directory)
        if not cfg["dim"]:
            raise ModelNotFound(f"cannot tell the embedding dimension of {directory}")
        return cls(
            name=canonical_name(name),
            directory=directory,
            digest=weights_digest(directory, cache_dir),
            max_seq_length=int(cfg["max_seq_length"]),  # type: ignore[call-overload]
            pooling=str(cfg["pooling"]),
            dim=int(cfg["dim"]),  # type: ignore[call-overload]
            model_type=str(cfg["model_type"]),
            cache_dir=cache_dir,
        )

    def info(self, backend: str, precision: str) -> EmbedderInfo:
        """Identity of this model under a backend; the fingerprint depends on the vectors
        only, so backends that give the same vectors (torch, onnx fp32) share it."""
        fingerprint = make_fingerprint(
            {
                "name": self.name,
                "weights": self.digest,
                "max_seq_length": self.max_seq_length,
                "pooling": self.pooling,
                "normalize": True,
                "precision": precision,
            }
        )
        return EmbedderInfo(
            name=self.name,
            revision=self.digest[:12],
            dim=self.dim,
            max_tokens=self.max_seq_length,
            modality="text",
            backend=backend,
            source=str(self.directory),
            fingerprint=fingerprint,
        )

    def tokenizer(self) -> HFTokenizer:
        return HFTokenizer(self.directory / "tokenizer.json", self.max_seq_length)


class TorchEmbedder(BaseEmbedder):
    """The reference path: ``SentenceTransformer.encode`` on the CPU, offline."""

    def __init__(self, model: LocalModel, batch_size: int = 32) -> None:
        super().__init__(batch_size)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        self._model = SentenceTransformer(str(model.directory), device="cpu")
        self._model.max_seq_length = model.max_seq_length
        self.info = model.info(backend="torch", precision="fp32")
        self.tokenizer = model.tokenizer()

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        vectors = self._model.encode(
            texts, batch_size=len(texts), convert_to_numpy=True, show_progress_bar=False
        )
        return np.asarray(vectors, dtype=np.float32)
