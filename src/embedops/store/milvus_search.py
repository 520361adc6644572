"""How the Milvus adapter answers a search: the plan, the request, the rescoring.

Milvus walks its HNSW graph with the filter applied; a very selective filter can starve
the walk (milvus-lite's HNSW_SQ returned 1-7 of 40 candidates for a 1% filter). So
filtered searches are planned like the embedded store's: at most ``SMALL_FILTER``
matching points are scored exactly here; otherwise ``ef`` grows with the filter's
selectivity (``2 × candidates × points / matches``), since a graph walk meets matching
points at that rate. A query still short of ``k`` hits although more points match is
asked again with an 8× wider ``ef``, then answered exactly when at most
``EXACT_FALLBACK`` points match. int8 and float16 collections (``HNSW_SQ``) ask for
``oversample × k`` candidates with their vectors and keep the best ``k`` by exact
score, as the embedded store does.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from embedops.store.exact import scores, top_k
from embedops.store.milvus_connect import engine_name
from embedops.store.protocol import Hit
from embedops.store.remote import Spec

MAX_TOPK = 16_384
MAX_EF = 32_768
EXACT_FALLBACK = 20_000  # matching points a starved query may read to answer exactly
SMALL_FILTER = 2_000  # filters matching at most this many points are answered exactly
METRIC = {"cosine": "COSINE", "ip": "IP", "l2": "L2"}
SQ = {"int8": "SQ8", "float16": "FP16"}
Pages = Callable[[Spec, str, Sequence[str], int], Iterator[list[dict[str, Any]]]]


def index_of(spec: Spec) -> dict[str, Any]:
    """The Milvus index of a collection: HNSW, or HNSW_SQ for int8 and float16."""
    params: dict[str, Any] = {"M": spec.param("connectivity"),
                              "efConstruction": spec.param("expansion_add")}
    if spec.dtype in SQ:
        params["sq_type"] = SQ[spec.dtype]
        return {"index_type": "HNSW_SQ", "metric_type": METRIC[spec.metric],
                "params": params}
    return {"index_type": "HNSW", "metric_type": METRIC[spec.metric], "params": params}


class Searcher:
    """Searches of one Milvus connection. ``count(spec, expr)`` counts matching points;
    ``pages(spec, expr, fields, size)`` reads them page by page."""

    def __init__(self, client: Any, count: Callable[[Spec, str], int], pages: Pages
                 ) -> None:
        self.client, self.count, self.pages = client, count, pages

    def search(self, spec: Spec, queries: np.ndarray, k: int, expr: str, ef: int | None,
               exact: bool) -> list[list[Hit]]:
        """Top-``k`` hits per query, best first (see the module docstring)."""
        if exact:
            return self._exact(spec, queries, k, expr)
        width = max(ef or spec.param("expansion_search"), k)
        matching: int | None = None
        if expr:
            matching = self.count(spec, expr)
            if matching <= SMALL_FILTER:
                return self._exact(spec, queries, k, expr)
            ratio = max(self.count(spec), 1) / matching
            width = max(width, math.ceil(2 * self._candidates(spec, k) * ratio))
        results = self._ann(spec, queries, k, min(width, MAX_EF), expr)
        if all(len(hits) >= k for hits in results):
            return results
        matching = self.count(spec, expr) if matching is None else matching
        short = [i for i, hits in enumerate(results) if len(hits) < min(k, matching)]
        if short and width < MAX_EF:
            for i, hits in zip(short, self._ann(spec, queries[short], k,
                                                min(width * 8, MAX_EF), expr), strict=True):
                results[i] = hits
            short = [i for i in short if len(results[i]) < min(k, matching)]
        if short and matching <= EXACT_FALLBACK:
            for i, hits in zip(short, self._exact(spec, queries[short], k, expr),
                               strict=True):
                results[i] = hits
        return results

    def _candidates(self, spec: Spec, k: int) -> int:
        """How many hits a search asks the engine for: ``oversample × k`` to rescore."""
        return min(k * spec.param("oversample") if spec.dtype in SQ else k, MAX_TOPK)

    def _ann(self, spec: Spec, queries: np.ndarray, k: int, width: int, expr: str
             ) -> list[list[Hit]]:
        """One search request; int8 and float16 collections fetch ``oversample × k``
        candidates with their vectors and keep the best ``k`` by exact score."""
        rescore = spec.dtype in SQ
        limit = self._candidates(spec, k)
        results = self.client.search(
            engine_name(spec.name), data=list(queries), limit=limit, filter=expr,
            output_fields=["payload", "vector"] if rescore else ["payload"],
            search_params={"metric_type": METRIC[spec.metric],
                           "params": {"ef": max(width, limit)}})
        if rescore:
            return [_rescored(spec, q, hits, k) for q, hits in zip(queries, results,
                                                                    strict=True)]
        return [[Hit(h["id"], _score(spec.metric, h["distance"]), h["entity"]["payload"])
                 for h in hits] for hits in results]

    def _exact(self, spec: Spec, queries: np.ndarray, k: int, expr: str) -> list[list[Hit]]:
        """Exact top-``k``: every matching point's vector, scored here, page by page."""
        best: list[list[tuple[float, str, dict[str, Any]]]] = [[] for _ in queries]
        for page in self.pages(spec, expr, ["payload", "vector"], 2000):
            matrix = np.asarray([r["vector"] for r in page], dtype=np.float32)
            sims = scores(queries, matrix, spec.metric)
            cols, vals = top_k(sims, k)
            for qi in range(len(queries)):
                merged = best[qi] + [(float(v), page[c]["id"], page[c]["payload"])
                                     for c, v in zip(cols[qi], vals[qi], strict=True)]
                merged.sort(key=lambda t: -t[0])
                best[qi] = merged[:k]
        return [[Hit(i, s, p) for s, i, p in row] for row in best]


def _score(metric: str, distance: float) -> float:
    """Milvus gives COSINE and IP as similarities, L2 as the squared distance."""
    return -float(distance) if metric == "l2" else float(distance)


def _rescored(spec: Spec, query: np.ndarray, hits: Sequence[Mapping[str, Any]],
              k: int) -> list[Hit]:
    """The best ``k`` of the candidates, scored with their stored vectors."""
    if not hits:
        return []
    matrix = np.asarray([h["entity"]["vector"] for h in hits], dtype=np.float32)
    sims = scores(query.reshape(1, -1), matrix, spec.metric)
    cols, vals = top_k(sims, k)
    return [Hit(hits[c]["id"], float(v), hits[c]["entity"]["payload"])
            for c, v in zip(cols[0], vals[0], strict=True)]
