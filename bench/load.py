"""Load test of `embedops serve` on loopback, bounded in time and count.

Starts the server in its own process (a fresh store in a temp dir unless --store), then:
1. populates a collection with ``--points`` synthetic unit vectors through
   ``POST /collections/{c}/points`` (embedding 100k chunks on this CPU takes over an hour);
2. text search alone at ``--search-rps`` (the query is embedded by the server);
3. single-document upserts (~100 tokens) with ``?wait=true`` at ``--upsert-rps``;
4. a 90 % search / 10 % upsert mix at ``--search-rps`` in total;
5. a soak of the mix for ``--soak-s`` seconds (default 120; ``--soak-s 600`` for the
   10-minute soak), sampling the server's resident memory.
Latencies are measured from each request's scheduled start (open loop), so a slow server
cannot hide queueing. Prints one JSON object.

Run (2-core machine; never overlap other benchmarks):
    flock /tmp/embedops-bench.lock .venv/bin/python bench/load.py
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import numpy as np

WORDS = ("vector", "index", "query", "model", "latency", "batch", "server", "token", "chunk",
         "store", "search", "ranking", "recall", "cosine", "embedding", "document", "river",
         "mountain", "library", "garden", "music", "history", "energy", "market", "city",
         "ocean", "forest", "science", "health", "travel")


def start_server(store: Path, model: str, port: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "embedops", "--store", str(store), "serve", "--port",
           str(port), "--model", model]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {proc.stderr.read().decode() if proc.stderr else ''}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    proc.kill()
    raise SystemExit("server did not become ready")


def populate(client: httpx.Client, collection: str, n: int, batch: int) -> dict[str, Any]:
    made = client.post("/collections", json={"name": collection})
    made.raise_for_status()
    dim = made.json()["dim"]
    rng = np.random.default_rng(7)
    started = time.perf_counter()
    for first in range(0, n, batch):
        count = min(batch, n - first)
        vecs = rng.standard_normal((count, dim)).astype(np.float32)
        vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
        points = [{"id": f"syn-{first + i}#0", "vector": np.round(v, 5).tolist(),
                   "payload": {"doc_id": f"syn-{first + i}", "text": f"synthetic {first + i}"}}
                  for i, v in enumerate(vecs)]
        client.post(f"/collections/{collection}/points",
                    json={"points": points}).raise_for_status()
    seconds = time.perf_counter() - started
    return {"points": n, "seconds": round(seconds, 1), "points_per_s": round(n / seconds, 1)}


def query(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 9)))


def document(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(75)) + "."  # ~100 model tokens


def run_phase(url: str, collection: str, rps: float, seconds: float, upsert_share: float,
              seed: int) -> dict[str, Any]:
    """Open-loop load: request i starts at i / rps; returns latency stats per kind."""
    rng = random.Random(seed)
    total = int(rps * seconds)
    plan = ["upsert" if rng.random() < upsert_share else "search" for _ in range(total)]
    results: dict[str, list[float]] = {"search": [], "upsert": []}
    errors: list[str] = []
    lock = threading.Lock()
    client = httpx.Client(base_url=url, timeout=30,
                          limits=httpx.Limits(max_connections=64))
    start = time.perf_counter() + 0.2

    def one(i: int) -> None:
        scheduled = start + i / rps
        time.sleep(max(0.0, scheduled - time.perf_counter()))
        local = random.Random(seed * 1_000_003 + i)
        try:
            if plan[i] == "search":
                answer = client.post(f"/collections/{collection}/search",
                                     json={"query": query(local), "k": 10})
            else:
                answer = client.put(f"/collections/{collection}/documents/load-{seed}-{i}",
                                    params={"wait": "true"}, json={"text": document(local)})
            ok = answer.status_code == 200 and (plan[i] == "search"
                                                or answer.json()["status"] == "embedded")
        except httpx.HTTPError as exc:
            ok, answer = False, exc  # type: ignore[assignment]
        elapsed = time.perf_counter() - scheduled
        with lock:
            results[plan[i]].append(elapsed) if ok else errors.append(str(answer)[:200])

    with ThreadPoolExecutor(64) as pool:
        list(pool.map(one, range(total)))
    wall = time.perf_counter() - start
    client.close()
    out: dict[str, Any] = {"target_rps": rps, "seconds": round(wall, 1), "requests": total,
                           "errors": len(errors), "error_samples": errors[:3]}
    for kind, lat in results.items():
        if lat:
            ms = np.percentile(np.array(lat) * 1000, [50, 95, 99])
            out[kind] = {"count": len(lat), "per_s": round(len(lat) / wall, 1),
                         "p50_ms": round(ms[0], 1), "p95_ms": round(ms[1], 1),
                         "p99_ms": round(ms[2], 1)}
    return out


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def soak(url: str, collection: str, pid: int, rps: float, seconds: float) -> dict[str, Any]:
    samples: list[tuple[float, float]] = []
    stop = threading.Event()

    def sample() -> None:
        t0 = time.perf_counter()
        while not stop.is_set():
            samples.append((round(time.perf_counter() - t0, 1), round(rss_mib(pid), 1)))
            stop.wait(5)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    result = run_phase(url, collection, rps, seconds, 0.1, seed=99)
    stop.set()
    sampler.join()
    rss = [m for _, m in samples]
    half = len(rss) // 2 or 1
    result["rss_mib"] = {"first": rss[0], "last": rss[-1], "max": max(rss),
                         "mean_first_half": round(float(np.mean(rss[:half])), 1),
                         "mean_second_half": round(float(np.mean(rss[half:])), 1),
                         "samples": samples}
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--populate-batch", type=int, default=1000)
    parser.add_argument("--search-rps", type=float, default=50.0)
    parser.add_argument("--upsert-rps", type=float, default=5.0)
    parser.add_argument("--phase-s", type=float, default=30.0, help="Seconds per phase.")
    parser.add_argument("--soak-s", type=float, default=120.0,
                        help="Soak seconds (default 2 min; 600 for the 10-minute goal).")
    parser.add_argument("--store", type=Path, default=None)
    args = parser.parse_args()
    store = args.store or Path(tempfile.mkdtemp(prefix="embedops-load-"))
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    proc = start_server(store, args.model, port)
    out: dict[str, Any] = {"model": args.model, "cpus": os.cpu_count()}
    try:
        with httpx.Client(base_url=url, timeout=300) as client:
            out["populate"] = populate(client, "load", args.points, args.populate_batch)
            out["collection"] = client.get("/collections/load").json()
        out["search"] = run_phase(url, "load", args.search_rps, args.phase_s, 0.0, 1)
        out["upsert"] = run_phase(url, "load", args.upsert_rps, args.phase_s, 1.0, 2)
        out["mix"] = run_phase(url, "load", args.search_rps, args.phase_s, 0.1, 3)
        out["soak"] = soak(url, "load", proc.pid, args.search_rps, args.soak_s)
    finally:
        proc.terminate()
        proc.wait(30)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
