"""The collection endpoints over real HTTP on 127.0.0.1: documents, status, search,
points, collections, aliases, metrics and validation (every bad request is a 4xx)."""

from __future__ import annotations

import base64
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from embedops.config import load_settings
from embedops.embedders.testing import HashEmbedder
from embedops.server import create_app
from tests.server.live import live_server

FP = HashEmbedder().info.fingerprint


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    store = tmp_path_factory.mktemp("service-store")
    settings = load_settings(model="testing/hash-64", store=store, chunk_tokens=8,
                             chunk_overlap=2, server_max_body_bytes=200_000,
                             server_max_bulk_documents=50)
    with live_server(create_app(settings, open_store=True)) as url, \
            httpx.Client(base_url=url, timeout=30) as http:
        yield http


def put(client: httpx.Client, coll: str, doc: str, wait: bool = True,
        **body: Any) -> httpx.Response:
    return client.put(f"/collections/{coll}/documents/{doc}",
                      params={"wait": "true"} if wait else None, json=body)


def test_write_then_search(client: httpx.Client) -> None:
    answer = put(client, "notes", "fox", text="the quick brown fox", metadata={"lang": "en"})
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "embedded" and answer.json()["chunks"] == 1
    put(client, "notes", "vec", text="vectors live in an index", metadata={"lang": "de"})
    hits = client.post("/collections/notes/search",
                       json={"query": "the quick brown fox", "k": 2}).json()["hits"]
    assert hits[0]["id"] == "fox#0" and hits[0]["text"] == "the quick brown fox"
    assert hits[0]["payload"]["lang"] == "en" and hits[0]["doc_id"] == "fox"
    only_de = client.post("/collections/notes/search", json={
        "query": "the quick brown fox", "k": 5,
        "filter": {"field": "lang", "eq": "de"}}).json()["hits"]
    assert [h["doc_id"] for h in only_de] == ["vec"]
    described = client.get("/collections/notes").json()
    assert described["model"] == "testing/hash-64" and described["dim"] == 64
    assert described["points"] == 2 and described["documents"] == 2
    assert described["index_memory_bytes"] > 0


def test_write_is_202_with_status_url_then_embedded(client: httpx.Client) -> None:
    answer = put(client, "notes", "later/one.txt", wait=False, text="arrives a bit later")
    assert answer.status_code == 202
    url = answer.json()["status_url"]
    assert answer.headers["location"] == url == "/collections/notes/documents/later/one.txt"
    deadline = time.monotonic() + 10
    while (status := client.get(url).json())["status"] == "queued":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert status["status"] == "embedded" and status["last_embedded_at"]


def test_shrinking_update_leaves_no_orphans_and_delete_removes(client: httpx.Client) -> None:
    long = " ".join(f"word{i}" for i in range(60))
    assert put(client, "shrink", "d", text=long).json()["chunks"] > 3
    assert put(client, "shrink", "d", text="now short").json()["chunks"] == 1
    assert client.get("/collections/shrink").json()["points"] == 1
    gone = client.delete("/collections/shrink/documents/d", params={"wait": "true"})
    assert gone.status_code == 200 and gone.json()["status"] == "deleted"
    assert client.get("/collections/shrink").json()["points"] == 0
    assert client.get("/collections/shrink/documents/d").status_code == 404


def test_bulk_and_binary_and_failed_documents(client: httpx.Client) -> None:
    html = base64.b64encode(b"<html><body><p>Hello from HTML land</p></body></html>")
    docs = [{"id": f"b{i}", "text": f"bulk document {i}"} for i in range(5)]
    docs += [{"id": "page.html", "content_base64": html.decode()},
             {"id": "blank", "text": "   \n "}]
    answer = client.post("/collections/bulk/documents", params={"wait": "true"},
                         json={"documents": docs})
    assert answer.status_code == 200, answer.text
    states = {d["id"]: d["status"] for d in answer.json()["documents"]}
    assert states == {**{f"b{i}": "embedded" for i in range(5)}, "page.html": "embedded",
                      "blank": "failed"}
    failed = client.get("/collections/bulk/documents/blank").json()
    assert failed["status"] == "failed" and "empty" in failed["reason"]
    hit = client.post("/collections/bulk/search",
                      json={"query": "Hello from HTML land", "k": 1}).json()["hits"][0]
    assert hit["doc_id"] == "page.html" and "Hello from HTML land" in hit["text"]


def test_points_collections_and_aliases(client: httpx.Client) -> None:
    made = client.post("/collections", json={"name": "ext", "dim": 4, "fingerprint": "abc"})
    assert made.status_code == 201 and made.json()["model"] == "external"
    assert client.post("/collections", json={"name": "ext", "dim": 4,
                                              "fingerprint": "abc"}).status_code == 409
    pts = [{"id": f"p{i}", "vector": [1.0, i, 0.0, 0.5], "payload": {"i": i}}
           for i in range(4)]
    assert client.post("/collections/ext/points", json={"points": pts,
                                                        "fingerprint": "abc"}).json() == {
        "collection": "ext", "upserted": 4}
    wrong_fp = client.post("/collections/ext/points", json={"points": pts,
                                                            "fingerprint": "zzz"})
    assert wrong_fp.status_code == 422 and wrong_fp.json()["error"]["code"] == (
        "fingerprint_mismatch")
    short = client.post("/collections/ext/points",
                        json={"points": [{"id": "x", "vector": [1.0, 2.0]}]})
    assert short.status_code == 422 and "dimension" in short.json()["error"]["message"]
    # finite in JSON, past float32's range: refused as such, before any cast to inf
    with warnings.catch_warnings(record=True) as caught:  # (the server runs in-process)
        warnings.simplefilter("always")
        vast = client.post("/collections/ext/points",
                           json={"points": [{"id": "x", "vector": [1e300, 0.0, 0.0, 0.0]}]})
        far = client.post("/collections/ext/search", json={"vector": [-1e39, 0, 0, 0]})
    assert [str(w.message) for w in caught] == []
    assert vast.status_code == 422 and "float32" in vast.json()["error"]["message"]
    assert far.status_code == 422 and "float32" in far.json()["error"]["message"]
    listed = client.post("/collections/ext/search",
                         json={"vector": [1.0, 0.0, 0.0, 0.0], "k": 10, "exact": True}).json()
    assert sorted(hit["id"] for hit in listed["hits"]) == ["p0", "p1", "p2", "p3"]
    assert client.post("/aliases", json={"alias": "live", "collection": "ext"}).status_code == 201
    hits = client.post("/collections/live/search",
                       json={"vector": [1.0, 3.0, 0.0, 0.5], "k": 1, "exact": True}).json()
    assert hits["collection"] == "ext" and hits["hits"][0]["id"] == "p3"
    assert client.get("/aliases").json()["aliases"]["live"] == "ext"
    assert client.delete("/collections/ext").status_code == 409  # still aliased
    assert client.put("/aliases/live", json={"collection": "notes"}).json()["previous"] == "ext"
    assert client.delete("/collections/ext").status_code == 200
    assert "ext" not in [c["name"] for c in client.get("/collections").json()["collections"]]


BAD_REQUESTS: list[tuple[str, str, Any]] = [
    ("PUT", "/collections/notes/documents/x", {}),
    ("PUT", "/collections/notes/documents/x", {"text": "a", "content_base64": "YQ=="}),
    ("PUT", "/collections/notes/documents/x", {"content_base64": "***"}),
    ("PUT", "/collections/notes/documents/x", {"text": 5, "metadata": []}),
    ("PUT", "/collections/notes/documents/bad%01id", {"text": "a"}),
    ("PUT", "/collections/notes/documents/" + "x" * 600, {"text": "a"}),
    ("POST", "/collections/notes/documents", {"documents": []}),
    ("POST", "/collections/notes/documents",
     {"documents": [{"id": str(i), "text": "t"} for i in range(51)]}),
    ("POST", "/collections/notes/search", {"query": "a", "k": 0}),
    ("POST", "/collections/notes/search", {"query": "a", "k": 100000}),
    ("POST", "/collections/notes/search", {"query": "   "}),
    ("POST", "/collections/notes/search", {}),
    ("POST", "/collections/notes/search", {"query": "a", "filter": "x = 1; DROP TABLE points"}),
    ("POST", "/collections/notes/search", {"query": "a", "filter": "lang = 'en' or 1=1"}),
    ("POST", "/collections/notes/search",
     {"query": "a", "filter": {"field": "a') OR 1=1 --", "eq": 1}}),
    ("POST", "/collections/notes/search", {"vector": [0.1] * 3}),
    ("POST", "/collections/nope/search", {"query": "a"}),
    ("GET", "/collections/nope/documents/x", None),
    ("GET", "/collections/notes/documents/never-written", None),
    ("POST", "/collections", {"name": "../etc", "dim": 4, "fingerprint": "f"}),
    ("POST", "/collections", {"name": "half", "dim": 4}),
    ("POST", "/collections/notes/points", {"points": []}),
    ("POST", "/collections/notes/points",
     {"points": [{"id": "a", "vector": [0.1] * 64}, {"id": "a", "vector": [0.1] * 64}]}),
    ("POST", "/collections/nope/points", {"points": [{"id": "a", "vector": [1.0]}]}),
    ("PUT", "/aliases/missing", {"collection": "notes"}),
    ("DELETE", "/collections/nope/documents/x", None),
]


@pytest.mark.parametrize(("method", "path", "body"), BAD_REQUESTS)
def test_bad_requests_are_4xx_with_a_message(client: httpx.Client, method: str, path: str,
                                             body: Any) -> None:
    put(client, "notes", "seed", text="seed text so the collection exists")
    answer = client.request(method, path, json=body)
    assert 400 <= answer.status_code < 500, (answer.status_code, answer.text)
    assert answer.json()  # a JSON body that says what is wrong


def test_nan_vectors_and_oversized_bodies_are_refused(client: httpx.Client) -> None:
    nan = client.post("/collections/notes/search", content=b'{"vector": [NaN, 1.0]}',
                      headers={"content-type": "application/json"})
    assert 400 <= nan.status_code < 500
    huge = put(client, "notes", "huge", wait=False, text="word " * 60_000)
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "payload_too_large"


def test_metrics_expose_queue_lag_memory_and_latency(client: httpx.Client) -> None:
    put(client, "notes", "m", text="metrics please")
    text = client.get("/metrics").text
    for name in ("embedops_queue_depth", "embedops_indexing_lag_seconds",
                 'embedops_index_memory_bytes{collection="notes"}',
                 "embedops_http_request_seconds_bucket",
                 "embedops_realtime_enqueue_to_searchable_seconds_count",
                 'embedops_realtime_documents_total{outcome="embedded"}'):
        assert name in text, name


def test_alias_repoint_during_continuous_search_has_no_errors(client: httpx.Client) -> None:
    for name in ("blue", "green"):
        put(client, name, "d", text=f"the {name} deployment")
    client.post("/aliases", json={"alias": "prod", "collection": "blue"})
    failures: list[str] = []
    seen: set[str] = set()
    stop = threading.Event()

    def search() -> None:
        with httpx.Client(base_url=str(client.base_url), timeout=10) as http:
            while not stop.is_set():
                answer = http.post("/collections/prod/search", json={"query": "deployment"})
                if answer.status_code != 200:
                    failures.append(answer.text)
                else:
                    seen.add(answer.json()["collection"])

    threads = [threading.Thread(target=search) for _ in range(3)]
    for thread in threads:
        thread.start()
    for i in range(40):
        client.put("/aliases/prod", json={"collection": "green" if i % 2 == 0 else "blue"})
        time.sleep(0.02)
    stop.set()
    for thread in threads:
        thread.join(10)
    assert failures == []
    assert seen == {"blue", "green"}


def test_document_ids_are_ids_not_server_paths(client: httpx.Client, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("server-side secret")
    answer = put(client, "notes", str(secret).lstrip("/"), text="only what the client sent")
    assert answer.status_code == 200
    hit = client.post("/collections/notes/search",
                      json={"query": "only what the client sent", "k": 1}).json()["hits"][0]
    assert hit["text"] == "only what the client sent"
