"""Canary fixtures: a real HTTP receiver for alert webhooks, and a collection of the
shipped docs-qa passages embedded by the TEST-ONLY hashing model."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import embedops
from embedops.client import Client
from embedops.quality.beir import resolve_dataset

TEST_MODEL = "testing/hash-64"
DOCS_QA = resolve_dataset("docs-qa")


@dataclass
class Receiver:
    """Webhook calls received: (path, content type, JSON body). Answers ``status``."""

    url: str = ""
    status: int = 204
    calls: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    got = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            size = int(self.headers.get("Content-Length", "0"))
            body = json.loads(self.rfile.read(size) or b"{}")
            got.calls.append((self.path, self.headers.get("Content-Type", ""), body))
            self.send_response(got.status)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    got.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/embedops"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield got
    finally:
        server.shutdown()
        server.server_close()


def ingest_docs_qa(client: Client, collection: str = "docs") -> None:
    summary = client.ingest([DOCS_QA / "corpus.jsonl"], collection, model=TEST_MODEL,
                            id_field="_id")
    assert summary.documents_new == 70 and summary.documents_failed == 0


@pytest.fixture
def docs_client(tmp_path: Path) -> Iterator[Client]:
    """A writable client whose collection ``docs`` holds the 70 docs-qa passages."""
    with embedops.open(tmp_path / "store") as client:
        ingest_docs_qa(client)
        yield client
