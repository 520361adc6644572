"""Background writes of the serving process stay out of the queries' way: they run on a
model instance of their own (one thread, same vectors) and in threads the OS schedules
after the HTTP loop and the queries (see ``ingest/targets.py``)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import httpx
import numpy as np
import pytest

from embedops.config import load_settings
from embedops.embedders import load_embedder
from embedops.ingest.targets import EmbedderPool
from embedops.server import create_app
from embedops.server.app import load_served
from tests.server.live import live_server

TEXTS = ["Rivers carry sediment to the sea.", "The committee approved the budget.",
         "A short note.", "Photosynthesis turns light into chemical energy in plants."]


@pytest.mark.slow
def test_background_writes_embed_on_their_own_instance(model_cache: Path) -> None:
    settings = load_settings(model="all-MiniLM-L6-v2", cache_dir=str(model_cache))
    served = load_embedder("all-MiniLM-L6-v2", model_cache, backend="onnx-int8")
    own = EmbedderPool(settings, [served], background_threads=1).locked(served)
    assert own is not served and own.info.fingerprint == served.info.fingerprint
    assert np.allclose(own.embed(TEXTS, "document"), served.embed(TEXTS, "document"),
                       atol=1e-5)
    # what `embedops serve` and the app load (server/app.py: load_served)
    quiet = load_served(settings.model_copy(update={"backend": "onnx-int8"}))
    assert own._inner is not served  # type: ignore[attr-defined]  # (its own, locked)
    assert [_spinning(e) for e in (served, quiet, own._inner)] == [  # type: ignore[attr-defined]
        True, False, False]
    assert np.allclose(quiet.embed(TEXTS, "document"), served.embed(TEXTS, "document"))
    shared = EmbedderPool(settings, [served], background_threads=0).locked(served)
    assert type(shared).__name__ == "_LockedEmbedder"  # takes turns on the served one
    assert np.allclose(shared.embed(TEXTS, "document"), served.embed(TEXTS, "document"))


def test_background_threads_run_at_lower_priority(tmp_path: Path) -> None:
    settings = load_settings(model="testing/hash-64", store=str(tmp_path / "store"),
                             background_nice=5)
    base = os.getpriority(os.PRIO_PROCESS, 0)
    with live_server(create_app(settings, open_store=True)) as url, \
            httpx.Client(base_url=url, timeout=30) as http:
        put = http.put("/collections/c/documents/a", params={"wait": "true"},
                       json={"text": "a document"})
        assert put.json()["status"] == "embedded"
        threads = {t.name: t for t in threading.enumerate()}
        for name in ("embedops-realtime", "embedops-migrations"):
            native = threads[name].native_id
            assert native is not None
            assert os.getpriority(os.PRIO_PROCESS, native) == min(19, base + 5), name
        # the HTTP loop and the query path are left at normal priority
        assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == base


def _spinning(embedder: object) -> bool:
    """Whether the ONNX session's idle worker threads spin (its default)."""
    options = embedder._session.get_session_options()  # type: ignore[attr-defined]
    try:
        return options.get_session_config_entry("session.intra_op.allow_spinning") != "0"
    except Exception:  # not set: ONNX Runtime's default, spinning
        return True


def test_the_serving_process_loads_models_with_quiet_threads() -> None:
    from embedops.server.app import serving_settings

    assert serving_settings(load_settings()).onnx_spinning is False
    assert serving_settings(load_settings(onnx_spinning=True)).onnx_spinning is True
