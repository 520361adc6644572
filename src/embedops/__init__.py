"""embedops: an embedding pipeline with its own embedded vector store.

``embedops.open(path_or_url)`` returns a :class:`~embedops.client.Client`. Public names
are exported on purpose; see ``__all__``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from embedops.errors import EmbedOpsError

if TYPE_CHECKING:
    from embedops.client import Client

__version__ = "0.1.0"

__all__ = ["Client", "EmbedOpsError", "__version__", "open"]


def open(store: Any = None, **options: Any) -> Client:
    """Open a store (a directory or a URL) and its ledger; see ``embedops.client.open``."""
    from embedops.client import open as open_client

    return open_client(store, **options)


def __getattr__(name: str) -> Any:
    if name == "Client":  # imported on first use: `import embedops` stays light
        from embedops.client import Client

        return Client
    raise AttributeError(name)
