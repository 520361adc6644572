"""The LlamaIndex vector store: a VectorStoreIndex over a few documents, retrieved through
``as_retriever()`` and a query engine without an LLM; metadata filters with operators and
conditions; deletion by source document; writes through the pipeline."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("llama_index.core")

from llama_index.core import Document, StorageContext, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.node_parser import SentenceSplitter
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.core.response_synthesizers.no_text import NoText
from llama_index.core.schema import TextNode
from llama_index.core.vector_stores import (
    FilterCondition,
    FilterOperator,
    MetadataFilter,
    MetadataFilters,
    VectorStoreQuery,
)

import embedops
from embedops.client import Client
from embedops.errors import FingerprintMismatch, InvalidFilter, ModelConflict
from embedops.integrations.llama_index import (
    EmbedopsEmbedding,
    EmbedopsVectorStore,
)

TEST_MODEL = "testing/hash-64"
DOCS = [
    Document(doc_id="cats", text="Cats sleep most of the day in warm places.",
             metadata={"kind": "pet", "legs": 4, "source": "zoo"}),
    Document(doc_id="dogs", text="Dogs enjoy long walks in the park every morning.",
             metadata={"kind": "pet", "legs": 4}),
    Document(doc_id="snakes", text="Snakes shed their skin a few times a year.",
             metadata={"kind": "reptile", "legs": 0, "note": ""}),
]


class WordHashEmbedding(BaseEmbedding):
    """A real LlamaIndex embedding: words hashed into 32 buckets."""

    def _vector(self, text: str) -> list[float]:
        out = [0.0] * 32
        for word in text.lower().split():
            out[hashlib.sha256(word.strip(".,").encode()).digest()[0] % 32] += 1.0
        return out

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._vector(text)

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._vector(query)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    with embedops.open(tmp_path / "store", model=TEST_MODEL) as db:
        yield db


def _index(client: Client, collection: str = "pets", **store_options: object
           ) -> tuple[VectorStoreIndex, EmbedopsVectorStore]:
    store = EmbedopsVectorStore(client, collection, **store_options)  # type: ignore[arg-type]
    index = VectorStoreIndex.from_documents(
        DOCS, storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=EmbedopsEmbedding(client=client, collection=collection))
    return index, store


def test_index_retriever_and_query_engine_without_llm(client: Client) -> None:
    index, store = _index(client)
    assert client.get_collection("pets").model == TEST_MODEL
    [hit] = index.as_retriever(similarity_top_k=1).retrieve("dogs walk in the park")
    assert hit.node.ref_doc_id == "dogs" and hit.node.metadata == DOCS[1].metadata
    assert hit.node.get_content() == DOCS[1].text and 0 < (hit.score or 0) <= 1.0
    engine = RetrieverQueryEngine(index.as_retriever(similarity_top_k=2),
                                  response_synthesizer=NoText(llm=MockLLM()))
    sources = engine.query("snakes shed their skin").source_nodes
    assert sources[0].node.ref_doc_id == "snakes" and len(sources) == 2
    assert store.stores_text and not store.is_embedding_query


def test_metadata_filters_operators_and_conditions(client: Client) -> None:
    index, _ = _index(client)

    def refs(*filters: MetadataFilter | MetadataFilters,
             condition: FilterCondition = FilterCondition.AND) -> set[str]:
        spec = MetadataFilters(filters=list(filters), condition=condition)
        found = index.as_retriever(similarity_top_k=10, filters=spec).retrieve("animals")
        return {n.node.ref_doc_id for n in found}

    def leaf(key: str, value: object, op: FilterOperator = FilterOperator.EQ
             ) -> MetadataFilter:
        return MetadataFilter(key=key, value=value, operator=op)  # type: ignore[arg-type]

    assert refs(leaf("kind", "pet")) == {"cats", "dogs"}
    assert refs(leaf("legs", 0, FilterOperator.GT)) == {"cats", "dogs"}
    assert refs(leaf("legs", 4, FilterOperator.LT)) == {"snakes"}
    assert refs(leaf("legs", 4, FilterOperator.GTE), leaf("kind", "pet", FilterOperator.NE),
                condition=FilterCondition.OR) == {"cats", "dogs", "snakes"}
    assert refs(leaf("legs", 0, FilterOperator.LTE)) == {"snakes"}
    assert refs(leaf("kind", ["reptile", "bird"], FilterOperator.IN)) == {"snakes"}
    assert refs(leaf("kind", ["reptile"], FilterOperator.NIN)) == {"cats", "dogs"}
    assert refs(leaf("note", None, FilterOperator.IS_EMPTY)) == {"cats", "dogs", "snakes"}
    assert refs(leaf("source", "zoo")) == {"cats"}  # a key embedops reserves, as given
    assert refs(leaf("kind", "pet"), condition=FilterCondition.NOT) == {"snakes"}
    nested = MetadataFilters(filters=[leaf("legs", 4), leaf("source", "zoo")],
                             condition=FilterCondition.AND)
    assert refs(nested, leaf("legs", 0), condition=FilterCondition.OR) == {"cats", "snakes"}
    with pytest.raises(InvalidFilter, match="text_match"):
        refs(leaf("kind", "pe", FilterOperator.TEXT_MATCH))


def test_delete_by_ref_doc_id_and_node_level_calls(client: Client) -> None:
    index, store = _index(client)
    before = client.count("pets")
    index.delete_ref_doc("cats")
    assert client.count("pets") == before - 1
    assert {n.ref_doc_id for n in store.get_nodes()} == {"dogs", "snakes"}
    pets = MetadataFilters(filters=[MetadataFilter(key="kind", value="pet")])
    [dog] = store.get_nodes(filters=pets)
    assert dog.ref_doc_id == "dogs" and store.get_nodes(node_ids=[dog.node_id]) == [dog]
    store.delete_nodes(filters=pets)
    assert {n.ref_doc_id for n in store.get_nodes()} == {"snakes"}
    store.clear()
    assert client.count("pets") == 0 and client.ledger is not None
    assert client.ledger.documents("pets") == {}
    result = store.query(VectorStoreQuery(query_str="cats", similarity_top_k=3))
    assert result.nodes == [] and result.ids == []


def test_nodes_go_through_the_pipeline(client: Client) -> None:
    store = EmbedopsVectorStore(client, "nodes")
    nodes = [TextNode(id_="n1", text="Cats sleep in the sun.", metadata={"k": 1}),
             TextNode(id_="n2", text="   ", metadata={"k": 2})]
    assert store.add(nodes) == ["n1", "n2"]  # every id, in order, as the index expects
    assert client.ledger is not None
    assert [d.doc_id for d in client.ledger.dead_letters("nodes")] == ["n2"]
    first = client.ledger.documents("nodes")["n1"].last_embedded_at
    store.add([TextNode(id_="n1", text="Cats sleep in the sun.", metadata={"k": 5})])
    again = client.ledger.documents("nodes")["n1"]
    assert again.last_embedded_at == first  # same id and text: nothing embedded
    [node] = store.get_nodes(node_ids=["n1"])
    assert node.metadata == {"k": 5}  # metadata updated in place


def test_stable_node_ids_make_reruns_embed_nothing(client: Client) -> None:
    splitter = SentenceSplitter(id_func=lambda i, doc: f"{doc.doc_id}-{i}")
    runs = []
    for _ in range(2):
        VectorStoreIndex.from_documents(
            DOCS, storage_context=StorageContext.from_defaults(
                vector_store=EmbedopsVectorStore(client, "stable")),
            embed_model=EmbedopsEmbedding(client=client), transformations=[splitter])
        assert client.ledger is not None
        runs.append({k: r.last_embedded_at for k, r in client.ledger.documents("stable").items()})
    assert runs[0] == runs[1] and sorted(runs[0]) == ["cats-0", "dogs-0", "snakes-0"]


def test_own_embed_model_and_mismatches(client: Client) -> None:
    store = EmbedopsVectorStore(client, "hashed", WordHashEmbedding())
    index = VectorStoreIndex.from_documents(
        DOCS, storage_context=StorageContext.from_defaults(vector_store=store),
        embed_model=WordHashEmbedding())
    info = client.get_collection("hashed")
    assert (info.model, info.dim) == ("llama-index/WordHashEmbedding", 32)
    [hit] = index.as_retriever(similarity_top_k=1).retrieve("snakes shed skin")
    assert hit.node.ref_doc_id == "snakes"
    with pytest.raises(FingerprintMismatch):
        EmbedopsVectorStore(client, "hashed", WordHashEmbedding(embed_batch_size=3,
                                                                model_name="other")).query(
            VectorStoreQuery(query_str="cats", similarity_top_k=1))
    with pytest.raises(ModelConflict):
        EmbedopsVectorStore(client, "hashed").query(
            VectorStoreQuery(query_str="cats", similarity_top_k=1))


def test_whole_documents_chunked_by_embedops(tmp_path: Path) -> None:
    with embedops.open(tmp_path / "store", model=TEST_MODEL, chunk_tokens=8,
                       chunk_overlap=0) as client:
        store = EmbedopsVectorStore(client, "whole", chunk=True)
        index = VectorStoreIndex(DOCS, storage_context=StorageContext.from_defaults(
            vector_store=store), embed_model=EmbedopsEmbedding(client=client))
        assert sorted(client.ledger.documents("whole")) == ["cats", "dogs", "snakes"]
        assert client.count("whole") > 3
        hits = index.as_retriever(similarity_top_k=2).retrieve("cats sleep")
        assert hits[0].node.node_id.startswith("cats#") and hits[0].node.ref_doc_id == "cats"
        assert hits[0].node.metadata == DOCS[0].metadata
        index.delete_ref_doc("cats")
        assert sorted(client.ledger.documents("whole")) == ["dogs", "snakes"]


def test_collection_ingested_by_embedops_is_queryable(client: Client, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "refunds.txt").write_text("Refunds are paid back to the original card.")
    (docs / "shipping.txt").write_text("Parcels to Canada take a week.")
    client.ingest([docs], collection="files")
    index = VectorStoreIndex.from_vector_store(EmbedopsVectorStore(client, "files"),
                                               embed_model=EmbedopsEmbedding(client=client))
    [hit] = index.as_retriever(similarity_top_k=1).retrieve("parcels to canada")
    assert (hit.node.node_id, hit.node.ref_doc_id) == ("shipping.txt#0", "shipping.txt")
    index.delete_ref_doc("shipping.txt")
    assert client.count("files") == 1


def test_embedding_uses_the_query_and_document_roles(client: Client) -> None:
    embedding = EmbedopsEmbedding("testing/hash-e5-64", client=client)
    model = embedding.embedder
    query, text = embedding.get_query_embedding("cats"), embedding.get_text_embedding("cats")
    assert np.allclose(query, model.embed(["cats"], "query")[0], atol=1e-6)
    assert np.allclose(text, model.embed(["cats"], "document")[0], atol=1e-6)
    assert not np.allclose(query, text)


@pytest.mark.anyio
async def test_async_retrieval(client: Client) -> None:
    index, _ = _index(client)
    found = await index.as_retriever(similarity_top_k=1).aretrieve("snakes shed their skin")
    assert found[0].node.ref_doc_id == "snakes"
    embedding = EmbedopsEmbedding(TEST_MODEL)
    assert len(await embedding.aget_query_embedding("cats")) == 64
    assert len(embedding.get_text_embedding_batch(["a cat", "a dog"])) == 2


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"
