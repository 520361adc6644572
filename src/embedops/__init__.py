"""embedops: an embedding pipeline with its own embedded vector store.

Public names are exported on purpose; see ``__all__``.
"""

from embedops.errors import EmbedOpsError

__version__ = "0.1.0"

__all__ = ["EmbedOpsError", "__version__"]
