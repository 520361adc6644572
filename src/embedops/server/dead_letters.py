"""Dead-letter actions of the serving process: retry (re-read the sources of dead
letters through the batch path, ordered against real-time writes) and purge. The same
steps as ``embedops dlq retry|purge``, run inside the process that holds the store."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from embedops.ingest.sources import SourceFile, source_of_dead_letter

if TYPE_CHECKING:
    from embedops.server.service import Service


def retry_dead_letters(service: Service, collection: str | None,
                       doc_ids: Sequence[str] | None) -> dict[str, Any]:
    """Re-run the source files of the chosen dead letters; those that now succeed leave
    the list. A letter whose source is no longer a file on this machine (a document that
    came over HTTP keeps no source) is reported in ``skipped`` and stays."""
    from embedops.ingest.batch import BatchIngest, IngestOptions
    from embedops.preprocess.pipeline import PreprocessOptions

    letters = service.ledger.dead_letters(collection, doc_ids)
    by_collection: dict[str, set[SourceFile]] = {}
    skipped = []
    for letter in letters:
        if letter.source and Path(letter.source).is_file():
            by_collection.setdefault(letter.collection, set()).add(source_of_dead_letter(letter))
        else:
            skipped.append({"collection": letter.collection, "doc_id": letter.doc_id,
                            "reason": "its source is not a file here; send the document "
                                      "again instead"})
    runs: dict[str, Any] = {}
    for name, sources in sorted(by_collection.items()):
        options = IngestOptions(collection=name, reread_unchanged=True,
                                preprocess=PreprocessOptions.from_settings(service.settings))
        ledger = service.client.new_ledger_handle()
        try:
            job = BatchIngest(service.store, ledger, service.settings, options,
                              gate=service.write_gate)
            runs[name] = job.run_files(sorted(sources, key=str)).to_dict()
        finally:
            ledger.close()
    remaining = service.ledger.dead_letters(collection, doc_ids)
    return {"retried": sum(len(s) for s in by_collection.values()), "skipped": skipped,
            "remaining": len(remaining), "runs": runs}


def purge_dead_letters(service: Service, collection: str | None,
                       doc_ids: Sequence[str] | None) -> dict[str, Any]:
    """Delete the chosen dead letters (all when neither filter is given)."""
    return {"purged": service.ledger.purge_dead_letters(collection, doc_ids)}
