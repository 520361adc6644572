"""The batch path and the real-time path writing the same documents at the same time,
in the process that owns the store: the last accepted write of each document wins, with
no lost update, no duplicate and no orphan points."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI

from embedops.config import load_settings
from embedops.ingest.batch import IngestOptions
from embedops.server import create_app
from embedops.server.service import Service
from tests.server.live import live_server

DOCS = 40


@pytest.fixture
def app_url(tmp_path: Path) -> Iterator[tuple[FastAPI, str]]:
    settings = load_settings(model="testing/hash-64", store=tmp_path / "store",
                             chunk_tokens=8, chunk_overlap=2)
    app = create_app(settings, open_store=True)
    with live_server(app) as url:
        yield app, url


def batch_files(root: Path) -> Path:
    root.mkdir()
    for i in range(DOCS):  # several chunks each: a later short write must leave no orphans
        words = " ".join(f"batchword{j}" for j in range(30))
        (root / f"doc-{i}.txt").write_text(f"batch version {i} {words}")
    return root


def wait_drained(client: httpx.Client) -> list[dict[str, object]]:
    deadline = time.monotonic() + 30
    while True:
        states = [client.get(f"/collections/c/documents/doc-{i}.txt").json()
                  for i in range(DOCS)]
        if all(s["status"] != "queued" for s in states) or time.monotonic() > deadline:
            return states


def test_last_accepted_write_wins_across_paths(app_url: tuple[FastAPI, str],
                                               tmp_path: Path) -> None:
    app, url = app_url
    service: Service = app.state.service
    client = httpx.Client(base_url=url, timeout=30)
    early = range(0, 10)  # written (and embedded) before the batch reads them
    for i in early:
        assert client.put(f"/collections/c/documents/doc-{i}.txt", params={"wait": "true"},
                          json={"text": f"realtime early {i}"}).status_code == 200
    rt_version: dict[int, int] = {}

    def during_batch(event: str, amount: int) -> None:
        if event == "file" and not rt_version:  # mid-run: the reader is still reading
            for i in range(5, DOCS, 2):
                answer = client.put(f"/collections/c/documents/doc-{i}.txt",
                                    json={"text": f"realtime late {i}"})
                rt_version[i] = answer.json()["version"]

    summary = service.batch_ingest([batch_files(tmp_path / "src")],
                                   IngestOptions(collection="c", batch_size=8), during_batch)
    assert summary.documents_failed == 0
    states = wait_drained(client)
    store, ledger = service.store, service.ledger
    records = ledger.documents("c")
    total_chunks = 0
    for i, state in enumerate(states):
        doc = f"doc-{i}.txt"
        assert state["status"] == "embedded", state
        assert state["version"] == state["applied_version"]
        points = [p for page in store.scan("c", filter={"field": "doc_id", "eq": doc})
                  for p in page]
        assert sorted(p.id for p in points) == [f"{doc}#{n}"
                                                for n in range(records[doc].chunk_count)]
        assert {p.payload["content_hash"] for p in points} == {records[doc].content_hash}
        first = min(points, key=lambda p: p.payload["chunk"]).payload["text"]
        if i in rt_version and state["version"] == rt_version[i]:
            assert first == f"realtime late {i}"
        else:
            assert first.startswith(f"batch version {i} ")
            assert state["version"] > rt_version.get(i, 0)
        total_chunks += records[doc].chunk_count
    assert store.count("c") == total_chunks
    # The early real-time writes were accepted before the batch read those files.
    assert all(states[i]["origin"] == "batch" for i in early if i not in rt_version)
    client.close()
