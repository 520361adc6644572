"""Search by an image or a sound: validate the query file like an ingested one, embed it
in the query role of the collection's own model, refuse what that model cannot take."""

from __future__ import annotations

import numpy as np

from embedops.embedders import Embedder
from embedops.errors import FingerprintMismatch, InputRejected
from embedops.preprocess.media import media_document, sniff_modality
from embedops.store.protocol import CollectionInfo
from embedops.types import Rejection

MEDIA_QUERY_MODALITIES = ("image", "audio")


def media_query_vector(embedder: Embedder, info: CollectionInfo, data: bytes,
                       modality: str | None = None) -> np.ndarray:
    """The query vector of a media file for ``info``'s collection. Raises InputRejected
    for a file that fails validation (its reason: ``corrupt_image``, ``silent`` ...), an
    unknown or unaccepted modality, and FingerprintMismatch when ``embedder`` is not the
    collection's model version (a query from another tower version is never searched)."""
    kind = modality or sniff_modality(data)
    if kind not in MEDIA_QUERY_MODALITIES:
        raise InputRejected("modality", "the query file is not a recognised image or audio "
                            "file; name its modality (image or audio)")
    if not embedder.info.accepts("query", kind):
        accepted = ", ".join(embedder.info.inputs.get("query", ()))
        raise InputRejected("unsupported_modality",
                            f"collection {info.name!r} is searched with {accepted} "
                            f"queries ({info.model}), not {kind}")
    if embedder.info.fingerprint != info.fingerprint:
        raise FingerprintMismatch(
            f"collection {info.name!r} holds vectors of {info.model} ({info.fingerprint}); "
            f"a query embedded by {embedder.info.name} ({embedder.info.fingerprint}) would "
            "search another space")
    checked = media_document(data, "query", kind)
    if isinstance(checked, Rejection):
        raise InputRejected(checked.reason, checked.detail)
    return embedder.embed([data], "query")[0]
