"""One bad queued write fails alone: its neighbours in the same micro-batch are embedded,
and bad metadata is refused at the door with a 4xx."""

from __future__ import annotations

import math
import time
from pathlib import Path

import httpx

from embedops.config import load_settings
from embedops.ledger import Ledger
from embedops.server import create_app
from tests.server.live import live_server


def _status(client: httpx.Client, doc: str) -> dict[str, object]:
    return client.get(f"/collections/c/documents/{doc}").json()  # type: ignore[no-any-return]


def test_bad_write_fails_alone_and_api_refuses_nan(tmp_path: Path) -> None:
    settings = load_settings(model="testing/hash-64", store=tmp_path / "store")
    app = create_app(settings, open_store=True)
    with live_server(app) as url, httpx.Client(base_url=url, timeout=30) as client:
        refused = client.put("/collections/c/documents/x",
                             content=b'{"text": "fine text", "metadata": {"v": NaN}}',
                             headers={"content-type": "application/json"})
        assert refused.status_code == 422 and "NaN" in refused.text
        seeded = client.put("/collections/c/documents/seed?wait=true",
                            json={"text": "the collection exists after this write"})
        assert seeded.status_code == 200
        # A write that slipped into the queue anyway (an older client, a hand edit) must
        # not take the good writes of its micro-batch down with it.
        ledger = Ledger(tmp_path / "store")
        ledger.enqueue("c", [("good-1", "put", {"text": "a perfectly fine document"}),
                             ("bad", "put", {"text": "fine text", "metadata": {"v": math.nan}}),
                             ("good-2", "put", {"text": "another fine document"})])
        ledger.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            states = {d: _status(client, d).get("status") for d in ("good-1", "good-2", "bad")}
            if all(v in ("embedded", "failed") for v in states.values()):
                break
            time.sleep(0.2)
        assert states == {"good-1": "embedded", "good-2": "embedded", "bad": "failed"}
        hits = client.post("/collections/c/search", json={"query": "fine document", "k": 5})
        assert {h["doc_id"] for h in hits.json()["hits"]} == {"good-1", "good-2", "seed"}
