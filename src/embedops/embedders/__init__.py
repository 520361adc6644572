"""Embedders behind one protocol: local models (PyTorch, ONNX Runtime); API models later."""

from embedops.embedders.base import BaseEmbedder, Embedder, EmbedderInfo, Tokenizer
from embedops.embedders.factory import (
    BACKENDS,
    ModelListing,
    list_models,
    load_embedder,
    load_matching_embedder,
    load_tokenizer,
)

__all__ = [
    "BACKENDS",
    "BaseEmbedder",
    "Embedder",
    "EmbedderInfo",
    "ModelListing",
    "Tokenizer",
    "list_models",
    "load_embedder",
    "load_matching_embedder",
    "load_tokenizer",
]
