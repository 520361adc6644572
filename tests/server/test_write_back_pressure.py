"""A write that waits for room in the embedded store's pending segment waits after the
service's write gate: writes behind it (another collection's, the real-time worker's)
go on meanwhile, and it returns once the merger has made room."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

from embedops.config import load_settings
from embedops.ingest.batch import IngestOptions
from embedops.server import create_app
from embedops.store import embedded
from tests.server.live import live_server

DIM = 24
PARAMS = {"exact_threshold": 0, "checkpoint_every": 300}


def _points(ids: range, rng: np.random.Generator) -> dict[str, object]:
    rows = rng.standard_normal((len(ids), DIM)).astype(np.float32)
    return {"points": [{"id": str(i), "vector": row.tolist()}
                       for i, row in zip(ids, rows, strict=True)]}


def test_a_write_waiting_for_room_does_not_hold_the_write_gate(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        held_graph_write: tuple[threading.Event, threading.Event]) -> None:
    entered, release = held_graph_write
    monkeypatch.setattr(embedded, "PENDING_MAX", 200)
    rng = np.random.default_rng(3)
    settings = load_settings(model="testing/hash-e5-64", store=str(tmp_path / "s"))
    app = create_app(settings, open_store=True)
    with live_server(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        for name in ("a", "b"):
            made = http.post("/collections", json={"name": name, "dim": DIM,
                                                   "fingerprint": "fp", "index_params": PARAMS})
            assert made.status_code == 201, made.text
        store = app.state.service.store
        release.set()
        assert http.post("/collections/a/points", json=_points(range(2000), rng)).is_success
        assert store.wait_checkpointed(60) and store.wait_merged(60)
        entered.clear()
        release.clear()
        store.delete("a", ids=[str(i) for i in range(300)])  # (a checkpoint comes due)
        assert entered.wait(30)  # the graph is frozen while its file is "written"

        answers: list[httpx.Response] = []
        waiting = threading.Thread(target=lambda: answers.append(http.post(
            "/collections/a/points", json=_points(range(2000, 2300), rng))), daemon=True)
        waiting.start()  # 300 points pending: past the limit of 200, it waits for room
        waiting.join(1.0)
        assert waiting.is_alive(), "a write went on past the pending segment's limit"

        _goes_through_the_gate(http)
        assert waiting.is_alive()
        release.set()
        waiting.join(30)
        assert not waiting.is_alive() and answers[0].is_success, answers
        assert answers[0].json()["upserted"] == 300
        assert all(live.index.pending <= 200 for live in store._indexes.live.values())


def _frozen_model_collection(http: httpx.Client, store: Any,
                             entered: threading.Event, release: threading.Event) -> None:
    """Collection ``d`` (the service's model) with 2,000 points merged and checkpointed,
    300 of them then deleted: a checkpoint comes due and holds the graph frozen until
    ``release``. Collection ``b`` takes raw vectors."""
    made = http.post("/collections", json={"name": "d", "index_params": PARAMS})
    assert made.status_code == 201, made.text
    made = http.post("/collections", json={"name": "b", "dim": DIM, "fingerprint": "fp"})
    assert made.status_code == 201, made.text
    info = store.get_collection("d")
    release.set()
    rows = np.random.default_rng(4).standard_normal((2000, info.dim)).astype(np.float32)
    store.upsert("d", [f"x{i}" for i in range(2000)], rows, None,
                 fingerprint=info.fingerprint)
    assert store.wait_checkpointed(60) and store.wait_merged(60)
    entered.clear()
    release.clear()
    store.delete("d", ids=[f"x{i}" for i in range(300)])
    assert entered.wait(30)


def _waits_for_room(store: Any) -> None:
    """Until the document's ~300 chunks are in ``d`` (its writer then waits for room)."""
    deadline = time.monotonic() + 30
    while store.count("d") <= 1700 + 200 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert store.count("d") > 1700 + 200, "the document was not written"


def _goes_through_the_gate(http: httpx.Client) -> None:
    started = time.monotonic()
    beside = http.post("/collections/b/points", json=_points(range(50),
                                                           np.random.default_rng(5)))
    took = time.monotonic() - started
    assert beside.is_success, beside.text
    assert took < 10, f"a write through the gate waited {took:.1f} s behind a full one"


WORDS = " ".join(f"word{i}" for i in range(2400))  # ~300 chunks of 8 tokens


def test_the_real_time_worker_waits_for_room_after_the_write_gate(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        held_graph_write: tuple[threading.Event, threading.Event]) -> None:
    """The real-time worker applies a document whose chunks fill the pending segment; it
    waits for room without the gate, so a write through the gate goes on meanwhile."""
    entered, release = held_graph_write
    monkeypatch.setattr(embedded, "PENDING_MAX", 200)
    settings = load_settings(model="testing/hash-e5-64", store=str(tmp_path / "s"),
                             chunk_tokens=8, chunk_overlap=0)
    app = create_app(settings, open_store=True)
    with live_server(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        store = app.state.service.store
        _frozen_model_collection(http, store, entered, release)
        queued = http.put("/collections/d/documents/long", json={"text": WORDS})
        assert queued.status_code in (200, 202), queued.text
        _waits_for_room(store)
        _goes_through_the_gate(http)
        release.set()
        done = http.get("/collections/d/documents/long")
        assert done.status_code == 200, done.text


def test_a_batch_run_waits_for_room_after_the_write_gate(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        held_graph_write: tuple[threading.Event, threading.Event]) -> None:
    """The batch path run inside the service (``Service.batch_ingest``) flushes a batch
    that fills the pending segment; it waits for room without the gate."""
    entered, release = held_graph_write
    monkeypatch.setattr(embedded, "PENDING_MAX", 200)
    settings = load_settings(model="testing/hash-e5-64", store=str(tmp_path / "s"),
                             chunk_tokens=8, chunk_overlap=0)
    source = tmp_path / "src"
    source.mkdir()
    (source / "long.txt").write_text(WORDS)
    app = create_app(settings, open_store=True)
    with live_server(app) as url, httpx.Client(base_url=url, timeout=60) as http:
        service = app.state.service
        _frozen_model_collection(http, service.store, entered, release)
        summaries: list[Any] = []
        run = threading.Thread(target=lambda: summaries.append(service.batch_ingest(
            [source], IngestOptions(collection="d"))), daemon=True)
        run.start()
        _waits_for_room(service.store)
        assert run.is_alive()
        _goes_through_the_gate(http)
        release.set()
        run.join(60)
        assert summaries and summaries[0].documents_failed == 0, summaries
