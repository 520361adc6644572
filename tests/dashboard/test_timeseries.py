"""The service's time series and the dashboard's JSON: samples kept (and bounded) in a
real SQLite ledger, rates worked out across counter restarts, the sampler of a real
service on 127.0.0.1, history that survives a restart, scopes, and the OpenAPI entries."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import embedops
from embedops.config import load_settings
from embedops.ledger import Ledger
from embedops.ledger.postgres import open_ledger
from embedops.server import create_app
from embedops.server.dashboard_pages import plotly_js
from embedops.server.timeseries import series
from tests.server.live import live_server

TEST_MODEL = "testing/hash-64"


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    """A fresh ledger on SQLite, and on the PostgreSQL server the store tests start."""
    location = str(tmp_path / "ledger.db")
    if request.param == "postgresql":
        from tests.store import servers

        base = servers.postgres_base_url()
        schema = "d_" + hashlib.sha256(str(tmp_path).encode()).hexdigest()[:20]
        location = f"{base}{'&' if '?' in base else '?'}schema={schema}"
    opened = open_ledger(location)
    try:
        yield opened
    finally:
        opened.close()


def test_samples_are_kept_in_order_and_bounded(ledger: Ledger) -> None:
    for n in range(6):
        ledger.record_sample(1000.0 + 60 * n, {"queue_depth": n}, retention_s=3600,
                             max_samples=4)
    kept = ledger.samples()
    assert [t for t, _ in kept] == [1120.0, 1180.0, 1240.0, 1300.0]  # the newest 4
    assert [d["queue_depth"] for _, d in kept] == [2, 3, 4, 5]
    ledger.record_sample(4800.0, {"queue_depth": 9}, retention_s=3600)
    assert [t for t, _ in ledger.samples()] == [1240.0, 1300.0, 4800.0]  # older than 1 h go
    assert [t for t, _ in ledger.samples(since=1300.0)] == [1300.0, 4800.0]
    ledger.record_sample(4800.0, {"queue_depth": 10})  # the same instant: replaced
    assert [d["queue_depth"] for _, d in ledger.samples(since=4800.0)] == [10]


def test_rates_come_from_consecutive_samples_and_survive_a_counter_reset() -> None:
    def sample(points: int, http_5xx: float) -> dict[str, object]:
        return {"points_total": points, "collections": {"c": {"points": points}},
                "counters": {"http_5xx": http_5xx}}

    out = series([(0.0, sample(0, 0)), (10.0, sample(50, 5)), (20.0, sample(40, 2)),
                  (30.0, sample(100, 4))])
    assert out["vectors_per_s"] == [None, 5.0, 0.0, 6.0]  # shrinking is no throughput
    assert out["http_5xx_per_s"] == [None, 0.5, 0.2, 0.2]  # 5 -> 2: a restart, 2 new
    assert out["points"] == {"c": [0, 50, 40, 100]}
    assert out["t"] == [0.0, 10.0, 20.0, 30.0]


@pytest.fixture
def store(tmp_path: Path) -> Path:
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "a.txt").write_text("Queue depth and indexing lag, sampled every minute.\n")
    (notes / "empty.txt").write_text("")
    with embedops.open(tmp_path / "store") as client:
        client.ingest([notes], "notes", model=TEST_MODEL)
    return tmp_path / "store"


def _wait_samples(url: str, at_least: int, headers: dict[str, str] | None = None) -> dict:
    deadline = time.monotonic() + 20
    while True:
        got = httpx.get(f"{url}/ui/api/series", params={"minutes": 60}, headers=headers)
        assert got.status_code == 200, got.text
        if len(got.json()["t"]) >= at_least:
            return got.json()
        assert time.monotonic() < deadline, "the sampler did not record"
        time.sleep(0.1)


def test_the_sampler_records_what_metrics_show_and_it_survives_a_restart(store: Path) -> None:
    settings = load_settings(model=TEST_MODEL, store=store, dashboard_sample_s=0.2,
                             memory_budget_bytes=2**26)
    with live_server(create_app(settings, open_store=True)) as url:
        first = _wait_samples(url, 3)
        assert first["points"] == {"notes": [1] * len(first["t"])}
        assert all(d == 0 for d in first["queue_depth"])
        overview = httpx.get(f"{url}/ui/api/overview").json()
        assert [(c["name"], c["points"], c["documents"]) for c in overview["collections"]] == [
            ("notes", 1, 1)]
        assert overview["dead_letters"] == 1 and overview["queue_depth"] == 0
        memory = overview["memory"]
        assert memory["budget_bytes"] == 2**26 and memory["warn_share"] == 0.8
        assert 0 <= memory["share"] < 1  # the resident indexes (none loaded yet)
        assert first["memory_share"][-1] == pytest.approx(memory["share"], abs=1e-3)
        assert first["index_bytes"][-1] == pytest.approx(memory["index_bytes"], rel=1e-3)
    with live_server(create_app(settings, open_store=True)) as url:
        again = _wait_samples(url, len(first["t"]) + 2)
        assert again["t"][: len(first["t"])] == first["t"]  # the history came back


def test_viewing_needs_read_and_actions_need_admin(store: Path) -> None:
    with embedops.open(store) as client:
        assert client.ledger is not None
        read, _ = client.ledger.create_key(["read"], None, "viewer")
        admin, _ = client.ledger.create_key(["admin"], None, "operator")
    settings = load_settings(model=TEST_MODEL, store=store, dashboard_sample_s=0.2)
    with live_server(create_app(settings, open_store=True)) as url:
        assert httpx.get(f"{url}/ui/api/overview").status_code == 401
        assert httpx.get(f"{url}/ui/").status_code == 200  # the sign-in page is open
        as_reader = {"Authorization": f"Bearer {read}"}
        session = httpx.get(f"{url}/ui/api/session", headers=as_reader).json()
        assert session == {"auth_required": True, "key_id": read.split("_")[1],
                           "scopes": ["read"], "collections": None}
        letters = httpx.get(f"{url}/ui/api/dead-letters", headers=as_reader).json()
        assert [(d["doc_id"], d["stage"]) for d in letters["dead_letters"]] == [
            ("empty.txt", letters["dead_letters"][0]["stage"])]
        refused = httpx.post(f"{url}/ui/api/dead-letters/purge", json={}, headers=as_reader)
        assert refused.status_code == 403
        as_admin = {"Authorization": f"Bearer {admin}"}
        purged = httpx.post(f"{url}/ui/api/dead-letters/purge", headers=as_admin,
                            json={"collection": "notes", "doc_ids": ["empty.txt"]})
        assert purged.json() == {"purged": 1}
        assert httpx.get(f"{url}/ui/api/dead-letters",
                         headers=as_reader).json()["dead_letters"] == []


def test_the_page_and_its_assets_are_served_from_the_package(store: Path) -> None:
    settings = load_settings(model=TEST_MODEL, store=store)
    with live_server(create_app(settings, open_store=True)) as url:
        page = httpx.get(f"{url}/ui", follow_redirects=True)
        assert page.status_code == 200 and "<title>embedops dashboard</title>" in page.text
        assert "default-src 'self'" in page.headers["content-security-policy"]
        assert "http" not in page.text.replace("http-equiv", "")  # no CDN, no remote asset
        js = httpx.get(f"{url}/ui/static/plotly.min.js")
        path = plotly_js()
        assert path is not None and js.status_code == 200
        assert js.content == path.read_bytes() and b"plotly.js v" in js.content[:100]
        assert httpx.get(f"{url}/ui/static/dashboard.js").status_code == 200
        assert httpx.get(f"{url}/ui/static/..%2F..%2Fapp.py").status_code == 404
        assert httpx.get(f"{url}/ui/static/nothing.js").status_code == 404
        doc = httpx.get(f"{url}/openapi.json").json()
        for path_name in ("/ui/api/overview", "/ui/api/series", "/ui/api/quality",
                          "/ui/api/migrations", "/ui/api/dead-letters"):
            ok = doc["paths"][path_name]["get"]["responses"]["200"]
            assert "$ref" in ok["content"]["application/json"]["schema"], path_name
