"""Thumbnails of ingested images, for the dashboard's search results.

The ledger keeps no media bytes, only the file an image came from (its ``sources``
record) and the hash of its decoded pixels. A thumbnail is made from the source file
only when the file still decodes to exactly those pixels, so this serves the image that
was embedded and nothing else: not a file the ledger does not know (a point's payload can
name any path), not a file that changed since it was embedded, not a document of another
modality.
"""

from __future__ import annotations

import io
from pathlib import Path

from embedops.errors import DocumentNotFound, EmbedOpsError
from embedops.ledger import Ledger
from embedops.preprocess.pipeline import PreprocessOptions, preprocess_bytes

MAX_SIDE = 160
MAX_SOURCE_BYTES = 64 * 1024 * 1024


class SourceChanged(EmbedOpsError):
    """The image's source file no longer holds the pixels that were embedded."""

    status_code = 409
    code = "source_changed"


def thumbnail(ledger: Ledger, collection: str, doc_id: str, options: PreprocessOptions,
              max_side: int = MAX_SIDE) -> bytes:
    """A JPEG of at most ``max_side`` px a side of the image document ``doc_id``."""
    from PIL import Image

    stored = ledger.stored(collection, doc_id)
    if stored is None or stored.modality != "image" or not stored.source:
        raise DocumentNotFound(f"no image document {doc_id!r} in {collection!r}")
    paths = [Path(p) for p, source, _, _ in ledger.source_files(collection)
             if source == stored.source]
    path = paths[0] if len(paths) == 1 else None
    if path is None or not path.is_file() or path.stat().st_size > MAX_SOURCE_BYTES:
        raise DocumentNotFound(f"the source of image {doc_id!r} is no longer readable")
    data = path.read_bytes()
    result = preprocess_bytes(data, doc_id, options)
    decoded = result.documents[0] if len(result.documents) == 1 else None
    if decoded is None or decoded.metadata.get("content_sha256") != stored.content_hash:
        raise SourceChanged(f"the source of image {doc_id!r} changed since it was embedded; "
                            "ingest it again")
    with Image.open(io.BytesIO(data)) as image:
        image.thumbnail((max_side, max_side))
        out = io.BytesIO()
        image.convert("RGB").save(out, format="JPEG", quality=85)
    return out.getvalue()
