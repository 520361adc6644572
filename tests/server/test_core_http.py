"""The service over the reshaped core: documents come back with their durable content,
text search embeds in the query role of the collection's model, and a collection takes
only what matches its kind (documents for a model, raw vectors for external ones)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from embedops.config import load_settings
from embedops.embedders import load_embedder
from embedops.server import create_app
from tests.server.live import live_server

E5 = "testing/hash-e5-64"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    store = tmp_path_factory.mktemp("core-http")
    settings = load_settings(model=E5, store=str(store), chunk_tokens=8, chunk_overlap=2)
    with live_server(create_app(settings, open_store=True)) as url, \
            httpx.Client(base_url=url, timeout=30) as http:
        yield http


def test_document_comes_back_with_text_metadata_and_chunks(client: httpx.Client) -> None:
    text = "Refunds are paid back to the original card within five business days."
    put = client.put("/collections/help/documents/refunds?wait=true",
                     json={"text": text, "title": "Refunds", "metadata": {"team": "billing"}})
    assert put.status_code == 200, put.text
    doc = client.get("/collections/help/documents/refunds").json()
    assert doc["status"] == "embedded" and doc["metadata"] == {"team": "billing"}
    assert doc["title"] == "Refunds" and "five business days" in doc["text"]
    assert doc["chunk_count"] == len(doc["chunks"]) > 1
    for chunk in doc["chunks"]:
        assert doc["text"][chunk["start"]:chunk["end"]] == chunk["text"]
        assert chunk["fingerprint"] == load_embedder(E5, Path(".")).info.fingerprint
        assert chunk["last_embedded_at"] == doc["last_embedded_at"]


def test_text_search_uses_the_query_role(client: httpx.Client) -> None:
    client.put("/collections/roles/documents/d?wait=true", json={"text": "cats sleep a lot"})
    hit = client.post("/collections/roles/search",
                      json={"query": "cats sleep", "k": 1}).json()["hits"][0]
    embedder = load_embedder(E5, Path("."))
    stored = embedder.embed(["cats sleep a lot"], "document")[0]
    as_query = float(embedder.embed(["cats sleep"], "query")[0] @ stored)
    as_document = float(embedder.embed(["cats sleep"], "document")[0] @ stored)
    assert abs(as_query - as_document) > 1e-3
    assert hit["score"] == pytest.approx(as_query, abs=1e-4)


def test_each_collection_takes_only_what_matches_its_kind(client: httpx.Client) -> None:
    client.put("/collections/bound/documents/d?wait=true", json={"text": "some words"})
    vector = np.ones(64).tolist()
    raw = client.post("/collections/bound/points",
                      json={"points": [{"id": "x", "vector": vector}]})
    assert raw.status_code == 422 and raw.json()["error"]["code"] == "fingerprint_mismatch"
    fingerprint = client.get("/collections/bound").json()["fingerprint"]
    ok = client.post("/collections/bound/points",
                     json={"points": [{"id": "x", "vector": vector}],
                           "fingerprint": fingerprint})
    assert ok.status_code == 200
    made = client.post("/collections", json={"name": "ext", "dim": 4, "fingerprint": "mine"})
    assert made.status_code == 201 and made.json()["model"] == "external"
    points = client.post("/collections/ext/points",
                         json={"points": [{"id": "p", "vector": [1, 0, 0, 0]}]})
    assert points.status_code == 200, points.text
    doc = client.put("/collections/ext/documents/d", json={"text": "words"})
    assert doc.status_code == 409 and "external" in doc.json()["error"]["message"]
    text = client.post("/collections/ext/search", json={"query": "words"})
    assert text.status_code == 409
