"""Requests that used to be answered 500 are 4xx with the embedops error body: invalid
index parameters, invalid alias and collection names (in every path that takes one),
and filters too wide or too deep for SQLite. Real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from embedops.config import load_settings
from embedops.server import create_app
from embedops.store.catalog import DEFAULT_SEGMENT_SIZE
from tests.server.live import live_server


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    store = tmp_path_factory.mktemp("errors-store")
    settings = load_settings(model="testing/hash-64", store=store, server_wait_timeout_s=10,
                             server_max_k=3000)
    with live_server(create_app(settings, open_store=True)) as url, \
            httpx.Client(base_url=url, timeout=30) as http:
        points = [{"id": f"p{i}", "vector": [1.0, float(i), 0.5, 0.25], "payload": {"a": i}}
                  for i in range(3000)]
        assert http.post("/collections", json={"name": "pts", "dim": 4,
                                               "fingerprint": "fp"}).status_code == 201
        assert http.post("/collections/pts/points", json={"points": points}).status_code == 200
        yield http


def assert_error(answer: httpx.Response, status: int, code: str | None = None) -> None:
    assert answer.status_code == status, (answer.status_code, answer.text)
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "code"} and error["message"]
    if code is not None:
        assert error["code"] == code, error


INVALID_PARAMS: list[dict[str, Any]] = [
    {"bogus": 1}, {"connectivity": -5}, {"connectivity": 1}, {"connectivity": 10**6},
    {"oversample": 0}, {"checkpoint_every": 0}, {"expansion_search": "wide"},
    {"segment_size": 99}, {"segment_size": -1},
]


def test_index_params_are_checked(client: httpx.Client) -> None:
    for params in INVALID_PARAMS:
        answer = client.post("/collections", json={"name": "ip", "dim": 4, "fingerprint": "f",
                                                   "index_params": params})
        assert_error(answer, 422, "invalid_request")
        assert "index_params" in answer.json()["error"]["message"]
    bad_field = client.post("/collections", json={"name": "ip", "dim": 4, "fingerprint": "f",
                                                  "payload_indexes": ["a b"]})
    assert_error(bad_field, 422, "invalid_request")
    assert client.get("/collections/ip").status_code == 404  # nothing was created
    params = {"connectivity": 8, "expansion_search": 32, "exact_threshold": 0}
    answer = client.post("/collections", json={"name": "ip", "dim": 4, "fingerprint": "f",
                                               "index_params": params})
    assert answer.status_code == 201, answer.text
    assert answer.json()["index_params"] == {**params, "segment_size": DEFAULT_SEGMENT_SIZE}


BAD_NAMES = ["bad%20name", "...", "%C3%A9t%C3%A9", "-lead", "a" * 129, "x%0A"]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_invalid_alias_names_are_422(client: httpx.Client, name: str) -> None:
    assert_error(client.put(f"/aliases/{name}", json={"collection": "pts"}), 422,
                 "invalid_name")
    assert_error(client.delete(f"/aliases/{name}"), 422, "invalid_name")


@pytest.mark.parametrize("name", BAD_NAMES)
@pytest.mark.parametrize(("method", "suffix", "body"), [
    ("PUT", "/documents/d", {"text": "hello"}),
    ("POST", "/documents", {"documents": [{"id": "d", "text": "hello"}]}),
    ("GET", "/documents/d", None),
    ("DELETE", "/documents/d", None),
    ("POST", "/search", {"query": "hello"}),
    ("POST", "/points", {"points": [{"id": "p", "vector": [1.0, 2.0, 3.0, 4.0]}]}),
    ("GET", "", None),
    ("DELETE", "", None),
])
def test_invalid_collection_names_in_paths_are_422(client: httpx.Client, name: str,
                                                   method: str, suffix: str,
                                                   body: Any) -> None:
    answer = client.request(method, f"/collections/{name}{suffix}", json=body)
    assert_error(answer, 422, "invalid_name")
    assert "collection name" in answer.json()["error"]["message"]


def search(client: httpx.Client, flt: Any, k: int = 5) -> httpx.Response:
    return client.post("/collections/pts/search",
                       json={"vector": [1.0, 7.0, 0.5, 0.25], "k": k, "filter": flt})


def hit_ids(answer: httpx.Response) -> set[str]:
    assert answer.status_code == 200, answer.text
    return {h["id"] for h in answer.json()["hits"]}


def test_wide_filters_are_answered(client: httpx.Client) -> None:
    wide_or = {"or": [{"field": "a", "eq": i} for i in range(999)] + [{"field": "a", "eq": -1}]}
    assert hit_ids(search(client, wide_or, k=3000)) == {f"p{i}" for i in range(999)}
    in_list = {"field": "a", "in": list(range(2000, 3000))}
    assert hit_ids(search(client, in_list, k=3000)) == {f"p{i}" for i in range(2000, 3000)}
    text = " or ".join(f"a = {i}" for i in range(1500))
    assert len(hit_ids(search(client, text, k=3000))) == 1500
    wide_and = {"and": [{"field": "a", "ne": i} for i in range(2999)]}
    assert hit_ids(search(client, wide_and, k=10)) == {"p2999"}


def test_filter_depth_counts_filter_levels(client: httpx.Client) -> None:
    nested: dict[str, Any] = {"field": "a", "eq": 7}
    for i in range(60):  # 61 filter levels (60 ands and the leaf), alternating and/or
        nested = {"and" if i % 2 else "or": [nested, {"field": "a", "gte": 0}]
                  if i % 3 else [nested]}
    assert hit_ids(search(client, nested, k=3000))
    for _ in range(4):
        nested = {"not": {"not": nested}}
    assert_error(search(client, nested), 400, "invalid_filter")
    assert "deeper than 64" in search(client, nested).json()["error"]["message"]


def test_filters_beyond_the_limits_are_400(client: httpx.Client) -> None:
    too_many = {"or": [{"field": "a", "in": list(range(1000))} for _ in range(11)]}
    assert_error(search(client, too_many), 400, "invalid_filter")
    assert_error(search(client, " or ".join(["a = 1"] * 30_000)), 400, "invalid_filter")

    def tree(depth: int) -> dict[str, Any]:  # every level branches: as hard as it gets
        if depth == 0:
            return {"field": "a", "eq": 1}
        return {"and" if depth % 2 else "or": [tree(depth - 1), tree(depth - 1)]}

    hard: dict[str, Any] = tree(12)  # 13 levels, 4096 leaves
    for _ in range(25):  # 50 more levels: 63 in all
        hard = {"not": {"and": [hard, {"field": "a", "exists": True}]}}
    answer = search(client, hard)
    assert answer.status_code in (200, 400), answer.text
    if answer.status_code == 400:
        assert answer.json()["error"]["code"] == "invalid_filter"
