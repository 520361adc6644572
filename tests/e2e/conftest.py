"""Run the real `embedops` command in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

TEST_MODEL = "testing/hash-64"


class Cli:
    """`embedops --store <tmp> ...` with the TEST-ONLY embedder unless a model is given."""

    def __init__(self, store: Path | str) -> None:
        self.store = store  # a directory, or a store URL given as a string

    def run(self, *args: str, check: bool = True, timeout: float = 300,
            env_extra: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        cmd = [sys.executable, "-m", "embedops", "--store", str(self.store), *args]
        env = {**os.environ, **(env_extra or {})}
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        if check and proc.returncode != 0:
            raise AssertionError(f"{cmd} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "--json").stdout)

    def ingest(self, *args: str) -> dict[str, Any]:
        return self.json("ingest", *args, "--model", TEST_MODEL)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "store")
