"""A Ray job whose write workers commit to a ledger on PostgreSQL (named by the `ledger`
setting) leaves what the local runner leaves."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import embedops
from embedops.ingest.batch import IngestOptions
from embedops.ledger.postgres import open_ledger
from embedops.store import open_store
from tests.scaleout.conftest import TEST_MODEL, summary_counts, write_corpus
from tests.store import servers

from .test_postgres_ledger import _url

pytestmark = [pytest.mark.slow,
              pytest.mark.filterwarnings("ignore::DeprecationWarning:ray.data.context")]
SETTINGS = {"model": TEST_MODEL, "chunk_tokens": 32, "chunk_overlap": 4}


@pytest.fixture(scope="module")
def ray_local() -> Iterator[None]:
    """A two-CPU local cluster for this module (one already running is used as is)."""
    ray = pytest.importorskip("ray")
    from embedops.ingest.ray_runner import USAGE_STATS_ENV, worker_env

    if ray.is_initialized():
        yield
        return
    with pytest.MonkeyPatch.context() as env:
        env.setenv(USAGE_STATS_ENV, "0")
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
                 runtime_env={"env_vars": worker_env()})
    yield
    ray.shutdown()


def _run(store: str, ledger: str, corpus: Path, ray: bool
         ) -> tuple[dict[str, Any], dict[str, Any], set[str]]:
    from embedops.ingest.ray_runner import ClusterOptions, RayIngest

    with embedops.open(store, ledger=ledger, **SETTINGS) as client:
        if ray:  # a remote store and a PostgreSQL ledger: the workers write
            assert client.ledger is not None and RayIngest(
                client.store, client.ledger, client.settings, IngestOptions(),
                ClusterOptions(address="auto")).write_on == "workers"
        summary = client.ingest([corpus], batch_size=48,
                                cluster=ClusterOptions() if ray else None)
    reader = open_ledger(ledger, read_only=True)
    try:
        docs = {d: (r.content_hash, r.chunk_count, r.fingerprint)
                for d, r in reader.documents("default").items()}
    finally:
        reader.close()
    with open_store(store, read_only=True) as opened:
        ids = {p.id for page in opened.scan("default") for p in page}
    return summary_counts(summary.to_dict()), docs, ids


def test_ray_workers_write_to_a_postgres_ledger(tmp_path: Path, ray_local: None) -> None:
    corpus = write_corpus(tmp_path / "corpus", files=2, docs=30)
    local = _run(servers.postgres_url(tmp_path / "local"), _url(tmp_path / "l1"), corpus,
                 False)
    ray = _run(servers.postgres_url(tmp_path / "ray"), _url(tmp_path / "l2"), corpus, True)
    assert ray == local and local[0]["documents_new"] == 2 * 30 + 2
