"""Closing a SQLite ledger handle while other threads run statements on it waits for the
statement in progress; the threads' later statements fail with a clear error. Closing
the connection under a running statement crashed the whole process (a segmentation
fault in SQLite), as a client closed while a background writer still used its ledger
did. Run in a child process, so that a crash fails this test, not the test run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CHILD = """
import json, sys, threading, time
from pathlib import Path
from embedops.ledger import Ledger

folder, errors = Path(sys.argv[1]), set()
for attempt in range(30):
    ledger = Ledger(folder / f"ledger{attempt}.db")
    stop = threading.Event()

    def work(ledger=ledger, stop=stop):
        i = 0
        while not stop.is_set():
            try:
                ledger.documents("c", [f"d{i}"])
                ledger.start_run("c")
            except Exception as exc:
                errors.add(type(exc).__name__)
                return
            i += 1

    threads = [threading.Thread(target=work) for _ in range(2)]
    for thread in threads:
        thread.start()
    time.sleep(0.01)
    ledger.close()
    stop.set()
    for thread in threads:
        thread.join()
print(json.dumps(sorted(errors)))
"""


def test_closing_a_ledger_beside_running_statements_does_not_crash(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path)], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, (done.returncode, done.stderr[-2000:])
    assert set(json.loads(done.stdout)) <= {"ProgrammingError", "StoreError"}
