"""The writing connection's settings: a page cache that holds an upsert's pages, the
statement journals in memory, and yet the sort of a payload index on disk (under
``temp_store = MEMORY`` SQLite's sorter never spills: 180 MB more for 3M points)."""

from __future__ import annotations

from pathlib import Path

from embedops.store import open_store
from embedops.store.embedded import WRITER_CACHE_KIB

from .storedata import mixture

MEMORY = 2


def test_the_writer_journals_in_memory_with_a_large_cache(tmp_path: Path) -> None:
    with open_store(tmp_path / "s") as store:
        assert store.conn.execute("PRAGMA temp_store").fetchone() == (MEMORY,)
        assert store.conn.execute("PRAGMA cache_size").fetchone() == (-WRITER_CACHE_KIB,)


def test_a_payload_index_is_sorted_on_disk(tmp_path: Path) -> None:
    with open_store(tmp_path / "s") as store:
        store.create_collection("c", 8, fingerprint="fp")
        store.upsert("c", [str(i) for i in range(50)], mixture(50, 8, seed=1),
                     [{"n": i % 5} for i in range(50)], fingerprint="fp")
        statements: list[str] = []
        store.conn.set_trace_callback(statements.append)
        try:
            store.create_payload_index("c", "n")
        finally:
            store.conn.set_trace_callback(None)
        settings = [s for s in statements if s.startswith(("PRAGMA temp_store =",
                                                           "CREATE INDEX"))]
        assert [s.split(" ON ")[0].split(" IF ")[0] for s in settings] == [
            "PRAGMA temp_store = FILE", "CREATE INDEX", f"PRAGMA temp_store = {MEMORY}"]
        assert store.conn.execute("PRAGMA temp_store").fetchone() == (MEMORY,)
        assert store.count("c", filter={"field": "n", "eq": 1}) == 10
