"""The write clock read from another thread (a batch run's reader takes a read mark on
the write gate's ledger handle while the gate's holder writes with that handle) must not
leave a read open on the connection: that thread's next write transaction would then
fail at once with "database is locked" whenever another connection had committed since."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import embedops


def test_read_marks_from_another_thread_never_fail_the_handles_writes(tmp_path: Path) -> None:
    with embedops.open(tmp_path / "s", model="testing/hash-64") as db:
        shared, other = db.new_ledger_handle(), db.new_ledger_handle()
        stop, errors = threading.Event(), []

        def read_marks() -> None:  # (the batch run's reader thread)
            while not stop.is_set():
                shared.read_mark()
                time.sleep(0)  # (lets the writer at the handle's lock between reads)

        def other_writes() -> None:  # (an HTTP upsert's enqueue, another connection)
            i = 0
            while not stop.is_set():
                other.claim("x", {f"o{i}": 0})
                i += 1

        threads = [threading.Thread(target=read_marks), threading.Thread(target=other_writes)]
        for thread in threads:
            thread.start()
        try:
            for i in range(3000):  # (the gate's holder writing with the shared handle)
                try:
                    shared.claim("c", {f"d{i}": 0})
                except Exception as exc:  # (counted: the test's point)
                    errors.append(repr(exc))
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert errors == []
        assert shared.read_mark() >= 3000
