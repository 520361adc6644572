"""Split a batch that an API refuses as too large, and retry the halves.

Some limits (bytes per request, tokens per request) are only known to the server. When a
request fails with :class:`BatchTooLarge`, the batch is halved recursively; a single item
that is still too large is a permanent error for that item.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from embedops.embedders.resilience.classify import BatchTooLarge


def embed_splitting(send: Callable[[list[str]], np.ndarray],
                    texts: Sequence[str]) -> np.ndarray:
    """``send(texts)``, halving on :class:`BatchTooLarge`; rows stay in input order."""
    items = list(texts)
    try:
        return send(items)
    except BatchTooLarge as exc:
        if len(items) <= 1:
            exc.message = f"{exc.message} (a single input is too large for the API)"
            exc.args = (exc.message,)
            raise
    middle = len(items) // 2
    return np.vstack([embed_splitting(send, items[:middle]),
                      embed_splitting(send, items[middle:])])
