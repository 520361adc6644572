"""One contract every embedder passes: shape, normalisation, order, determinism, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedops.embedders import Embedder, load_embedder
from embedops.errors import PermanentEmbedderError

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "A vector store keeps embeddings and metadata.",
    "short",
    "Les modèles multilingues gèrent les accents — et les emoji 🚀.",
    "The quick brown fox jumps over the lazy dog.",
]

BACKENDS = [
    pytest.param(("testing/hash-64", "auto"), id="hash"),
    pytest.param(("all-MiniLM-L6-v2", "onnx"), id="minilm-onnx", marks=pytest.mark.slow),
    pytest.param(("all-MiniLM-L6-v2", "onnx-int8"), id="minilm-int8", marks=pytest.mark.slow),
    pytest.param(("all-MiniLM-L6-v2", "torch"), id="minilm-torch", marks=pytest.mark.slow),
]


@pytest.fixture(scope="module", params=BACKENDS)
def embedder(request: pytest.FixtureRequest, model_cache: Path) -> Embedder:
    name, backend = request.param
    return load_embedder(name, model_cache, backend=backend)


def test_is_an_embedder(embedder: Embedder) -> None:
    assert isinstance(embedder, Embedder)
    info = embedder.info
    assert info.dim > 0 and info.max_tokens > 0 and len(info.fingerprint) == 16


def test_shape_dtype_and_unit_norm(embedder: Embedder) -> None:
    vectors = embedder.embed(TEXTS)
    assert vectors.shape == (len(TEXTS), embedder.info.dim)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_batch_order_and_determinism(embedder: Embedder) -> None:
    together = embedder.embed(TEXTS)
    one_by_one = np.vstack([embedder.embed([t]) for t in TEXTS])
    np.testing.assert_allclose(together, one_by_one, atol=2e-3)
    np.testing.assert_allclose(together[0], together[4], atol=1e-6)
    assert float(together[0] @ together[1]) < 0.999


def test_similar_texts_score_higher(embedder: Embedder) -> None:
    a, b, c = embedder.embed([
        "the cat sat on the mat",
        "a cat was sitting on the mat",
        "quarterly revenue grew by twelve percent",
    ])
    assert a @ b > a @ c


@pytest.mark.parametrize("bad", [[""], ["   "], [None], "a plain string"])
def test_bad_input_is_a_typed_error(embedder: Embedder, bad: object) -> None:
    with pytest.raises(PermanentEmbedderError):
        embedder.embed(bad)  # type: ignore[arg-type]


def test_empty_list_gives_empty_matrix(embedder: Embedder) -> None:
    assert embedder.embed([]).shape == (0, embedder.info.dim)


def test_long_input_is_truncated_not_refused(embedder: Embedder) -> None:
    vector = embedder.embed(["word " * 5000])
    assert np.isfinite(vector).all()
