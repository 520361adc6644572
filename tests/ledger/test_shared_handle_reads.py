"""A ledger handle shared by threads: reads from one thread (the service's HTTP reads, a
batch run's reader thread taking read marks) beside another thread's writes on the same
handle, while a third connection commits. A read left open on the connection would hold
a snapshot, and the writer's next transaction would fail at once with "database is
locked" (``ledger.serial_connection``)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import embedops
from embedops.ledger import DocRecord, Ledger

READS: dict[str, Callable[[Ledger], Any]] = {
    "read_mark": lambda ledger: ledger.read_mark(),  # (a batch run's reader thread)
    "documents": lambda ledger: ledger.documents("c"),  # (GET requests, a run's start)
    "dual_write_targets": lambda ledger: ledger.dual_write_targets("c"),
}


@pytest.mark.parametrize("read", sorted(READS))
def test_reads_from_another_thread_never_fail_the_handles_writes(tmp_path: Path,
                                                                 read: str) -> None:
    with embedops.open(tmp_path / "s", model="testing/hash-64") as db:
        shared, other = db.new_ledger_handle(), db.new_ledger_handle()
        shared.commit_documents("c", [DocRecord(f"d{i}", "h", "m", 1, None, "f", "t")
                                      for i in range(3000)])
        stop, errors = threading.Event(), []

        def reads() -> None:
            while not stop.is_set():
                READS[read](shared)
                time.sleep(0)  # (lets the writer at the handle's lock between reads)

        def other_writes() -> None:  # (another connection committing meanwhile)
            i = 0
            while not stop.is_set():
                other.claim("x", {f"o{i}": 0})
                i += 1

        threads = [threading.Thread(target=reads), threading.Thread(target=other_writes)]
        for thread in threads:
            thread.start()
        try:
            for i in range(1500):  # (an HTTP upsert's enqueue on the shared handle)
                try:
                    shared.enqueue("c", [(f"e{i}", "delete", {})])
                except Exception as exc:  # (counted: the test's point)
                    errors.append(repr(exc))
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert errors == []
        assert shared.read_mark() >= 1500
