"""Which documents of a collection are stale, and why.

A document is stale when the content its source gives now differs from what was
embedded (``content_changed``: the file is read again and hashed; a JSONL corpus by each
record's id), when its source file is gone (``source_missing``), or when its points carry
a fingerprint other than the collection's model (``model_changed``). Read-only: it runs
while a service owns the store.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from embedops.errors import ConfigError
from embedops.ingest.documents import text_hash
from embedops.ingest.sources import file_digest
from embedops.ledger import Ledger
from embedops.preprocess.pipeline import PreprocessOptions, preprocess_file
from embedops.store.protocol import VectorStore

REASONS = ("content_changed", "model_changed", "source_missing")
EXAMPLES = 10


@dataclass
class StaleReport:
    """Stale documents of one collection by reason; ``files`` maps each changed source
    file to its root and preprocessing options (what ``reembed --stale`` reads again)."""

    collection: str
    checked_documents: int = 0
    by_reason: dict[str, set[str]] = field(default_factory=lambda: {r: set() for r in REASONS})
    files: dict[str, tuple[str, dict[str, Any]]] = field(default_factory=dict)

    @property
    def stale(self) -> set[str]:
        return set().union(*self.by_reason.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "collection": self.collection, "checked_documents": self.checked_documents,
            "stale_documents": len(self.stale),
            **{reason: len(ids) for reason, ids in self.by_reason.items()},
            "examples": {reason: sorted(ids)[:EXAMPLES] for reason, ids in
                         self.by_reason.items() if ids},
        }


def find_stale(store: VectorStore, ledger: Ledger, collection: str) -> StaleReport:
    """Compare every document of ``collection`` with its source and its model."""
    info = store.get_collection(collection)
    records = ledger.documents(info.name)
    report = StaleReport(info.name, checked_documents=len(records))
    _check_sources(ledger, info.name, records, report)
    _check_fingerprints(store, info.name, info.fingerprint, records, report)
    return report


def _check_sources(ledger: Ledger, collection: str, records: dict[str, Any],
                   report: StaleReport) -> None:
    by_source: dict[str, list[str]] = defaultdict(list)
    for doc_id, record in records.items():
        if record.source is not None:
            by_source[record.source].append(doc_id)
    for path_text, source, bytes_hash, options in ledger.source_files(collection):
        path = Path(path_text)
        doc_ids = by_source.get(source, [])
        if not path.is_file():
            report.by_reason["source_missing"].update(doc_ids)
            continue
        if file_digest(path) == bytes_hash:
            continue  # the same bytes give the same content
        root = _root_of(path, source)
        now = _content_hashes(path, root, options)
        changed = {d for d in doc_ids if now.get(d) != records[d].content_hash}
        report.by_reason["content_changed"].update(d for d in changed if d in now)
        report.by_reason["source_missing"].update(d for d in changed if d not in now)
        if changed:
            report.files[str(path)] = (str(root), options)


def _content_hashes(path: Path, root: Path, options: dict[str, Any]) -> dict[str, str]:
    try:
        prepared = PreprocessOptions(**options)
    except (TypeError, ConfigError):
        prepared = PreprocessOptions()
    result = preprocess_file(path, root, prepared)
    return {doc.id: text_hash(doc) for doc in result.documents}


def _root_of(path: Path, source: str) -> Path:
    """The directory ``source`` (a path relative to it, or a file name) hangs from."""
    text = path.as_posix()
    if text.endswith("/" + source):
        return Path(text[: -len(source) - 1])
    return path.parent


def _check_fingerprints(store: VectorStore, collection: str, fingerprint: str,
                        records: dict[str, Any], report: StaleReport) -> None:
    stale = report.by_reason["model_changed"]
    stale.update(d for d, r in records.items() if r.fingerprint != fingerprint)
    for page in store.scan(collection, page_size=2000):
        for point in page:
            doc = point.payload.get("doc_id")
            if point.payload.get("fingerprint") not in (None, fingerprint) and doc in records:
                stale.add(str(doc))
