"""`--ledger` / `EMBEDOPS_LEDGER` as a user gives it: the commands run against a ledger
on PostgreSQL with the embedded store, pgvector and Milvus; `status` names the ledger
without its password; a bad location is one line and exit 2."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from embedops.config import mask_url
from embedops.ledger.postgres import open_ledger
from tests.e2e.conftest import TEST_MODEL
from tests.ledger.test_postgres_ledger import _url
from tests.server.proc import serving
from tests.store import servers


class LedgerCli:
    """`embedops --store STORE --ledger LEDGER ...` in a subprocess."""

    def __init__(self, store: str, ledger: str) -> None:
        self.store, self.ledger = store, ledger

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "embedops", "--store", self.store, "--ledger",
               self.ledger, *args]
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        if check and proc.returncode != 0:
            raise AssertionError(f"{args} exited {proc.returncode}\n{proc.stderr[-3000:]}")
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)


def _corpus(root: Path, n: int = 30) -> Path:
    root.mkdir(parents=True)
    lines = [json.dumps({"id": f"p{i:03d}", "text": f"passage {i} about topic {i % 7} "
                         f"and the ledger of record {i}"}) for i in range(n)]
    (root / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    return root


def _store(kind: str, where: Path) -> str:
    if kind == "embedded":
        return str(where / "store")
    return servers.postgres_url(where) if kind == "postgresql" else servers.milvus_url(where)


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["embedded", "postgresql", "milvus"])
def test_every_command_runs_on_a_postgres_ledger(tmp_path: Path, kind: str) -> None:
    ledger_url = _url(tmp_path / "ledger")
    cli = LedgerCli(_store(kind, tmp_path / "db"), ledger_url)
    corpus = str(_corpus(tmp_path / "corpus"))
    first = cli.json("ingest", corpus, "--id-field", "id", "--model", TEST_MODEL)
    assert first["documents_new"] == 30 and first["chunks_embedded"] == 30
    again = cli.json("ingest", corpus, "--id-field", "id")
    assert again["documents_unchanged"] == 30 and again["chunks_embedded"] == 0
    ledger = open_ledger(ledger_url, read_only=True)
    try:
        assert ledger.document_count("default") == 30  # the rows are on the server
    finally:
        ledger.close()
    if kind == "embedded":
        assert not (tmp_path / "db" / "store" / "ledger.db").exists()
    assert len(cli.json("search", "topic 3", "-k", "3")) == 3
    assert cli.json("get", "p003")["text"].startswith("passage 3 ")
    status = cli.json("status")
    assert status["ledger"] == mask_url(ledger_url) and status["documents"] == 30
    assert cli.run("verify", "--json").returncode == 0
    assert cli.json("stale")["stale_documents"] == 0
    assert cli.json("dlq", "list") == []
    assert cli.json("reembed", "--older-than", "0s")["documents_changed"] == 30
    assert cli.json("canary", "create", "qa", "--synthetic", "5", "--collection",
                    "default")["queries"] == 5
    assert cli.json("canary", "run", "qa")["recall@10"] > 0.5
    assert cli.json("keys", "create", "--scope", "read")["key"]
    assert cli.run("jobs", "list", "--json").returncode == 0
    if kind != "milvus":  # Milvus migrates from an alias only (docs/scale-out.md)
        started = cli.json("migrate", "start", "default", "--to", "testing/hash-e5-64")
        assert started["phase"] == "ready" and started["documents_done"] == 30


@pytest.mark.slow
def test_serve_writes_through_a_postgres_ledger(tmp_path: Path) -> None:
    ledger_url = _url(tmp_path / "ledger")
    store = servers.postgres_url(tmp_path / "db")
    with serving(store, env={"EMBEDOPS_LEDGER": ledger_url}) as server:  # type: ignore[arg-type]
        put = httpx.put(f"{server.url}/collections/notes/documents/n1?wait=true",
                        json={"text": "replicas share one ledger"}, timeout=30)
        assert put.status_code in (200, 201), put.text
        hits = httpx.post(f"{server.url}/collections/notes/search",
                          json={"query": "ledger", "k": 1}, timeout=30).json()["hits"]
        assert hits[0]["doc_id"] == "n1"
    ledger = open_ledger(ledger_url, read_only=True)
    try:
        stored = ledger.stored("notes", "n1")
        assert stored is not None and stored.text == "replicas share one ledger"
    finally:
        ledger.close()


@pytest.mark.slow
def test_serve_replicas_apply_each_documents_writes_in_order(tmp_path: Path) -> None:
    """Two `serve` replicas on one PostgreSQL ledger and one pgvector store: a long
    version of each document goes to one replica (slow to prepare: a child process) and a
    short, newer one to the other right after. Every document ends as its newer write —
    the second replica waits for the first instead of writing the short version under
    the long one's feet."""
    import time

    ledger_url = _url(tmp_path / "ledger")
    store = servers.postgres_url(tmp_path / "db")
    env = {"EMBEDOPS_LEDGER": ledger_url}
    docs = [f"n{i}" for i in range(4)]
    long_text = " ".join(f"filler{i % 997}" for i in range(12_000))  # ~100 kB
    with serving(store, env=env) as one, serving(store, env=env) as two:  # type: ignore[arg-type]
        for doc in docs:
            for replica, text in ((one, f"{doc} long {long_text}"), (two, f"{doc} short")):
                put = httpx.put(f"{replica.url}/collections/notes/documents/{doc}",
                                json={"text": text}, timeout=30)
                assert put.status_code in (200, 201, 202), put.text
        deadline = time.monotonic() + 90
        watcher = open_ledger(ledger_url, read_only=True)
        try:
            while True:  # until every queued write (the long ones too) has been applied
                states = [httpx.get(f"{two.url}/collections/notes/documents/{d}",
                                    timeout=30).json() for d in docs]
                if (all(s["status"] == "embedded" for s in states)
                        and watcher.queue_stats()[0] == 0) or time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        finally:
            watcher.close()
        assert [s["status"] for s in states] == ["embedded"] * len(docs), states
        for doc in docs:
            hits = httpx.post(f"{one.url}/collections/notes/search", timeout=30, json={
                "query": f"{doc} short", "k": 10,
                "filter": {"field": "doc_id", "eq": doc}}).json()["hits"]
            assert [h["text"] for h in hits] == [f"{doc} short"]
    ledger = open_ledger(ledger_url, read_only=True)
    try:
        for doc in docs:
            stored = ledger.stored("notes", doc)
            assert stored is not None and stored.text == f"{doc} short"
            status = ledger.version_status("notes", doc)
            assert status is not None and status["applied_seq"] == status["latest_seq"]
        assert ledger.queue_stats()[0] == 0
    finally:
        ledger.close()


@pytest.mark.slow
def test_wait_true_answers_when_another_replica_applied_the_write(tmp_path: Path) -> None:
    """A replica that only queues writes (`realtime_apply` off) answers `?wait=true` with
    200 once the replica that applies writes has applied it: the waiting request asks the
    shared ledger, not only its own process's worker, and the applying replica is woken
    by the ledger's notification at once (its own poll is set to a minute here)."""
    import time

    ledger_url = _url(tmp_path / "ledger")
    store = servers.postgres_url(tmp_path / "db")
    env = {"EMBEDOPS_LEDGER": ledger_url, "EMBEDOPS_SERVER_WAIT_TIMEOUT_S": "20"}
    front_env = {**env, "EMBEDOPS_REALTIME_APPLY": "0"}
    back_env = {**env, "EMBEDOPS_REALTIME_POLL_S": "60"}
    with serving(store, env=front_env) as front, serving(store, env=back_env):  # type: ignore[arg-type]
        started = time.monotonic()
        put = httpx.put(f"{front.url}/collections/notes/documents/w1?wait=true",
                        json={"text": "applied by the other replica"}, timeout=60)
        assert put.status_code == 200 and put.json()["status"] == "embedded", put.text
        assert time.monotonic() - started < 10
        hits = httpx.post(f"{front.url}/collections/notes/search", timeout=30,
                          json={"query": "the other replica", "k": 1}).json()["hits"]
        assert [h["doc_id"] for h in hits] == ["w1"]


@pytest.mark.parametrize("location, message", [
    ("mysql://db/x", "scheme 'mysql'"),
    ("postgresql://u:secret@db:port/x", "port"),
    ("postgresql://db/x?schema=Bad-Name", "schema 'Bad-Name'"),
])
def test_a_bad_ledger_location_is_one_line_and_exit_2(tmp_path: Path, location: str,
                                                      message: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "embedops", "--store",
                           str(tmp_path / "s"), "--ledger", location, "status"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "error (config)" in lines[0] and message in lines[0]
    assert "secret" not in proc.stderr
    assert not (tmp_path / "s").exists()


def test_status_names_the_ledger_without_its_password(tmp_path: Path) -> None:
    assert mask_url("postgresql://eo:s3cret@db:5432/l?schema=x") == \
        "postgresql://eo:***@db:5432/l?schema=x"
    assert mask_url("postgresql://db/l") == "postgresql://db/l"
    assert mask_url("/var/lib/ledger.db") == "/var/lib/ledger.db"
    store = tmp_path / "store"
    proc = subprocess.run([sys.executable, "-m", "embedops", "--store", str(store),
                           "status", "--json"], capture_output=True, text=True, timeout=60,
                          env={**os.environ,
                               "EMBEDOPS_LEDGER": str(tmp_path / "elsewhere.db")})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ledger"] == str(tmp_path / "elsewhere.db")
