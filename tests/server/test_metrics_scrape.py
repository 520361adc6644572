"""A ``/metrics`` scrape is cheap at any store size: it never calls the store's full
``stats`` (which sums every stored vector and walks the store's directory under the
store's lock), yet reports points and index memory per collection, and forgets a
dropped collection. The store is a real embedded store, registered as a store plugin
(the ``embedops.stores`` entry points) by a subclass that counts its ``stats`` calls."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from embedops.config import load_settings
from embedops.server import create_app
from embedops.store.embedded import EmbeddedStore
from tests.server.live import live_server

SCHEME = "counting"


class CountingStore(EmbeddedStore):
    """The embedded store at ``counting:///abs/path``, counting calls of ``stats``."""

    def __init__(self, location: str, read_only: bool = False) -> None:
        super().__init__(location.removeprefix(f"{SCHEME}://"), read_only)
        self.stats_calls = 0

    def stats(self, collection: str) -> dict[str, Any]:
        self.stats_calls += 1
        return super().stats(collection)


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Register ``CountingStore`` under the ``counting`` scheme, as a plugin would."""
    site = tmp_path / "site"
    info = site / "embedops_counting_store-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: embedops-counting-store\n"
                                   "Version: 1.0\n")
    (info / "entry_points.txt").write_text(
        f"[embedops.stores]\n{SCHEME} = {__name__}:CountingStore\n")
    monkeypatch.syspath_prepend(str(site))


@pytest.fixture
def served(tmp_path: Path, plugin: None) -> Iterator[tuple[httpx.Client, Any]]:
    settings = load_settings(model="testing/hash-64", store=f"{SCHEME}://{tmp_path / 'store'}",
                             ledger=tmp_path / "ledger.db", chunk_tokens=8, chunk_overlap=2)
    app = create_app(settings, open_store=True)
    with live_server(app) as url, httpx.Client(base_url=url, timeout=30) as http:
        yield http, app.state.service.store


def _sample(text: str, name: str, collection: str) -> float:
    found = re.search(rf'^{name}{{collection="{collection}"}} (\S+)$', text, re.MULTILINE)
    assert found, f"{name} of {collection} missing"
    return float(found.group(1))


def test_scrapes_never_call_full_store_stats(served: tuple[httpx.Client, Any]) -> None:
    http, store = served
    assert type(store).__name__ == "CountingStore"
    for collection, n in (("alpha", 3), ("beta", 1)):
        for i in range(n):
            answer = http.put(f"/collections/{collection}/documents/d{i}",
                              params={"wait": "true"}, json={"text": f"note number {i}"})
            assert answer.json()["status"] == "embedded"
    for _ in range(5):
        text = http.get("/metrics").text
    assert store.stats_calls == 0
    assert _sample(text, "embedops_collection_points", "alpha") == 3
    assert _sample(text, "embedops_collection_points", "beta") == 1
    assert _sample(text, "embedops_index_memory_bytes", "alpha") > 0
    described = http.get("/collections/alpha").json()  # the full figures, on demand
    assert store.stats_calls == 1 and described["index_memory_bytes"] > 0


def test_dropped_collection_leaves_the_exposition(served: tuple[httpx.Client, Any]) -> None:
    http, _ = served
    http.put("/collections/gone/documents/d", params={"wait": "true"}, json={"text": "bye"})
    assert 'collection="gone"' in http.get("/metrics").text
    assert http.delete("/collections/gone").status_code in (200, 204)
    assert 'collection="gone"' not in http.get("/metrics").text
