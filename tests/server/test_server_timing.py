"""Every response says where its time went (``Server-Timing``), and a stage that is slow
shows up as that stage. A real server on 127.0.0.1."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest

from embedops.config import load_settings
from embedops.server import create_app
from embedops.server.timing import header_value, parse
from tests.server.live import live_server


def test_the_header_round_trips() -> None:
    value = header_value([("embed", 0.0121), ("search", 0.002), ("embed", 0.001)], 0.0205)
    assert value == "embed;dur=13.1, search;dur=2.0, total;dur=20.5"
    assert parse(value) == {"embed": 13.1, "search": 2.0, "total": 20.5}
    assert parse('db;desc="x";dur=5, bogus;dur=x, ;dur=3, cache') == {"db": 5.0}


def test_a_text_search_reports_its_stages_and_a_slow_one_stands_out(tmp_path: Path) -> None:
    settings = load_settings(model="testing/hash-64", store=tmp_path / "store")
    app = create_app(settings, open_store=True)
    with live_server(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        assert http.put("/collections/c/documents/a?wait=true",
                        json={"text": "cats sleep in the sun"}).status_code < 300
        answer = http.post("/collections/c/search", json={"query": "cats", "k": 1})
        assert answer.status_code == 200
        stages = parse(answer.headers["server-timing"])
        for name in ("auth", "auth-wait", "catalog", "catalog-wait", "embed-queue",
                     "embed-lock", "embed", "search", "search-wait", "total"):
            assert name in stages, (name, stages)
        assert sum(v for k, v in stages.items() if k != "total") <= stages["total"] + 0.5

        store = app.state.service.store
        held = threading.Event()

        def hold_the_index() -> None:  # what a long merge slice would do
            with store._index_lock.exclusive():
                held.set()
                time.sleep(0.4)

        holder = threading.Thread(target=hold_the_index)
        holder.start()
        held.wait(5)
        slow = http.post("/collections/c/search", json={"query": "cats", "k": 1})
        holder.join()
        stages = parse(slow.headers["server-timing"])
        assert stages["search"] >= 250, stages  # the wait is charged to the store search
        assert stages["embed"] < 250 and stages["catalog"] < 250, stages


@pytest.mark.parametrize("path", ["/healthz", "/no/such/path"])
def test_every_response_carries_a_total(tmp_path: Path, path: str) -> None:
    settings = load_settings(model="testing/hash-64", store=tmp_path / "store")
    with live_server(create_app(settings, open_store=True)) as url, \
            httpx.Client(base_url=url, timeout=60) as http:
        answer = http.get(path)
        assert "total" in parse(answer.headers["server-timing"])
