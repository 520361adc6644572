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
    (
        6,
        "model migrations: state per alias, requests to the serving process",
        """
        CREATE TABLE migrations (
            migration_id INTEGER PRIMARY KEY AUTOINCREMENT,
            alias TEXT NOT NULL,
            phase TEXT NOT NULL,
            live TEXT NOT NULL,
            shadow TEXT NOT NULL,
            model TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            dtype TEXT NOT NULL,
            max_rate REAL,
            cursor TEXT NOT NULL DEFAULT '',
            docs_done INTEGER NOT NULL DEFAULT 0,
            chunks_done INTEGER NOT NULL DEFAULT 0,
            docs_total INTEGER NOT NULL DEFAULT 0,
            evaluation TEXT,
            gate_passed INTEGER,
            forced INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL,
            backfilled_at TEXT,
            swapped_at TEXT,
            retain_until TEXT,
            finished_at TEXT,
            history TEXT NOT NULL DEFAULT '[]'
        );
        CREATE INDEX migrations_alias ON migrations (alias);
        CREATE TABLE migration_requests (
            request_id INTEGER PRIMARY KEY AUTOINCREMENT,
            alias TEXT NOT NULL,
            action TEXT NOT NULL,
            args TEXT NOT NULL DEFAULT '{}',
            requested_at TEXT NOT NULL,
            done_at TEXT,
            result TEXT,
            error TEXT
        )
        """,
    ),
    (
        7,
        "preprocessing options per source file; declared payload fields per collection",
        """
        ALTER TABLE sources ADD COLUMN options TEXT NOT NULL DEFAULT '{}';
        CREATE TABLE payload_fields (
            collection TEXT NOT NULL,
            field TEXT NOT NULL,
            type TEXT NOT NULL,
            default_value TEXT,
            indexed INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            PRIMARY KEY (collection, field)
        )
        """,
    ),
    (
        8,
        "canaries: labelled query sets, their runs and baselines",
        """
        CREATE TABLE canaries (
            name TEXT PRIMARY KEY,
            collection TEXT NOT NULL,
            source TEXT NOT NULL,
            synthetic INTEGER NOT NULL DEFAULT 0,
            created_at TEXT NOT NULL,
            baseline_run_id INTEGER
        );
        CREATE TABLE canary_queries (
            canary TEXT NOT NULL,
            query_id TEXT NOT NULL,
            text TEXT NOT NULL,
            relevant TEXT NOT NULL,
            PRIMARY KEY (canary, query_id)
        );
        CREATE TABLE canary_runs (
            run_id INTEGER PRIMARY KEY AUTOINCREMENT,
            canary TEXT NOT NULL,
            ran_at TEXT NOT NULL,
            collection TEXT NOT NULL,
            model TEXT NOT NULL,
            fingerprint TEXT NOT NULL,
            query_fingerprint TEXT NOT NULL,
            dtype TEXT NOT NULL,
            metric TEXT NOT NULL,
            index_params TEXT NOT NULL DEFAULT '{}',
            points INTEGER NOT NULL,
            queries INTEGER NOT NULL,
            recall REAL NOT NULL,
            ndcg REAL NOT NULL,
            metrics TEXT NOT NULL DEFAULT '{}',
            baseline_recall REAL NOT NULL,
            drop_points REAL NOT NULL,
            threshold_points REAL NOT NULL,
            alert INTEGER NOT NULL,
            seconds REAL NOT NULL
        );
        CREATE INDEX canary_runs_canary ON canary_runs (canary, run_id)
        """,
    ),
    (
        9,
        "scheduled job runs",
        """
        CREATE TABLE job_runs (
            run_id INTEGER PRIMARY KEY AUTOINCREMENT,
            job TEXT NOT NULL,
            started_at TEXT NOT NULL,
            seconds REAL NOT NULL,
            outcome TEXT NOT NULL,
            detail TEXT NOT NULL DEFAULT ''
        );
        CREATE INDEX job_runs_job ON job_runs (job, run_id)
        """,
    ),
    (
        10,
        "canaries that search exactly, past the ANN index",
        """
        ALTER TABLE canaries ADD COLUMN exact INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE canary_runs ADD COLUMN exact INTEGER NOT NULL DEFAULT 0
        """,
    ),
    (
        11,
        "progress of the backfills of declared payload fields",
        """
        CREATE TABLE field_backfills (
            collection TEXT NOT NULL,
            field TEXT NOT NULL,
            state TEXT NOT NULL,
            points_total INTEGER NOT NULL DEFAULT 0,
            points_updated INTEGER NOT NULL DEFAULT 0,
            started_at TEXT NOT NULL,
            finished_at TEXT,
            error TEXT NOT NULL DEFAULT '',
            PRIMARY KEY (collection, field)
        )
        """,
    ),
    (
        12,
        "time series of the service, plotted by the dashboard",
        """
        CREATE TABLE service_samples (
            taken_at REAL NOT NULL PRIMARY KEY,
            data TEXT NOT NULL
        )
        """,
    ),
    (
        13,
        "claims of ingest runs on the documents they are embedding",
        """
        CREATE TABLE claims (
            collection TEXT NOT NULL,
            doc_id TEXT NOT NULL,
            claimant TEXT NOT NULL,
            claimed_at TEXT NOT NULL,
            expiry REAL NOT NULL,
            session_pid INTEGER,
            PRIMARY KEY (collection, doc_id)
        );
        CREATE INDEX claims_claimant ON claims (claimant)
        """,
    ),
)
