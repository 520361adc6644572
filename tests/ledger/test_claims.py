"""Work claims (``ledger/claims.py``) on SQLite and on PostgreSQL: a document is held by
one run at a time; releases free it; an expired claim, and the claim of a run that was
killed, is taken over; claimers racing over the same documents never both get one."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from embedops.ledger import Ledger
from embedops.ledger.claims import Claims
from embedops.ledger.postgres import open_ledger

from .test_postgres_ledger import _url

Opener = Callable[[], Ledger]
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgresql"])
def location(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    return str(tmp_path) if request.param == "sqlite" else _url(tmp_path)


@pytest.fixture
def opener(location: str) -> Iterator[Opener]:
    opened: list[Ledger] = []

    def open_() -> Ledger:
        opened.append(open_ledger(location))
        return opened[-1]

    yield open_
    for ledger in opened:
        ledger.close()


def test_a_document_is_held_by_one_claimant_until_released(opener: Opener) -> None:
    first, second = Claims(opener(), 60), Claims(opener(), 60)
    assert first.take("c", ["a", "b", "c"]) == {"a", "b", "c"}
    assert second.take("c", ["b", "c", "d"]) == {"d"}
    assert second.take("other", ["b"]) == {"b"}  # claims are per collection
    assert first.take("c", ["a"]) == {"a"}  # its own claim stays its own
    first.release("c", ["b"])
    assert second.take("c", ["b", "c"]) == {"b"}
    assert first.holders("c") == {"a": first.name, "c": first.name, "b": second.name,
                                  "d": second.name}
    second.release("c", ["a", "b", "d"])  # not second's "a": untouched
    assert first.holders("c") == {"a": first.name, "c": first.name}


def test_an_expired_claim_is_taken_over(opener: Opener) -> None:
    short, other = Claims(opener(), 0.2), Claims(opener(), 60)
    assert short.take("c", ["a", "b"]) == {"a", "b"}
    assert other.take("c", ["a"]) == set()
    time.sleep(0.3)
    assert other.take("c", ["a"]) == {"a"}
    assert other.holders("c") == {"a": other.name, "b": short.name}


def test_claims_expire_by_the_servers_clock_not_the_claimants(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs on machines whose clocks disagree: a claimant whose clock is an hour ahead
    must not see a claim taken a moment ago as expired (expiry is the server's time)."""
    from embedops.ledger import claims as claims_module

    url = _url(tmp_path)
    first, second = Claims(open_ledger(url), 60), Claims(open_ledger(url), 60)
    try:
        assert first.take("c", ["a"]) == {"a"}
        monkeypatch.setattr(claims_module, "local_clock", lambda: time.time() + 3600)
        assert second.take("c", ["a"]) == set()
        first.release("c", ["a"])
        assert second.take("c", ["a"]) == {"a"}
    finally:
        first.ledger.close()
        second.ledger.close()


_HOLDER = """
import sys, time
from embedops.ledger.claims import Claims
from embedops.ledger.postgres import open_ledger
claims = Claims(open_ledger(sys.argv[1]), 3600)
print(sorted(claims.take("c", ["a", "b"])), flush=True)
time.sleep(600)
"""


def test_the_claims_of_a_killed_run_are_taken_over_at_once(location: str,
                                                           opener: Opener) -> None:
    """A claim lasting an hour, of a process killed with SIGKILL: free at once (its
    process is gone from this machine and, on PostgreSQL, its session from the server)."""
    holder = subprocess.Popen([sys.executable, "-c", _HOLDER, location], cwd=ROOT,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == \
            "['a', 'b']"
        other = Claims(opener(), 60)
        assert other.take("c", ["a", "b"]) == set()  # alive: still its
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
    deadline = time.monotonic() + 10  # the server ends the dead session's backend
    while (got := other.take("c", ["a", "b"])) != {"a", "b"} and time.monotonic() < deadline:
        time.sleep(0.05)
    assert got == {"a", "b"}


def test_a_dead_postgres_session_frees_claims_of_a_live_process(tmp_path: Path) -> None:
    """On PostgreSQL a claim belongs to the session that took it: when that session
    ends (its connection lost), the claim is stale even though the process lives."""
    url = _url(tmp_path)
    holder_ledger = open_ledger(url)
    holder = Claims(holder_ledger, 3600)
    assert holder.name.split(":")[1] == str(os.getpid())
    assert holder.take("c", ["a"]) == {"a"}
    other = Claims(open_ledger(url), 60)
    try:
        assert other.take("c", ["a"]) == set()
        holder_ledger.close()
        deadline = time.monotonic() + 10
        while (got := other.take("c", ["a"])) != {"a"} and time.monotonic() < deadline:
            time.sleep(0.05)
        assert got == {"a"}
    finally:
        other.ledger.close()


def _claimer(url: str, worker: int) -> list[tuple[str, int]]:
    """Claim overlapping windows of 100 ids again and again, hold them a moment and give
    them back; returns (id, round) of every claim granted."""
    ledger = open_ledger(url)
    claims = Claims(ledger, 60)
    granted: list[tuple[str, int]] = []
    try:
        for rnd in range(15):
            lo = (worker * 7 + rnd * 13) % 60
            ids = [f"d{i:03d}" for i in range(lo, lo + 40)]
            held = claims.take("c", ids)
            holders = claims.holders("c")
            assert all(holders[d] == claims.name for d in held)
            granted += [(d, rnd) for d in held]
            claims.release("c", held)
    finally:
        ledger.close()
    return granted


def test_racing_claimers_never_hold_the_same_document(tmp_path: Path) -> None:
    url = _url(tmp_path)
    open_ledger(url).close()
    with multiprocessing.get_context("spawn").Pool(4) as pool:
        results = pool.starmap(_claimer, [(url, w) for w in range(4)])
    assert all(results) and sum(len(r) for r in results) > 100
    ledger = open_ledger(url)
    try:
        assert Claims(ledger, 60).holders("c") == {}  # every claim was released
    finally:
        ledger.close()
