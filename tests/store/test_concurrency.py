"""Writer lock, readers beside a writer, and atomic alias repointing — with real processes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from embedops.errors import StoreError, StoreLocked
from embedops.store import open_store

from .storedata import mixture

HERE = Path(__file__).parent


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=60)


def test_second_writer_process_gets_store_locked(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s")
    store.create_collection("c", 8, fingerprint="fp")
    store.upsert("c", ["a"], np.ones((1, 8), np.float32), [{}], fingerprint="fp")
    result = _python(f"""
        from embedops.errors import StoreLocked
        from embedops.store import open_store
        try:
            open_store({str(tmp_path / 's')!r})
        except StoreLocked as exc:
            print("LOCKED", exc)
        reader = open_store({str(tmp_path / 's')!r}, read_only=True)
        print("COUNT", reader.count("c"))
    """)
    assert "LOCKED" in result.stdout and "open for writing by another process" in result.stdout
    assert "COUNT 1" in result.stdout, result.stderr
    store.close()
    with pytest.raises(StoreLocked), open_store(tmp_path / "s"):
        open_store(tmp_path / "s")
    open_store(tmp_path / "s").close()


def test_readers_search_while_writer_ingests(tmp_path: Path) -> None:
    writer = open_store(tmp_path / "s")
    writer.create_collection("c", 32, fingerprint="fp", index_params={"exact_threshold": 0})
    data = mixture(6000, 32, seed=3)
    writer.upsert("c", [str(i) for i in range(1000)], data[:1000], None, fingerprint="fp")
    reader = open_store(tmp_path / "s", read_only=True)
    counts: list[int] = []
    errors: list[Exception] = []

    def read_loop() -> None:
        for _ in range(60):
            try:
                hits = reader.search("c", data[0], k=5)[0]
                counts.append(reader.count("c"))
                assert hits[0].id == "0"
            except (StoreError, AssertionError) as exc:
                errors.append(exc)

    thread = threading.Thread(target=read_loop)
    thread.start()
    for start in range(1000, 6000, 500):
        writer.upsert("c", [str(i) for i in range(start, start + 500)], data[start:start + 500],
                      None, fingerprint="fp")
    thread.join()
    assert errors == [] and counts == sorted(counts)
    assert reader.count("c") == 6000 and reader.verify_index("c")["missing"] == []
    reader.close()
    writer.close()


@pytest.mark.slow
def test_alias_repoint_is_atomic_for_a_reader_process(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s")
    for name in ("blue", "green"):
        store.create_collection(name, 8, fingerprint="fp")
        store.upsert(name, [f"{name}{i}" for i in range(50)], mixture(50, 8, seed=len(name)),
                     [{"collection": name} for _ in range(50)], fingerprint="fp")
    store.create_alias("live", "blue")
    proc = subprocess.Popen([sys.executable, str(HERE / "alias_reader.py"),
                             str(tmp_path / "s"), "4"], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    repoints = 0
    deadline = time.monotonic() + 3.5
    while time.monotonic() < deadline:
        store.repoint_alias("live", "green" if repoints % 2 == 0 else "blue")
        repoints += 1
        time.sleep(0.002)
    report = json.loads(proc.stdout.readline())
    proc.wait(timeout=30)
    store.close()
    assert report["errors"] == []
    assert report["loops"] > 100 and repoints > 100
    assert set(report["seen"]) == {"blue", "green"}
