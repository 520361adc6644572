"""Hybrid routing, worked end to end: documents written in real time are embedded by an
API (here a real OpenAI-compatible server on 127.0.0.1), batch ingest runs the local
model, and both land in one collection because the two were checked equivalent."""

from __future__ import annotations

from pathlib import Path

import httpx

import embedops
from embedops.config import load_settings
from embedops.embedders.routing import served_embedder
from embedops.server import create_app
from tests.server.fault_server import FaultServer
from tests.server.live import live_server


def test_realtime_uses_the_api_and_batch_the_local_model(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "batch.txt").write_text("Batch documents come from files.")
    with FaultServer() as api:
        settings = load_settings(store=str(tmp_path / "store"), model="testing/hash-64",
                                 realtime_model="openai-compatible/hash",
                                 realtime_api_base=api.url)
        with embedops.open(settings=settings) as db:
            db.ingest([tmp_path / "docs"], collection="kb")
        assert not any("Batch documents" in t for s in api.seen for t in s.items)
        served = served_embedder(settings)  # runs the equivalence check against the API
        api.seen.clear()
        with live_server(create_app(settings, served, open_store=True)) as url, \
                httpx.Client(base_url=url, timeout=30) as http:
            put = http.put("/collections/kb/documents/live?wait=true",
                           json={"text": "Real-time documents arrive over HTTP."})
            assert put.status_code == 200, put.text
            hits = http.post("/collections/kb/search",
                             json={"query": "documents", "k": 5}).json()["hits"]
    assert any("Real-time documents" in t for s in api.seen for t in s.items)
    assert {h["doc_id"] for h in hits} == {"batch.txt", "live"}
