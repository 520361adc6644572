"""The store's numbered migrations: applied once, recorded, newer schemas refused."""

from __future__ import annotations

import logging
import sqlite3
from pathlib import Path

import pytest

from embedops import sqlite_migrations
from embedops.errors import StoreCorrupted
from embedops.sqlite_migrations import statements
from embedops.store import open_store
from embedops.store.schema import MIGRATIONS


def test_migrations_recorded_once(tmp_path: Path) -> None:
    open_store(tmp_path).close()
    open_store(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "store.sqlite")
    versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations")]
    assert versions == [number for number, _, _ in MIGRATIONS]


def test_newer_schema_is_refused(tmp_path: Path) -> None:
    open_store(tmp_path).close()
    conn = sqlite3.connect(tmp_path / "store.sqlite")
    conn.execute("INSERT INTO schema_migrations VALUES (99, 'future', 'now')")
    conn.commit()
    conn.close()
    with pytest.raises(StoreCorrupted, match="newer"):
        open_store(tmp_path)


def test_statements_split_at_their_ends_only() -> None:
    """A trigger's body, a string and a comment keep their semicolons."""
    sql = """
        CREATE TABLE t (x TEXT);  -- a comment; with a semicolon
        CREATE TRIGGER g AFTER INSERT ON t BEGIN
            UPDATE t SET x = 'a;b' WHERE x = NEW.x; DELETE FROM t WHERE x IS NULL;
        END;
        INSERT INTO t VALUES ('c;d');
    """
    parts = statements(sql)
    assert len(parts) == 3
    assert "CREATE TRIGGER" in parts[1] and parts[1].endswith("END")
    conn = sqlite3.connect(":memory:")
    for part in parts:
        conn.execute(part)
    assert conn.execute("SELECT x FROM t").fetchall() == [("a;b",)]


def test_only_a_slow_migration_is_reported_at_info(tmp_path: Path,
                                                  caplog: pytest.LogCaptureFixture,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh store's migrations take milliseconds and stay out of the INFO log (every
    command opens a store and a ledger); one that took ``SLOW_S`` or more is reported."""
    with caplog.at_level(logging.INFO, logger="embedops.migrations"):
        open_store(tmp_path / "a").close()
        assert "schema migration" not in caplog.text
        monkeypatch.setattr(sqlite_migrations, "SLOW_S", 0.0)
        open_store(tmp_path / "b").close()
        assert "schema migration 2 (collection totals) applied in" in caplog.text
