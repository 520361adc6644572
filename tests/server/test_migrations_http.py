"""A migration run against a live service: readers on the alias never see an error, an
empty result or a mix of models through start, backfill, swap, rollback and swap again;
writes during the migration land in both collections; a command run while the service
owns the store hands its step to the service; declared fields are enforced at the door."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from embedops.config import load_settings
from embedops.server import create_app
from tests.server.live import live_server

SHADOW_MODEL = "testing/hash-e5-64"


def _cli(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "embedops", "--store", str(store), *args],
                          capture_output=True, text=True, timeout=120, env=os.environ.copy())


def _wait_phase(http: httpx.Client, alias: str, phase: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = http.get(f"/admin/migrations/{alias}").json()
        if status["phase"] == phase:
            return status  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"{alias} never reached {phase}: {status}")


def test_migration_under_live_traffic(tmp_path: Path) -> None:
    store = tmp_path / "store"
    settings = load_settings(model="testing/hash-64", store=str(store))
    with live_server(create_app(settings, open_store=True)) as url, \
            httpx.Client(base_url=url, timeout=60) as http:
        docs = [{"id": f"d{i}", "text": f"document {i} about topic {i % 7} alpha{i % 5}"}
                for i in range(300)]
        assert http.post("/collections/kb/documents?wait=true",
                         json={"documents": docs}).status_code == 200
        errors: list[str] = []
        fingerprints: set[str] = set()
        stop = threading.Event()

        def search() -> None:
            with httpx.Client(base_url=url, timeout=30) as reader:
                while not stop.is_set():
                    answer = reader.post("/collections/kb/search",
                                         json={"query": "topic 3 alpha1", "k": 5})
                    if answer.status_code != 200:
                        errors.append(f"{answer.status_code} {answer.text[:200]}")
                        continue
                    hits = answer.json()["hits"]
                    prints = {h["payload"]["fingerprint"] for h in hits}
                    if not hits or len(prints) != 1:
                        errors.append(f"hits {len(hits)} from {prints}")
                    fingerprints.update(prints)

        reader = threading.Thread(target=search)
        reader.start()
        try:
            started = http.post("/admin/migrations/kb/start",
                                json={"to": SHADOW_MODEL, "max_rate": 5})
            assert started.status_code == 200, started.text
            shadow = started.json()["shadow"]
            # the service owns the store: a command hands its step to the service
            paused = _cli(store, "migrate", "pause", "kb", "--json")
            assert paused.returncode == 0, paused.stderr
            assert json.loads(paused.stdout)["phase"] == "paused"
            written = http.put("/collections/kb/documents/during?wait=true",
                               json={"text": "written during the backfill about zebras"})
            assert written.status_code == 200
            assert http.delete("/collections/kb/documents/d5?wait=true").status_code == 200
            resumed = http.post("/admin/migrations/kb/resume", json={"max_rate": 100000})
            assert resumed.json()["phase"] == "backfilling"
            assert resumed.json()["max_rate"] == 100000
            ready = _wait_phase(http, "kb", "ready")
            assert ready["documents_done"] == ready["documents_total"] == 300
            refused = http.post("/admin/migrations/kb/swap", json={})
            assert refused.status_code == 409
            for step in ("swap", "rollback", "swap"):
                body = {"force": True} if step == "swap" else None
                answer = http.post(f"/admin/migrations/kb/{step}", json=body)
                assert answer.status_code == 200, answer.text
                time.sleep(0.3)
        finally:
            stop.set()
            reader.join()
        assert errors == []
        assert len(fingerprints) == 2
        for name in (shadow, ready["live"]):
            during = http.get(f"/collections/{name}/documents/during").json()
            assert during["status"] == "embedded" and during["chunk_count"] == 1, name
            assert during["chunks"][0]["fingerprint"] == http.get(
                f"/collections/{name}").json()["fingerprint"]
            gone = http.get(f"/collections/{name}/documents/d5")
            assert gone.status_code == 404, name
        finalized = http.post("/admin/migrations/kb/finalize")
        assert finalized.json()["phase"] == "finalized"
        listed = http.get("/admin/migrations").json()["migrations"]
        assert [(m["alias"], m["phase"]) for m in listed] == [("kb", "finalized")]


def test_declared_fields_over_http(tmp_path: Path) -> None:
    settings = load_settings(model="testing/hash-64", store=str(tmp_path / "store"))
    with live_server(create_app(settings, open_store=True)) as url, \
            httpx.Client(base_url=url, timeout=30) as http:
        http.put("/collections/c/documents/old?wait=true", json={"text": "an old document"})
        declared = http.post("/collections/c/schema/fields", params={"wait": "true"},
                             json={"field": "lang", "type": "str", "default": "en"})
        assert declared.status_code == 200 and declared.json()["points_updated"] == 1
        http.post("/collections/c/schema/fields", json={"field": "year", "type": "int"})
        bad = http.put("/collections/c/documents/x", json={"text": "t",
                                                           "metadata": {"year": "soon"}})
        assert bad.status_code == 422 and "year" in bad.json()["error"]["message"]
        assert http.get("/collections/c/documents/x").status_code == 404  # nothing queued
        http.put("/collections/c/documents/new?wait=true", json={"text": "a new document"})
        hits = http.post("/collections/c/search", json={
            "query": "document", "k": 5, "filter": {"field": "lang", "eq": "en"}}).json()
        assert {h["doc_id"] for h in hits["hits"]} == {"old", "new"}
        fields: Any = http.get("/collections/c/schema").json()["fields"]
        assert [f["field"] for f in fields] == ["lang", "year"]
