"""A fault-injecting embedding API on 127.0.0.1, for the resilience tests.

A real ``ThreadingHTTPServer`` in a daemon thread. It speaks OpenAI's ``POST
/v1/embeddings`` and Cohere's ``POST /v1/embed`` and answers with the TEST-ONLY hashing
embedder's vectors, so a correct answer is checkable. Each request takes the next action
of ``script``; once the script is spent, a fault is drawn with probability
``fault_rate`` (seeded) until ``recover_after`` requests have been seen. A ``salt``
prefixed to every text makes the server a different model of the same dimension.

Actions: ``ok``, ``429`` (no Retry-After), ``429:<s>`` (Retry-After s), ``500``, ``502``,
``503``, ``413``, ``401`` (echoes the Authorization header back, to test redaction),
``slow`` (waits ``slow_s`` before answering), ``reset`` (TCP RST, no answer),
``malformed`` (200 with a non-JSON body), ``wrong_dim``, ``wrong_count``, ``nan``.
"""

from __future__ import annotations

import json
import random
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from embedops.embedders.testing import HashEmbedder

RANDOM_FAULTS = ("429", "429:0", "500", "502", "503", "reset", "malformed", "slow")


@dataclass(frozen=True)
class Seen:
    """One request as the server saw it."""

    at: float
    path: str
    action: str
    body: dict[str, object]
    authorization: str

    @property
    def items(self) -> list[str]:
        texts = self.body.get("input", self.body.get("texts", []))
        return [texts] if isinstance(texts, str) else list(texts)  # type: ignore[arg-type]


class FaultServer:
    """Start with ``with FaultServer(...) as server:``; ``server.url`` is the API base."""

    def __init__(self, script: Iterable[str] = (), fault_rate: float = 0.0,
                 faults: Iterable[str] = RANDOM_FAULTS, seed: int = 0, dim: int = 64,
                 slow_s: float = 0.5, recover_after: int | None = None,
                 salt: str = "") -> None:
        self.script: deque[str] = deque(script)
        self.fault_rate, self.faults = fault_rate, tuple(faults)
        self.rng = random.Random(seed)
        self.embedder = HashEmbedder(dim=dim)
        self.slow_s, self.recover_after, self.salt = slow_s, recover_after, salt
        self.seen: list[Seen] = []
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None  # type: ignore[method-assign]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    @property
    def root(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> FaultServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def next_action(self) -> str:
        with self.lock:
            if self.script:
                return self.script.popleft()
            if self.recover_after is not None and len(self.seen) >= self.recover_after:
                return "ok"
            if self.rng.random() < self.fault_rate:
                return self.rng.choice(self.faults)
            return "ok"

    @contextmanager
    def faults_off(self) -> Iterator[None]:
        """Requests inside pass through and are forgotten afterwards: an embedder's
        fingerprint probe at construction neither takes a scripted fault nor counts."""
        with self.lock:
            saved = (self.script, self.fault_rate, len(self.seen))
            self.script, self.fault_rate = deque(), 0.0
        try:
            yield
        finally:
            with self.lock:
                self.script, self.fault_rate = saved[0], saved[1]
                del self.seen[saved[2]:]

    def record(self, seen: Seen) -> None:
        with self.lock:
            self.seen.append(seen)

    def vectors(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed([self.salt + t for t in texts]).tolist()


def _handler(server: FaultServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", 0))
            body = json.loads(self.rfile.read(length) or b"{}")
            action = server.next_action()
            seen = Seen(time.monotonic(), self.path, action, body,
                        self.headers.get("authorization", ""))
            server.record(seen)
            _act(self, server, seen)

    return Handler


def _send(handler: BaseHTTPRequestHandler, status: int, payload: bytes,
          headers: dict[str, str] | None = None) -> None:
    handler.send_response(status)
    handler.send_header("content-type", "application/json")
    handler.send_header("content-length", str(len(payload)))
    for key, value in (headers or {}).items():
        handler.send_header(key, value)
    handler.end_headers()
    handler.wfile.write(payload)


def _act(handler: BaseHTTPRequestHandler, server: FaultServer, seen: Seen) -> None:
    action = seen.action
    if action == "reset":
        handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                      struct.pack("ii", 1, 0))
        handler.connection.close()
        handler.close_connection = True
        return
    if action.startswith("429"):
        _, _, after = action.partition(":")
        _send(handler, 429, b'{"error": "rate limited"}',
              {"retry-after": after} if after else None)
    elif action in ("500", "502", "503", "413"):
        _send(handler, int(action), json.dumps({"error": f"injected {action}"}).encode())
    elif action == "401":
        _send(handler, 401, json.dumps({"error": f"bad key {seen.authorization}"}).encode())
    elif action == "malformed":
        _send(handler, 200, b'{"data": [{"index": 0, "embedding": [0.1, 0.')
    else:
        if action == "slow":
            time.sleep(server.slow_s)
        _send(handler, 200, _answer(server, seen))


def _answer(server: FaultServer, seen: Seen) -> bytes:
    texts = seen.items
    rows = server.vectors(texts)
    if seen.action == "wrong_dim":
        rows = [row[:-1] for row in rows]
    elif seen.action == "wrong_count":
        rows = rows[:-1] if len(rows) > 1 else rows + rows
    elif seen.action == "nan":
        rows[0][0] = float("nan")
    if seen.path.endswith("/embed"):
        return json.dumps({"embeddings": {"float": rows}}).encode()
    data = [{"object": "embedding", "index": i, "embedding": r} for i, r in enumerate(rows)]
    return json.dumps({"object": "list", "data": data, "model": seen.body.get("model")}).encode()
