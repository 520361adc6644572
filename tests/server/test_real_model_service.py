"""The service with the real default model: write with wait=true, then text search."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from embedops.config import load_settings
from embedops.server import create_app
from tests.server.live import live_server


@pytest.mark.slow
def test_real_model_write_then_search(tmp_path: Path, model_cache: Path) -> None:
    settings = load_settings(store=tmp_path, cache_dir=model_cache)
    with live_server(create_app(settings, open_store=True)) as url, \
            httpx.Client(base_url=url, timeout=120) as client:
        docs = {"cats": "Cats are small domesticated felines that like to sleep.",
                "rust": "Rust is a systems programming language focused on safety.",
                "tea": "Green tea is brewed from unoxidised leaves of Camellia sinensis."}
        for doc_id, text in docs.items():
            answer = client.put(f"/collections/kb/documents/{doc_id}",
                                params={"wait": "true"}, json={"text": text})
            assert answer.status_code == 200 and answer.json()["status"] == "embedded"
        hits = client.post("/collections/kb/search",
                           json={"query": "which language is memory safe?", "k": 3}).json()
        assert hits["hits"][0]["doc_id"] == "rust"
        assert client.get("/collections/kb").json()["model"] == "all-MiniLM-L6-v2"
