"""The ledger's numbered schema migrations."""

from __future__ import annotations

from embedops.sqlite_migrations import Migration

MIGRATIONS: tuple[Migration, ...] = (
    (
        1,
        "documents, dead letters, runs",
        """
        CREATE TABLE documents (
            collection TEXT NOT NULL,
            doc_id TEXT NOT NULL,
            content_hash TEXT NOT NULL,
            meta_hash TEXT NOT NULL,
            chunk_count INTEGER NOT NULL,
            source TEXT,
            fingerprint TEXT NOT NULL,
            last_embedded_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (collection, doc_id)
        );
        CREATE INDEX documents_source ON documents (collection, source);
        CREATE TABLE dead_letters (
            collection TEXT NOT NULL,
            doc_id TEXT NOT NULL,
            source TEXT,
            stage TEXT NOT NULL,
            reason TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT '',
            attempts INTEGER NOT NULL DEFAULT 1,
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            PRIMARY KEY (collection, doc_id)
        );
        CREATE TABLE runs (
            run_id INTEGER PRIMARY KEY AUTOINCREMENT,
            collection TEXT NOT NULL,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            status TEXT NOT NULL,
            summary TEXT NOT NULL DEFAULT '{}'
        )
        """,
    ),
    (
        2,
        "real-time outbox, document versions, API keys",
        """
        CREATE TABLE write_clock (
            id INTEGER PRIMARY KEY CHECK (id = 1),
            seq INTEGER NOT NULL
        );
        INSERT INTO write_clock (id, seq) VALUES (1, 0);
        CREATE TABLE doc_versions (
            collection TEXT NOT NULL,
            doc_id TEXT NOT NULL,
            latest_seq INTEGER NOT NULL,
            applied_seq INTEGER NOT NULL DEFAULT 0,
            status TEXT NOT NULL,
            reason TEXT,
            origin TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (collection, doc_id)
        );
        CREATE TABLE outbox (
            seq INTEGER PRIMARY KEY,
            collection TEXT NOT NULL,
            doc_id TEXT NOT NULL,
            op TEXT NOT NULL CHECK (op IN ('put', 'delete')),
            body TEXT NOT NULL,
            enqueued_at TEXT NOT NULL,
            enqueued_ts REAL NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0
        );
        CREATE INDEX outbox_doc ON outbox (collection, doc_id);
        CREATE TABLE api_keys (
            key_id TEXT PRIMARY KEY,
            name TEXT NOT NULL DEFAULT '',
            key_hash TEXT NOT NULL UNIQUE,
            scopes TEXT NOT NULL,
            collections TEXT,
            created_at TEXT NOT NULL,
            revoked_at TEXT
        )
        """,
    ),
    (
        3,
        "chunking plan per document, source file digests",
        """
        ALTER TABLE documents ADD COLUMN plan TEXT NOT NULL DEFAULT '';
        CREATE TABLE sources (
            collection TEXT NOT NULL,
            path TEXT NOT NULL,
            source TEXT NOT NULL,
            bytes_hash TEXT NOT NULL,
            options_hash TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            PRIMARY KEY (collection, path)
        );
        CREATE INDEX sources_source ON sources (collection, source)
        """,
    ),
    (
        4,
        "dead letters remember the root their document id is relative to",
        """
        ALTER TABLE dead_letters ADD COLUMN root TEXT
        """,
    ),
    (
        5,
        "durable content: cleaned text by content hash, metadata, title and chunk spans",
        """
        CREATE TABLE contents (
            content_hash TEXT PRIMARY KEY,
            codec TEXT NOT NULL,
            data BLOB NOT NULL,
            chars INTEGER NOT NULL
        );
        ALTER TABLE documents ADD COLUMN title TEXT;
        ALTER TABLE documents ADD COLUMN metadata TEXT NOT NULL DEFAULT '{}';
        ALTER TABLE documents ADD COLUMN spans TEXT NOT NULL DEFAULT '[]';
        ALTER TABLE documents ADD COLUMN modality TEXT NOT NULL DEFAULT 'text';
        CREATE INDEX documents_content ON documents (content_hash)
        """,
    ),
)
