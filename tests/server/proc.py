"""Run `embedops serve` as a real subprocess on a free 127.0.0.1 port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """One `embedops serve` process; ``url`` once ready."""

    def __init__(self, store: Path, env: dict[str, str] | None = None,
                 model: str = "testing/hash-64") -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        full_env = {**os.environ, "EMBEDOPS_ENABLE_TEST_MODELS": "1", **(env or {})}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "embedops", "--store", str(store), "serve", "--port",
             str(self.port), "--model", model], env=full_env,
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)

    def wait_ready(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode() if self.proc.stdout else ""
                raise RuntimeError(f"server exited with {self.proc.returncode}: {out}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise RuntimeError("server did not become ready")

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


@contextmanager
def serving(store: Path, env: dict[str, str] | None = None,
            model: str = "testing/hash-64") -> Iterator[ServerProcess]:
    server = ServerProcess(store, env, model)
    try:
        server.wait_ready()
        yield server
    finally:
        server.stop()
