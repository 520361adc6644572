"""Shared fixtures. Real models load once per session; everything else uses the
TEST-ONLY hashing embedder, registered here through its environment switch."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# The TEST-ONLY hashing embedder is offered only behind this switch; tests (and the CLI
# subprocesses they start) turn it on.
os.environ["EMBEDOPS_ENABLE_TEST_MODELS"] = "1"


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache dir private to this test session: exports and reassembly happen for real."""
    return tmp_path_factory.mktemp("embedops-cache")


@pytest.fixture(scope="session")
def minilm_tokenizer(model_cache: Path):  # type: ignore[no-untyped-def]
    from embedops.embedders import load_tokenizer

    return load_tokenizer("all-MiniLM-L6-v2", model_cache)


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA
