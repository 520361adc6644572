"""Service hardening: /v1 needs the `embed` scope; per-collection keys follow an alias to
its target; payload indexes of look-alike fields stay apart; /docs works offline."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from embedops.config import load_settings
from embedops.ledger import Ledger
from embedops.server import create_app
from embedops.store import open_store
from tests.server.live import live_server

MODEL = "testing/hash-64"


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_embed_scope_and_keys_checked_against_the_alias_target(tmp_path: Path) -> None:
    store = tmp_path / "store"
    settings = load_settings(model=MODEL, store=str(store))
    with live_server(create_app(settings, open_store=True)) as url:
        for name in ("a", "b"):
            httpx.put(f"{url}/collections/{name}/documents/d?wait=true",
                      json={"text": f"collection {name}"})
        httpx.post(f"{url}/aliases", json={"alias": "to-b", "collection": "b"})
        ledger = Ledger(store)
        admin, _ = ledger.create_key(["admin"], None, "ops")
        reader_a, _ = ledger.create_key(["read"], ["a"], "reads a")
        embedder, _ = ledger.create_key(["embed"], None, "embeds")
        ledger.close()
        body = {"model": MODEL, "input": "hello"}
        v1 = f"{url}/v1/embeddings"
        assert httpx.post(v1, json=body, headers=bearer(reader_a)).status_code == 403
        assert httpx.post(v1, json=body, headers=bearer(embedder)).status_code == 200
        assert httpx.post(v1, json=body, headers=bearer(admin)).status_code == 200
        assert httpx.get(f"{url}/v1/models", headers=bearer(reader_a)).status_code == 403
        search = {"query": "collection", "k": 1}
        assert httpx.post(f"{url}/collections/a/search", json=search,
                          headers=bearer(embedder)).status_code == 403
        assert httpx.post(f"{url}/collections/a/search", json=search,
                          headers=bearer(reader_a)).status_code == 200
        # an alias of another collection does not open it to a key limited to `a`
        assert httpx.post(f"{url}/collections/to-b/search", json=search,
                          headers=bearer(reader_a)).status_code == 403
        httpx.put(f"{url}/aliases/to-b", json={"collection": "a"}, headers=bearer(admin))
        answer = httpx.post(f"{url}/collections/to-b/search", json=search,
                            headers=bearer(reader_a))
        assert answer.status_code == 200 and answer.json()["collection"] == "a"


def test_payload_indexes_of_look_alike_fields_stay_apart(tmp_path: Path) -> None:
    with open_store(tmp_path / "s") as store:
        store.create_collection("c", 4, fingerprint="fp", payload_indexes=["a.b", "a__b"])
        names = [r[0] for r in store.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'payload_%'")]
        assert len(names) == 2
        store.drop_collection("c")
        assert not list(store.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND name LIKE 'payload_%'"))


def test_docs_page_loads_its_assets_from_the_server(tmp_path: Path) -> None:
    settings = load_settings(model=MODEL, store=str(tmp_path / "store"))
    with live_server(create_app(settings)) as url:
        page = httpx.get(f"{url}/docs")
        assert page.status_code == 200
        assert "cdn" not in page.text.lower()
        assert "/docs-assets/swagger-ui-bundle.js" in page.text
        for asset in ("swagger-ui-bundle.js", "swagger-ui.css"):
            got = httpx.get(f"{url}/docs-assets/{asset}")
            assert got.status_code == 200 and len(got.content) > 10_000, asset


@pytest.mark.parametrize("scope", ["embed"])
def test_keys_command_accepts_the_embed_scope(tmp_path: Path, scope: str) -> None:
    ledger = Ledger(tmp_path)
    _, record = ledger.create_key([scope], None, "x")
    assert record.scopes == (scope,) and record.allows("embed")
    assert not record.allows("read")
    ledger.close()
