"""The cluster stages without a cluster: layout, options, the vectors the write stage
gets from the embed stage, and failures that end as the local runner's dead letters."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from embedops.config import load_settings
from embedops.embedders.testing import HashEmbedder
from embedops.errors import ConfigError, ModelNotFound, PermanentEmbedderError
from embedops.ingest.batch import IngestOptions
from embedops.ingest.chunking import make_chunker
from embedops.ingest.precomputed import PrecomputedEmbedder
from embedops.ingest.ray_runner import ClusterJobError, ClusterOptions, _job_error, plan_layout
from embedops.ingest.ray_stages import EmbedStage, WriteStage
from embedops.ingest.stages import Work, classify
from embedops.ingest.write import Target, write_documents
from embedops.ledger import Ledger
from embedops.store import open_store
from embedops.types import Document


class Poisoned(HashEmbedder):
    """The test embedder, failing every batch that holds the word "poison"."""

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        if any("poison" in t for t in texts):
            raise PermanentEmbedderError("poisoned input")
        return super()._embed_batch(texts)


def test_layout_one_embedder_per_gpu_or_per_cpu_slot() -> None:
    assert (plan_layout(2, 0, 1.0).embedders, plan_layout(2, 0, 1.0).tokenizers) == (1, 1)
    assert (plan_layout(16, 0, 2.0).embedders, plan_layout(16, 0, 2.0).tokenizers) == (14, 1)
    gpus = plan_layout(64, 8, 1.0)
    assert (gpus.gpus, gpus.embedders, gpus.tokenizers) == (8, 8, 56)


def test_cluster_options_come_from_the_settings() -> None:
    settings = load_settings(ray_address="auto", ray_num_gpus=2, ray_cpus_per_tokenizer=0.5)
    options = ClusterOptions.from_settings(settings, num_gpus=None, address="ray://h:10001")
    assert (options.address, options.num_gpus, options.cpus_per_tokenizer) == (
        "ray://h:10001", 2, 0.5)


def _works(chunker) -> list[Work]:  # type: ignore[no-untyped-def]
    texts = {"good": "vectors and graphs " * 30, "bad": "a poison pill in the text",
             "also-good": "ledger batch query"}
    return [classify(Document(i, t, source=f"{i}.txt"), None, chunker, lambda: None)
            for i, t in texts.items()]


def test_embed_stage_failures_become_the_local_runners_dead_letters(tmp_path: Path) -> None:
    settings = load_settings(model="testing/hash-64", chunk_tokens=16, chunk_overlap=2)
    embedder = Poisoned()
    chunker = make_chunker(settings, embedder.tokenizer)
    store, ledger = open_store(tmp_path / "s"), Ledger(tmp_path / "s")
    info = embedder.info
    targets = {name: store.create_collection(name, info.dim, fingerprint=info.fingerprint,
                                             model=info.name) for name in ("local", "ray")}
    failures: dict[str, list[tuple[str, ...]]] = {"local": [], "ray": []}

    def on_failure(name: str):  # type: ignore[no-untyped-def]
        return lambda w, *why: failures[name].append((w.doc.id, *why))

    write_documents(store, ledger, [Target(targets["local"], embedder, chunker)],
                    _works(chunker), on_failure("local"))
    stage = EmbedStage.__new__(EmbedStage)  # the stage as an actor holds it, model given
    stage.embedder = embedder
    works = _works(chunker)
    out = stage({"item": np.array(works, dtype=object)})
    precomputed = PrecomputedEmbedder(info, embedder.tokenizer, [
        (w, e.vectors, e.failure) for w, e in zip(out["item"], out["embedded"], strict=True)])
    write_documents(store, ledger, [Target(targets["ray"], precomputed, chunker)],
                    list(out["item"]), on_failure("ray"))

    assert failures["ray"] == failures["local"] == [
        ("bad", "embed", "embedder_permanent", "poisoned input")]
    local = {p.id: p.vector for page in store.scan("local", with_vectors=True) for p in page}
    ray = {p.id: p.vector for page in store.scan("ray", with_vectors=True) for p in page}
    assert sorted(ray) == sorted(local) and len(local) > 2
    for point_id, vector in local.items():
        np.testing.assert_allclose(ray[point_id], vector, atol=1e-7)
    assert set(ledger.documents("ray")) == set(ledger.documents("local")) == {
        "good", "also-good"}
    ledger.close()
    store.close()


def test_write_stage_never_starts_a_ledger_of_its_own(tmp_path: Path) -> None:
    settings = load_settings(store=str(tmp_path / "s"))
    with pytest.raises(ConfigError, match="not reachable"):
        WriteStage(settings, IngestOptions(), str(tmp_path / "elsewhere" / "ledger.db"))
    assert not (tmp_path / "elsewhere").exists()


def test_errors_from_workers_come_back_as_themselves() -> None:
    ours = ModelNotFound("no weights for x")
    wrapped = RuntimeError("task failed")
    wrapped.__cause__ = ours
    assert _job_error(wrapped) is ours
    ray_error = type("ActorDiedError", (Exception,), {"__module__": "ray.exceptions"})
    assert isinstance(_job_error(ray_error("the actor died\nmore")), ClusterJobError)


def test_cluster_flags_need_the_ray_runner(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "embedops", "--store", str(tmp_path / "s"),
                           "ingest", str(tmp_path), "--num-gpus", "1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "--runner ray" in proc.stderr
