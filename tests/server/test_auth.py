"""API keys over real HTTP: created and revoked with the real CLI (subprocesses);
401 without a valid key, 403 without the scope or the collection; health stays open."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from embedops.cli.serve_cmd import check_loopback, keys_configured
from embedops.config import load_settings
from embedops.server import create_app
from tests.server.live import live_server


def cli(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "embedops", "--store", str(store), *args],
                          capture_output=True, text=True, timeout=60,
                          env={**os.environ, "EMBEDOPS_ENABLE_TEST_MODELS": "1"})


def create_key(store: Path, *args: str) -> dict[str, object]:
    done = cli(store, "keys", "create", "--json", *args)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    store = tmp_path_factory.mktemp("auth-store")
    settings = load_settings(model="testing/hash-64", store=store)
    with live_server(create_app(settings, open_store=True)) as url:
        yield url, store


def bearer(key: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_open_until_the_first_key_then_401_without_one(served: tuple[str, Path]) -> None:
    url, store = served
    assert not keys_configured(load_settings(store=str(store)))
    assert httpx.get(f"{url}/collections").status_code == 200
    admin = create_key(store, "--scope", "admin", "--name", "ops")
    assert str(admin["key"]).startswith("eo_") and admin["scopes"] == ["admin"]
    assert keys_configured(load_settings(store=str(store)))
    for path in ("/collections", "/metrics", "/docs", "/openapi.json"):
        assert httpx.get(f"{url}{path}").status_code == 401, path
    wrong = httpx.get(f"{url}/collections", headers=bearer("eo_nope_nope"))
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "unauthorized"
    assert httpx.get(f"{url}/collections", headers=bearer(admin["key"])).status_code == 200
    assert httpx.get(f"{url}/healthz").status_code == 200
    assert httpx.get(f"{url}/readyz").status_code == 200
    stored = cli(store, "keys", "list", "--json")
    assert str(admin["key"]) not in stored.stdout


def test_scopes_and_collections_give_403(served: tuple[str, Path]) -> None:
    url, store = served
    admin = create_key(store, "--scope", "admin")["key"]
    reader = create_key(store, "--scope", "read")["key"]
    writer_a = create_key(store, "--scope", "write", "--collection", "a")["key"]
    doc = {"text": "hello keys"}
    ok = httpx.put(f"{url}/collections/a/documents/1?wait=true", json=doc,
                   headers=bearer(writer_a))
    assert ok.status_code == 200
    assert httpx.put(f"{url}/collections/b/documents/1", json=doc,
                     headers=bearer(writer_a)).status_code == 403
    denied = httpx.put(f"{url}/collections/a/documents/2", json=doc, headers=bearer(reader))
    assert denied.status_code == 403 and "write" in denied.json()["error"]["message"]
    assert httpx.post(f"{url}/collections/a/search", json={"query": "hello"},
                      headers=bearer(reader)).status_code == 200
    assert httpx.post(f"{url}/collections", json={"name": "z", "dim": 2, "fingerprint": "f"},
                      headers=bearer(writer_a)).status_code == 403
    assert httpx.post(f"{url}/collections", json={"name": "z", "dim": 2, "fingerprint": "f"},
                      headers=bearer(admin)).status_code == 201


def test_collection_limited_admin_cannot_alias_its_way_out(served: tuple[str, Path]) -> None:
    url, store = served
    admin = create_key(store, "--scope", "admin")["key"]
    mine_admin = create_key(store, "--scope", "admin", "--collection", "mine")["key"]
    secret = {"text": "top secret payroll data"}
    assert httpx.put(f"{url}/collections/secret/documents/s?wait=true", json=secret,
                     headers=bearer(admin)).status_code == 200
    hijack = httpx.post(f"{url}/aliases", json={"alias": "mine", "collection": "secret"},
                        headers=bearer(mine_admin))
    assert hijack.status_code == 403
    found = httpx.post(f"{url}/collections/mine/search", json={"query": "payroll"},
                       headers=bearer(mine_admin))
    assert "payroll" not in found.text
    assert httpx.put(f"{url}/aliases/anything", json={"collection": "secret"},
                     headers=bearer(mine_admin)).status_code == 403
    assert httpx.delete(f"{url}/aliases/anything",
                        headers=bearer(mine_admin)).status_code == 403


def test_revoked_key_is_401(served: tuple[str, Path]) -> None:
    url, store = served
    made = create_key(store, "--scope", "read")
    assert httpx.get(f"{url}/collections", headers=bearer(made["key"])).status_code == 200
    done = cli(store, "keys", "revoke", str(made["key_id"]))
    assert done.returncode == 0, done.stderr
    assert httpx.get(f"{url}/collections", headers=bearer(made["key"])).status_code == 401
    assert cli(store, "keys", "revoke", str(made["key_id"])).returncode != 0


def test_keys_create_refuses_unknown_scopes(tmp_path: Path) -> None:
    done = cli(tmp_path, "keys", "create", "--scope", "root")
    assert done.returncode == 2 and "scopes must be among" in done.stderr


def test_non_loopback_bind_is_allowed_only_with_keys() -> None:
    check_loopback("0.0.0.0", keys_configured=True)
    with pytest.raises(Exception, match="no authentication"):
        check_loopback("0.0.0.0", keys_configured=False)
