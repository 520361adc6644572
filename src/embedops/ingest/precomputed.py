"""Vectors computed before the write stage runs: the ``Embedder`` a write takes when its
documents were embedded elsewhere (a cluster job's embed actors) or earlier, with no
lock held (a migration's backfill batch, ``embed_ahead``), so that the write itself
holds the service's write gate only for the store and ledger work."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from embedops.embedders import Embedder
from embedops.embedders.base import EmbedderInfo, Role, Tokenizer
from embedops.errors import PermanentEmbedderError
from embedops.ingest.stages import Failure, Work, embed_isolating_failures


class PrecomputedEmbedder:
    """Returns the vectors computed for the chunk texts of some documents, and fails a
    text that could not be embedded with the reason recorded then (so the document
    becomes the same dead letter as if it were embedded now). ``results``: per
    document, its vectors (one row per chunk) or its failure."""

    def __init__(self, info: EmbedderInfo, tokenizer: Tokenizer,
                 results: Iterable[tuple[Work, np.ndarray | None, Failure | None]]) -> None:
        self.info, self.tokenizer = info, tokenizer
        self._vectors: dict[str, np.ndarray] = {}
        self._failures: dict[str, Failure] = {}
        for work, vectors, failure in results:
            texts = [c.text for c in work.chunks]
            if vectors is not None and len(vectors) == len(texts):
                self._vectors.update(zip(texts, vectors, strict=True))
            else:
                self._failures.update(dict.fromkeys(texts, failure or (
                    "embed", "embedder_permanent", "the embed stage returned no vectors")))

    def embed(self, texts: Sequence[str | bytes], role: Role = "document") -> np.ndarray:
        if not texts:
            return np.zeros((0, self.info.dim), dtype=np.float32)
        if not all(isinstance(t, str) for t in texts):  # media: the bytes of a document
            error = PermanentEmbedderError("vectors computed ahead are of text documents; "
                                           "images and audio are embedded where written")
            error.code = "unsupported_modality"
            raise error
        missing = [t for t in texts if t not in self._vectors]
        if missing:
            _, reason, detail = self._failures.get(str(missing[0]), (
                "embed", "embedder_permanent", "no vector was computed for this text"))
            error = PermanentEmbedderError(detail)
            error.code = reason  # the reason recorded when it was embedded
            raise error
        return np.stack([self._vectors[str(t)] for t in texts]).astype(np.float32,
                                                                        copy=False)


def embed_ahead(embedder: Embedder, works: Sequence[Work]) -> PrecomputedEmbedder:
    """Embed the chunks of ``works``' new and changed text documents now, for a write
    stage to take later (``Target(info, embed_ahead(...), chunker)``) for those same
    works. A document that fails here fails there with the same reason; the checks
    that need no model (modality, no chunks) run again there."""
    failures: dict[int, Failure] = {}

    def failed(work: Work, stage: str, reason: str, detail: str) -> None:
        failures[id(work)] = (stage, reason, detail)

    todo = [w for w in works if w.status in ("new", "changed") and w.doc.modality == "text"]
    vectors = {id(w): m for w, m in embed_isolating_failures(embedder, todo, failed)}
    return PrecomputedEmbedder(embedder.info, embedder.tokenizer, [
        (w, vectors.get(id(w)), failures.get(id(w))) for w in todo])
