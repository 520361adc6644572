"""`embedops migrate` as a user runs it: a backfill killed with SIGKILL shows the right
phase and resumes without redoing committed batches; a collection addressed by its name
gets an alias transparently; the commands' JSON carries the documented keys."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from embedops.ledger import Ledger
from tests.e2e.conftest import Cli

TARGET = "testing/hash-e5-64"


def _corpus(root: Path, n: int) -> Path:
    root.mkdir(parents=True)
    lines = [json.dumps({"id": f"p{i:05d}", "text": f"passage {i} on topic {i % 11}"})
             for i in range(n)]
    (root / "corpus.jsonl").write_text("\n".join(lines) + "\n")
    return root


@pytest.mark.slow
def test_sigkill_mid_backfill_then_resume_redoes_no_committed_batch(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "store")
    total = 1500
    cli.ingest(str(_corpus(tmp_path / "docs", total)), "--id-field", "id",
               "--collection", "kb")
    cmd = [sys.executable, "-m", "embedops", "--store", str(cli.store), "migrate", "start",
           "kb", "--to", TARGET, "--max-rate", "150", "--json"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env=os.environ.copy())
    deadline = time.monotonic() + 60
    done = 0
    while time.monotonic() < deadline and done < total // 4:
        time.sleep(0.2)
        status = cli.run("migrate", "status", "kb", "--json", check=False)
        if status.returncode == 0:
            done = json.loads(status.stdout)["documents_done"]
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    after_kill = cli.json("migrate", "status", "kb")
    assert after_kill["phase"] == "backfilling"
    assert 0 < after_kill["documents_done"] < total
    ledger = Ledger(cli.store, read_only=True)
    shadow = after_kill["shadow"]
    before = {d: r.last_embedded_at for d, r in ledger.documents(shadow).items()}
    ledger.close()
    resumed = cli.json("migrate", "resume", "kb", "--max-rate", "100000")
    assert resumed["phase"] == "ready" and resumed["documents_done"] == total
    ledger = Ledger(cli.store, read_only=True)
    now = ledger.documents(shadow)
    ledger.close()
    assert len(now) == total
    redone = [d for d, stamp in before.items() if now[d].last_embedded_at != stamp]
    assert redone == []  # committed batches were not embedded again
    # at most the one uncommitted batch was embedded twice
    assert resumed["chunks_done"] <= total + 64
    assert cli.json("verify", "--collection", shadow)[0]["ok"] is True


def test_migrating_a_collection_by_name_makes_it_an_alias(tmp_path: Path) -> None:
    cli = Cli(tmp_path / "store")
    cli.ingest(str(_corpus(tmp_path / "docs", 40)), "--id-field", "id")  # collection default
    plan = cli.json("migrate", "plan", "default", "--to", TARGET)
    assert plan["shadow"]["dim"] == 64 and plan["estimate"]["chunks_per_second_measured"] > 0
    assert plan["live"]["documents"] == 40 and plan["estimate"]["api_cost_usd"] == 0.0
    started = cli.json("migrate", "start", "default", "--to", TARGET)
    assert started["phase"] == "ready" and started["documents_done"] == 40
    assert started["live"] == "default.hash-64"
    hits = cli.json("search", "topic 3", "-k", "3")  # the same name works throughout
    assert len(hits) == 3 and hits[0]["payload"]["fingerprint"] == (
        json.loads(cli.run("collections", "--json").stdout)[0]["fingerprint"])
    swap = cli.run("migrate", "swap", "default", check=False)
    assert swap.returncode == 1 and "evaluate" in swap.stderr
    assert cli.json("migrate", "swap", "default", "--force")["phase"] == "swapped"
    listed = cli.json("migrate", "list")
    assert [(m["alias"], m["phase"]) for m in listed] == [("default", "swapped")]
    assert cli.json("get", "p00003")["fingerprint"] == plan["shadow"]["fingerprint"]
    assert cli.json("migrate", "finalize", "default")["phase"] == "finalized"
    names = [c["name"] for c in cli.json("collections")]
    assert names == [started["shadow"]]
