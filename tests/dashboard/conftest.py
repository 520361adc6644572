"""The dashboard's browser tests: a real `embedops serve` on 127.0.0.1 (TEST-ONLY hashing
model, a sample every 0.2 s) over a store made here, driven by headless Chromium
(Debian's ``chromium`` and ``chromium-driver``) through Selenium.

Without Chromium or Selenium the tests skip; under CI (``CI=true``) they fail instead, so
a CI machine that lost its browser cannot pass quietly."""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import embedops
from embedops.quality.beir import resolve_dataset
from embedops.quality.canary import create_canary, run_canary
from tests.server.proc import ServerProcess

TEST_MODEL = "testing/hash-64"
DOCS_QA = resolve_dataset("docs-qa")
NOTE = "Dead letters keep the reason and the stage where a document failed.\n"


def _missing(what: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"{what} is missing: CI installs it (.ci/run); the dashboard tests "
                    "must run there")
    pytest.skip(f"{what} is missing (apt-get install chromium chromium-driver)")


def browser_paths() -> tuple[str, str]:
    """(chromium, chromedriver), or skip (fail under CI) when either is missing."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium is None or driver is None:
        _missing("chromium" if chromium is None else "chromedriver")
    assert chromium is not None and driver is not None
    return chromium, driver


@dataclass
class Dashboard:
    url: str
    admin_key: str
    read_key: str
    notes: Path  # the directory of the `notes` collection (holds the dead letter's file)
    shots: Path  # where screenshots go

    def get(self, path: str, key: str | None = None, **params: Any) -> Any:
        response = httpx.get(self.url + path, params=params, timeout=30,
                             headers={"Authorization": f"Bearer {key or self.admin_key}"})
        response.raise_for_status()
        return response.json()

    def post(self, path: str, body: dict[str, Any]) -> Any:
        response = httpx.post(self.url + path, json=body, timeout=60,
                              headers={"Authorization": f"Bearer {self.admin_key}"})
        response.raise_for_status()
        return response.json()


def make_store(store: Path, notes: Path) -> tuple[str, str]:
    """Collections `docs` (the docs-qa passages, alias `kb`) and `notes` (one good file,
    one empty file: a dead letter), a canary on `kb` with three runs, and two keys."""
    notes.mkdir()
    (notes / "good.txt").write_text(NOTE)
    (notes / "broken.txt").write_text("")
    with embedops.open(store) as client:
        client.ingest([DOCS_QA / "corpus.jsonl"], "docs", model=TEST_MODEL, id_field="_id")
        summary = client.ingest([notes], "notes", model=TEST_MODEL)
        assert summary.documents_failed == 1
        client.store.create_alias("kb", "docs")
        assert client.ledger is not None
        create_canary(client.store, client.ledger, "docs-qa", "kb", source=DOCS_QA)
        for _ in range(3):
            run_canary(client, "docs-qa", notify=False)
        admin, _ = client.ledger.create_key(["admin"], None, "dashboard admin")
        read, _ = client.ledger.create_key(["read"], None, "dashboard viewer")
    return admin, read


@pytest.fixture(scope="module")
def dashboard(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dashboard]:
    browser_paths()
    try:
        import selenium  # noqa: F401
    except ImportError:
        _missing("selenium (the dev extra)")
    root = tmp_path_factory.mktemp("dashboard")
    admin, read = make_store(root / "store", root / "notes")
    shots = Path(os.environ.get("EMBEDOPS_SCREENSHOTS") or root / "screenshots")
    shots.mkdir(parents=True, exist_ok=True)
    env = {"EMBEDOPS_DASHBOARD_SAMPLE_S": "0.2", "EMBEDOPS_MIGRATION_MAX_DROP_POINTS": "100"}
    server = ServerProcess(root / "store", env, TEST_MODEL)
    try:
        server.wait_ready()
        yield Dashboard(server.url, admin, read, root / "notes", shots)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def browser(dashboard: Dashboard) -> Iterator[Any]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    chromium, driver_path = browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=1400,1000", "--no-first-run", "--disable-extensions"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=driver_path), options=options)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(condition: Any, timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll ``condition()`` until it is truthy; its value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)
