"""A single search's hits made from the rows the hit cache keeps.

Once the graph has ranked a query's points, a search whose points are all in the hit
cache makes its hits from the cached rows (``(rowkey, id, payload text)``): on 4,500
all-MiniLM-L6-v2 vectors, the Python that did this (``Hit.many_from_text`` and the
lookups) was a tenth of a whole search's time. The compiled search's extension
(``_graph_search.c``, built by ``setup.py``) does it in one call: ``hits`` from keys and
scores found, ``GraphView.hits`` (``HnswGraph.search_hits``) in the graph search's own
call; where it was not built, the same is done in Python. Both give equal hits
(``tests/store/test_hit_rows.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from embedops.store.protocol import Hit

try:
    from embedops.store import _graph_search as _compiled
except ImportError:  # (built without a C compiler)
    _compiled = None
else:  # (the compiled version fills in exactly these four slots)
    if Hit.__slots__ == ("_payload", "_text", "id", "score"):
        _compiled.use(Hit)
    else:  # pragma: no cover  (a Hit laid out otherwise: made in Python)
        _compiled = None


def compiled() -> bool:
    """Is the compiled version built?"""
    return _compiled is not None


def python_hits(cached: Mapping[int, Sequence[Any]], keys: list[int], scores: list[float],
                scale: float) -> list[Hit] | None:
    """A ``Hit`` per key of ``keys`` from its row in ``cached`` (``hit_cache.rows``),
    scored ``score * scale``, best first as given; None when a key is not cached."""
    try:
        rows = [cached[key] for key in keys]
    except KeyError:  # (padding, -1, is never cached)
        return None
    return Hit.many_from_text(rows, scores, scale)


# ``python_hits``, compiled where it was built (``cached`` must then be a dict, as
# ``hit_cache.rows`` gives it; the call is made directly: a wrapper cost a tenth of it)
cached_hits: Callable[[dict[int, Sequence[Any]], list[int], list[float], float],
                      list[Hit] | None] = (
    _compiled.hits if _compiled is not None else python_hits)
