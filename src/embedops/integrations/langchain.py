"""LangChain over embedops (``pip install 'embedops[langchain]'``).

- :class:`EmbedopsVectorStore`: a LangChain ``VectorStore`` over one collection (or
  alias) of an embedops client. Without ``embedding`` the collection's embedops model
  embeds; with a LangChain ``Embeddings`` object its vectors land in a collection bound
  to that object's fingerprint. Writes go through the pipeline: idempotent by id and
  content, in the ledger, bad documents to dead letters.
- :class:`EmbedopsEmbeddings`: any embedops model (local or API) as LangChain
  ``Embeddings``, in the document and query roles.

LangChain document ids are embedops document ids; chunk ids (``doc#n``) never surface.
Metadata comes back as it was given. Texts come back as the pipeline cleaned them
(Unicode normalised, outer whitespace trimmed).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

try:
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.vectorstores import VectorStore
    from langchain_core.vectorstores.utils import maximal_marginal_relevance
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("embedops.integrations.langchain needs langchain-core: "
                      "pip install 'embedops[langchain]'") from exc

from embedops.client import Client
from embedops.embedders import Embedder
from embedops.errors import CollectionNotFound, DocumentNotFound, InvalidFilter
from embedops.integrations.adapters import DEFAULT_MAX_TOKENS, ForeignEmbedder
from embedops.integrations.documents import (
    all_doc_ids,
    check_metadata,
    collection_info,
    embed_query,
    payload_field,
    user_metadata,
    write,
)
from embedops.store.protocol import CollectionInfo, Filter

__all__ = ["EmbedopsEmbeddings", "EmbedopsVectorStore", "langchain_embedder", "to_filter"]


def langchain_embedder(embedding: Embeddings, *, max_tokens: int = DEFAULT_MAX_TOKENS,
                       settings: dict[str, Any] | None = None) -> Embedder:
    """``embedding`` as an embedops ``Embedder`` (for ``Client.put_documents``): an
    :class:`EmbedopsEmbeddings` gives back its embedops model itself; any other object is
    adapted, ``embed_documents`` for the document role and ``embed_query`` for the query
    role, fingerprinted by its class and settings."""
    if isinstance(embedding, EmbedopsEmbeddings):
        return embedding.embedder
    return ForeignEmbedder("langchain", embedding, embedding.embed_documents,
                           embedding.embed_query, settings=settings, max_tokens=max_tokens)


class EmbedopsEmbeddings(Embeddings):
    """An embedops model as LangChain ``Embeddings``: ``embed_documents`` in the document
    role, ``embed_query`` in the query role (E5 prefixes, API input types apply).

    The model is, in order: ``embedder`` as given; the model of ``collection`` on
    ``client``; ``model`` (loaded by ``client`` when given); the default model of the
    settings (``client``'s, else those of ``EMBEDOPS_*`` and ``embedops.toml``, read
    here). It loads on first use. Raises what embedops raises (``ModelNotFound``,
    ``PermanentEmbedderError`` for an empty text)."""

    def __init__(self, model: str | None = None, *, client: Client | None = None,
                 collection: str | None = None, embedder: Embedder | None = None) -> None:
        self.client, self.collection = client, collection
        self.settings = client.settings if client is not None else None
        if self.settings is None and embedder is None:
            from embedops.config import load_settings

            self.settings = load_settings(model=model)
        self.model = embedder.info.name if embedder is not None else model
        if self.model is None and collection is None and self.settings is not None:
            self.model = self.settings.model
        self._embedder = embedder
        self._lock = threading.Lock()

    @property
    def embedder(self) -> Embedder:
        """The embedops model, loaded once."""
        with self._lock:
            if self._embedder is None:
                self._embedder = self._load()
            return self._embedder

    def _load(self) -> Embedder:
        assert self.settings is not None  # set whenever no embedder was given
        if self.client is None:
            from embedops.embedders import load_embedder

            s = self.settings
            return load_embedder(s.model, s.cache_dir, s.backend, s.batch_size, settings=s)
        if self.collection is not None:
            try:
                return self.client.embedder(self.collection)
            except CollectionNotFound:
                pass
        return self.client.embedder_for_model(self.model or self.settings.model)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed(list(texts), "document").tolist()

    def embed_query(self, text: str) -> list[float]:
        return self.embedder.embed([text], "query")[0].tolist()


def _leaf(key: str, condition: Any) -> dict[str, Any]:
    field = payload_field(key)
    if not isinstance(condition, dict):
        if isinstance(condition, list | tuple | dict) or condition is None:
            raise InvalidFilter(f"filter on {key!r}: use {{'$in': [...]}} for lists; "
                                "a plain value means equality with a string, number or bool")
        return {"field": field, "eq": condition}
    parts: list[dict[str, Any]] = []
    for op, value in condition.items():
        if op in ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$exists"):
            parts.append({"field": field, op[1:]: list(value) if op == "$in" else value})
        elif op == "$nin":
            parts.append({"not": {"field": field, "in": list(value)}})
        else:
            raise InvalidFilter(f"filter on {key!r}: unsupported operator {op!r}; use $eq, "
                                "$ne, $gt, $gte, $lt, $lte, $in, $nin, $exists")
    if not parts:
        raise InvalidFilter(f"filter on {key!r} has no operator")
    return parts[0] if len(parts) == 1 else {"and": parts}


def to_filter(spec: dict[str, Any] | str | None) -> Filter | None:
    """A LangChain metadata filter as an embedops filter. Dicts take the common LangChain
    dialect: ``{"key": value}`` (equality), ``{"key": {"$gte": 2}}`` ($eq $ne $gt $gte $lt
    $lte $in $nin $exists), ``{"$and": [...]}``, ``{"$or": [...]}``, ``{"$not": {...}}``;
    several keys are combined with AND. Keys are metadata keys as given (reserved ones are
    found under ``metadata.``). A string is embedops' own filter form, passed as it is.
    Raises InvalidFilter."""
    if spec is None or isinstance(spec, str):
        return spec
    if not isinstance(spec, dict):
        raise InvalidFilter(f"a filter is a dict or an embedops filter string, not {spec!r}")
    parts: list[dict[str, Any]] = []
    for key, value in spec.items():
        if key in ("$and", "$or"):
            if not isinstance(value, list) or not value:
                raise InvalidFilter(f"{key} takes a non-empty list of filters")
            parts.append({key[1:]: [to_filter(v) for v in value]})
        elif key == "$not":
            parts.append({"not": to_filter(value)})
        elif key.startswith("$"):
            raise InvalidFilter(f"unsupported filter operator {key!r}")
        else:
            parts.append(_leaf(key, value))
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"and": parts}


def _relevance(similarity: float) -> float:
    """Cosine similarity in [-1, 1] as LangChain's relevance in [0, 1]."""
    return min(1.0, max(0.0, (1.0 + similarity) / 2.0))


class EmbedopsVectorStore(VectorStore):
    """A LangChain ``VectorStore`` over ``collection`` (a collection or an alias) of an
    embedops ``client``.

    ``embedding=None``: the collection's embedops model embeds documents and queries (a
    new collection gets the client's settings model). With a LangChain ``Embeddings``
    object, its vectors land in a collection bound to its fingerprint (class and
    settings); an :class:`EmbedopsEmbeddings` stands for its embedops model. A collection
    of another model is refused (``ModelConflict``, ``FingerprintMismatch``).

    ``chunk=False`` (default) keeps each LangChain document one chunk (split only when
    longer than the model's context); ``chunk=True`` chunks with the client's settings.
    ``similarity_search_with_score`` gives cosine similarities (higher is better);
    relevance scores are ``(1 + cosine) / 2``. Filters: see :func:`to_filter`."""

    def __init__(self, client: Client, collection: str = "default",
                 embedding: Embeddings | None = None, *, chunk: bool = False,
                 max_tokens: int = DEFAULT_MAX_TOKENS) -> None:
        self.client, self.collection, self.chunk = client, collection, chunk
        self.embedding = embedding
        self._own: Embedder | None = (None if embedding is None else
                                      langchain_embedder(embedding, max_tokens=max_tokens))
        self._write_lock = threading.Lock()

    @property
    def embeddings(self) -> Embeddings:
        if self.embedding is not None:
            return self.embedding
        return EmbedopsEmbeddings(client=self.client, collection=self.collection)

    # --- writes ---------------------------------------------------------------------------

    def add_documents(self, documents: list[Document], **kwargs: Any) -> list[str]:
        """Write ``documents`` (ids from ``ids=``, else ``Document.id``, else new UUIDs)
        through the pipeline; the same id and content embeds nothing, new content replaces
        the old. ``chunk=`` overrides the store's setting for this call. Returns the ids
        written; documents that became dead letters are left out (and logged)."""
        ids: Sequence[str | None] | None = kwargs.pop("ids", None)
        chunk = bool(kwargs.pop("chunk", self.chunk))
        if ids is not None and len(ids) != len(documents):
            raise ValueError(f"{len(ids)} ids for {len(documents)} documents")
        given = ids if ids is not None else [doc.id for doc in documents]
        doc_ids = [str(i) if i else str(uuid.uuid4()) for i in given]
        items = [{"id": i, "text": doc.page_content,
                  "metadata": check_metadata(i, doc.metadata or {})}
                 for i, doc in zip(doc_ids, documents, strict=True)]
        with self._write_lock:
            failed = {d.doc_id for d in write(self.client, self.collection, items,
                                              chunk=chunk, embedder=self._own)}
        return [i for i in doc_ids if i not in failed]

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool:
        """Remove documents by id (all of them when ``ids`` is None): every chunk, the
        ledger record and the content. Unknown ids are ignored."""
        info = collection_info(self.client, self.collection)
        if info is None:
            return True
        with self._write_lock:
            doc_ids = all_doc_ids(self.client, info) if ids is None else [str(i) for i in ids]
            if doc_ids:
                self.client.delete_documents(doc_ids, self.collection)
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The documents as the ledger keeps them (whole, not chunks); unknown ids are
        left out."""
        found = []
        for doc_id in dict.fromkeys(str(i) for i in ids):
            try:
                stored = self.client.get(doc_id, self.collection)
            except (DocumentNotFound, CollectionNotFound):
                continue
            found.append(Document(id=doc_id, page_content=stored.text,
                                  metadata=dict(stored.metadata)))
        return found

    @classmethod
    def from_texts(cls, texts: list[str], embedding: Embeddings | None,
                   metadatas: list[dict[str, Any]] | None = None, *,
                   ids: list[str] | None = None, client: Client | None = None,
                   collection: str = "default", **kwargs: Any) -> EmbedopsVectorStore:
        """A store over ``collection`` of ``client`` (required) with ``texts`` added."""
        if client is None:
            raise ValueError("from_texts needs client=embedops.open(...)")
        store = cls(client, collection, embedding, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    # --- search ---------------------------------------------------------------------------

    def _hits(self, info: CollectionInfo, vector: np.ndarray | Sequence[float], k: int,
              filter: dict[str, Any] | str | None) -> list[Any]:
        return self.client.search(np.asarray(vector, dtype=np.float32), info.name, k=k,
                                  filter=to_filter(filter))

    @staticmethod
    def _document(hit: Any) -> Document:
        return Document(id=hit.doc_id, page_content=hit.text,
                        metadata=user_metadata(hit.payload))

    def similarity_search_with_score(self, query: str, k: int = 4,
                                     filter: dict[str, Any] | str | None = None,
                                     **kwargs: Any) -> list[tuple[Document, float]]:
        """The ``k`` chunks nearest ``query`` with their cosine similarity."""
        info = collection_info(self.client, self.collection)
        if info is None:
            return []
        vector = embed_query(self.client, info, self._own, query)
        return [(self._document(h), h.score) for h in self._hits(info, vector, k, filter)]

    def similarity_search(self, query: str, k: int = 4,
                          filter: dict[str, Any] | str | None = None,
                          **kwargs: Any) -> list[Document]:
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter)]

    def similarity_search_with_score_by_vector(
            self, embedding: list[float], k: int = 4,
            filter: dict[str, Any] | str | None = None,
            **kwargs: Any) -> list[tuple[Document, float]]:
        """The ``k`` chunks nearest a vector of the collection's space."""
        info = collection_info(self.client, self.collection)
        if info is None:
            return []
        return [(self._document(h), h.score) for h in self._hits(info, embedding, k, filter)]

    def similarity_search_by_vector(self, embedding: list[float], k: int = 4,
                                    filter: dict[str, Any] | str | None = None,
                                    **kwargs: Any) -> list[Document]:
        return [doc for doc, _ in
                self.similarity_search_with_score_by_vector(embedding, k, filter)]

    def _select_relevance_score_fn(self) -> Callable[[float], float]:
        return _relevance

    def max_marginal_relevance_search(self, query: str, k: int = 4, fetch_k: int = 20,
                                      lambda_mult: float = 0.5,
                                      filter: dict[str, Any] | str | None = None,
                                      **kwargs: Any) -> list[Document]:
        info = collection_info(self.client, self.collection)
        if info is None:
            return []
        vector = embed_query(self.client, info, self._own, query)
        return self._mmr(info, vector, k, fetch_k, lambda_mult, filter)

    def max_marginal_relevance_search_by_vector(
            self, embedding: list[float], k: int = 4, fetch_k: int = 20,
            lambda_mult: float = 0.5, filter: dict[str, Any] | str | None = None,
            **kwargs: Any) -> list[Document]:
        info = collection_info(self.client, self.collection)
        if info is None:
            return []
        return self._mmr(info, np.asarray(embedding, dtype=np.float32), k, fetch_k,
                         lambda_mult, filter)

    def _mmr(self, info: CollectionInfo, vector: np.ndarray, k: int, fetch_k: int,
             lambda_mult: float, filter: dict[str, Any] | str | None) -> list[Document]:
        """``k`` of the ``fetch_k`` nearest chunks, chosen for relevance and diversity
        (their stored full-precision vectors)."""
        hits = self._hits(info, vector, max(k, fetch_k), filter)
        if not hits:
            return []
        points = {p.id: p.vector for p in
                  self.client.get_points(info.name, [h.id for h in hits], with_vectors=True)}
        kept = [h for h in hits if points.get(h.id) is not None]
        vectors = [np.asarray(points[h.id], dtype=np.float32).tolist() for h in kept]
        chosen = maximal_marginal_relevance(vector, vectors, lambda_mult=lambda_mult, k=k)
        return [self._document(kept[i]) for i in chosen]
