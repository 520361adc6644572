"""The search depth a search runs at when it asks for none: the collection's
``expansion_search`` when set, else one that grows with the graph (recall at a fixed
depth falls as a graph grows: 0.896 at 1M nodes and ef 64 on the benchmark mixture)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from embedops import search_depth
from embedops.search_depth import DEPTH_BASE, DEPTH_MAX, default_depth
from embedops.store import open_store

from .storedata import exact_top_k, mixture, recall

DIM = 24


def test_the_default_depth_is_the_base_up_to_100k_nodes_then_grows_with_the_root() -> None:
    assert default_depth(0) == default_depth(100_000) == DEPTH_BASE == 64
    assert default_depth(400_000) == 128
    assert default_depth(1_000_000) == 202
    assert default_depth(10_000_000) == DEPTH_MAX == 512
    depths = [default_depth(n) for n in range(0, 8_000_000, 50_000)]
    assert depths == sorted(depths)


def _filled(path: Path, n: int, params: dict[str, int]) -> tuple[object, np.ndarray]:
    store = open_store(path)
    store.create_collection("c", DIM, fingerprint="fp",
                            index_params={"exact_threshold": 0, **params})
    data = mixture(n, DIM, seed=3, clusters=8, spread=1.2)
    store.upsert("c", [str(i) for i in range(n)], data, None, fingerprint="fp")
    assert store.wait_merged(timeout=60)
    return store, data


def test_a_collection_without_a_depth_searches_deeper_as_it_grows(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """(The size the depth starts growing at is lowered so that a small graph shows it.)"""
    monkeypatch.setattr(search_depth, "DEPTH_BASE_NODES", 100)
    store, data = _filled(tmp_path / "s", 6_400, {"connectivity": 4, "expansion_add": 16})
    assert store.stats("c")["search_depth"] == 512  # 64 x sqrt(64)
    queries = mixture(60, DIM, seed=4, clusters=8, spread=1.2)
    truth = exact_top_k(data, queries, 10)

    def found(ef: int | None) -> list[list[str]]:
        return [[h.id for h in store.search_one("c", q, k=10, ef=ef)] for q in queries]

    default = found(None)
    assert default == found(512)
    at_base = recall([{int(i) for i in ids} for ids in found(DEPTH_BASE)], truth)
    deep = recall([{int(i) for i in ids} for ids in default], truth)
    assert deep > at_base + 0.1, (deep, at_base)  # (0.83 against 0.45 when written)
    store.close()
    with open_store(tmp_path / "s") as reopened:  # (from the checkpoint: the same rule)
        assert reopened.stats("c")["search_depth"] == 512


def test_a_depth_the_collection_sets_stays_as_set(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search_depth, "DEPTH_BASE_NODES", 100)
    store, _ = _filled(tmp_path / "s", 2_000, {"expansion_search": 40})
    assert store.stats("c")["search_depth"] == 40
    store.close()
    with open_store(tmp_path / "s") as reopened:
        assert reopened.stats("c")["search_depth"] == 40


def test_a_small_collection_keeps_the_base_depth(tmp_path: Path) -> None:
    store, _ = _filled(tmp_path / "s", 1_000, {})
    assert store.stats("c")["search_depth"] == DEPTH_BASE
    store.close()
