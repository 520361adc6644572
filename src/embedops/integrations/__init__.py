"""Adapters between embedops and other frameworks, each behind its extra:

- ``embedops.integrations.langchain`` (``pip install 'embedops[langchain]'``): a LangChain
  ``VectorStore`` over an embedops collection, and embedops models as LangChain
  ``Embeddings``;
- ``embedops.integrations.llama_index`` (``pip install 'embedops[llama-index]'``): a
  LlamaIndex vector store and embedops models as a LlamaIndex ``BaseEmbedding``.

Writes made through either go through the embedops pipeline (validation, the ledger,
idempotency by id and content, dead letters) like any other write. Another framework's
embeddings object becomes an embedops ``Embedder`` through
:class:`~embedops.integrations.adapters.ForeignEmbedder`, whose fingerprint names the
object's class and settings, so its vectors never mix with another model's.

Importing this package imports neither framework.
"""

from __future__ import annotations

from embedops.integrations.adapters import ForeignEmbedder, object_settings

__all__ = ["ForeignEmbedder", "object_settings"]
