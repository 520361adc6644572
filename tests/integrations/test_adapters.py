"""Another framework's embeddings object as an embedops Embedder: what its fingerprint
covers, the roles, and bad outputs. No framework needed: any object with the two calls."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pydantic
import pytest

import embedops
from embedops.errors import PermanentEmbedderError
from embedops.integrations import ForeignEmbedder, object_settings


class ApiEmbeddings(pydantic.BaseModel):
    """Shaped like an API client's embeddings class."""

    model: str = "text-embed-1"
    dimensions: int = 8
    api_key: pydantic.SecretStr = pydantic.SecretStr("sk-1")
    request_timeout: float = 30.0
    max_retries: int = 3
    embed_batch_size: int = 16
    model_kwargs: dict[str, object] = {"normalize": True, "api_token": "t"}
    http_client: object | None = None

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self._vector("doc", t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._vector("query", text)

    def _vector(self, role: str, text: str) -> list[float]:
        digest = hashlib.sha256(f"{self.model}:{role}:{text}".encode()).digest()
        return [b / 255 for b in digest[: self.dimensions]]


def _adapt(model: ApiEmbeddings) -> ForeignEmbedder:
    return ForeignEmbedder("demo", model, model.embed_documents, model.embed_query)


def test_settings_keep_what_determines_vectors_and_drop_secrets_and_knobs() -> None:
    settings = object_settings(ApiEmbeddings(http_client=object()))
    assert settings == {"model": "text-embed-1", "dimensions": 8,
                        "model_kwargs": {"normalize": True}}

    class Plain:
        def __init__(self) -> None:
            self.model_name, self.api_key, self._cache = "m", "secret", {}

    assert object_settings(Plain()) == {"model_name": "m"}


def test_fingerprint_follows_model_and_dimension_not_keys_or_timeouts() -> None:
    base = _adapt(ApiEmbeddings()).info
    assert (base.name, base.dim, base.revision) == ("demo/ApiEmbeddings", 8, "text-embed-1")
    same = ApiEmbeddings(api_key=pydantic.SecretStr("sk-2"), request_timeout=5,
                         max_retries=0, embed_batch_size=1)
    assert _adapt(same).info.fingerprint == base.fingerprint
    for other in (ApiEmbeddings(model="text-embed-2"), ApiEmbeddings(dimensions=6),
                  ApiEmbeddings(model_kwargs={"normalize": False})):
        assert _adapt(other).info.fingerprint != base.fingerprint
    named = ForeignEmbedder("demo", ApiEmbeddings(), ApiEmbeddings().embed_documents,
                            ApiEmbeddings().embed_query, settings={"model": "pinned"})
    assert named.info.fingerprint != base.fingerprint


def test_roles_use_the_frameworks_own_calls_and_bad_rows_are_refused() -> None:
    model = ApiEmbeddings()
    embedder = _adapt(model)
    documents, queries = embedder.embed(["a", "b"], "document"), embedder.embed(["a"], "query")
    expected = np.asarray(model.embed_documents(["a"])[0], dtype=np.float32)
    assert np.allclose(documents[0], expected / np.linalg.norm(expected), atol=1e-6)
    assert not np.allclose(documents[0], queries[0])

    ragged = ForeignEmbedder("demo", model, lambda texts: [[1.0], [1.0, 2.0]],
                             model.embed_query)
    with pytest.raises(PermanentEmbedderError, match="not one vector each"):
        ragged.embed(["a", "b"])
    short = ForeignEmbedder("demo", model, lambda texts: [[1.0] * 3 for _ in texts],
                            model.embed_query)
    with pytest.raises(PermanentEmbedderError, match="shape"):
        short.embed(["a"])


def test_put_documents_with_a_foreign_embedder_chunks_with_its_tokenizer(
        tmp_path: Path) -> None:
    model = ApiEmbeddings()
    embedder = ForeignEmbedder("demo", model, model.embed_documents, model.embed_query,
                               max_tokens=64)
    long_text = " ".join(f"word{i}" for i in range(120))
    with embedops.open(tmp_path / "store", model="testing/hash-64") as db:
        summary = db.put_documents([{"id": "a", "text": long_text}], "ext", chunk=False,
                                   embedder=embedder)
        assert summary.documents_new == 1
        assert db.get_collection("ext").model == "demo/ApiEmbeddings"
        assert len(db.get("a", collection="ext").chunks()) > 1  # over its 64 tokens: split
