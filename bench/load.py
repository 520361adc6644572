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

``--mixed`` runs the mixed-load scenario instead: text search at ``--search-rps`` for
``--phase-s`` seconds in four phases, side by side in one run:
(a) ``idle`` (searches only), (a') ``idle_scrape`` (plus ``GET /metrics`` at 1 Hz),
(b) ``writes`` (from the moment a ~``--big-doc-bytes`` document is queued until it is
searchable, at least ``--phase-s``, while a stream of ``--upsert-rps`` small documents is
written), (b') ``writes_scrape`` (both). Each writes phase starts on an empty queue and
the queue is drained after it. The populated store can be kept in ``--template`` and
copied for each run. ``--sharing`` (no server) compares two ways of sharing the model
between queries and writes (see ``sharing_main``).

Run (2-core machine; never overlap other benchmarks):
    flock /tmp/embedops-bench.lock .venv/bin/python bench/load.py
    flock /tmp/embedops-bench.lock .venv/bin/python bench/load.py --mixed \
        --template /tmp/embedops-load-100k
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
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

from embedops.server.timing import parse as parse_timing

WORDS = ("vector", "index", "query", "model", "latency", "batch", "server", "token", "chunk",
         "store", "search", "ranking", "recall", "cosine", "embedding", "document", "river",
         "mountain", "library", "garden", "music", "history", "energy", "market", "city",
         "ocean", "forest", "science", "health", "travel")


def start_server(store: Path, model: str, port: int) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "embedops", "--store", str(store), "serve", "--port",
           str(port), "--model", model]
    # the server's log goes to a file: an unread pipe would block it once full
    fd, log_path = tempfile.mkstemp(prefix="embedops-load-server-", suffix=".log")
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=fd)
    os.close(fd)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: {Path(log_path).read_text()[-4000:]}")
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
    dim, fingerprint = made.json()["dim"], made.json()["fingerprint"]
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
                    json={"points": points, "fingerprint": fingerprint}).raise_for_status()
    seconds = time.perf_counter() - started
    return {"points": n, "seconds": round(seconds, 1), "points_per_s": round(n / seconds, 1)}


def query(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(4, 9)))


def document(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(75)) + "."  # ~100 model tokens


def run_phase(url: str, collection: str, rps: float, seconds: float, upsert_share: float,
              seed: int, until: threading.Event | None = None) -> dict[str, Any]:
    """Open-loop load: request i starts at i / rps; returns latency stats per kind. Runs
    ``seconds``, and with ``until`` on until that event is set (at most 15 minutes)."""
    total = int(rps * seconds)

    def kind(i: int) -> str:
        return "upsert" if random.Random(seed * 7919 + i).random() < upsert_share else "search"

    results: dict[str, list[float]] = {"search": [], "upsert": []}
    when: dict[str, list[float]] = {"search": [], "upsert": []}  # scheduled offsets
    stages: dict[str, list[dict[str, float]]] = {"search": [], "upsert": []}  # Server-Timing
    errors: list[str] = []
    lock = threading.Lock()
    client = httpx.Client(base_url=url, timeout=30,
                          limits=httpx.Limits(max_connections=64))
    start = time.perf_counter() + 0.2

    def one(i: int) -> None:
        scheduled = start + i / rps
        time.sleep(max(0.0, scheduled - time.perf_counter()))
        local = random.Random(seed * 1_000_003 + i)
        what = kind(i)
        try:
            if what == "search":
                answer = client.post(f"/collections/{collection}/search",
                                     json={"query": query(local), "k": 10})
            else:
                answer = client.put(f"/collections/{collection}/documents/load-{seed}-{i}",
                                    params={"wait": "true"}, json={"text": document(local)})
            ok = answer.status_code == 200 and (what == "search"
                                                or answer.json()["status"] == "embedded")
        except httpx.HTTPError as exc:
            ok, answer = False, exc  # type: ignore[assignment]
        elapsed = time.perf_counter() - scheduled
        with lock:
            if ok:
                results[what].append(elapsed)
                when[what].append(i / rps)
                stages[what].append(parse_timing(answer.headers.get("server-timing", "")))
            else:
                errors.append(str(answer)[:200])

    def more(i: int) -> bool:
        return i < total or (until is not None and not until.is_set()
                             and time.perf_counter() - start < 900)

    requests = 0
    with ThreadPoolExecutor(64) as pool:
        while more(requests):
            time.sleep(max(0.0, start + requests / rps - 0.1 - time.perf_counter()))
            pool.submit(one, requests)
            requests += 1
    wall = time.perf_counter() - start
    client.close()
    out: dict[str, Any] = {"target_rps": rps, "seconds": round(wall, 1), "requests": requests,
                           "errors": len(errors), "error_samples": errors[:3]}
    for kind, lat in results.items():
        if lat:
            ms = np.percentile(np.array(lat) * 1000, [50, 95, 99])
            slowest = sorted(zip(lat, when[kind], strict=True), reverse=True)[:10]
            out[kind] = {"count": len(lat), "per_s": round(len(lat) / wall, 1),
                         "p50_ms": round(ms[0], 1), "p95_ms": round(ms[1], 1),
                         "p99_ms": round(ms[2], 1),
                         "slowest_at_s_ms": [[round(t, 2), round(x * 1000, 1)]
                                             for x, t in slowest],
                         "stages_ms": where_time_went(lat, stages[kind], ms[2] / 1000)}
    return out


def where_time_went(latencies: list[float], stages: list[dict[str, float]],
                    p99: float) -> dict[str, dict[str, float]]:
    """Mean milliseconds per ``Server-Timing`` stage, over all requests and over those at
    or above the p99; ``outside`` is the client's latency minus the server's ``total``
    (before the server saw the request: connect, accept queue, the load generator)."""
    def mean(rows: list[tuple[float, dict[str, float]]]) -> dict[str, float]:
        names = sorted({name for _, timing in rows for name in timing})
        out = {name: round(float(np.mean([t.get(name, 0.0) for _, t in rows])), 1)
               for name in names}
        out["outside"] = round(float(np.mean([lat * 1000 - t.get("total", 0.0)
                                              for lat, t in rows])), 1)
        return out

    rows = list(zip(latencies, stages, strict=True))
    tail = [row for row in rows if row[0] >= p99]
    return {"all": mean(rows), "p99_tail": mean(tail) if tail else {}}


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


# --- mixed load: large writes, a write stream and metrics scrapes beside searches ---------

FILLER = ("throughput", "quantisation", "neighbourhood", "reproducibility", "multilingual",
          "2024-05-17", "v1.2.3", "e.g.", "O(n log n)", "kubernetes", "latencies")


def big_document(nbytes: int, seed: int) -> str:
    """About ``nbytes`` of prose-like text (sentences of common and rarer words)."""
    rng = random.Random(seed)
    sentences: list[str] = []
    size = 0
    while size < nbytes:
        words = [rng.choice(WORDS if rng.random() < 0.8 else FILLER)
                 for _ in range(rng.randint(8, 20))]
        sentence = " ".join(words).capitalize() + "."
        sentences.append(sentence)
        size += len(sentence) + 1
    return " ".join(sentences)[:nbytes]


def latency_stats(seconds: list[float]) -> dict[str, Any]:
    if not seconds:
        return {"count": 0}
    ms = np.percentile(np.array(seconds) * 1000, [50, 95, 99])
    return {"count": len(seconds), "p50_ms": round(ms[0], 1), "p95_ms": round(ms[1], 1),
            "p99_ms": round(ms[2], 1), "max_ms": round(max(seconds) * 1000, 1)}


def scraper(url: str, stop: threading.Event, out: list[float]) -> None:
    """``GET /metrics`` once a second until ``stop``; records each scrape's latency."""
    with httpx.Client(base_url=url, timeout=60) as client:
        while not stop.wait(1.0):
            started = time.perf_counter()
            client.get("/metrics").raise_for_status()
            out.append(time.perf_counter() - started)


def wait_searchable(client: httpx.Client, collection: str, doc_id: str,
                    timeout: float = 600) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status = client.get(f"/collections/{collection}/documents/{doc_id}").json()
        if status.get("status") != "queued" or time.monotonic() > deadline:
            return dict(status)
        time.sleep(0.2)


def big_writer(url: str, collection: str, text: str, doc_id: str, done: threading.Event,
               out: list[dict[str, Any]]) -> None:
    """Write one large document; records its time to searchable and chunk count, then
    sets ``done``."""
    try:
        with httpx.Client(base_url=url, timeout=60) as client:
            started = time.perf_counter()
            answer = client.put(f"/collections/{collection}/documents/{doc_id}",
                                params={"wait": "true"}, json={"text": text})
            status = (answer.json() if answer.status_code == 200
                      else wait_searchable(client, collection, doc_id))
            chunks = status.get("chunk_count", status.get("chunks"))
            out.append({"status": status.get("status"), "chunks": chunks,
                        "seconds": round(time.perf_counter() - started, 2)})
    finally:
        done.set()


def stream_writer(url: str, collection: str, rps: float, stop: threading.Event, tag: str,
                  out: list[float], failures: list[str]) -> None:
    """Open-loop stream of small documents with ``?wait=true`` (time to searchable), until
    ``stop``."""
    client = httpx.Client(base_url=url, timeout=120, limits=httpx.Limits(max_connections=64))
    start = time.perf_counter() + 0.2

    def one(i: int) -> None:
        scheduled = start + i / rps
        time.sleep(max(0.0, scheduled - time.perf_counter()))
        doc_id = f"stream-{tag}-{i}"
        answer = client.put(f"/collections/{collection}/documents/{doc_id}",
                            params={"wait": "true"}, json={"text": document(random.Random(i))})
        status = (answer.json() if answer.status_code == 200
                  else wait_searchable(client, collection, doc_id))
        if status.get("status") == "embedded":
            out.append(time.perf_counter() - scheduled)
        else:
            failures.append(str(status)[:200])

    with ThreadPoolExecutor(64) as pool:
        i = 0
        while not stop.is_set():
            time.sleep(max(0.0, start + i / rps - 0.1 - time.perf_counter()))
            pool.submit(one, i)
            i += 1
    client.close()


def drain(url: str, timeout: float = 900) -> float:
    """Wait until the server's write queue is empty; returns the seconds waited."""
    started = time.perf_counter()
    with httpx.Client(base_url=url, timeout=60) as client:
        while time.perf_counter() - started < timeout:
            text = client.get("/metrics").text
            depth = next((float(line.split()[1]) for line in text.splitlines()
                          if line.startswith("embedops_queue_depth ")), 0.0)
            if depth == 0:
                break
            time.sleep(0.5)
    return round(time.perf_counter() - started, 1)


def model_wait(url: str) -> tuple[float, float] | None:
    """(sum, count) of the server's interactive model-wait histogram; None when absent."""
    text = httpx.get(f"{url}/metrics", timeout=60).text
    found = {}
    for line in text.splitlines():
        for part in ("sum", "count"):
            if line.startswith(f'embedops_model_wait_seconds_{part}{{priority="interactive"}}'):
                found[part] = float(line.split()[-1])
    return (found["sum"], found["count"]) if len(found) == 2 else None


def mixed_phase(url: str, collection: str, args: argparse.Namespace, name: str,
                writes: bool, scrape: bool, text: str, seed: int) -> dict[str, Any]:
    """Searches at ``--search-rps`` for ``--phase-s``; with ``writes``, from the moment a
    large document is queued until it is searchable (at least ``--phase-s``) while a
    stream of small documents is written; with ``scrape``, ``GET /metrics`` at 1 Hz."""
    stop, big_done = threading.Event(), threading.Event()
    scrapes: list[float] = []
    bigs: list[dict[str, Any]] = []
    stream: list[float] = []
    failures: list[str] = []
    threads = []
    if scrape:
        threads.append(threading.Thread(target=scraper, args=(url, stop, scrapes)))
    if writes:
        threads.append(threading.Thread(target=big_writer, args=(
            url, collection, text, f"big-{name}", big_done, bigs)))
        threads.append(threading.Thread(target=stream_writer, args=(
            url, collection, args.upsert_rps, stop, name, stream, failures)))
    waited = model_wait(url)
    for thread in threads:
        thread.start()
    result = run_phase(url, collection, args.search_rps, args.phase_s, 0.0, seed,
                       until=big_done if writes else None)
    stop.set()
    for thread in threads:
        thread.join()
    out: dict[str, Any] = {"seconds": result["seconds"], "search": result.get("search", {}),
                           "errors": result["errors"], "error_samples": result["error_samples"]}
    after = model_wait(url)
    if waited is not None and after is not None and after[1] > waited[1]:
        out["model_wait_interactive_mean_ms"] = round(
            (after[0] - waited[0]) / (after[1] - waited[1]) * 1000, 2)
    if scrape:
        out["scrape"] = latency_stats(scrapes)
    if writes:
        out["big_document"] = bigs[0] if bigs else None
        out["stream"] = {**latency_stats(stream), "failed": len(failures),
                         "failure_samples": failures[:3]}
        out["drain_s"] = drain(url)
    return out


def run_mixed(url: str, collection: str, args: argparse.Namespace) -> dict[str, Any]:
    text = big_document(args.big_doc_bytes, 5)
    phases: dict[str, Any] = {}
    order = [("idle", False, False), ("idle_scrape", False, True),
             ("writes", True, False), ("writes_scrape", True, True)]
    for seed, (name, writes, scrape) in enumerate(order, start=11):
        phases[name] = mixed_phase(url, collection, args, name, writes, scrape, text, seed)
    p99 = {name: phase["search"].get("p99_ms") for name, phase in phases.items()}
    ratios = {
        "writes_vs_idle": _ratio(p99["writes"], p99["idle"]),
        "idle_scrape_vs_idle": _ratio(p99["idle_scrape"], p99["idle"]),
        "writes_scrape_vs_writes": _ratio(p99["writes_scrape"], p99["writes"]),
    }
    return {"big_doc_bytes": len(text.encode()), "search_p99_ms": p99,
            "p99_ratios": ratios, "phases": phases}


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


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
    parser.add_argument("--mixed", action="store_true",
                        help="Run the mixed-load scenario (large writes, stream, scrapes).")
    parser.add_argument("--sharing", action="store_true",
                        help="Compare query latency with the model shared through the "
                        "priority lock and with a second model instance (no server).")
    parser.add_argument("--big-doc-bytes", type=int, default=1_000_000)
    parser.add_argument("--template", type=Path, default=None,
                        help="--mixed: a populated store to copy for each run (made here, "
                        "by populating, when it does not exist yet).")
    args = parser.parse_args()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    if args.mixed or args.sharing:
        result = sharing_main(args) if args.sharing else mixed_main(args, url, port)
        print(json.dumps(result, indent=2))
        return
    store = args.store or Path(tempfile.mkdtemp(prefix="embedops-load-"))
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


def sharing_main(args: argparse.Namespace) -> dict[str, Any]:
    """In one process, no HTTP: queries at ``--search-rps`` for ``--phase-s`` while a
    writer embeds ~256-token chunks back to back, one forward pass per call, with the
    model (1) ``shared``: one instance, the service's priority lock (a query waits for
    the pass in progress); (2) ``separate``: a second instance for queries, no lock
    between them (concurrent passes); (0) ``alone``: no writer."""
    from embedops.config import load_settings
    from embedops.embedders import load_embedder

    s = load_settings(model=args.model)
    writer_model, query_model = (load_embedder(s.model, s.cache_dir, s.backend, s.batch_size,
                                               settings=s) for _ in range(2))
    batch = [big_document(1300, 3)] * int(getattr(writer_model, "batch_size", 1))
    out: dict[str, Any] = {"scenario": "sharing", "model": args.model,
                           "backend": writer_model.info.backend, "texts_per_pass": len(batch),
                           "tokens_per_text": writer_model.tokenizer.count(batch[:1])[0],
                           "load_before": os.getloadavg()}
    for mode in ("alone", "shared", "separate", "shared", "separate"):
        out.setdefault(mode, []).append(_sharing_run(
            mode, writer_model, query_model, batch, args.search_rps, args.phase_s))
    out["load_after"] = os.getloadavg()
    return out


def _sharing_run(mode: str, writer_model: Any, query_model: Any, batch: list[str],
                 rps: float, seconds: float) -> dict[str, Any]:
    from embedops.embedders.scheduling import ModelLock  # (--mixed drives any server)

    lock, query_lock = ModelLock(), threading.Lock()
    model = writer_model if mode == "shared" else query_model
    stop, written = threading.Event(), [0]
    start = time.perf_counter() + 0.5

    def write() -> None:
        while mode != "alone" and not stop.is_set():
            with lock.background() if mode == "shared" else contextlib.nullcontext():
                writer_model.embed(batch, "document")
            written[0] += len(batch)

    def ask(i: int) -> float:
        scheduled = start + i / rps
        time.sleep(max(0.0, scheduled - time.perf_counter()))
        with lock.interactive() if mode == "shared" else query_lock:
            model.embed([query(random.Random(i))], "query")
        return time.perf_counter() - scheduled

    writer = threading.Thread(target=write)
    writer.start()
    with ThreadPoolExecutor(16) as pool:
        latencies = list(pool.map(ask, range(int(rps * seconds))))
    stop.set()
    writer.join()
    wall = time.perf_counter() - start
    return {**latency_stats(latencies), "writer_texts_per_s": round(written[0] / wall, 1)}


def mixed_main(args: argparse.Namespace, url: str, port: int) -> dict[str, Any]:
    out: dict[str, Any] = {"scenario": "mixed", "model": args.model, "cpus": os.cpu_count(),
                           "search_rps": args.search_rps, "upsert_rps": args.upsert_rps,
                           "phase_s": args.phase_s, "load_before": os.getloadavg()}
    template = args.template or Path(tempfile.mkdtemp(prefix="embedops-load-")) / "store"
    if not (template / "store.sqlite").exists():  # populate once, then stop cleanly
        proc = start_server(template, args.model, port)
        try:
            with httpx.Client(base_url=url, timeout=300) as client:
                out["populate"] = populate(client, "load", args.points, args.populate_batch)
        finally:
            proc.terminate()
            proc.wait(120)
    store = Path(tempfile.mkdtemp(prefix="embedops-load-")) / "store"
    shutil.copytree(template, store)
    proc = start_server(store, args.model, port)
    try:
        with httpx.Client(base_url=url, timeout=300) as client:
            out["served"] = client.get("/healthz").json().get("model")
            out["points"] = client.get("/collections/load").json()["points"]
        out.update(run_mixed(url, "load", args))
    finally:
        proc.terminate()
        proc.wait(120)
        shutil.rmtree(store.parent, ignore_errors=True)
        if args.template is None:
            shutil.rmtree(template.parent, ignore_errors=True)
    out["load_after"] = os.getloadavg()
    return out


if __name__ == "__main__":
    main()
