"""API keys: stored as SHA-256 hashes, with scopes and an optional collection list.

A key is ``eo_<key_id>_<secret>``; only its hash is stored, so the ledger never holds a
usable key. Scopes nest: ``admin`` includes ``write``, which includes ``read``.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Protocol

from embedops.errors import ConfigError

# Ranked: each includes the ones before it.
SCOPES: tuple[str, ...] = ("read", "write", "admin")
# ``embed`` (the /v1 embedding endpoints) stands apart: granted by itself or by admin,
# never by read or write, and not limited by collections (it touches none).
ALL_SCOPES: tuple[str, ...] = (*SCOPES, "embed")


class _HasTx(Protocol):
    _conn: sqlite3.Connection

    def _tx(self) -> AbstractContextManager[sqlite3.Connection]: ...


@dataclass(frozen=True)
class ApiKey:
    """A stored key (never the secret). ``collections`` None means every collection."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    collections: tuple[str, ...] | None
    created_at: str
    revoked_at: str | None

    def allows(self, scope: str, collection: str | None = None) -> bool:
        """True when the key grants ``scope`` (or a wider one) on ``collection``."""
        if scope == "embed":
            return "embed" in self.scopes or "admin" in self.scopes
        rank = SCOPES.index(scope)
        if not any(s in SCOPES and SCOPES.index(s) >= rank for s in self.scopes):
            return False
        return collection is None or self.collections is None or collection in self.collections

    def to_dict(self) -> dict[str, Any]:
        return {"key_id": self.key_id, "name": self.name, "scopes": list(self.scopes),
                "collections": list(self.collections) if self.collections is not None
                else None, "created_at": self.created_at, "revoked_at": self.revoked_at}


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


class KeysMixin:
    """API key methods of :class:`~embedops.ledger.Ledger`."""

    def create_key(self: _HasTx, scopes: Sequence[str], collections: Sequence[str] | None,
                   name: str = "") -> tuple[str, ApiKey]:
        """Create a key; returns (the secret key, shown once, and its record)."""
        from embedops.ledger.ledger import utc_now

        bad = [s for s in scopes if s not in ALL_SCOPES]
        if bad or not scopes:
            raise ConfigError(f"scopes must be among {ALL_SCOPES}; got {list(scopes)}")
        key_id = secrets.token_hex(4)
        key = f"eo_{key_id}_{secrets.token_urlsafe(24)}"
        record = ApiKey(key_id, name, tuple(dict.fromkeys(scopes)),
                        tuple(collections) if collections else None, utc_now(), None)
        with self._tx() as conn:
            conn.execute("INSERT INTO api_keys VALUES (?,?,?,?,?,?,NULL)",
                         (key_id, name, hash_key(key), json.dumps(record.scopes),
                          json.dumps(record.collections) if record.collections else None,
                          record.created_at))
        return key, record

    def revoke_key(self: _HasTx, key_id: str) -> bool:
        """Revoke a key by id; False when no active key has that id."""
        from embedops.ledger.ledger import utc_now

        with self._tx() as conn:
            cur = conn.execute("UPDATE api_keys SET revoked_at = ? WHERE key_id = ? AND "
                               "revoked_at IS NULL", (utc_now(), key_id))
        return cur.rowcount > 0

    def list_keys(self: _HasTx) -> list[ApiKey]:
        rows = self._conn.execute("SELECT key_id, name, scopes, collections, created_at, "
                                  "revoked_at FROM api_keys ORDER BY created_at").fetchall()
        return [_record(r) for r in rows]

    def keys_configured(self: _HasTx) -> bool:
        """True once any key was ever created: auth stays on even if all are revoked."""
        return self._conn.execute("SELECT 1 FROM api_keys LIMIT 1").fetchone() is not None

    def lookup_key(self: _HasTx, key: str) -> ApiKey | None:
        """The active key matching ``key``, or None (unknown or revoked)."""
        row = self._conn.execute("SELECT key_id, name, scopes, collections, created_at, "
                                 "revoked_at FROM api_keys WHERE key_hash = ? AND "
                                 "revoked_at IS NULL", (hash_key(key),)).fetchone()
        return _record(row) if row else None


def _record(row: Sequence[Any]) -> ApiKey:
    collections = json.loads(row[3]) if row[3] else None
    return ApiKey(row[0], row[1], tuple(json.loads(row[2])),
                  tuple(collections) if collections is not None else None, row[4], row[5])
