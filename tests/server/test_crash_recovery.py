"""SIGKILL the server with accepted writes still queued; after a restart every accepted
write ends embedded, once (real subprocesses, real HTTP)."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from embedops.ledger import Ledger
from embedops.store import open_store
from tests.server.proc import ServerProcess, serving

DOCS = 40


def text(i: int) -> str:
    return f"document number {i} talks about topic {i % 7} and vectors"


def test_accepted_writes_survive_sigkill(tmp_path: Path) -> None:
    # A long micro-batch wait keeps the writes queued when the process dies.
    slow = {"EMBEDOPS_REALTIME_MAX_WAIT_MS": "60000", "EMBEDOPS_REALTIME_MAX_BATCH": "1000"}
    server = ServerProcess(tmp_path, slow)
    server.wait_ready()
    with httpx.Client(base_url=server.url, timeout=10) as client:
        for i in range(DOCS):
            answer = client.put(f"/collections/c/documents/doc-{i}", json={"text": text(i)})
            assert answer.status_code == 202
        statuses = {client.get(f"/collections/c/documents/doc-{i}").json()["status"]
                    for i in range(DOCS)}
    assert statuses == {"queued"}
    server.kill()

    with serving(tmp_path) as restarted, httpx.Client(base_url=restarted.url) as client:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            states = [client.get(f"/collections/c/documents/doc-{i}").json()["status"]
                      for i in range(DOCS)]
            if set(states) == {"embedded"}:
                break
            time.sleep(0.2)
        assert set(states) == {"embedded"}
        hits = client.post("/collections/c/search",
                           json={"query": text(3), "k": 1}).json()["hits"]
        assert hits[0]["doc_id"] == "doc-3"
    store = open_store(tmp_path, read_only=True)
    ledger = Ledger(tmp_path)
    try:
        assert store.count("c") == DOCS  # one point per one-chunk document, no duplicates
        assert ledger.queue_stats()[0] == 0
        assert ledger.document_count("c") == DOCS
    finally:
        store.close()
        ledger.close()
