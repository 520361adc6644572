"""A search does not wait for the ledger: while another writer holds the ledger's write
lock (the real-time worker committing a large document does), a document PUT waits for
it, and a search sent meanwhile is answered at once. A real server on 127.0.0.1."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import httpx

from embedops.config import load_settings
from embedops.server import create_app
from tests.server.live import live_server


def test_a_search_is_answered_while_a_put_waits_for_the_ledger(tmp_path: Path) -> None:
    settings = load_settings(model="testing/hash-64", store=tmp_path / "store")
    with live_server(create_app(settings, open_store=True)) as url, \
            httpx.Client(base_url=url, timeout=60) as http:
        assert http.put("/collections/c/documents/a?wait=true",
                        json={"text": "cats sleep in the sun"}).status_code < 300
        blocker = sqlite3.connect(tmp_path / "store" / "ledger.db", isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # a long ledger write elsewhere
        put = threading.Thread(target=lambda: http.put(
            "/collections/c/documents/b", json={"text": "dogs walk in the park"}))
        put.start()
        time.sleep(0.5)  # the PUT's enqueue now waits for the ledger's write lock
        started = time.monotonic()
        found = http.post("/collections/c/search", json={"query": "cats", "k": 1})
        took = time.monotonic() - started
        blocker.execute("ROLLBACK")
        blocker.close()
        put.join(timeout=30)
        assert found.status_code == 200 and found.json()["hits"][0]["doc_id"] == "a"
        assert took < 1.0, f"the search waited {took:.2f} s for the ledger"
