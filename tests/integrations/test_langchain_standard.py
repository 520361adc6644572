"""LangChain's own standard suites, run against the embedops adapters: the vector store
on a fresh store per test, the embeddings on the TEST-ONLY hashing model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("langchain_tests")

from langchain_core.vectorstores import VectorStore
from langchain_tests.integration_tests import (
    EmbeddingsIntegrationTests,
    VectorStoreIntegrationTests,
)
from langchain_tests.unit_tests import EmbeddingsUnitTests

import embedops
from embedops.integrations.langchain import EmbedopsEmbeddings, EmbedopsVectorStore

# the suites' async tests run on anyio's asyncio backend
pytestmark = pytest.mark.anyio
TEST_MODEL = "testing/hash-64"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class TestVectorStoreStandard(VectorStoreIntegrationTests):
    @pytest.fixture
    def vectorstore(self, tmp_path: Path) -> Iterator[VectorStore]:  # type: ignore[override]
        with embedops.open(tmp_path / "store", model=TEST_MODEL) as client:
            yield EmbedopsVectorStore(client, "standard", self.get_embeddings())


class TestVectorStoreStandardOwnModel(VectorStoreIntegrationTests):
    """The same suite with the collection's own embedops model doing the embedding."""

    @pytest.fixture
    def vectorstore(self, tmp_path: Path) -> Iterator[VectorStore]:  # type: ignore[override]
        with embedops.open(tmp_path / "store", model=TEST_MODEL) as client:
            yield EmbedopsVectorStore(client, "standard")


class TestEmbeddingsUnitStandard(EmbeddingsUnitTests):
    @property
    def embeddings_class(self) -> type[EmbedopsEmbeddings]:
        return EmbedopsEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": TEST_MODEL}

    @property
    def init_from_env_params(self) -> tuple[dict[str, str], dict[str, Any], dict[str, Any]]:
        return {"EMBEDOPS_MODEL": "testing/hash-32"}, {}, {"model": "testing/hash-32"}


class TestEmbeddingsIntegrationStandard(EmbeddingsIntegrationTests):
    @property
    def embeddings_class(self) -> type[EmbedopsEmbeddings]:
        return EmbedopsEmbeddings

    @property
    def embedding_model_params(self) -> dict[str, Any]:
        return {"model": TEST_MODEL}
