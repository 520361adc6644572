"""The writing connection's settings: a page cache that holds an upsert's pages, and
the statement journals of an upsert's transaction in memory (``temp_store = MEMORY``).
Every other write keeps SQLite's default, which spills to disk: a payload update or a
delete by filter over millions of points, and a payload index's sort (under MEMORY the
sorter never spills: 180 MB more for 3M points)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from embedops.store import open_store
from embedops.store.embedded import WRITER_CACHE_KIB

from .storedata import mixture

DEFAULT = 0


def _traced(store: Any, work: Any) -> list[str]:
    """The statements ``work()`` ran on the store's writing connection."""
    statements: list[str] = []
    store.conn.set_trace_callback(statements.append)
    try:
        work()
    finally:
        store.conn.set_trace_callback(None)
    return statements


def _settings(statements: list[str]) -> list[str]:
    return [s for s in statements if s.startswith(("PRAGMA temp_store =", "BEGIN", "COMMIT"))]


def test_only_an_upsert_journals_in_memory(tmp_path: Path) -> None:
    with open_store(tmp_path / "s") as store:
        assert store.conn.execute("PRAGMA cache_size").fetchone() == (-WRITER_CACHE_KIB,)
        assert store.conn.execute("PRAGMA temp_store").fetchone() == (DEFAULT,)
        store.create_collection("c", 8, fingerprint="fp")
        data = mixture(50, 8, seed=1)
        upsert = _traced(store, lambda: store.upsert(
            "c", [str(i) for i in range(50)], data, [{"n": i % 5} for i in range(50)],
            fingerprint="fp"))
        assert _settings(upsert) == ["PRAGMA temp_store = MEMORY", "BEGIN IMMEDIATE",
                                     "COMMIT", f"PRAGMA temp_store = {DEFAULT}"]
        assert store.conn.execute("PRAGMA temp_store").fetchone() == (DEFAULT,)
        others = [
            lambda: store.create_payload_index("c", "n"),
            lambda: store.update_payload("c", {"m": 1}, filter={"field": "n", "eq": 1}),
            lambda: store.delete("c", filter={"field": "n", "eq": 2}),
            lambda: store.create_collection("d", 8, fingerprint="fp", payload_indexes=["n"]),
            lambda: store.drop_collection("d"),
        ]
        for work in others:
            assert not [s for s in _traced(store, work) if s.startswith("PRAGMA temp_store")]
        assert store.count("c", filter={"field": "m", "eq": 1}) == 10
        assert store.count("c") == 40
