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
