"""Duplicate vectors: approximate search stays as good as exact search.

Boilerplate (headers, footers, templated records) gives many points the same vector. HNSW
graphs degenerate when many nodes lie at distance zero, so the index holds one node per
distinct vector and maps it to every point that has it. These tests compare the HNSW plan
with exact search on collections that are 0%, 50% and 99% copies of one vector, and follow
copies through updates, deletes, filters, checkpoints, reloads and rebuilds.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from embedops.store import open_store
from embedops.store.embedded import EmbeddedStore

from .storedata import mixture

DIM, K = 24, 10
PARAMS = {"exact_threshold": 0}  # always the HNSW plan


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EmbeddedStore]:
    with open_store(tmp_path / "store") as handle:
        yield handle


def _with_copies(n: int, copies: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` vectors of which ``copies + 1`` equal the first one, shuffled; and 60 held-out
    queries."""
    rng = np.random.default_rng(seed)
    pool = mixture(n - copies + 60, DIM, seed=seed)
    distinct, held_out = pool[:n - copies], pool[n - copies:]
    base = np.concatenate([np.repeat(distinct[:1], copies, axis=0), distinct])
    return base[rng.permutation(n)], held_out


def _fill(store: EmbeddedStore, name: str, vectors: np.ndarray, dtype: str = "float32",
          payloads: list[dict[str, object]] | None = None, prefix: str = "p") -> None:
    store.create_collection(name, DIM, fingerprint="fp", dtype=dtype, index_params=PARAMS)
    for start in range(0, len(vectors), 700):  # copies land in one batch and across batches
        stop = start + 700
        store.upsert(name, [f"{prefix}{i}" for i in range(start, min(stop, len(vectors)))],
                     vectors[start:stop], payloads[start:stop] if payloads else None,
                     fingerprint="fp")


def _tie_aware_recall(store: EmbeddedStore, name: str, queries: np.ndarray,
                      **kwargs: object) -> float:
    """Share of each query's exact top-k that the default plan found, counting a hit as
    right when its exact score reaches the exact k-th score (copies tie, so any k of them
    are right; float16 index scores are approximate, so hits are rescored here)."""
    found = store.search(name, queries, k=K, **kwargs)  # type: ignore[arg-type]
    truth = store.search(name, queries, k=K, exact=True, **kwargs)  # type: ignore[arg-type]
    shares = []
    for query, hits, exact in zip(queries, found, truth, strict=True):
        assert len({h.id for h in hits}) == len(hits) == len(exact)
        points = store.get(name, [h.id for h in hits], with_vectors=True)
        scores = np.stack([p.vector for p in points]) @ query  # type: ignore[misc]
        shares.append(float(np.sum(scores >= exact[-1].score - 1e-5)) / len(exact))
    return float(np.mean(shares))


@pytest.mark.parametrize(("share", "dtype"), [
    (0.0, "float32"), (0.5, "float32"), (0.99, "float32"), (0.5, "int8"), (0.99, "float16"),
])
def test_recall_against_exact_with_duplicates(store: EmbeddedStore, share: float,
                                              dtype: str) -> None:
    n = 4000
    base, held_out = _with_copies(n, int(n * share), seed=11)
    _fill(store, "c", base, dtype)
    distinct = np.unique(base, axis=0)
    own = distinct[np.random.default_rng(1).permutation(len(distinct))[:60]]
    assert _tie_aware_recall(store, "c", np.concatenate([own, held_out])) >= 0.95
    # Every distinct vector finds a point that has it.
    tops = store.search("c", own, k=1)
    assert sum(hits[0].score > 1 - 2e-3 for hits in tops) >= 0.98 * len(own)
    store.checkpoint("c")
    manifest = json.loads((store.path / "index" / "1.json").read_text())
    assert manifest["size"] == n and manifest["nodes"] <= len(distinct) + 2  # one per vector


def test_k_hits_whenever_k_points_exist(store: EmbeddedStore) -> None:
    copy, other = mixture(2, DIM, seed=3)
    base = np.concatenate([np.repeat(copy[None, :], 3960, axis=0), mixture(39, DIM, seed=4),
                           other[None, :]])
    _fill(store, "c", base)
    for query in (copy, other):
        for k in (1, 10, 100, 1000, 3999, 4000, 5000):
            hits = store.search_one("c", query, k=k)
            assert len(hits) == min(k, 4000)
            assert len({h.id for h in hits}) == len(hits)
            assert all(a.score >= b.score - 1e-5 for a, b in pairwise(hits))
        assert store.search_one("c", query, k=1)[0].score == pytest.approx(1.0, abs=1e-5)


def test_copies_added_updated_away_and_deleted(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    copy = mixture(1, DIM, seed=99)[0]
    others = mixture(1000, DIM, seed=7)
    path = tmp_path / "store"
    with open_store(path) as store:
        _fill(store, "c", copy[None, :], prefix="d")  # d0 alone: one plain node first
        store.upsert("c", [f"d{i}" for i in range(1, 2000)],
                     np.repeat(copy[None, :], 1999, axis=0), fingerprint="fp")
        store.upsert("c", [f"u{i}" for i in range(1000)], others, fingerprint="fp")
        _check(store, copy, {f"d{i}" for i in range(2000)}, others)
        # Delete some copies, among them the first one (whose node the others joined).
        store.delete("c", ids=["d0", "d1", "d2", "d3"])
        _check(store, copy, {f"d{i}" for i in range(4, 2000)}, others)
        # Update most copies away to their own vectors; two distinct points become copies.
        moved = mixture(1990, DIM, seed=8)
        store.upsert("c", [f"d{i}" for i in range(4, 1994)], moved, fingerprint="fp")
        store.upsert("c", ["u0", "u1"], np.repeat(copy[None, :], 2, axis=0), fingerprint="fp")
        left = {f"d{i}" for i in range(1994, 2000)} | {"u0", "u1"}
        _check(store, copy, left, others[2:])
        tops = store.search("c", moved[rng.permutation(1990)[:200]], k=1)
        assert sum(hits[0].score > 1 - 1e-4 for hits in tops) >= 198
    with open_store(path) as store:  # reloaded from the checkpoint, members included
        _check(store, copy, left, others[2:])
        store.delete("c", ids=sorted(left))
        _check(store, copy, set(), others[2:])
        store.rebuild_index("c")
        _check(store, copy, set(), others[2:])


def _check(store: EmbeddedStore, copy: np.ndarray, copies: set[str],
           others: np.ndarray) -> None:
    """The index equals SQLite; the copies come first for their vector; others find
    themselves; k hits come back."""
    report = store.verify_index("c")
    assert report["missing"] == report["ghosts"] == report["mismatched"] == []
    assert report["index_points"] == store.count("c")
    hits = store.search_one("c", copy, k=len(copies) + 10)
    assert len(hits) == len(copies) + 10
    assert {h.id for h in hits[:len(copies)]} == copies
    assert all(h.score < 1 - 1e-4 for h in hits[len(copies):])
    tops = store.search("c", others[:100], k=1)
    assert sum(h[0].score > 1 - 1e-4 for h in tops) >= 98


def test_filtered_search_finds_the_one_matching_copy(store: EmbeddedStore) -> None:
    copy = mixture(1, DIM, seed=99)[0]
    others = mixture(2000, DIM, seed=4)
    vectors = np.concatenate([np.repeat(copy[None, :], 4000, axis=0), others])
    payloads: list[dict[str, object]] = [{"keep": False} for _ in range(4000)]
    payloads += [{"keep": True} for _ in range(2000)]
    payloads[3999] = {"keep": True}  # the last copy: deep in its node's member list
    _fill(store, "c", vectors, payloads=payloads)
    # 2,001 of 6,000 points match: the filtered HNSW plan, not the selective exact one.
    hits = store.search_one("c", copy, k=K, filter={"field": "keep", "eq": True})
    assert hits[0].id == "p3999" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    truth = store.search_one("c", copy, k=K, filter={"field": "keep", "eq": True}, exact=True)
    assert [h.id for h in hits] == [h.id for h in truth]
    copies = store.search_one("c", copy, k=500, filter={"field": "keep", "eq": False})
    assert len(copies) == 500 and all(h.score > 1 - 1e-5 for h in copies)
    assert len(store.search_one("c", others[0], k=2001, filter={"field": "keep", "eq": True})
               ) == 2001
    queries = np.concatenate([others[:40], mixture(40, DIM, seed=12)])
    assert _tie_aware_recall(store, "c", queries, filter={"field": "keep", "eq": True}) >= 0.95
    # Deleting the matching copy leaves the others: none matches any more.
    store.delete("c", ids=["p3999"])
    hits = store.search_one("c", copy, k=K, filter={"field": "keep", "eq": True})
    assert len(hits) == K and all(h.score < 1 - 1e-4 for h in hits)


def test_reader_catches_up_with_copies(tmp_path: Path) -> None:
    copy = mixture(1, DIM, seed=99)[0]
    writer = open_store(tmp_path / "store")
    _fill(writer, "c", np.concatenate([np.repeat(copy[None, :], 1000, axis=0),
                                       mixture(500, DIM, seed=2)]))
    writer.checkpoint("c")
    reader = open_store(tmp_path / "store", read_only=True)
    assert len(reader.search_one("c", copy, k=1200)) == 1200
    writer.upsert("c", [f"x{i}" for i in range(300)], np.repeat(copy[None, :], 300, axis=0),
                  fingerprint="fp")
    writer.delete("c", ids=[f"p{i}" for i in range(0, 1000, 2)])
    report = reader.verify_index("c")
    assert report["missing"] == report["ghosts"] == report["mismatched"] == []
    hits = reader.search_one("c", copy, k=800)
    assert len(hits) == 800 and all(h.score > 1 - 1e-5 for h in hits)
    reader.close()
    writer.close()


def test_checkpoint_keeps_members_beside_the_graph(tmp_path: Path) -> None:
    copy = mixture(1, DIM, seed=99)[0]
    path = tmp_path / "store"
    with open_store(path) as store:
        _fill(store, "c", np.concatenate([np.repeat(copy[None, :], 900, axis=0),
                                          mixture(100, DIM, seed=2)]))
    folder = path / "index"
    manifest = json.loads((folder / "1.json").read_text())
    assert (manifest["size"], manifest["nodes"]) == (1000, 101)
    (segment,) = manifest["segments"]  # (one segment of the default size)
    pairs = np.load(folder / segment["groups"], allow_pickle=False)
    assert pairs.shape == (900, 2)
    with open_store(path) as store:  # a rebuild at the same seq writes new files
        store.rebuild_index("c")
    rebuilt = json.loads((folder / "1.json").read_text())
    (again,) = rebuilt["segments"]
    assert rebuilt["seq"] == manifest["seq"] and again["file"] != segment["file"]
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        ["1.json", again["file"], again["labels"], again["groups"]])
    (folder / again["groups"]).write_bytes(b"garbage")  # unreadable: rebuilt from SQLite
    with open_store(path) as store:
        report = store.verify_index("c")
        assert report["missing"] == report["ghosts"] == report["mismatched"] == []
        assert len(store.search_one("c", copy, k=950)) == 950
