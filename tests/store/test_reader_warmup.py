"""A read-only handle whose collection has no usable checkpoint (written, never
checkpointed) loads its index in the background: the first searches are answered
exactly at once instead of waiting for every point to be replayed into a graph, and the
graph, once built, takes over with the writes committed meanwhile."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from embedops.store import EmbeddedStore, open_store
from embedops.store.embedded import WARM_MIN

from .storedata import mixture

DIM = 32


def _top10(data: np.ndarray, query: np.ndarray) -> list[str]:
    return [str(i) for i in np.argsort(-(data @ query), kind="stable")[:10]]


def test_a_reader_answers_exactly_while_its_index_loads_in_the_background(
        tmp_path: Path) -> None:
    n = WARM_MIN + 1000
    data = mixture(n + 1, DIM, seed=11)
    writer = open_store(tmp_path / "s")
    writer.create_collection("c", DIM, fingerprint="fp", index_params={"exact_threshold": 0})
    writer.upsert("c", [str(i) for i in range(n)], data[:n], None, fingerprint="fp")
    reader = EmbeddedStore(tmp_path / "s", read_only=True)
    try:
        query = data[7]
        first = reader.search_one("c", query, k=10)
        cid = writer.get_collection("c")
        warming = next(iter(reader._warming.values()))
        assert cid is not None and reader._indexes.live == {}  # answered before any graph
        assert [h.id for h in first] == _top10(data[:n], query)  # ... and exactly
        # a write committed while the reader builds reaches its graph too
        writer.upsert("c", ["late"], data[n:], None, fingerprint="fp")
        warming.join(120)
        assert not warming.is_alive() and len(reader._indexes.live) == 1
        assert reader.search_one("c", data[n], k=1)[0].id == "late"
        live = next(iter(reader._indexes.live.values()))
        assert len(live.index) == n + 1 and live.index.pending == 0
        found = [[h.id for h in reader.search_one("c", data[i], k=10)] for i in range(0, n, 500)]
        truth = [_top10(data[:n + 1], data[i]) for i in range(0, n, 500)]
        recall = np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth, strict=True)])
        assert recall >= 0.9
    finally:
        reader.close()
        writer.close()


def test_a_small_catch_up_still_runs_inline(tmp_path: Path) -> None:
    data = mixture(300, DIM, seed=12)
    writer = open_store(tmp_path / "s")
    writer.create_collection("c", DIM, fingerprint="fp", index_params={"exact_threshold": 0})
    writer.upsert("c", [str(i) for i in range(300)], data, None, fingerprint="fp")
    reader = EmbeddedStore(tmp_path / "s", read_only=True)
    try:
        assert reader.search_one("c", data[3], k=1)[0].id == "3"
        assert reader._warming == {} and len(reader._indexes.live) == 1
    finally:
        reader.close()
        writer.close()


def test_a_reader_warms_from_a_checkpoint_far_behind_with_its_removals(tmp_path: Path) -> None:
    """The warm-up starts from the checkpoint and replays the changes after it: points
    written since are in the graph, points deleted since are not."""
    n = 3000
    data = mixture(n + WARM_MIN + 500, DIM, seed=13)
    writer = open_store(tmp_path / "s")
    writer.create_collection("c", DIM, fingerprint="fp", index_params={"exact_threshold": 0})
    writer.upsert("c", [str(i) for i in range(n)], data[:n], None, fingerprint="fp")
    writer.checkpoint("c")
    rest = range(n, len(data))
    writer.upsert("c", [str(i) for i in rest], data[n:], None, fingerprint="fp")
    writer.delete("c", [str(i) for i in range(0, n, 3)])  # after the checkpoint
    reader = EmbeddedStore(tmp_path / "s", read_only=True)
    try:
        assert reader.search_one("c", data[1], k=1)[0].id == "1"
        (warming,) = reader._warming.values()
        warming.join(120)
        (live,) = reader._indexes.live.values()
        assert live.seq > 0 and len(live.index) == writer.count("c") == len(data) - 1000
        keys = set(live.index.keys().tolist())
        stored = {p.id: p for page in reader.scan("c") for p in page}
        assert len(keys) == len(stored)
        assert reader.search_one("c", data[3], k=1)[0].id != "3"  # deleted after the checkpoint
        assert reader.search_one("c", data[n + 7], k=1)[0].id == str(n + 7)
    finally:
        reader.close()
        writer.close()
