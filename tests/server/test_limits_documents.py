"""Per-document limits over real HTTP: a document over ``server_max_document_bytes`` is a
413 naming the limit (nothing queued); one with more chunks than
``server_max_document_chunks`` fails before it reaches the model, with the limit in
its reason."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from embedops.config import load_settings
from embedops.server import create_app
from tests.server.live import live_server

MAX_BYTES = 2000
MAX_CHUNKS = 5


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    settings = load_settings(model="testing/hash-64", store=tmp_path_factory.mktemp("limits"),
                             chunk_tokens=8, chunk_overlap=2,
                             server_max_document_bytes=MAX_BYTES,
                             server_max_document_chunks=MAX_CHUNKS)
    with live_server(create_app(settings, open_store=True)) as url, \
            httpx.Client(base_url=url, timeout=30) as http:
        yield http


def _too_large(answer: httpx.Response) -> str:
    assert answer.status_code == 413, answer.text
    error = answer.json()["error"]
    assert error["code"] == "payload_too_large"
    assert str(MAX_BYTES) in error["message"] and "server_max_document_bytes" in error["message"]
    return str(error["message"])


def test_document_over_the_byte_limit_is_413_with_the_limit(client: httpx.Client) -> None:
    message = _too_large(client.put("/collections/lim/documents/big",
                                    json={"text": "x" * (MAX_BYTES + 1)}))
    assert "'big'" in message and str(MAX_BYTES + 1) in message
    # bytes, not characters: 1,001 two-byte characters are over a 2,000-byte limit
    _too_large(client.put("/collections/lim/documents/wide", json={"text": "é" * 1001}))
    raw = base64.b64encode(b"y" * (MAX_BYTES + 1)).decode()
    _too_large(client.put("/collections/lim/documents/b64", json={"content_base64": raw}))
    for doc in ("big", "wide", "b64"):  # nothing was queued
        assert client.get(f"/collections/lim/documents/{doc}").status_code == 404


def test_document_at_the_byte_limit_is_accepted(client: httpx.Client) -> None:
    text = ("word " * (MAX_BYTES // 5))[:MAX_BYTES]
    assert len(text.encode()) == MAX_BYTES
    answer = client.put("/collections/lim-at/documents/at", params={"wait": "true"},
                        json={"content_base64": base64.b64encode(text.encode()).decode()})
    assert answer.status_code == 200, answer.text


def test_bulk_write_with_one_document_over_the_limit_queues_none(client: httpx.Client) -> None:
    answer = client.post("/collections/lim/documents", json={"documents": [
        {"id": "fine", "text": "a short note"},
        {"id": "huge", "text": "z" * (MAX_BYTES + 10)}]})
    assert "'huge'" in _too_large(answer)
    assert client.get("/collections/lim/documents/fine").status_code == 404


def test_document_with_too_many_chunks_fails_before_the_model(client: httpx.Client) -> None:
    many = " ".join(f"word{i}" for i in range(60))  # 10 chunks of 8 tokens, overlap 2
    answer = client.put("/collections/chunks/documents/many", params={"wait": "true"},
                        json={"text": many})
    assert answer.status_code == 200
    body = answer.json()
    assert body["status"] == "failed"
    assert "too_many_chunks" in body["reason"] and f"at most {MAX_CHUNKS}" in body["reason"]
    assert "server_max_document_chunks" in body["reason"]
    fits = " ".join(f"word{i}" for i in range(30))  # 5 chunks: at the limit
    done = client.put("/collections/chunks/documents/fits", params={"wait": "true"},
                      json={"text": fits}).json()
    assert done["status"] == "embedded" and done["chunks"] == MAX_CHUNKS
    described = client.get("/collections/chunks").json()
    assert described["points"] == MAX_CHUNKS and described["documents"] == 1
