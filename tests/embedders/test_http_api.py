"""API embedders over real HTTP on 127.0.0.1: request formats, packing, the factory, the
token estimate, and a whole ingest over a server that fails 30% of the time."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from embedops.config import load_settings
from embedops.embedders import load_embedder, load_matching_embedder, load_tokenizer
from embedops.embedders.base import Embedder, Tokenizer
from embedops.embedders.http_api import EstimatingTokenizer, build_api_embedder
from embedops.embedders.resilience import ManualClock
from embedops.embedders.testing import HashEmbedder
from embedops.errors import ConfigError, FingerprintMismatch
from embedops.metrics import Metrics
from tests.server.fault_server import RANDOM_FAULTS, FaultServer

TEXTS = ["the quick brown fox", "jumps over", "the lazy dog!"]


def build(name: str, server: FaultServer, **overrides: Any) -> Any:
    knobs: dict[str, Any] = {"api_base": server.url, "api_key": "sk-test-0123456789"}
    knobs.update(overrides)
    with server.faults_off():  # the fingerprint probe at construction
        return build_api_embedder(name, load_settings(**knobs), metrics=Metrics(),
                                  clock=ManualClock(), rng=random.Random(3))


def test_openai_request_and_dimensions() -> None:
    with FaultServer(dim=256) as server:
        embedder = build("openai/text-embedding-3-small", server, api_dimensions=256)
        vectors = embedder.embed(TEXTS)
    body = server.seen[0].body
    assert server.seen[0].path == "/v1/embeddings"
    assert body["model"] == "text-embedding-3-small" and body["dimensions"] == 256
    assert sorted(body["input"]) == sorted(TEXTS)  # type: ignore[arg-type]
    assert embedder.info.dim == 256 and embedder.info.backend == "api:openai"
    assert isinstance(embedder, Embedder) and isinstance(embedder.tokenizer, Tokenizer)
    assert np.allclose(vectors, HashEmbedder(dim=256).embed(TEXTS), atol=1e-6)


def test_cohere_documents_and_queries_use_their_input_types() -> None:
    with FaultServer(dim=1024) as server:
        embedder = build("cohere/embed-english-v3.0", server, api_base=server.root)
        embedder.embed(TEXTS)
        query = embedder.embed(["a question"], "query")[0]
        embedder.embed_documents(["a document"])
        embedder.embed_queries(["another question"])
    kinds = [(s.path, s.body["input_type"]) for s in server.seen]
    assert kinds == [("/v1/embed", "search_document"), ("/v1/embed", "search_query"),
                     ("/v1/embed", "search_document"), ("/v1/embed", "search_query")]
    assert query.shape == (1024,) and abs(float(np.linalg.norm(query)) - 1) < 1e-5


def test_openai_compatible_learns_its_dimension_from_one_probe() -> None:
    with FaultServer(dim=48) as server:
        embedder = build_api_embedder("openai-compatible/my-model",
                                      load_settings(api_base=server.url))
    assert embedder.info.dim == 48 and len(server.seen) == 1
    assert "dimensions" not in server.seen[0].body


def test_openai_compatible_fingerprint_detects_a_model_swapped_behind_the_url() -> None:
    """Same URL, model name and dimension: the same model answering keeps its fingerprint,
    another model answering (the server's salt changes its vectors) gets another one."""
    with FaultServer(dim=64) as server:
        settings = load_settings(api_base=server.url)
        first = build_api_embedder("openai-compatible/m", settings).info.fingerprint
        assert build_api_embedder("openai-compatible/m", settings).info.fingerprint == first
        server.salt = "another model "
        swapped = build_api_embedder("openai-compatible/m", settings).info.fingerprint
    assert swapped != first


def test_requests_are_packed_by_items_and_by_estimated_tokens() -> None:
    texts = [f"word{i} " * 10 for i in range(10)]
    with FaultServer() as server:
        build("openai-compatible/m", server, api_dimensions=64,
              api_max_batch_items=3).embed(texts)
        by_items = sorted(len(s.items) for s in server.seen)
        server.seen.clear()
        per_text = EstimatingTokenizer(512).count(texts[:1])[0]
        build("openai-compatible/m", server, api_dimensions=64,
              api_max_batch_tokens=int(per_text * 2 / 0.75) + 1).embed(texts)
        by_tokens = [len(s.items) for s in server.seen]
    assert by_items == [1, 3, 3, 3]
    assert by_tokens == [2] * 5


def test_factory_builds_api_models_and_checks_their_configuration(tmp_path: Path) -> None:
    with FaultServer() as server:
        settings = load_settings(api_dimensions=64)
        embedder = load_embedder("openai-compatible/m", tmp_path, settings=settings,
                                 api_base=server.url)
        assert embedder.info.name == "openai-compatible/m" and embedder.info.dim == 64
    with pytest.raises(ConfigError, match="API base"):
        load_embedder("openai-compatible/m", tmp_path, settings=load_settings())
    with pytest.raises(ConfigError, match="OPENAI_API_KEY"):
        load_embedder("openai/text-embedding-3-small", tmp_path,
                      settings=load_settings(api_base="http://127.0.0.1:9/v1"))
    assert load_tokenizer("cohere/embed-english-v3.0", tmp_path).max_content_tokens == 512


@given(st.text(max_size=300))
def test_token_estimate_is_a_conservative_tokenizer(text: str) -> None:
    tok = EstimatingTokenizer(512)
    spans = tok.offsets(text)
    assert tok.count([text]) == [len(spans)]
    assert all(0 <= a < b <= len(text) and not text[a:b].isspace() for a, b in spans)
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(len(spans) - 1))
    assert len(spans) >= len(text.split())  # never fewer tokens than words
    assert len(spans) >= len(text.replace(" ", "")) / 4 - 1


def _write_corpus(root: Path, count: int) -> set[str]:
    root.mkdir()
    words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota"]
    for i in range(count):
        body = " ".join(words[(i + j) % len(words)] for j in range(20 + i % 30))
        (root / f"doc{i:03d}.txt").write_text(f"Document {i}. {body}.\n", encoding="utf-8")
    return {f"doc{i:03d}.txt" for i in range(count)}


def test_ingest_over_a_30_percent_faulty_api_loses_no_document(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from embedops.ingest.batch import BatchIngest, IngestOptions
    from embedops.ledger import Ledger
    from embedops.store import open_store

    doc_ids = _write_corpus(tmp_path / "corpus", 60)
    faults = (*RANDOM_FAULTS, "wrong_dim")
    with FaultServer(fault_rate=0.3, faults=faults, seed=11, slow_s=0.4) as server:
        env = {"API_BASE": server.url, "API_DIMENSIONS": "64", "RETRY_BASE_DELAY_S": "0.002",
               "RETRY_MAX_DELAY_S": "0.01", "API_TIMEOUT_S": "0.2", "BREAKER_OPEN_S": "0.05",
               "API_MAX_BATCH_ITEMS": "8"}
        for key, value in env.items():
            monkeypatch.setenv(f"EMBEDOPS_{key}", value)
        settings = load_settings(model="openai-compatible/hash", chunk_tokens=64,
                                 chunk_overlap=8, store=tmp_path / "store")
        store, ledger = open_store(settings.store), Ledger(settings.store)
        try:
            summary = BatchIngest(store, ledger, settings, IngestOptions(batch_size=32)).run(
                [tmp_path / "corpus"])
            embedded = set(ledger.documents("default"))
            dead = {d.doc_id: d for d in ledger.dead_letters("default")}
            first_requests = len(server.seen)
            server.fault_rate = 0.0  # the outage ends: parked documents embed on re-run
            BatchIngest(store, ledger, settings, IngestOptions(batch_size=32)).run(
                [tmp_path / "corpus"])
            after = set(ledger.documents("default"))
            chunks = sum(r.chunk_count for r in ledger.documents("default").values())
            points = store.count("default")
            left = ledger.dead_letters("default")
        finally:
            ledger.close()
            store.close()
    assert embedded | set(dead) == doc_ids and not embedded & set(dead)
    assert summary.documents_new + summary.documents_failed == len(doc_ids)
    assert all(d.stage == "embed" and d.reason and d.detail for d in dead.values())
    assert len(embedded) >= 30
    assert first_requests <= 5 * (summary.chunks_embedded + 10 * len(dead) + 20)
    assert after == doc_ids and not left and points == chunks


def test_a_collection_refuses_an_api_model_with_other_dimensions(tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    with FaultServer() as server:
        monkeypatch.setenv("EMBEDOPS_API_BASE", server.url)
        monkeypatch.setenv("EMBEDOPS_API_DIMENSIONS", "64")
        fingerprint = load_embedder("openai-compatible/m", tmp_path).info.fingerprint
        assert load_matching_embedder("openai-compatible/m", fingerprint,
                                      tmp_path).info.fingerprint == fingerprint
        monkeypatch.setenv("EMBEDOPS_API_DIMENSIONS", "32")
        with pytest.raises(FingerprintMismatch, match="migrate"):
            load_matching_embedder("openai-compatible/m", fingerprint, tmp_path)


def test_hybrid_routing_accepts_the_same_model_on_two_paths(tmp_path: Path) -> None:
    from embedops.embedders.routing import load_hybrid

    with FaultServer() as server:
        settings = load_settings(model="testing/hash-64", cache_dir=tmp_path,
                                 realtime_model="openai-compatible/hash",
                                 realtime_api_base=server.url)
        hybrid = load_hybrid(settings)
        vector = hybrid.realtime.embed(["ingest-time document"])
    assert hybrid.probe_cosine >= 0.99
    assert hybrid.realtime.info == hybrid.batch.info  # one fingerprint feeds one collection
    assert np.allclose(vector, hybrid.batch.embed(["ingest-time document"]), atol=1e-6)


@pytest.mark.parametrize(("server_args", "why"), [
    ({"salt": "v2 "}, "cosine"), ({"dim": 32}, "dimensions 32 and 64")])
def test_hybrid_routing_refuses_different_models(tmp_path: Path, server_args: dict[str, Any],
                                                  why: str) -> None:
    from embedops.embedders.routing import load_hybrid

    with FaultServer(**server_args) as server:
        settings = load_settings(model="testing/hash-64", cache_dir=tmp_path,
                                 realtime_model="openai-compatible/hash",
                                 realtime_api_base=server.url)
        with pytest.raises(FingerprintMismatch, match=why) as info:
            load_hybrid(settings)
    assert "different spaces" in str(info.value) and "migrate" in str(info.value)
