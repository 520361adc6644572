"""``POST /v1/embeddings`` over real HTTP: the OpenAI format, errors, dynamic batching,
metrics, and the OpenAI-compatible embedder pointed at the server."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from embedops.config import load_settings
from embedops.embedders import load_embedder
from embedops.embedders.testing import E5_PREFIXES, HashEmbedder
from embedops.metrics import Metrics
from embedops.server import create_app
from tests.server.live import live_server

MODEL = "testing/hash-64"


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[str, Metrics]]:
    metrics = Metrics()
    settings = load_settings(model=MODEL, server_max_wait_ms=40, server_max_batch_size=64)
    with live_server(create_app(settings, metrics=metrics)) as url:
        yield url, metrics


def post(url: str, **body: Any) -> httpx.Response:
    return httpx.post(f"{url}/v1/embeddings", json={"model": MODEL, **body}, timeout=30)


def test_float_response_matches_the_local_model(served: tuple[str, Metrics]) -> None:
    url, _ = served
    texts = ["a first text", "another, longer text with more words", "x"]
    answer = post(url, input=texts).json()
    assert answer["object"] == "list" and answer["model"] == MODEL
    assert [d["index"] for d in answer["data"]] == [0, 1, 2]
    got = np.array([d["embedding"] for d in answer["data"]], dtype=np.float32)
    assert np.allclose(got, HashEmbedder().embed(texts), atol=1e-6)
    tokens = sum(HashEmbedder().tokenizer.count(texts))
    assert answer["usage"] == {"prompt_tokens": tokens, "total_tokens": tokens}


def test_string_input_and_base64_encoding(served: tuple[str, Metrics]) -> None:
    url, _ = served
    answer = post(url, input="one text", encoding_format="base64").json()
    raw = np.frombuffer(base64.b64decode(answer["data"][0]["embedding"]), dtype="<f4")
    assert np.allclose(raw, HashEmbedder().embed(["one text"])[0], atol=1e-7)


@pytest.mark.parametrize(("body", "status", "code"), [
    ({"model": "other-model", "input": "x"}, 404, "model_not_found"),
    ({"input": []}, 400, "input_rejected"),
    ({"input": ["ok", "  "]}, 400, "input_rejected"),
    ({"input": "x", "dimensions": 65}, 400, "input_rejected"),
    ({"input": "x", "dimensions": 16}, 400, "input_rejected"),
])
def test_bad_requests_get_typed_errors(served: tuple[str, Metrics], body: dict[str, Any],
                                       status: int, code: str) -> None:
    url, _ = served
    response = httpx.post(f"{url}/v1/embeddings", json={"model": MODEL, **body})
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_token_arrays_the_tokenizer_cannot_decode_are_refused(
        served: tuple[str, Metrics]) -> None:
    url, _ = served  # the test embedder's tokenizer has no vocabulary to decode ids with
    assert post(url, input=[[1, 2, 3]]).status_code == 400


def test_input_type_chooses_the_role(tmp_path: Path) -> None:
    settings = load_settings(model="testing/hash-e5-64")
    with live_server(create_app(settings)) as url:
        def vector(**extra: Any) -> np.ndarray:
            answer = httpx.post(f"{url}/v1/embeddings", json={
                "model": "testing/hash-e5-64", "input": "cats sleep", **extra})
            assert answer.status_code == 200, answer.text
            return np.asarray(answer.json()["data"][0]["embedding"])
        embedder = HashEmbedder(prefixes=E5_PREFIXES)
        assert np.allclose(vector(), embedder.embed(["cats sleep"], "document")[0], atol=1e-6)
        for name in ("query", "search_query"):
            assert np.allclose(vector(input_type=name),
                               embedder.embed(["cats sleep"], "query")[0], atol=1e-6)
        assert np.allclose(vector(input_type="search_document"),
                           embedder.embed(["cats sleep"], "document")[0], atol=1e-6)
        bad = httpx.post(f"{url}/v1/embeddings", json={"model": "testing/hash-e5-64",
                                                      "input": "x", "input_type": "image"})
        assert bad.status_code == 400


def test_truncation_renormalises_when_allowed() -> None:
    settings = load_settings(model=MODEL, server_allow_truncation=True)
    with live_server(create_app(settings)) as url:
        answer = post(url, input=["some words here"], dimensions=16).json()
    vector = np.array(answer["data"][0]["embedding"])
    full = HashEmbedder().embed(["some words here"])[0]
    assert vector.shape == (16,) and abs(np.linalg.norm(vector) - 1) < 1e-5
    assert np.allclose(vector, full[:16] / np.linalg.norm(full[:16]), atol=1e-6)


def test_concurrent_requests_share_batches(served: tuple[str, Metrics]) -> None:
    url, metrics = served
    before = metrics.value("embedops_server_batch_size_count")
    texts = [f"request number {i} says hello" for i in range(24)]
    with httpx.Client(limits=httpx.Limits(max_connections=24)) as client, \
            ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(
            lambda t: client.post(f"{url}/v1/embeddings",
                                  json={"model": MODEL, "input": t}).json(), texts))
    batches = metrics.value("embedops_server_batch_size_count") - before
    for text, answer in zip(texts, answers, strict=True):
        expected = HashEmbedder().embed([text])[0]
        assert np.allclose(answer["data"][0]["embedding"], expected, atol=1e-6)
    assert 1 <= batches < len(texts)


def test_health_metrics_models_and_openapi(served: tuple[str, Metrics]) -> None:
    url, _ = served
    post(url, input="count me")
    health = httpx.get(f"{url}/healthz").json()
    assert health["status"] == "ok" and health["model"]["name"] == MODEL
    exposition = httpx.get(f"{url}/metrics").text
    assert 'embedops_http_requests_total{route="/v1/embeddings",status="200"}' in exposition
    assert "embedops_server_batch_size_bucket" in exposition
    models = httpx.get(f"{url}/v1/models").json()["data"]
    assert models[0]["id"] == MODEL and models[0]["dim"] == 64
    spec = httpx.get(f"{url}/openapi.json").json()
    assert "/v1/embeddings" in spec["paths"] and "EmbeddingRequest" in str(spec)


def test_openai_compatible_embedder_agrees_with_the_local_one(
        served: tuple[str, Metrics], tmp_path: Path) -> None:
    url, _ = served
    remote = load_embedder(f"openai-compatible/{MODEL}", tmp_path,
                           settings=load_settings(api_base=f"{url}/v1"))
    texts = [f"document {i}: the service embeds this text" for i in range(40)]
    local = HashEmbedder().embed(texts)
    cosines = np.sum(remote.embed(texts) * local, axis=1)
    assert remote.info.dim == 64 and cosines.min() >= 0.999
    assert np.sum(remote.embed_query("a query") * HashEmbedder().embed_query("a query")) > 0.999


@pytest.mark.slow
def test_minilm_served_over_http_matches_local_onnx(model_cache: Path) -> None:
    local = load_embedder("all-MiniLM-L6-v2", model_cache, backend="onnx")
    settings = load_settings(model="all-MiniLM-L6-v2", backend="onnx", cache_dir=model_cache)
    texts = ["How do I reset my password?", "The cat sat on the mat.",
             "Vector databases store embeddings for semantic search."]
    with live_server(create_app(settings, local)) as url:
        remote = load_embedder("openai-compatible/all-MiniLM-L6-v2", model_cache,
                               settings=load_settings(api_base=f"{url}/v1"))
        served = remote.embed(texts)
    assert remote.info.dim == 384
    assert np.sum(served * local.embed(texts), axis=1).min() >= 0.999
