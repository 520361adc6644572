"""What both framework adapters share: writing documents given as data through the
pipeline, finding the ones that became dead letters, mapping user metadata to payload
fields and back, and choosing the model that embeds a query for a collection."""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from embedops.embedders import Embedder
from embedops.errors import CollectionNotFound, FingerprintMismatch, InputRejected, ModelConflict
from embedops.ingest.documents import RESERVED_KEYS, USER_METADATA_KEY
from embedops.ledger.ledger import utc_now
from embedops.store.protocol import CollectionInfo

if TYPE_CHECKING:
    from embedops.client import Client
    from embedops.ledger import DeadLetter

logger = logging.getLogger("embedops.integrations")

# Model names of collections written with another framework's embeddings object.
FOREIGN_PREFIXES = ("langchain/", "llama-index/")


def payload_field(key: str) -> str:
    """The payload field a user metadata key (or dotted path) is stored under: the key
    itself, or ``metadata.<key>`` for a key embedops reserves (``source``, ``title`` …)."""
    head = key.split(".", 1)[0]
    return f"{USER_METADATA_KEY}.{key}" if head in RESERVED_KEYS else key


def user_metadata(payload: Mapping[str, Any]) -> dict[str, Any]:
    """The metadata a document was written with, from one of its chunks' payloads (the
    inverse of ``embedops.ingest.documents.document_metadata``)."""
    meta = {k: v for k, v in payload.items() if k not in RESERVED_KEYS}
    clashing = payload.get(USER_METADATA_KEY)
    if isinstance(clashing, Mapping):
        meta.update(clashing)
    return meta


def check_metadata(doc_id: str, metadata: Mapping[str, Any]) -> dict[str, Any]:
    """``metadata`` as a dict; raises InputRejected (before anything is written) when it
    holds values JSON cannot store (dates, objects, NaN)."""
    try:
        json.dumps(metadata, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputRejected("metadata", f"document {doc_id!r}: metadata must be JSON "
                                        f"values (str, number, bool, null, list, dict): {exc}"
                            ) from exc
    return dict(metadata)


def write(client: Client, collection: str, items: Sequence[Mapping[str, Any]], *,
          chunk: bool, embedder: Embedder | None) -> list[DeadLetter]:
    """Write ``items`` (``{"id", "text", "metadata"}``; a repeated id: the last one wins)
    through ``client.put_documents``; returns the dead letters this write recorded."""
    unique = {str(item["id"]): item for item in items}
    started = utc_now()
    summary = client.put_documents(list(unique.values()), collection, chunk=chunk,
                                   embedder=embedder)
    if not summary.documents_failed or client.ledger is None:
        return []
    failed = [d for d in client.ledger.dead_letters(summary.collection, list(unique))
              if d.last_seen >= started]
    for letter in failed:
        logger.warning("document %r was not written to %s (%s at %s: %s); see `embedops "
                       "dlq list`", letter.doc_id, letter.collection, letter.reason,
                       letter.stage, letter.detail)
    return failed


def collection_info(client: Client, collection: str) -> CollectionInfo | None:
    """The collection ``collection`` names now (an alias resolved), or None before the
    first write."""
    try:
        return client.get_collection(collection)
    except CollectionNotFound:
        return None


def query_embedder(client: Client, info: CollectionInfo, own: Embedder | None) -> Embedder:
    """The embedder for queries on ``info``: ``own`` (which must carry the collection's
    fingerprint) or the collection's own embedops model."""
    if own is not None:
        if own.info.fingerprint != info.fingerprint:
            raise FingerprintMismatch(
                f"collection {info.name!r} holds vectors of {info.model} ({info.fingerprint});"
                f" {own.info.name} ({own.info.fingerprint}) embeds into another space")
        return own
    if info.model.startswith(FOREIGN_PREFIXES):
        raise ModelConflict(f"collection {info.name!r} holds vectors of {info.model}: open "
                            "it with the same embeddings object it was written with")
    return client.embedder_for(info)


def embed_query(client: Client, info: CollectionInfo, own: Embedder | None,
                query: str) -> np.ndarray:
    """``query`` embedded in the query role for ``info``'s vector space."""
    return query_embedder(client, info, own).embed([query], "query")[0]


def all_doc_ids(client: Client, info: CollectionInfo) -> list[str]:
    """Every document id the ledger keeps for ``info``."""
    return [] if client.ledger is None else sorted(client.ledger.documents(info.name))
