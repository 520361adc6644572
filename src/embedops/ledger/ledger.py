"""The ledger: what was embedded into which collection, from which content, when.

A SQLite database (WAL), by default beside the embedded store's, ``<store>/ledger.db``.
The write stage commits a document here only after its points are in the store, so after
a crash the ledger never claims more than the store holds: an uncommitted document is
simply embedded again (same ids, so the store upsert replaces the points it had already
written).

The ledger keeps every document's content: the embedded text (zlib-compressed, stored
once per distinct content hash however many collections hold it), the metadata, the
title and each chunk's span and token count. Re-embedding, re-chunking and model
migrations read it from here and never need the original sources.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from embedops.errors import StoreCorrupted, StoreError
from embedops.ledger.canaries import CanariesMixin
from embedops.ledger.job_runs import JobRunsMixin
from embedops.ledger.keys import KeysMixin
from embedops.ledger.migrations import MigrationsMixin
from embedops.ledger.outbox import OutboxMixin
from embedops.ledger.payload_fields import PayloadFieldsMixin
from embedops.ledger.schema import MIGRATIONS
from embedops.ledger.serial_connection import SerialConnection
from embedops.ledger.timeseries import TimeSeriesMixin
from embedops.sqlite_migrations import apply_migrations


def utc_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class DocRecord:
    """One document as last embedded into a collection."""

    doc_id: str
    content_hash: str
    meta_hash: str
    chunk_count: int
    source: str | None
    fingerprint: str
    last_embedded_at: str
    plan: str = ""  # how the text was chunked (chunker and limits); see Chunker.plan
    # What to keep of the content; None leaves the stored content as it is.
    content: DocContent | None = None


@dataclass(frozen=True)
class DocContent:
    """A document's durable content. ``text`` is the embedded text that chunk spans
    index into; ``spans`` is None to keep the stored spans (a metadata-only change)."""

    text: str
    metadata: dict[str, Any]
    title: str | None = None
    spans: list[tuple[int, int, int]] | None = None  # (start, end, tokens) per chunk
    modality: str = "text"


@dataclass(frozen=True)
class StoredDocument:
    """A document as the ledger keeps it, with its chunks (see ``Ledger.stored``)."""

    collection: str
    doc_id: str
    text: str | None  # None for documents committed before content was kept
    metadata: dict[str, Any]
    title: str | None
    source: str | None
    modality: str
    content_hash: str
    fingerprint: str
    last_embedded_at: str
    plan: str
    spans: list[tuple[int, int, int]]

    def chunks(self) -> list[dict[str, Any]]:
        """Each chunk: id, index, span, tokens, text, and how it was embedded."""
        return [{"id": f"{self.doc_id}#{n}", "index": n, "start": start, "end": end,
                 "tokens": tokens,
                 "text": self.text[start:end] if self.text is not None else None,
                 "fingerprint": self.fingerprint, "last_embedded_at": self.last_embedded_at}
                for n, (start, end, tokens) in enumerate(self.spans)]

    def to_dict(self) -> dict[str, Any]:
        return {"collection": self.collection, "id": self.doc_id, "text": self.text,
                "metadata": self.metadata, "title": self.title, "source": self.source,
                "modality": self.modality, "content_hash": self.content_hash,
                "fingerprint": self.fingerprint, "last_embedded_at": self.last_embedded_at,
                "chunks": self.chunks()}


def compress(text: str) -> bytes:
    return zlib.compress(text.encode("utf-8"), 6)


def decompress(codec: str, data: bytes) -> str:
    if codec != "zlib":
        raise StoreCorrupted(f"unknown content codec {codec!r} in the ledger")
    return zlib.decompress(data).decode("utf-8")


@dataclass(frozen=True)
class DeadLetter:
    """A document that could not be embedded, and why."""

    collection: str
    doc_id: str
    source: str | None
    stage: str
    reason: str
    detail: str
    attempts: int
    first_seen: str
    last_seen: str
    root: str | None = None  # the directory ``doc_id`` is relative to, for ``dlq retry``

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class Ledger(OutboxMixin, KeysMixin, MigrationsMixin, PayloadFieldsMixin, CanariesMixin,
             JobRunsMixin, TimeSeriesMixin):
    """Documents, dead letters, runs, the real-time outbox and API keys of one store
    directory. A handle may be shared by threads: write transactions and single
    statements are serialised, each statement fetched whole under the handle's lock
    (``serial_connection``)."""

    def __init__(self, location: Path, read_only: bool = False) -> None:
        """``location``: the database file (``*.db``) or a directory that holds (or will
        hold) ``ledger.db``."""
        location = Path(location)
        path = location if location.suffix == ".db" else location / "ledger.db"
        if read_only and not path.exists():
            raise StoreError(f"no ledger at {path}: nothing was ingested there yet")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        if read_only:
            _upgrade_schema(path)
        uri = f"file:{path}?mode=ro" if read_only else f"file:{path}"
        self._lock = threading.RLock()
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None,
                                   check_same_thread=False)
            self._conn = SerialConnection(conn, self._lock)  # type: ignore[assignment]
            conn.execute("PRAGMA busy_timeout = 5000")
            if not read_only:
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = NORMAL")
                apply_migrations(conn, MIGRATIONS)
        except (sqlite3.Error, ValueError) as exc:
            raise StoreCorrupted(f"cannot open ledger {path}: {exc}") from exc

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        try:
            with self._lock:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    yield self._conn
                except BaseException:
                    self._conn.execute("ROLLBACK")
                    raise
                self._conn.execute("COMMIT")
        except sqlite3.Error as exc:
            raise StoreError(f"ledger write failed: {exc}") from exc

    # --- documents -----------------------------------------------------------------------

    def documents(self, collection: str, doc_ids: Iterable[str] | None = None
                  ) -> dict[str, DocRecord]:
        """Records of ``doc_ids`` (all documents when None) that the ledger knows."""
        sql = ("SELECT doc_id, content_hash, meta_hash, chunk_count, source, fingerprint, "
               "last_embedded_at, plan FROM documents WHERE collection = ?")
        if doc_ids is None:
            rows = self._conn.execute(sql, (collection,)).fetchall()
        else:
            rows = []
            ids = list(doc_ids)
            for i in range(0, len(ids), 500):
                part = ids[i : i + 500]
                marks = ",".join("?" * len(part))
                rows += self._conn.execute(f"{sql} AND doc_id IN ({marks})",
                                           (collection, *part)).fetchall()
        return {r[0]: DocRecord(*r) for r in rows}

    def document_count(self, collection: str) -> int:
        row = self._conn.execute("SELECT count(*) FROM documents WHERE collection = ?",
                                 (collection,)).fetchone()
        return int(row[0])

    def commit_documents(self, collection: str, records: Sequence[DocRecord]) -> None:
        """Record documents as embedded, with their content (one transaction), and clear
        their dead letters."""
        now = utc_now()
        with self._tx() as conn:
            replaced = _content_hashes(conn, collection, [r.doc_id for r in records])
            _store_contents(conn, [r for r in records if r.content is not None])
            conn.executemany(
                "INSERT INTO documents (collection, doc_id, content_hash, meta_hash, chunk_count,"
                " source, fingerprint, last_embedded_at, updated_at, plan)"
                " VALUES (?,?,?,?,?,?,?,?,?,?) "
                "ON CONFLICT (collection, doc_id) DO UPDATE SET content_hash=excluded.content_hash,"
                " meta_hash=excluded.meta_hash, chunk_count=excluded.chunk_count,"
                " source=excluded.source, fingerprint=excluded.fingerprint,"
                " last_embedded_at=excluded.last_embedded_at, updated_at=excluded.updated_at,"
                " plan=excluded.plan",
                [(collection, r.doc_id, r.content_hash, r.meta_hash, r.chunk_count, r.source,
                  r.fingerprint, r.last_embedded_at, now, r.plan) for r in records],
            )
            conn.executemany(
                "UPDATE documents SET title = ?, metadata = ?, modality = ? WHERE"
                " collection = ? AND doc_id = ?",
                [(r.content.title, _json(r.content.metadata), r.content.modality, collection,
                  r.doc_id) for r in records if r.content is not None])
            conn.executemany(
                "UPDATE documents SET spans = ? WHERE collection = ? AND doc_id = ?",
                [(json.dumps(r.content.spans), collection, r.doc_id) for r in records
                 if r.content is not None and r.content.spans is not None])
            conn.executemany("DELETE FROM dead_letters WHERE collection = ? AND doc_id = ?",
                             [(collection, r.doc_id) for r in records])
            _drop_unreferenced_contents(conn, replaced)

    def stored(self, collection: str, doc_id: str) -> StoredDocument | None:
        """The document's content, metadata and chunks as last committed, or None."""
        row = self._conn.execute(
            "SELECT d.doc_id, c.codec, c.data, d.metadata, d.title, d.source, d.modality,"
            " d.content_hash, d.fingerprint, d.last_embedded_at, d.plan, d.spans"
            " FROM documents d LEFT JOIN contents c ON c.content_hash = d.content_hash"
            " WHERE d.collection = ? AND d.doc_id = ?", (collection, doc_id)).fetchone()
        return None if row is None else _stored(collection, row)

    def iter_stored(self, collection: str, page_size: int = 500,
                    after: str = "") -> Iterator[StoredDocument]:
        """Every document of ``collection`` with its content, in doc id order (those
        whose id sorts after ``after`` only)."""
        last = after
        while True:
            rows = self._conn.execute(
                "SELECT d.doc_id, c.codec, c.data, d.metadata, d.title, d.source, d.modality,"
                " d.content_hash, d.fingerprint, d.last_embedded_at, d.plan, d.spans"
                " FROM documents d LEFT JOIN contents c ON c.content_hash = d.content_hash"
                " WHERE d.collection = ? AND d.doc_id > ? ORDER BY d.doc_id LIMIT ?",
                (collection, last, page_size)).fetchall()
            if not rows:
                return
            for row in rows:
                yield _stored(collection, row)
            last = rows[-1][0]

    def content_bytes(self) -> dict[str, int]:
        """Bytes the kept content takes: compressed, and as raw text characters."""
        row = self._conn.execute(
            "SELECT coalesce(sum(length(data)), 0), coalesce(sum(chars), 0) FROM contents"
        ).fetchone()
        return {"compressed_bytes": int(row[0]), "text_chars": int(row[1])}

    def remove_documents(self, collection: str, doc_ids: Sequence[str]) -> None:
        """Forget documents, and the digests of the files they came from, so the next
        ingest of those files reads them again instead of skipping them as unchanged."""
        with self._tx() as conn:
            removed = _content_hashes(conn, collection, doc_ids)
            for i in range(0, len(doc_ids), 500):
                part = list(doc_ids[i : i + 500])
                marks = ",".join("?" * len(part))
                conn.execute(
                    "DELETE FROM sources WHERE collection = ? AND source IN (SELECT source "
                    f"FROM documents WHERE collection = ? AND doc_id IN ({marks}))",
                    (collection, collection, *part))
                conn.execute(f"DELETE FROM documents WHERE collection = ? AND doc_id IN ({marks})",
                             (collection, *part))
            _drop_unreferenced_contents(conn, removed)

    # --- source files --------------------------------------------------------------------

    def source_digests(self, collection: str) -> dict[str, tuple[str, str, str]]:
        """Absolute path -> (source id, bytes hash, options hash) of files whose documents
        were all committed when they were last ingested."""
        rows = self._conn.execute("SELECT path, source, bytes_hash, options_hash FROM sources "
                                  "WHERE collection = ?", (collection,)).fetchall()
        return {r[0]: (r[1], r[2], r[3]) for r in rows}

    def record_sources(self, collection: str,
                       files: Sequence[tuple[str, str, str, str]],
                       options: dict[str, Any] | None = None) -> None:
        """Remember ``(path, source id, bytes hash, options hash)`` of files whose every
        document is committed, so an unchanged file can be skipped without decoding it;
        ``options``: the preprocessing options they were read with (``stale`` reads the
        files again the same way)."""
        now = utc_now()
        blob = _json(options or {})
        with self._tx() as conn:
            conn.executemany(
                "INSERT INTO sources (collection, path, source, bytes_hash, options_hash,"
                " updated_at, options) VALUES (?,?,?,?,?,?,?) ON CONFLICT (collection, path)"
                " DO UPDATE SET source=excluded.source, bytes_hash=excluded.bytes_hash,"
                " options_hash=excluded.options_hash, updated_at=excluded.updated_at,"
                " options=excluded.options",
                [(collection, path, src, digest, opts, now, blob)
                 for path, src, digest, opts in files])

    def source_files(self, collection: str) -> list[tuple[str, str, str, dict[str, Any]]]:
        """``(path, source id, bytes hash, preprocessing options)`` of every recorded file."""
        rows = self._conn.execute("SELECT path, source, bytes_hash, options FROM sources "
                                  "WHERE collection = ? ORDER BY path", (collection,))
        return [(r[0], r[1], r[2], json.loads(r[3] or "{}")) for r in rows.fetchall()]

    def forget_sources(self, collection: str, paths: Sequence[str]) -> None:
        with self._tx() as conn:
            conn.executemany("DELETE FROM sources WHERE collection = ? AND path = ?",
                             [(collection, p) for p in paths])

    def drop_collection(self, collection: str) -> None:
        with self._tx() as conn:
            for table in ("documents", "dead_letters", "runs", "doc_versions", "outbox",
                          "sources", "payload_fields", "field_backfills"):
                conn.execute(f"DELETE FROM {table} WHERE collection = ?", (collection,))
            _drop_unreferenced_contents(conn)

    # --- dead letters --------------------------------------------------------------------

    def record_dead_letter(self, collection: str, doc_id: str, source: str | None,
                           stage: str, reason: str, detail: str = "",
                           root: str | None = None) -> None:
        """Add a dead letter, or count one more attempt of an existing one. ``source`` is
        the file's absolute path and ``root`` the directory its document ids are relative
        to, when the document came from a file."""
        now = utc_now()
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO dead_letters (collection, doc_id, source, stage, reason, detail,"
                " attempts, first_seen, last_seen, root) VALUES (?,?,?,?,?,?,1,?,?,?) "
                "ON CONFLICT (collection, doc_id) DO UPDATE SET attempts = attempts + 1,"
                " stage=excluded.stage, reason=excluded.reason, detail=excluded.detail,"
                " source=excluded.source, last_seen=excluded.last_seen, root=excluded.root",
                (collection, doc_id, source, stage, reason, detail[:2000], now, now, root),
            )

    def dead_letters(self, collection: str | None = None,
                     doc_ids: Sequence[str] | None = None) -> list[DeadLetter]:
        sql = ("SELECT collection, doc_id, source, stage, reason, detail, attempts, first_seen,"
               " last_seen, root FROM dead_letters")
        clauses, params = [], []
        if collection is not None:
            clauses.append("collection = ?")
            params.append(collection)
        if doc_ids is not None:
            clauses.append(f"doc_id IN ({','.join('?' * len(doc_ids))})")
            params.extend(doc_ids)
        if clauses:
            sql += " WHERE " + " AND ".join(clauses)
        rows = self._conn.execute(sql + " ORDER BY last_seen DESC", params).fetchall()
        return [DeadLetter(*r) for r in rows]

    def purge_dead_letters(self, collection: str | None = None,
                           doc_ids: Sequence[str] | None = None) -> int:
        letters = self.dead_letters(collection, doc_ids)
        with self._tx() as conn:
            conn.executemany("DELETE FROM dead_letters WHERE collection = ? AND doc_id = ?",
                             [(d.collection, d.doc_id) for d in letters])
        return len(letters)

    # --- runs ----------------------------------------------------------------------------

    def start_run(self, collection: str) -> int:
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO runs (collection, started_at, status) VALUES (?, ?, 'running')",
                (collection, utc_now()))
        return int(cur.lastrowid or 0)

    def finish_run(self, run_id: int, status: str, summary: dict[str, Any]) -> None:
        with self._tx() as conn:
            conn.execute("UPDATE runs SET finished_at = ?, status = ?, summary = ? "
                         "WHERE run_id = ?", (utc_now(), status, json.dumps(summary), run_id))


def _json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _store_contents(conn: sqlite3.Connection, records: Sequence[DocRecord]) -> None:
    """Keep the text of each record once per content hash (texts are immutable per hash)."""
    fresh: dict[str, str] = {}
    for record in records:
        assert record.content is not None
        fresh.setdefault(record.content_hash, record.content.text)
    conn.executemany(
        "INSERT INTO contents (content_hash, codec, data, chars) VALUES (?, 'zlib', ?, ?)"
        " ON CONFLICT (content_hash) DO NOTHING",
        [(digest, compress(text), len(text)) for digest, text in fresh.items()])


def _content_hashes(conn: sqlite3.Connection, collection: str,
                    doc_ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for i in range(0, len(doc_ids), 500):
        part = list(doc_ids[i : i + 500])
        rows = conn.execute("SELECT content_hash FROM documents WHERE collection = ? AND "
                            f"doc_id IN ({','.join('?' * len(part))})", (collection, *part))
        found.update(r[0] for r in rows)
    return found


def _drop_unreferenced_contents(conn: sqlite3.Connection,
                                hashes: Iterable[str] | None = None) -> None:
    """Forget texts no document refers to any more (only among ``hashes`` when given,
    so a commit costs what it touched, not the size of the ledger)."""
    unreferenced = ("NOT EXISTS (SELECT 1 FROM documents d WHERE d.content_hash ="
                    " contents.content_hash)")
    if hashes is None:
        conn.execute(f"DELETE FROM contents WHERE {unreferenced}")
        return
    conn.executemany(f"DELETE FROM contents WHERE content_hash = ? AND {unreferenced}",
                     [(h,) for h in hashes])


def _stored(collection: str, row: Sequence[Any]) -> StoredDocument:
    (doc_id, codec, data, metadata, title, source, modality, digest, fingerprint, embedded_at,
     plan, spans) = row
    text = decompress(codec, data) if data is not None else None
    return StoredDocument(collection, doc_id, text, json.loads(metadata or "{}"), title, source,
                          modality, digest, fingerprint, embedded_at, plan,
                          [tuple(s) for s in json.loads(spans or "[]")])  # type: ignore[misc]


def _upgrade_schema(path: Path) -> None:
    """A ledger written by an older embedops gets its new tables before a read-only
    handle reads it (the schema migrations only add; concurrent writers are safe)."""
    try:
        probe = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            done = {r[0] for r in probe.execute("SELECT version FROM schema_migrations")}
        finally:
            probe.close()
    except sqlite3.Error:
        done = set()
    if {m[0] for m in MIGRATIONS} <= done:
        return
    try:
        conn = sqlite3.connect(str(path), isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout = 5000")
            apply_migrations(conn, MIGRATIONS)
        finally:
            conn.close()
    except (sqlite3.Error, ValueError) as exc:
        raise StoreError(f"the ledger {path} has an older schema and cannot be upgraded "
                         f"from here ({exc}): run a write command once") from exc
