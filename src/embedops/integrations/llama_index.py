"""LlamaIndex over embedops (``pip install 'embedops[llama-index]'``).

- :class:`EmbedopsVectorStore`: a LlamaIndex vector store over one collection (or alias)
  of an embedops client. It stores text (``stores_text = True``) and embeds itself
  (``is_embedding_query = False``): nodes are written through the embedops pipeline with
  the collection's model (ledger, idempotency by node id and text, dead letters), and
  queries are embedded in the query role by the same model. The vectors a
  ``VectorStoreIndex`` attaches to nodes are not stored: the collection's model decides.
- :class:`EmbedopsEmbedding`: any embedops model as a LlamaIndex ``BaseEmbedding``
  (query role for queries, document role for texts); give it to ``VectorStoreIndex`` as
  ``embed_model`` so that LlamaIndex and the store agree.

A node's text is what gets embedded (never its metadata: a metadata change re-embeds
nothing). Metadata filters map to embedops filters: ``==``, ``!=``, ``>``, ``>=``, ``<``,
``<=``, ``in``, ``nin``, ``is_empty`` (missing or ``""``), nested ``MetadataFilters`` with
``and``, ``or`` and ``not``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

try:
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.core.bridge.pydantic import PrivateAttr
    from llama_index.core.schema import (
        BaseNode,
        MetadataMode,
        NodeRelationship,
        RelatedNodeInfo,
        TextNode,
    )
    from llama_index.core.vector_stores.types import (
        BasePydanticVectorStore,
        FilterCondition,
        FilterOperator,
        MetadataFilter,
        MetadataFilters,
        VectorStoreQuery,
        VectorStoreQueryMode,
        VectorStoreQueryResult,
    )
    from llama_index.core.vector_stores.utils import metadata_dict_to_node, node_to_metadata_dict
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("embedops.integrations.llama_index needs llama-index-core: "
                      "pip install 'embedops[llama-index]'") from exc

from embedops.client import Client
from embedops.embedders import Embedder
from embedops.errors import CollectionNotFound, InvalidFilter
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

__all__ = ["EmbedopsEmbedding", "EmbedopsVectorStore", "llama_index_embedder", "to_filter"]

NODE_CONTENT = "_node_content"  # LlamaIndex's serialised node, kept in the payload


def llama_index_embedder(embed_model: BaseEmbedding, *,
                         max_tokens: int = DEFAULT_MAX_TOKENS,
                         settings: dict[str, Any] | None = None) -> Embedder:
    """``embed_model`` as an embedops ``Embedder``: an :class:`EmbedopsEmbedding` gives
    back its embedops model; any other ``BaseEmbedding`` is adapted (text embeddings for
    the document role, query embeddings for the query role), fingerprinted by its class
    and settings."""
    if isinstance(embed_model, EmbedopsEmbedding):
        return embed_model.embedder
    return ForeignEmbedder("llama-index", embed_model, embed_model.get_text_embedding_batch,
                           embed_model.get_query_embedding, settings=settings,
                           max_tokens=max_tokens)


class EmbedopsEmbedding(BaseEmbedding):
    """An embedops model as a LlamaIndex ``BaseEmbedding``: queries in the query role,
    texts in the document role.

    The model is ``embedder`` as given, else the model of ``collection`` on ``client``,
    else ``model_name`` (loaded by ``client`` when given, else with the settings of
    ``EMBEDOPS_*`` and ``embedops.toml``), else the settings' default model. It loads on
    first use."""

    _embedder: Embedder | None = PrivateAttr(default=None)
    _client: Client | None = PrivateAttr(default=None)
    _collection: str | None = PrivateAttr(default=None)
    _lock: Any = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, model_name: str | None = None, *, client: Client | None = None,
                 collection: str | None = None, embedder: Embedder | None = None,
                 **kwargs: Any) -> None:
        if embedder is not None:
            model_name = embedder.info.name
        elif model_name is None and collection is None:
            if client is not None:
                model_name = client.settings.model
            else:
                from embedops.config import load_settings

                model_name = load_settings().model
        super().__init__(model_name=model_name or f"embedops:{collection}", **kwargs)
        self._embedder, self._client, self._collection = embedder, client, collection

    @classmethod
    def class_name(cls) -> str:
        return "EmbedopsEmbedding"

    @property
    def embedder(self) -> Embedder:
        """The embedops model, loaded once."""
        with self._lock:
            if self._embedder is None:
                self._embedder = self._load()
            return self._embedder

    def _load(self) -> Embedder:
        client = self._client
        if client is None:
            from embedops.config import load_settings
            from embedops.embedders import load_embedder

            s = load_settings(model=self.model_name)
            return load_embedder(s.model, s.cache_dir, s.backend, s.batch_size, settings=s)
        if self._collection is not None:
            try:
                return client.embedder(self._collection)
            except CollectionNotFound:
                return client.embedder_for_model(client.settings.model)
        return client.embedder_for_model(self.model_name)

    def _get_query_embedding(self, query: str) -> list[float]:
        return self.embedder.embed([query], "query")[0].tolist()

    def _get_text_embedding(self, text: str) -> list[float]:
        return self.embedder.embed([text], "document")[0].tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self.embedder.embed(texts, "document").tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return await asyncio.to_thread(self._get_query_embedding, query)

    async def _aget_text_embedding(self, text: str) -> list[float]:
        return await asyncio.to_thread(self._get_text_embedding, text)


_OPERATORS = {FilterOperator.EQ: "eq", FilterOperator.NE: "ne", FilterOperator.GT: "gt",
              FilterOperator.GTE: "gte", FilterOperator.LT: "lt", FilterOperator.LTE: "lte",
              FilterOperator.IN: "in"}


def _leaf(spec: MetadataFilter) -> dict[str, Any]:
    field, op, value = payload_field(spec.key), spec.operator, spec.value
    if op in _OPERATORS:
        return {"field": field, _OPERATORS[op]: list(value) if op == FilterOperator.IN
                else value}
    if op == FilterOperator.NIN:
        return {"not": {"field": field, "in": list(value or [])}}
    if op == FilterOperator.IS_EMPTY:
        return {"or": [{"not": {"field": field, "exists": True}}, {"field": field, "eq": ""}]}
    raise InvalidFilter(f"filter operator {op.value!r} on {spec.key!r} is not supported: use "
                        "==, !=, >, >=, <, <=, in, nin or is_empty")


def to_filter(filters: MetadataFilters | None) -> dict[str, Any] | None:
    """LlamaIndex ``MetadataFilters`` as an embedops filter (None when empty); ``not``
    matches when none of its filters match. Raises InvalidFilter for operators embedops
    filters cannot express (``any``, ``all``, ``contains``, ``text_match``)."""
    if filters is None:
        return None
    parts = [p for p in (to_filter(f) if isinstance(f, MetadataFilters) else _leaf(f)
                         for f in filters.filters) if p is not None]
    if not parts:
        return None
    condition = filters.condition or FilterCondition.AND
    if condition == FilterCondition.NOT:
        return {"not": {"or": parts}}
    if len(parts) == 1:
        return parts[0]
    return {"or" if condition == FilterCondition.OR else "and": parts}


def _all_of(*parts: dict[str, Any] | None) -> Filter | None:
    kept = [p for p in parts if p is not None]
    return None if not kept else kept[0] if len(kept) == 1 else {"and": kept}


def _node(doc_id: str, point_id: str, text: str, payload: dict[str, Any],
          chunked: bool) -> BaseNode:
    """The node a point stands for. A node LlamaIndex wrote is rebuilt from its serialised
    form, unless embedops chunked it (``chunked``): then, as for documents embedops wrote
    itself, the node is the chunk (id ``doc#n``) and its source the document."""
    meta = user_metadata(payload)
    if NODE_CONTENT in meta:
        written = metadata_dict_to_node(meta, text=text)
        if not chunked:
            return written
        meta = written.metadata
    return TextNode(id_=point_id, text=text, metadata=meta, relationships={
        NodeRelationship.SOURCE: RelatedNodeInfo(node_id=doc_id)})


def _source_is(ref_doc_ids: list[str]) -> dict[str, Any]:
    """Points of the source documents ``ref_doc_ids``: nodes whose ``ref_doc_id`` is one
    of them, and documents written whole (by embedops, or as LlamaIndex ``Document``s)."""
    return {"or": [{"field": "ref_doc_id", "in": ref_doc_ids},
                   {"field": "doc_id", "in": ref_doc_ids}]}


class EmbedopsVectorStore(BasePydanticVectorStore):
    """A LlamaIndex vector store over ``collection`` (a collection or an alias) of an
    embedops ``client``; see the module's docstring.

    ``embed_model=None``: the collection's embedops model embeds (a new collection gets
    the client's settings model); an :class:`EmbedopsEmbedding` stands for its model;
    another ``BaseEmbedding`` embeds into a collection bound to its fingerprint.
    ``chunk=False`` (default) keeps a node one chunk unless it is longer than the model's
    context: the nodes LlamaIndex made come back as they were written. ``chunk=True``
    chunks each node with the client's settings; give it whole documents
    (``VectorStoreIndex(documents, ...)``) and the retrieved nodes are embedops' chunks
    (id ``doc#n``, source the document). Similarities are cosine similarities. ``add`` returns every
    node's id in order (as ``VectorStoreIndex`` expects); nodes that became dead letters
    are logged and found in ``embedops dlq list``."""

    stores_text: bool = True
    is_embedding_query: bool = False
    flat_metadata: bool = False
    collection: str = "default"
    chunk: bool = False

    _client: Client = PrivateAttr()
    _own: Embedder | None = PrivateAttr(default=None)
    _write_lock: Any = PrivateAttr(default_factory=threading.Lock)

    def __init__(self, client: Client, collection: str = "default",
                 embed_model: BaseEmbedding | None = None, *, chunk: bool = False,
                 max_tokens: int = DEFAULT_MAX_TOKENS, **kwargs: Any) -> None:
        super().__init__(collection=collection, chunk=chunk, **kwargs)
        self._client = client
        self._own = (None if embed_model is None
                     else llama_index_embedder(embed_model, max_tokens=max_tokens))

    @classmethod
    def class_name(cls) -> str:
        return "EmbedopsVectorStore"

    @property
    def client(self) -> Client:
        return self._client

    # --- writes ---------------------------------------------------------------------------

    def add(self, nodes: Sequence[BaseNode], **add_kwargs: Any) -> list[str]:
        """Write ``nodes`` through the pipeline: the node id is the document id, the node
        text (without metadata) is what gets embedded; the same id and text embeds
        nothing."""
        items = []
        for node in nodes:
            meta = node_to_metadata_dict(node, remove_text=True,
                                         flat_metadata=self.flat_metadata)
            items.append({"id": node.node_id,
                          "text": node.get_content(metadata_mode=MetadataMode.NONE),
                          "metadata": check_metadata(node.node_id, meta)})
        with self._write_lock:
            write(self._client, self.collection, items, chunk=self.chunk, embedder=self._own)
        return [node.node_id for node in nodes]

    def _doc_ids(self, info: CollectionInfo, spec: Filter | None) -> list[str]:
        ids = {str(p.payload.get("doc_id")) for page in
               self._client.scan(info.name, filter=spec) for p in page}
        return sorted(ids)

    def _delete(self, doc_ids: list[str]) -> None:
        if doc_ids:
            with self._write_lock:
                self._client.delete_documents(doc_ids, self.collection)

    def delete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        """Remove every node of the source document ``ref_doc_id`` (and the document of
        that id, when it was written whole)."""
        info = collection_info(self._client, self.collection)
        if info is None:
            return
        self._delete(self._doc_ids(info, _source_is([ref_doc_id])))

    def delete_nodes(self, node_ids: list[str] | None = None,
                     filters: MetadataFilters | None = None, **delete_kwargs: Any) -> None:
        """Remove the nodes of ``node_ids`` that match ``filters`` (either may be None)."""
        info = collection_info(self._client, self.collection)
        if info is None or (node_ids is not None and not node_ids):
            return
        if node_ids is not None and filters is None:
            self._delete([str(i) for i in node_ids])
            return
        ids = None if node_ids is None else {"field": "doc_id", "in": list(node_ids)}
        self._delete(self._doc_ids(info, _all_of(ids, to_filter(filters))))

    def clear(self) -> None:
        """Remove every node of the collection."""
        info = collection_info(self._client, self.collection)
        if info is not None:
            self._delete(all_doc_ids(self._client, info))

    def get_nodes(self, node_ids: list[str] | None = None,
                  filters: MetadataFilters | None = None) -> list[BaseNode]:
        """The stored nodes of ``node_ids`` matching ``filters`` (one per chunk)."""
        info = collection_info(self._client, self.collection)
        if info is None or (node_ids is not None and not node_ids):
            return []
        ids = None if node_ids is None else {"field": "doc_id", "in": list(node_ids)}
        return [_node(str(p.payload.get("doc_id")), p.id, str(p.payload.get("text", "")),
                      p.payload, self.chunk)
                for page in self._client.scan(info.name, filter=_all_of(ids, to_filter(filters)))
                for p in page]

    # --- queries --------------------------------------------------------------------------

    def query(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        """The ``similarity_top_k`` nearest nodes: ``query_str`` embedded by the
        collection's model in the query role, else ``query_embedding`` as given; limited
        to ``filters``, ``doc_ids`` (source documents) and ``node_ids`` when not empty."""
        if query.mode != VectorStoreQueryMode.DEFAULT:
            raise ValueError(f"query mode {query.mode.value!r} is not supported; use default")
        info = collection_info(self._client, self.collection)
        if info is None:
            return VectorStoreQueryResult(nodes=[], similarities=[], ids=[])
        if query.query_str:
            vector = embed_query(self._client, info, self._own, query.query_str)
        elif query.query_embedding is not None:
            vector = np.asarray(query.query_embedding, dtype=np.float32)
        else:
            raise ValueError("a query needs query_str or query_embedding")
        spec = _all_of(
            to_filter(query.filters),
            # an empty list restricts nothing (VectorStoreIndex passes its empty node list)
            _source_is(query.doc_ids) if query.doc_ids else None,
            {"field": "doc_id", "in": query.node_ids} if query.node_ids else None)
        hits = self._client.search(vector, info.name, k=query.similarity_top_k, filter=spec)
        nodes = [_node(h.doc_id, h.id, h.text, h.payload, self.chunk) for h in hits]
        return VectorStoreQueryResult(nodes=nodes, similarities=[h.score for h in hits],
                                      ids=[n.node_id for n in nodes])

    async def aquery(self, query: VectorStoreQuery, **kwargs: Any) -> VectorStoreQueryResult:
        return await asyncio.to_thread(self.query, query, **kwargs)

    async def async_add(self, nodes: Sequence[BaseNode], **kwargs: Any) -> list[str]:
        return await asyncio.to_thread(self.add, nodes, **kwargs)

    async def adelete(self, ref_doc_id: str, **delete_kwargs: Any) -> None:
        await asyncio.to_thread(self.delete, ref_doc_id, **delete_kwargs)
