"""SIGKILL a cluster job's driver, or one of its workers, mid-run: the store ends as an
uninterrupted run's, and a restarted job embeds only what was not committed.

Each job is a real ``embedops ingest --runner ray`` process. The job whose driver is
killed starts a local cluster of its own (the default), which dies with it; the resumed
job and the one whose worker is killed join the tests' running cluster with
``--ray-address``, as a job on a long-lived cluster does. The uninterrupted reference
runs with the local runner (test_ray_runner.py shows that both runners leave the same
state)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import TEST_MODEL, assert_same_state, state, summary_counts, write_corpus

psutil = pytest.importorskip("psutil")
pytest.importorskip("ray")
pytestmark = pytest.mark.slow

FILES, DOCS = 4, 80
TOTAL = FILES * DOCS + 2  # every JSONL document, the text file and the HTML page
# Ray's agents notice their cluster's end about a minute after a SIGKILLed driver
LATE_AGENTS = ("ray::DashboardAgent", "ray::RuntimeEnvAgent")
# generous: a loaded two-core machine takes a minute to start a cluster
JOB_TIMEOUT_S, FIRST_COMMIT_S = 600, 300


def _command(store: Path, corpus: Path, runner: str = "ray", *more: str) -> list[str]:
    return [sys.executable, "-m", "embedops", "--store", str(store), "ingest", str(corpus),
            "--model", TEST_MODEL, "--chunk-tokens", "32", "--overlap", "4",
            "--batch-size", "16", "--runner", runner, "--json", *more]


def _env() -> dict[str, str]:
    return {**os.environ, "RAY_ADDRESS": ""}  # never join a cluster the machine may run


def _committed(store: Path) -> int:
    try:
        with sqlite3.connect(f"file:{store / 'ledger.db'}?mode=ro", uri=True) as conn:
            return int(conn.execute("SELECT count(*) FROM documents").fetchone()[0])
    except sqlite3.Error:  # not created yet
        return 0


def _run(store: Path, corpus: Path, runner: str = "ray", *more: str) -> dict[str, Any]:
    proc = subprocess.run(_command(store, corpus, runner, *more), capture_output=True,
                          text=True, timeout=JOB_TIMEOUT_S, env=_env())
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _start(store: Path, corpus: Path, *more: str) -> subprocess.Popen[str]:
    return subprocess.Popen(_command(store, corpus, "ray", *more), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=_env())


def _wait_for_first_commit(proc: subprocess.Popen[str], store: Path) -> int:
    deadline = time.monotonic() + FIRST_COMMIT_S
    while (done := _committed(store)) == 0:
        assert proc.poll() is None, f"the job ended before its first commit: {proc.stderr}"
        assert time.monotonic() < deadline, f"nothing was committed in {FIRST_COMMIT_S} s"
        time.sleep(0.02)
    return done


def _cmdline(process: Any) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


def _started_since(process: Any, since: float) -> bool:
    try:
        return bool(process.create_time() >= since)
    except psutil.Error:
        return False


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_corpus(tmp_path_factory.mktemp("corpus"), files=FILES, docs=DOCS)


@pytest.fixture(scope="module")
def reference(corpus: Path, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[Path, dict[str, Any]]:
    store = tmp_path_factory.mktemp("reference")
    summary = _run(store, corpus, runner="local")
    assert summary["documents_new"] == TOTAL
    return store, summary


def test_kill_9_the_driver_then_resume(tmp_path: Path, corpus: Path,
                                       reference: tuple[Path, dict[str, Any]],
                                       ray_address: str) -> None:
    reference_store, reference_summary = reference
    store = tmp_path / "killed"
    proc = _start(store, corpus)
    done = _wait_for_first_commit(proc, store)
    family = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    assert 0 < done < TOTAL, f"killed too late: {done} of {TOTAL} committed"
    # the cluster dies with its driver, all but two agents that notice a minute later
    agents = [p for p in family if any(a in _cmdline(p) for a in LATE_AGENTS)]
    _gone, alive = psutil.wait_procs([p for p in family if p not in agents], timeout=60)
    assert not alive, [_cmdline(p) for p in alive]
    for agent in agents:
        with contextlib.suppress(psutil.NoSuchProcess):
            agent.kill()
    psutil.wait_procs(agents, timeout=30)

    # the cluster flags, end to end: a running cluster, CPU embed actors, chunk actors of
    # half a core
    resumed = _run(store, corpus, "ray", "--ray-address", ray_address, "--num-gpus", "0",
                   "--cpus-per-tokenizer", "0.5")
    assert _committed(store) == TOTAL
    assert resumed["documents_unchanged"] >= done  # committed work is never redone
    assert resumed["documents_new"] + resumed["documents_unchanged"] == TOTAL
    assert resumed["chunks_embedded"] < reference_summary["chunks_embedded"]
    assert_same_state(state(store), state(reference_store))


def test_kill_9_an_embed_worker_mid_job(tmp_path: Path, corpus: Path,
                                        reference: tuple[Path, dict[str, Any]],
                                        ray_address: str) -> None:
    """Ray restarts a lost embed actor and retries its batch; the driver writes each
    document once, so the job's summary and store are an uninterrupted run's."""
    reference_store, reference_summary = reference
    store = tmp_path / "worker-killed"
    proc = _start(store, corpus, "--ray-address", ray_address)
    since = psutil.Process(proc.pid).create_time()
    _wait_for_first_commit(proc, store)
    # the cluster's workers are this process's descendants; this job's started after it
    embedders = [p for p in psutil.Process().children(recursive=True)
                 if "EmbedStage" in _cmdline(p) and _started_since(p, since)]
    assert proc.poll() is None, "the job finished before a worker could be killed"
    assert embedders, "no embed actor was running after the first commit"
    for worker in embedders:
        worker.send_signal(signal.SIGKILL)
    out, err = proc.communicate(timeout=JOB_TIMEOUT_S)
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert summary_counts(summary) == summary_counts(reference_summary)
    assert_same_state(state(store), state(reference_store))


CLUSTER_MESSAGE = """
import sys
from ray._private.worker import print_to_stdstream
from embedops.ingest.ray_runner import ClusterOptions, ray_session

with ray_session(ClusterOptions(address=sys.argv[1])):
    # what Ray's error listener does with a cluster message, e.g. a killed worker's
    print_to_stdstream({"lines": ["A worker died or was killed"], "pid": "raylet",
                        "is_err": False}, ignore_prefix=False)
print('{"summary": true}')
"""


def test_cluster_messages_stay_off_the_jobs_stdout(ray_address: str) -> None:
    """Ray prints cluster errors on the driver's stdout; `ingest --json` keeps its stdout
    for the summary, so inside a job's session they go to stderr."""
    proc = subprocess.run([sys.executable, "-c", CLUSTER_MESSAGE, ray_address],
                          capture_output=True, text=True, timeout=JOB_TIMEOUT_S, env=_env())
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"summary": True}
    assert "A worker died or was killed" in proc.stderr
