"""Declaring a field with a default over HTTP backfills it in the background: the
request answers 202 at once (even while the write lock is held), ``embedops status``
shows the progress from another process, searches go on, a filter on the new field
then finds old and new points alike, and a backfill a restart interrupted resumes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from embedops.config import load_settings
from embedops.freshness.fields import declared_backfill
from embedops.ledger import Ledger
from embedops.payload_schema import FieldSpec
from embedops.server import create_app
from embedops.store import open_store
from tests.server.live import live_server

N = 4500  # three pages of the backfill


def _status(store: Path) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "embedops", "--store", str(store),
                           "status", "--json"], capture_output=True, text=True, timeout=120,
                          env=os.environ.copy())
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def _fill(http: httpx.Client, collection: str, n: int, start: int = 0) -> None:
    rng = np.random.default_rng(start)
    for at in range(start, start + n, 1500):
        count = min(1500, start + n - at)
        vectors = rng.standard_normal((count, 64)).astype("float32")
        answer = http.post(f"/collections/{collection}/points", json={"points": [
            {"id": f"p{at + i}", "vector": v.tolist(), "payload": {"n": at + i}}
            for i, v in enumerate(vectors)]})
        assert answer.status_code == 200, answer.text


def _wait_done(http: httpx.Client, collection: str, field: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        backfills = http.get(f"/collections/{collection}/schema").json()["backfills"]
        mine = [b for b in backfills if b["field"] == field]
        if mine and mine[0]["state"] != "running":
            return mine[0]  # type: ignore[no-any-return]
        time.sleep(0.1)
    raise AssertionError(f"the backfill of {field} never finished: {backfills}")


def test_a_declared_default_is_backfilled_in_the_background(tmp_path: Path) -> None:
    store = tmp_path / "store"
    settings = load_settings(model="testing/hash-64", store=str(store))
    app = create_app(settings, open_store=True)
    with live_server(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        created = http.post("/collections", json={"name": "c", "dim": 64, "fingerprint": "ext"})
        assert created.status_code == 201, created.text
        _fill(http, "c", N)
        service = app.state.service
        with service.write_gate.lock:  # the backfill cannot take a page meanwhile
            declared = http.post("/collections/c/schema/fields",
                                 json={"field": "lang", "type": "str", "default": "en"})
            assert declared.status_code == 202, declared.text
            assert declared.json()["backfill"]["state"] == "running"
            assert declared.json()["points_updated"] == 0
            running = _status(store)["backfills"]
            assert [(b["collection"], b["field"], b["state"]) for b in running] == [
                ("c", "lang", "running")]
            assert running[0]["points_updated"] == 0
            # reads are not held up by a backfill waiting for the write lock
            assert http.post("/collections/c/search", json={
                "vector": [0.1] * 64, "k": 3}).status_code == 200
        done = _wait_done(http, "c", "lang")
        assert done == {**done, "state": "done", "points_total": N, "points_updated": N}
        assert _status(store)["backfills"] == []  # only the ones in progress
        exposed = http.get("/metrics").text
        assert ('embedops_field_backfill_points{collection="c",field="lang",kind="updated"} '
                f"{float(N)}") in exposed
        assert 'embedops_field_backfill_running{collection="c",field="lang"} 0.0' in exposed
        _fill(http, "c", 10, start=N)  # written after the declaration
        hits = http.post("/collections/c/search", json={
            "vector": [0.1] * 64, "k": 100, "filter": {"field": "lang", "eq": "en"}}).json()
        assert len(hits["hits"]) == 100
        counted = http.post("/collections/c/points/count", json={
            "filter": {"field": "lang", "eq": "en"}})
        if counted.status_code == 200:  # the count endpoint, where the service has one
            assert counted.json()["count"] >= N


def test_an_interrupted_backfill_resumes_when_the_service_starts(tmp_path: Path) -> None:
    store = tmp_path / "store"
    settings = load_settings(model="testing/hash-64", store=str(store))
    with live_server(create_app(settings, open_store=True)) as url, \
            httpx.Client(base_url=url, timeout=60) as http:
        http.post("/collections", json={"name": "c", "dim": 64, "fingerprint": "ext"})
        _fill(http, "c", 3000)
    # what a process killed after the declaration and one page leaves behind
    vs, ledger = open_store(store), Ledger(store / "ledger.db")
    spec = FieldSpec("tier", "str", "free", False)
    ledger.declare_field("c", spec)
    vs.update_payload("c", {"tier": "free"}, ids=[f"p{i}" for i in range(1000)])
    ledger.begin_backfill("c", "tier", 3000)
    ledger.note_backfill("c", "tier", 1000)
    vs.close()
    ledger.close()
    assert _status(store)["backfills"][0]["points_updated"] == 1000
    with live_server(create_app(settings, open_store=True)) as url, \
            httpx.Client(base_url=url, timeout=60) as http:
        done = _wait_done(http, "c", "tier")
        assert done["state"] == "done" and done["points_updated"] == 2000
        hits = http.post("/collections/c/search", json={
            "vector": [0.1] * 64, "k": 50, "filter": {"field": "tier", "eq": "free"}}).json()
        assert len(hits["hits"]) == 50


def test_the_cli_backfills_page_by_page_and_records_it(tmp_path: Path) -> None:
    vs = open_store(tmp_path / "store")
    ledger = Ledger(tmp_path / "store" / "ledger.db")
    vs.create_collection("c", 8, fingerprint="fp")
    rng = np.random.default_rng(1)
    vs.upsert("c", [f"p{i}" for i in range(250)], rng.standard_normal((250, 8)),
              [{"lang": "de"} if i % 5 == 0 else {} for i in range(250)], fingerprint="fp")
    spec = FieldSpec("lang", "str", "en", False)
    ledger.declare_field("c", spec)
    result = declared_backfill(vs, ledger, "c", spec, page_size=60)
    assert result == {"state": "done", "points_total": 200, "points_updated": 200}
    assert vs.count("c", {"field": "lang", "eq": "en"}) == 200
    assert vs.count("c", {"field": "lang", "eq": "de"}) == 50  # values kept
    [row] = ledger.backfills("c")
    assert (row["state"], row["points_total"], row["points_updated"]) == ("done", 200, 200)
    vs.close()
    ledger.close()
