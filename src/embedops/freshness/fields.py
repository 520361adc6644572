"""Metadata schema drift: declare a payload field and backfill it on the points that lack
it, through payload updates only (no embedding call).

Declaring a field with a default backfills it page by page (``declared_backfill``), with
its progress kept in the ledger (``Ledger.backfills``), so ``embedops status`` shows it
from any process; the service runs it in the background (``server/field_backfills.py``)
and resumes one its restart interrupted.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from embedops.errors import CollectionChanged
from embedops.ledger import Ledger
from embedops.payload_schema import FieldSpec, check_value
from embedops.store.filters import parse_filter
from embedops.store.protocol import Filter, VectorStore, still_named

PAGE_SIZE = 2000  # points per payload update: the write lock is released between pages

# Starts the backfill of a declared field in the background; returns its first progress.
Starter = Callable[[str, FieldSpec], dict[str, Any]]


class BackfillStopped(Exception):
    """The process is stopping; the backfill stays ``running`` and resumes later."""


def backfill_field(store: VectorStore, ledger: Ledger | None, collection: str, field: str,
                   default: Any, where: Filter | None = None,
                   lock: AbstractContextManager[Any] | None = None) -> dict[str, Any]:
    """Set ``field`` to ``default`` on every point of ``collection`` that lacks it (and
    matches ``where``). A declared field's type is checked first. Vectors untouched.
    Without ``lock``, in one statement; with it (the process's write lock, which other
    writers wait on), a page at a time (``paged_update``)."""
    info = store.get_collection(collection)
    declared = {s.field: s for s in ledger.payload_fields(info.name)} if ledger else {}
    if field in declared:
        check_value(declared[field], default)
    missing: dict[str, Any] = {"field": field, "exists": False}
    scope = missing if where is None else {"and": [missing, parse_filter(where)]}
    if lock is None:
        updated = store.update_payload(info.name, {field: default}, filter=scope)
    else:
        updated = paged_update(store, info.name, {field: default}, scope, lock, PAGE_SIZE)
    return {"collection": info.name, "field": field, "default": default,
            "points_updated": updated, "embedding_calls": 0}


def paged_update(store: VectorStore, collection: str, patch: dict[str, Any],
                 scope: Filter, lock: AbstractContextManager[Any],
                 page_size: int = PAGE_SIZE, stop: threading.Event | None = None,
                 on_page: Callable[[int], None] | None = None) -> int:
    """Merge ``patch`` into the points of ``collection`` that match ``scope``, holding
    ``lock`` for one page of ids at a time: the pages are read with no lock held (a
    scan in row-key order), and each page's update checks ``scope`` again under the
    lock, so a point changed since its page was read is judged as it is then. A final
    update under the lock catches points written meanwhile outside the pages already
    read; it is skipped when the collection's change sequence moved by the pages' own
    updates alone (a store that keeps no sequence, pgvector's or Milvus's, always runs
    it). Holding the lock for the whole update instead kept every other writer waiting
    for it: 0.4-0.9 s for 200,000 points (``bench/backfill_gate_wait.py``), and reading
    the ids under the lock first (as the declared backfill did) the time of a filtered
    scan on top (``bench/scan_pages.py``). Returns the points updated; ``on_page``
    gets the running total after each page. Raises ``BackfillStopped`` when ``stop``
    is set before a page, and ``CollectionChanged`` when ``collection`` names another
    collection than it did at the start (dropped and made again, or an alias
    repointed): nothing more is written there."""
    started = store.get_collection(collection)
    updated = pages_changed = 0
    pages = iter(store.scan(collection, page_size=page_size, filter=scope))
    while True:
        if stop is not None and stop.is_set():
            raise BackfillStopped(f"{collection}: {', '.join(patch)}")
        page = next(pages, None)
        with lock:
            now = still_named(store, collection, started)
            if now is None:
                raise CollectionChanged(
                    f"collection {started.name!r} was dropped or renamed while its "
                    "payloads were updated; the pages before were written: run it again")
            if page is None:  # (the final sweep, unless no other write came)
                if started.seq <= 0 or now.seq != started.seq + pages_changed:
                    updated += store.update_payload(collection, patch, filter=scope)
                return updated
            changed = store.update_payload(collection, patch, ids=[p.id for p in page],
                                           filter=scope)
        updated += changed
        pages_changed += changed > 0
        if on_page is not None:
            on_page(updated)


def add_field(store: VectorStore, ledger: Ledger, collection: str, spec: FieldSpec,
              start: Starter | None = None,
              lock: threading.RLock | None = None) -> dict[str, Any]:
    """Declare ``spec`` on ``collection``; with ``indexed``, create a payload index on
    it; with a default, backfill the points that lack the field: here and now, or
    through ``start`` in the background (the result then carries ``backfill``, its
    first progress, and ``points_updated`` stays 0 until it is done)."""
    info = store.get_collection(collection)
    ledger.declare_field(info.name, spec)
    result: dict[str, Any] = {"collection": info.name, **spec.to_dict(),
                              "points_updated": 0, "embedding_calls": 0}
    if spec.indexed:
        create_index = getattr(store, "create_payload_index", None)
        if create_index is not None:
            with lock or contextlib.nullcontext():
                create_index(info.name, spec.field)
    if spec.default is None:
        return result
    if start is not None:
        result["backfill"] = start(info.name, spec)
        return result
    done = declared_backfill(store, ledger, info.name, spec, lock)
    result.update(points_updated=done["points_updated"], backfill=done)
    return result


def declared_backfill(store: VectorStore, ledger: Ledger, collection: str, spec: FieldSpec,
                      lock: threading.RLock | None = None, page_size: int = PAGE_SIZE,
                      stop: threading.Event | None = None) -> dict[str, Any]:
    """Set ``spec``'s default on the points of ``collection`` that lack the field, one
    page of ids at a time (``lock``, the process's write lock, held per page only),
    recording progress in the ledger (``paged_update``: the pages are read with no lock
    held, and a final sweep catches points written without the field meanwhile).
    Raises ``BackfillStopped`` when ``stop`` is set between pages (the backfill stays
    ``running``); any other error marks it ``failed``."""
    missing: dict[str, Any] = {"field": spec.field, "exists": False}
    total = store.count(collection, filter=missing)  # (no lock: a read)
    ledger.begin_backfill(collection, spec.field, total)
    try:
        updated = paged_update(
            store, collection, {spec.field: spec.default}, missing,
            lock or contextlib.nullcontext(), page_size, stop,
            on_page=lambda done: ledger.note_backfill(collection, spec.field, done,
                                                      total=done))
        ledger.note_backfill(collection, spec.field, updated, total=updated)
    except BackfillStopped:
        raise
    except Exception as exc:
        ledger.end_backfill(collection, spec.field, "failed", f"{type(exc).__name__}: {exc}")
        raise
    ledger.end_backfill(collection, spec.field, "done")
    return {"state": "done", "points_total": max(total, updated),
            "points_updated": updated}
