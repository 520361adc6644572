"""The LangChain vector store beyond the standard suites: writes go through the pipeline
(ledger, idempotency, dead letters), embedding objects never mix, metadata and filters
round-trip, chunking, MMR, relevance scores, aliases and the retriever."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("langchain_core")

from langchain_core.documents import Document
from langchain_core.embeddings import DeterministicFakeEmbedding

import embedops
from embedops.client import Client
from embedops.errors import (
    FingerprintMismatch,
    InputRejected,
    InvalidFilter,
    ModelConflict,
)
from embedops.integrations.langchain import (
    EmbedopsEmbeddings,
    EmbedopsVectorStore,
    langchain_embedder,
    to_filter,
)

TEST_MODEL = "testing/hash-64"


class CountingEmbedding(DeterministicFakeEmbedding):
    """A real LangChain Embeddings whose document calls are counted."""

    embedded: int = 0

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.embedded += len(texts)
        return super().embed_documents(texts)


@pytest.fixture
def client(tmp_path: Path) -> Iterator[Client]:
    with embedops.open(tmp_path / "store", model=TEST_MODEL) as db:
        yield db


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


PETS = [
    Document(id="cat", page_content="Cats sleep most of the day in warm places.",
             metadata={"kind": "pet", "legs": 4}),
    Document(id="dog", page_content="Dogs enjoy long walks in the park every morning.",
             metadata={"kind": "pet", "legs": 4}),
    Document(id="snake", page_content="Snakes shed their skin a few times a year.",
             metadata={"kind": "reptile", "legs": 0}),
]


def test_external_embedding_lands_in_its_own_fingerprinted_collection(client: Client) -> None:
    embedding = CountingEmbedding(size=8)
    store = EmbedopsVectorStore(client, "pets", embedding)
    assert store.add_documents(PETS) == ["cat", "dog", "snake"]
    info = client.get_collection("pets")
    assert (info.model, info.dim) == ("langchain/CountingEmbedding", 8)
    def fingerprint(embedding: DeterministicFakeEmbedding) -> str:
        return langchain_embedder(embedding).info.fingerprint

    assert info.fingerprint == fingerprint(CountingEmbedding(size=8))
    assert info.fingerprint != fingerprint(DeterministicFakeEmbedding(size=8))
    assert info.fingerprint != fingerprint(CountingEmbedding(size=16))

    other = EmbedopsVectorStore(client, "pets", DeterministicFakeEmbedding(size=8))
    with pytest.raises(ModelConflict):
        other.add_texts(["Parrots talk."])
    with pytest.raises(FingerprintMismatch):
        other.similarity_search("cats")
    with pytest.raises(ModelConflict, match="same embeddings object"):
        EmbedopsVectorStore(client, "pets").similarity_search("cats")


def test_writes_go_through_the_pipeline_and_are_idempotent(client: Client) -> None:
    embedding = CountingEmbedding(size=8)
    store = EmbedopsVectorStore(client, "pets", embedding)
    store.add_documents(PETS)
    embedded = embedding.embedded
    assert store.add_documents(PETS) == ["cat", "dog", "snake"]
    assert embedding.embedded == embedded  # same ids, same content: nothing embedded
    stored = client.get("cat", collection="pets")
    assert stored.text == PETS[0].page_content and stored.chunks()[0]["fingerprint"]

    changed = Document(id="cat", page_content="Cats purr when they are content.",
                       metadata={"kind": "pet", "legs": 4})
    store.add_documents([changed])
    assert embedding.embedded == embedded + 1
    assert store.get_by_ids(["cat"])[0].page_content == changed.page_content

    store.add_documents([Document(id="cat", page_content=changed.page_content,
                                  metadata={"kind": "pet", "legs": 3})])
    assert embedding.embedded == embedded + 1  # a metadata change re-embeds nothing
    assert store.get_by_ids(["cat"])[0].metadata == {"kind": "pet", "legs": 3}
    assert client.count("pets") == 3


def test_bad_documents_become_dead_letters(client: Client,
                                           caplog: pytest.LogCaptureFixture) -> None:
    store = EmbedopsVectorStore(client, "pets")
    with caplog.at_level(logging.WARNING, logger="embedops.integrations"):
        ids = store.add_texts(["Cats sleep a lot.", "   "], ids=["ok", "blank"])
    assert ids == ["ok"]
    assert client.ledger is not None
    assert [d.doc_id for d in client.ledger.dead_letters("pets")] == ["blank"]
    assert "blank" in caplog.text
    with pytest.raises(InputRejected, match="JSON"):  # refused before anything is written
        store.add_texts(["Dogs bark."], [{"when": object()}], ids=["dated"])
    assert store.get_by_ids(["dated"]) == []


def test_metadata_round_trips_reserved_keys_included(client: Client) -> None:
    store = EmbedopsVectorStore(client, "notes")
    metadata = {"source": "wiki", "title": "Cats", "doc_id": 7, "metadata": {"a": 1},
                "text": "shadow", "tags": ["x", "y"], "nested": {"deep": True}}
    store.add_texts(["Cats sleep most of the day."], [metadata], ids=["n1"])
    [hit] = store.similarity_search("cats sleep", k=1)
    assert (hit.id, hit.metadata, hit.page_content) == ("n1", metadata,
                                                         "Cats sleep most of the day.")
    assert store.get_by_ids(["n1"])[0].metadata == metadata
    # reserved keys are filtered on as given
    assert store.similarity_search("cats", k=3, filter={"source": "wiki"})[0].id == "n1"
    assert store.similarity_search("cats", k=3, filter={"source": "other"}) == []


def test_filters_map_to_embedops_filters(client: Client) -> None:
    store = EmbedopsVectorStore(client, "pets")
    store.add_documents(PETS)

    def ids(spec: object) -> set[str]:
        return {d.id for d in store.similarity_search("animals", k=10, filter=spec)}

    assert ids({"kind": "pet"}) == {"cat", "dog"}
    assert ids({"legs": {"$gte": 1}, "kind": {"$in": ["pet", "bird"]}}) == {"cat", "dog"}
    assert ids({"kind": {"$nin": ["pet"]}}) == {"snake"}
    assert ids({"$or": [{"legs": 0}, {"kind": {"$eq": "none"}}]}) == {"snake"}
    assert ids({"$not": {"kind": "pet"}}) == {"snake"}
    assert ids({"wings": {"$exists": False}}) == {"cat", "dog", "snake"}
    assert ids('kind = "reptile"') == {"snake"}  # embedops' own string form
    with pytest.raises(InvalidFilter, match="unsupported operator"):
        to_filter({"kind": {"$like": "p%"}})
    with pytest.raises(InvalidFilter):
        to_filter({"kind": ["pet"]})


def test_chunking_on_request_keeps_document_ids(tmp_path: Path) -> None:
    long_text = " ".join(f"Sentence number {i} talks about cats." for i in range(60))
    with embedops.open(tmp_path / "store", model=TEST_MODEL, chunk_tokens=32,
                       chunk_overlap=0) as client:
        whole = EmbedopsVectorStore(client, "whole")
        whole.add_texts([long_text], ids=["long"])
        chunked = EmbedopsVectorStore(client, "chunked", chunk=True)
        chunked.add_texts([long_text], ids=["long"])
        assert client.count("whole") < client.count("chunked")
        hits = chunked.similarity_search("cats", k=3)
        assert len(hits) == 3 and {d.id for d in hits} == {"long"}
        assert chunked.get_by_ids(["long"])[0].page_content == long_text
        chunked.delete(["long"])
        assert client.count("chunked") == 0


def test_scores_mmr_vectors_and_retriever(client: Client) -> None:
    embedding = DeterministicFakeEmbedding(size=16)
    docs = [Document(id="a", page_content="cats purr"),
            Document(id="b", page_content="cats purr"),  # the same vector as "a"
            Document(id="c", page_content="dogs bark")]
    store = EmbedopsVectorStore.from_documents(docs, embedding, client=client,
                                               collection="mmr")
    scored = store.similarity_search_with_score("cats purr", k=3)
    assert scored[0][1] == pytest.approx(1.0, abs=1e-5)
    relevance = store.similarity_search_with_relevance_scores("cats purr", k=3)
    assert all(0.0 <= score <= 1.0 for _, score in relevance)
    assert relevance[0][1] == pytest.approx(1.0, abs=1e-5)

    diverse = store.max_marginal_relevance_search("cats purr", k=2, fetch_k=3,
                                                  lambda_mult=0.1)
    assert {d.id for d in diverse} in ({"a", "c"}, {"b", "c"})
    vector = embedding.embed_query("dogs bark")
    assert store.similarity_search_by_vector(vector, k=1)[0].id == "c"

    retriever = store.as_retriever(search_kwargs={"k": 1,
                                                  "filter": {"kind": {"$exists": False}}})
    assert retriever.invoke("dogs bark")[0].id == "c"
    assert store.delete() is True  # no ids: everything
    assert client.count("mmr") == 0 and store.similarity_search("cats") == []


def test_alias_and_the_collections_own_model(client: Client) -> None:
    store = EmbedopsVectorStore(client, "pets-v1")
    store.add_documents(PETS)
    client.create_alias("pets", "pets-v1")
    by_alias = EmbedopsVectorStore(client, "pets")
    assert by_alias.similarity_search("dogs walk in the park", k=1)[0].id == "dog"
    info = client.get_collection("pets")
    assert info.model == TEST_MODEL  # the client's model embedded: a native collection
    query = by_alias.embeddings.embed_query("dogs walk in the park")
    assert np.allclose(query, client.embedder("pets").embed(["dogs walk in the park"],
                                                              "query")[0], atol=1e-6)

    # EmbedopsEmbeddings stands for its embedops model: the same fingerprint
    named = EmbedopsVectorStore(client, "named", EmbedopsEmbeddings(TEST_MODEL, client=client))
    named.add_documents(PETS[:1])
    assert client.get_collection("named").fingerprint == info.fingerprint


@pytest.mark.anyio
async def test_async_writes_and_searches(client: Client) -> None:
    store = EmbedopsVectorStore(client, "pets")
    assert await store.aadd_documents(PETS) == ["cat", "dog", "snake"]
    hits = await store.asimilarity_search("snakes shed skin", k=1, filter={"legs": 0})
    assert [d.id for d in hits] == ["snake"]
    assert (await store.aget_by_ids(["dog"]))[0].metadata == {"kind": "pet", "legs": 4}
    await store.adelete(["dog"])
    assert await store.aget_by_ids(["dog"]) == []
    retrieved = await store.as_retriever(search_kwargs={"k": 2}).ainvoke("cats")
    assert len(retrieved) == 2


@pytest.mark.slow
def test_real_model_retrieval(tmp_path: Path) -> None:
    with embedops.open(tmp_path / "store", model="all-MiniLM-L6-v2") as client:
        store = EmbedopsVectorStore(client, "help")
        store.add_texts(["Refunds are paid back to the original card within five days.",
                         "Parcels to Canada take five to seven business days."],
                        [{"topic": "refunds"}, {"topic": "shipping"}], ids=["r", "s"])
        retriever = store.as_retriever(search_kwargs={"k": 1})
        assert retriever.invoke("how long until I get my money back")[0].id == "r"
        assert retriever.invoke("delivery time to Toronto")[0].id == "s"


def test_embeddings_use_the_document_and_query_roles(client: Client) -> None:
    embeddings = EmbedopsEmbeddings("testing/hash-e5-64", client=client)
    model = embeddings.embedder
    assert model.info.prefixes  # an E5-like model: each role has its prefix
    [document] = embeddings.embed_documents(["cats sleep"])
    query = embeddings.embed_query("cats sleep")
    assert np.allclose(document, model.embed(["cats sleep"], "document")[0], atol=1e-6)
    assert np.allclose(query, model.embed(["cats sleep"], "query")[0], atol=1e-6)
    assert not np.allclose(document, query)
    assert embeddings.embed_documents([]) == []
