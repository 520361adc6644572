"""Ids and payloads of returned points are served from memory to later searches
(``embedops.store.hit_cache``), and no search sees a change later than it could have
seen without the cache: payload patches, re-upserts and deletes show at once, in this
handle and in a read-only handle on its own connection."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from embedops.store import open_store
from embedops.store.hit_cache import ENTRY_OVERHEAD_BYTES, HitCache

from .storedata import mixture

DIM = 16
N = 400


def _store(path: Path, hit_cache_bytes: int | None = None) -> tuple[object, np.ndarray]:
    store = open_store(path, hit_cache_bytes=hit_cache_bytes)
    store.create_collection("c", DIM, fingerprint="fp", index_params={"exact_threshold": 0})
    data = mixture(N, DIM, seed=3)
    store.upsert("c", [str(i) for i in range(N)], data, [{"v": 0, "i": i} for i in range(N)],
                 fingerprint="fp")
    store.wait_merged(60)
    return store, data


def test_a_repeated_search_reads_no_row_twice_and_sees_every_change(tmp_path: Path) -> None:
    store, data = _store(tmp_path / "s")
    first = store.search("c", data[11], k=5)[0]
    before = store.stats("c")
    assert before["hit_cache_misses"] >= 5 and before["hit_cache_bytes"] > 0
    again = store.search("c", data[11], k=5)[0]
    after = store.stats("c")
    assert [h.id for h in again] == [h.id for h in first]
    assert after["hit_cache_misses"] == before["hit_cache_misses"]
    assert after["hit_cache_hits"] == before["hit_cache_hits"] + 5

    top = first[0].id
    store.update_payload("c", {"v": 1}, ids=[top])
    assert store.search("c", data[11], k=5)[0][0].payload == {"v": 1, "i": int(top)}
    store.upsert("c", [top], data[int(top)][None, :], [{"v": 2}], fingerprint="fp")
    assert store.search("c", data[11], k=5)[0][0].payload == {"v": 2}
    store.delete("c", ids=[top])
    assert top not in [h.id for h in store.search("c", data[11], k=5)[0]]
    store.close()


def test_a_reader_handle_sees_the_writers_changes(tmp_path: Path) -> None:
    store, data = _store(tmp_path / "s")
    store.checkpoint("c")
    reader = open_store(tmp_path / "s", read_only=True)
    top = reader.search("c", data[5], k=3)[0][0].id
    assert reader.search("c", data[5], k=3)[0][0].payload["v"] == 0  # (now from memory)
    store.update_payload("c", {"v": 7}, ids=[top])
    assert reader.search("c", data[5], k=3)[0][0].payload["v"] == 7
    store.delete("c", ids=[top])
    assert top not in [h.id for h in reader.search("c", data[5], k=3)[0]]
    reader.close()
    store.close()


def test_searches_beside_payload_patches_never_see_an_older_version(tmp_path: Path) -> None:
    store, data = _store(tmp_path / "s")
    ids = [str(i) for i in range(N)]
    committed = [0]  # the version every payload holds once its update returned
    stale: list[tuple[int, int]] = []
    done = threading.Event()

    def search() -> None:
        rng = np.random.default_rng(threading.get_ident() % 1000)
        while not done.is_set():
            floor = committed[0]
            for hit in store.search("c", data[rng.integers(N)], k=10)[0]:
                if hit.payload["v"] < floor:
                    stale.append((hit.payload["v"], floor))

    threads = [threading.Thread(target=search) for _ in range(2)]
    for thread in threads:
        thread.start()
    for version in range(1, 16):
        store.update_payload("c", {"v": version}, ids=ids)
        committed[0] = version
    done.set()
    for thread in threads:
        thread.join(timeout=60)
    assert not stale, f"searches returned payloads older than committed: {stale[:5]}"
    assert store.stats("c")["hit_cache_hits"] > 0
    store.close()


def test_the_cache_can_be_turned_off(tmp_path: Path) -> None:
    store, data = _store(tmp_path / "s", hit_cache_bytes=0)
    for _ in range(3):
        assert store.search("c", data[2], k=4)[0][0].id == "2"
    stats = store.stats("c")
    assert (stats["hit_cache_bytes"], stats["hit_cache_hits"]) == (0, 0)
    store.close()


def test_entries_hold_for_one_change_sequence_and_within_the_budget() -> None:
    rows = [(key, f"id{key}", '{"a":1}') for key in range(100)]
    per_row = ENTRY_OVERHEAD_BYTES + len("id10") + len('{"a":1}')
    cache = HitCache(budget_bytes=per_row * 30)
    cache.fill(1, 5, rows[:10])
    assert set(cache.rows(1, 5) or {}) == set(range(10))
    assert cache.rows(1, 4) is None and cache.rows(1, 6) is None and cache.rows(2, 5) is None
    cache.fill(1, 4, rows[10:20])  # read for an older sequence: not kept
    assert set(cache.rows(1, 5) or {}) == set(range(10))
    cache.fill(1, 6, rows[20:25])  # a newer sequence starts the collection afresh
    assert cache.rows(1, 5) is None and set(cache.rows(1, 6) or {}) == set(range(20, 25))
    for start in range(25, 100, 5):
        cache.fill(1, 6, rows[start:start + 5])
        assert cache.bytes <= cache.budget_bytes
    assert 0 < len(cache.rows(1, 6) or {}) <= 30
    cache.fill(1, 6, rows)  # larger than the whole budget: not kept, nothing lost
    assert cache.bytes <= cache.budget_bytes
    cache.drop(1)
    assert cache.rows(1, 6) is None and cache.bytes == 0


def test_the_setting_reaches_the_store_through_the_client(tmp_path: Path) -> None:
    from embedops.client import Client
    from embedops.config import load_settings
    from embedops.store.hit_cache import HIT_CACHE_BYTES

    default = Client(load_settings(store=str(tmp_path / "a")))
    off = Client(load_settings(store=str(tmp_path / "b"), hit_cache_bytes=0))
    try:
        assert default.store.hit_cache_bytes == HIT_CACHE_BYTES
        assert off.store.hit_cache_bytes == 0
    finally:
        default.close()
        off.close()
