"""Queries come first: while the real-time worker embeds a large document, a one-token
``POST /v1/embeddings`` and a text search wait for at most one forward pass of the
write, not for the whole document. A real server on 127.0.0.1 and a real (slow) model:
the test-only hashing embedder with a fixed cost per forward pass."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from embedops.config import load_settings
from embedops.embedders.base import Role
from embedops.embedders.testing import HashEmbedder
from embedops.server import create_app
from tests.server.live import live_server

PASS_SECONDS = 0.05  # cost of one forward pass
BATCH = 4  # texts per forward pass


class SlowHash(HashEmbedder):
    """The hashing embedder with a fixed cost per forward pass; records each pass."""

    def __init__(self) -> None:
        super().__init__(batch_size=BATCH)
        self.passes: list[tuple[Role, float, float]] = []  # (role, start, end)
        self._lock = threading.Lock()
        self.writing = threading.Event()

    def _embed_role(self, texts: list[str], role: Role) -> np.ndarray:
        start = time.monotonic()
        if role == "document" and len(texts) == BATCH:
            self.writing.set()
        time.sleep(PASS_SECONDS)
        out = super()._embed_role(texts, role)
        with self._lock:
            self.passes.append((role, start, time.monotonic()))
        return out


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, SlowHash]]:
    embedder = SlowHash()
    settings = load_settings(model="testing/hash-64", store=tmp_path / "store",
                             chunk_tokens=8, chunk_overlap=2)
    with live_server(create_app(settings, embedder=embedder, open_store=True)) as url:
        yield url, embedder


def _timed(call: httpx.Request, http: httpx.Client) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = http.send(call)
    return response, time.monotonic() - started


def test_queries_wait_one_forward_pass_behind_a_large_write(
        served: tuple[str, SlowHash]) -> None:
    url, embedder = served
    words = " ".join(f"w{i % 97} river{i % 13}" for i in range(700))  # ~230 chunks
    with httpx.Client(base_url=url, timeout=60) as http:
        small = http.put("/collections/docs/documents/small", params={"wait": "true"},
                         json={"text": "a small note about rivers"})
        assert small.json()["status"] == "embedded"
        embedder.passes.clear()
        big = http.put("/collections/docs/documents/big", json={"text": words})
        assert big.status_code == 202
        assert embedder.writing.wait(30), "the write never reached the model"
        embedding, embed_s = _timed(http.build_request(
            "POST", "/v1/embeddings", json={"input": "x", "model": "testing/hash-64"}), http)
        search, search_s = _timed(http.build_request(
            "POST", "/collections/docs/search", json={"query": "rivers", "k": 3}), http)
        asked_done = time.monotonic()
        assert embedding.status_code == 200 and search.status_code == 200
        deadline = time.monotonic() + 60
        while http.get("/collections/docs/documents/big").json()["status"] == "queued":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        status = http.get("/collections/docs/documents/big").json()
        wait_metric = http.get("/metrics").text
    writes = [(s, e) for role, s, e in embedder.passes if role == "document"]
    write_s = writes[-1][1] - writes[0][0]
    # The write took dozens of passes and went on after both requests were answered ...
    assert len(writes) > 40 and write_s > 2.0, (len(writes), write_s)
    assert writes[-1][1] > asked_done + 0.5
    # ... while each request waited for at most about one pass of it (plus its own).
    assert embed_s < 1.0 and search_s < 1.0, (embed_s, search_s, write_s)
    assert status["status"] == "embedded" and status["chunk_count"] > 4 * 40
    assert 'embedops_model_wait_seconds_count{priority="interactive"}' in wait_metric
