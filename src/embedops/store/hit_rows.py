"""A single search's hits made from the rows the hit cache keeps.

Once the graph has ranked a query's points, a search whose points are all in the hit
cache makes its hits from the cached rows (``(rowkey, id, payload text)``): on 4,500
all-MiniLM-L6-v2 vectors, the Python that did this (``Hit.many_from_text`` and the
lookups) was a tenth of a whole search's time. The extension ``_hit_rows``
(``_hit_rows.c``, built by ``setup.py``) does it in one call; where it was not built,
the same is done in Python. Both give equal hits (``tests/store/test_hit_rows.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from embedops.store.protocol import Hit

try:
    from embedops.store import _hit_rows
except ImportError:  # (built without a C compiler)
    _hit_rows = None
else:  # (the compiled version fills in exactly these four slots)
    if Hit.__slots__ == ("_payload", "_text", "id", "score"):
        _hit_rows.use(Hit)
    else:  # pragma: no cover  (a Hit laid out otherwise: made in Python)
        _hit_rows = None


def compiled() -> bool:
    """Is the compiled version built?"""
    return _hit_rows is not None


def cached_hits(cached: Mapping[int, Sequence[Any]], keys: list[int], scores: list[float],
                scale: float) -> list[Hit] | None:
    """A ``Hit`` per key of ``keys`` from its row in ``cached`` (``hit_cache.rows``),
    scored ``score * scale``, best first as given; None when a key is not cached."""
    if _hit_rows is not None and type(cached) is dict:
        return _hit_rows.hits(cached, keys, scores, scale)  # type: ignore[no-any-return]
    return python_hits(cached, keys, scores, scale)


def python_hits(cached: Mapping[int, Sequence[Any]], keys: list[int], scores: list[float],
                scale: float) -> list[Hit] | None:
    """``cached_hits`` in Python (no compiled version, or a mapping not a dict)."""
    try:
        rows = [cached[key] for key in keys]
    except KeyError:  # (padding, -1, is never cached)
        return None
    return Hit.many_from_text(rows, scores, scale)
