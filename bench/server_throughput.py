"""Throughput of `embedops serve` under concurrency, and the cost of the resilience layer.

Prints one JSON object:
- ``bare_model``: items/s of ``embedder.embed`` on batches of the server's max batch size;
- ``server``: for 1, 8 and 32 concurrent clients, each sending one-text requests to
  ``POST /v1/embeddings`` (real HTTP on 127.0.0.1; the server is `embedops serve` in its
  own process, or uvicorn in this process with ``--in-process``): items/s and p50/p99
  request latency;
- ``resilience_overhead``: mean latency per one-text request on a fault-free server
  (TEST-ONLY hashing model, so the model costs ~nothing) sent with plain httpx versus
  through the API embedder (retry, pacing, breaker, validation, metrics).

Run (the machine has 2 cores; do not overlap other benchmarks):
    flock /tmp/embedops-bench.lock .venv/bin/python bench/server_throughput.py
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from embedops.config import load_settings
from embedops.embedders import load_embedder
from embedops.embedders.base import Embedder
from embedops.server import create_app

WORDS = ["vector", "index", "query", "model", "latency", "batch", "server", "token", "chunk",
         "store", "search", "ranking", "recall", "cosine", "embedding", "document"]


def texts(n: int, words: int = 24) -> list[str]:
    return [" ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(words)) + f" #{i}"
            for i in range(n)]


@contextmanager
def serving_process(model: str, backend: str, max_batch_size: int,
                    max_wait_ms: float) -> Iterator[str]:
    """`embedops serve` in its own process (its own interpreter and GIL)."""
    import subprocess
    import sys
    import tempfile

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "embedops", "--store", tempfile.mkdtemp(), "serve", "--port",
         str(port), "--model", model, "--backend", backend, "--max-batch-size",
         str(max_batch_size), "--max-wait-ms", str(max_wait_ms)],
        stdout=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        proc.wait(30)


@contextmanager
def serving(embedder: Embedder, **knobs: Any) -> Iterator[str]:
    settings = load_settings(model=embedder.info.name, **knobs)
    sock = socket.socket()
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # else ~40 ms delayed-ACK stalls
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(settings, embedder),
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def bare(embedder: Embedder, items: list[str], batch: int) -> dict[str, float]:
    embedder.embed(items[:batch])  # warm-up
    started = time.perf_counter()
    for i in range(0, len(items), batch):
        embedder.embed(items[i : i + batch])
    return {"items": len(items), "batch": batch,
            "items_per_s": round(len(items) / (time.perf_counter() - started), 1)}


def load(url: str, model: str, items: list[str], clients: int) -> dict[str, float]:
    latencies: list[float] = []
    with httpx.Client(limits=httpx.Limits(max_connections=clients), timeout=120) as client:

        def one(text: str) -> None:
            started = time.perf_counter()
            client.post(f"{url}/v1/embeddings",
                        json={"model": model, "input": text}).raise_for_status()
            latencies.append(time.perf_counter() - started)

        one(items[0])
        latencies.clear()
        started = time.perf_counter()
        with ThreadPoolExecutor(clients) as pool:
            list(pool.map(one, items))
        elapsed = time.perf_counter() - started
    ordered = sorted(latencies)
    return {"clients": clients, "requests": len(items),
            "items_per_s": round(len(items) / elapsed, 1),
            "p50_ms": round(statistics.median(ordered) * 1000, 1),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1)}


def overhead(requests: int) -> dict[str, float]:
    os.environ["EMBEDOPS_ENABLE_TEST_MODELS"] = "1"
    hashing = load_embedder("testing/hash-64", Path("."))
    items = texts(requests, words=8)
    with serving(hashing, server_max_wait_ms=0) as url, httpx.Client() as client:
        body = {"model": "testing/hash-64"}
        for text in items[:20]:
            client.post(f"{url}/v1/embeddings", json={**body, "input": [text]})
        started = time.perf_counter()
        for text in items:
            client.post(f"{url}/v1/embeddings", json={**body, "input": [text]}).json()
        plain = (time.perf_counter() - started) / requests
        api = load_embedder("openai-compatible/testing/hash-64", Path("."),
                            settings=load_settings(api_base=f"{url}/v1", api_dimensions=64))
        api.embed(items[:20])
        started = time.perf_counter()
        for text in items:
            api.embed([text])
        layered = (time.perf_counter() - started) / requests
    return {"requests": requests, "plain_httpx_ms": round(plain * 1000, 3),
            "api_embedder_ms": round(layered * 1000, 3),
            "overhead_ms": round((layered - plain) * 1000, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="all-MiniLM-L6-v2")
    parser.add_argument("--backend", default="onnx")
    parser.add_argument("--requests", type=int, default=256, help="Requests per level.")
    parser.add_argument("--max-batch-size", type=int, default=32)
    parser.add_argument("--max-wait-ms", type=float, default=5.0)
    parser.add_argument("--in-process", action="store_true",
                        help="Run uvicorn in this process (the issue-5 setup) instead of "
                        "a separate `embedops serve` process.")
    args = parser.parse_args()
    settings = load_settings()
    embedder = load_embedder(args.model, settings.cache_dir, args.backend,
                             batch_size=args.max_batch_size)
    items = texts(args.requests)
    result: dict[str, Any] = {"model": embedder.info.name, "backend": embedder.info.backend,
                              "cpus": os.cpu_count()}
    result["bare_model"] = bare(embedder, items, args.max_batch_size)
    server = (serving(embedder, server_max_batch_size=args.max_batch_size,
                      server_max_wait_ms=args.max_wait_ms) if args.in_process else
              serving_process(args.model, args.backend, args.max_batch_size, args.max_wait_ms))
    result["server_process"] = "in-process" if args.in_process else "subprocess"
    with server as url:
        result["server"] = [load(url, embedder.info.name, items[: max(32, args.requests // 4)]
                                 if clients == 1 else items, clients) for clients in (1, 8, 32)]
    result["resilience_overhead"] = overhead(min(args.requests, 300))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
