"""One ingest process of the shared-ledger tests: the batch pipeline into a remote store,
committing to a ledger on PostgreSQL.

Usage: python -m tests.ledger.shared_writer LEDGER_URL STORE_URL CORPUS [GLOB ...]

Ingests the text files of CORPUS whose names match one of the globs (all of them when
none is given) into the collection ``docs`` with the test model ``testing/hash-64``
(``EMBEDOPS_ENABLE_TEST_MODELS=1``), in batches of 8 chunks, then prints the run's
summary as JSON (with the Unix times it ``started`` and ``ended``).
``EMBEDOPS_TEST_START_AT`` (a Unix time) makes it wait until then
before it reads, so that several writers start together.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

from embedops.config import Settings
from embedops.ingest.batch import BatchIngest, IngestOptions
from embedops.ledger.postgres import open_ledger
from embedops.preprocess.pipeline import PreprocessOptions
from embedops.store import open_store

MODEL = "testing/hash-64"
COLLECTION = "docs"


def main(ledger_url: str, store_url: str, corpus: str, include: list[str]) -> None:
    settings = Settings(store=store_url, model=MODEL)
    options = IngestOptions(collection=COLLECTION, batch_size=8, include=tuple(include),
                            preprocess=PreprocessOptions.from_settings(settings), model=MODEL)
    store = open_store(store_url)
    ledger = open_ledger(ledger_url)
    try:
        job = BatchIngest(store, ledger, settings, options)
        start_at = float(os.environ.get("EMBEDOPS_TEST_START_AT", "0"))
        time.sleep(max(0.0, start_at - time.time()))  # writers that start together
        started = time.time()
        summary = job.run([Path(corpus)])
    finally:
        ledger.close()
        store.close()
    print(json.dumps({**summary.to_dict(), "started": started, "ended": time.time()}),
          flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:])
