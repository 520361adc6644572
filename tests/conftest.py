"""Shared fixtures. Real models load once per session; everything else uses the
TEST-ONLY hashing embedder, registered here through its environment switch."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The TEST-ONLY hashing embedder is offered only behind this switch; tests (and the CLI
# subprocesses they start) turn it on.
os.environ["EMBEDOPS_ENABLE_TEST_MODELS"] = "1"


@pytest.fixture
def held_graph_write(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[threading.Event,
                                                                        threading.Event]]:
    """The embedded store's graph writes (a checkpoint's) wait, once started
    (``entered``), until ``release`` is set, then the real faiss write follows: the graph
    stays frozen and nothing merges meanwhile."""
    from embedops.store.hnsw_graph import HnswGraph

    entered, release = threading.Event(), threading.Event()
    real = HnswGraph.write_graph

    def held(self: HnswGraph, write: Callable[[bytes], int]) -> None:
        entered.set()
        release.wait(60)
        real(self, write)

    monkeypatch.setattr(HnswGraph, "write_graph", held)
    yield entered, release
    release.set()


@pytest.fixture(scope="session")
def model_cache(model_cache_prepared: tuple[Path, subprocess.CompletedProcess[str]]) -> Path:
    """A cache dir private to this test session: exports and reassembly happen for real."""
    return model_cache_prepared[0]


@pytest.fixture(scope="session")
def model_cache_prepared(tmp_path_factory: pytest.TempPathFactory
                         ) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """The session's cache, and the real ``embedops models --prepare all-MiniLM-L6-v2
    --json`` run that prepared the default model in it while it was empty: the one
    preparation of the session, whose output tests/e2e checks (it may have failed; the
    cache is then empty, and the tests that load the model prepare it themselves)."""
    cache = tmp_path_factory.mktemp("embedops-cache")
    first = subprocess.run(
        [sys.executable, "-m", "embedops", "--store", str(cache.parent / "no-store"),
         "models", "--prepare", "all-MiniLM-L6-v2", "--json"],
        capture_output=True, text=True, timeout=600,
        env={**os.environ, "EMBEDOPS_CACHE_DIR": str(cache)})
    return cache, first


@pytest.fixture(scope="session")
def minilm_tokenizer(model_cache: Path):  # type: ignore[no-untyped-def]
    from embedops.embedders import load_tokenizer

    return load_tokenizer("all-MiniLM-L6-v2", model_cache)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA
