"""The key -> position map of a graph: sorted arrays checked against the labels."""

from __future__ import annotations

import numpy as np
import pytest

from embedops.store import key_positions
from embedops.store.key_positions import BYTES_PER_KEY, KeyPositions


class _Graph:
    """Labels as a graph keeps them (position -> key, -1: removed), a dictionary of the
    same map as the reference, and the map under test."""

    def __init__(self, keys: np.ndarray) -> None:
        self.labels = np.full(len(keys) + 10_000, -1, dtype=np.int64)
        self.labels[:len(keys)] = keys
        self.size = len(keys)
        self.held = {int(k): at for at, k in enumerate(keys.tolist()) if k >= 0}
        self.map = KeyPositions.from_labels(self.labels[:self.size])

    def add(self, keys: list[int]) -> None:
        start = self.size
        self.labels[start:start + len(keys)] = keys
        self.size += len(keys)
        self.held.update(zip(keys, range(start, self.size), strict=True))
        self.map.add(np.asarray(keys), np.arange(start, self.size), self.labels)

    def remove(self, keys: list[int]) -> None:
        for key in keys:
            at = self.held.pop(key, None)
            if at is not None:
                self.labels[at] = -1

    def rename(self, old: int, new: int) -> None:
        at = self.held.pop(old)
        self.labels[at] = new
        self.held[new] = at
        self.map.add(np.asarray([new]), np.asarray([at]), self.labels)

    def check(self, asked: np.ndarray) -> None:
        expected = [self.held.get(k, -1) for k in asked.tolist()]
        assert self.map.find(asked, self.labels).tolist() == expected


@pytest.mark.parametrize("order", ["ascending", "shuffled"])
def test_it_answers_as_a_dictionary_would_through_adds_removals_renames_and_folds(
        monkeypatch: pytest.MonkeyPatch, order: str) -> None:
    monkeypatch.setattr(key_positions, "MIN_RECENT", 16)  # (a fold every few writes)
    monkeypatch.setattr(key_positions, "STALE_CHECK_FOLDS", 3)
    rng = np.random.default_rng(7)
    keys = np.arange(100, 600, dtype=np.int64)
    if order == "shuffled":
        keys = rng.permutation(keys)
    keys[rng.choice(500, 40, replace=False)] = -1  # (removed before the map was built)
    graph = _Graph(keys)
    next_key = 1_000
    for _ in range(300):
        live = list(graph.held)
        action = rng.integers(4)
        if action == 0:  # new points
            count = int(rng.integers(1, 12))
            graph.add(list(range(next_key, next_key + count)))
            next_key += count
        elif action == 1:  # replacements: removed, then added again at new positions
            chosen = rng.choice(live, size=min(5, len(live)), replace=False).tolist()
            graph.remove(chosen)
            graph.add(chosen)
        elif action == 2:
            graph.remove(rng.choice(live, size=min(7, len(live)), replace=False).tolist())
        else:  # a rename, sometimes back again (one entry twice in a fold)
            old = int(rng.choice(live))
            graph.rename(old, next_key)
            if rng.integers(2):
                graph.rename(next_key, old)
            next_key += 1
        graph.check(rng.integers(-2, next_key + 5, size=64))
    graph.check(np.arange(-1, next_key + 1, dtype=np.int64))
    graph.map.fold(graph.labels)
    graph.check(np.arange(-1, next_key + 1, dtype=np.int64))
    # entries of removed and renamed nodes are dropped once they outnumber the live ones
    assert graph.map._folds >= 20 and len(graph.map) <= 2 * len(graph.held) + 3 * 16 * 3
    for _ in range(3):  # (replacing every point: stale entries outnumber the live ones)
        live = list(graph.held)
        graph.remove(live)
        graph.add(live)
        graph.map.fold(graph.labels)
    for _ in range(3):  # (a count of the stale entries among these folds)
        graph.map.fold(graph.labels)
    graph.check(np.arange(-1, next_key + 1, dtype=np.int64))
    assert len(graph.map) == len(graph.held)


def test_a_key_placed_again_is_found_at_its_newest_position() -> None:
    """(A key removed and added again, or renamed away and back, stands in the arrays
    more than once after folds: the newest entry is the one a lookup takes.)"""
    labels = np.full(16, -1, dtype=np.int64)
    labels[:3] = [5, 6, 7]
    held = KeyPositions.from_labels(labels[:3])
    for position in (3, 4, 5):  # 5 moves on twice
        labels[position - 1 if position > 3 else 0] = -1
        labels[position] = 5
        held.add(np.array([5]), np.array([position]), labels)
        held.fold(labels)
        assert held.find(np.array([5, 6, 7]), labels).tolist() == [position, 1, 2]


def test_labels_removed_while_the_map_is_read_leave_no_key_minus_one() -> None:
    """Built off the index lock, the map may read a label as removed between the two
    passes over the labels; -1 is then neither a key nor held."""
    labels = np.array([5, -1, 7, 9], dtype=np.int64)
    built = KeyPositions(np.array([5, -1, 7]), np.array([0, 1, 2]))  # (such a read)
    assert built.find(np.array([-1, 5, 7, 9]), labels).tolist() == [-1, 0, 2, -1]
    assert KeyPositions.from_labels(labels).find(
        np.array([-1, 5, 7, 9]), labels).tolist() == [-1, 0, 2, 3]


def test_an_empty_map_and_an_empty_question() -> None:
    labels = np.full(8, -1, dtype=np.int64)
    empty = KeyPositions.from_labels(labels[:0])
    assert empty.find(np.array([0, 3]), labels).tolist() == [-1, -1]
    assert empty.find(np.zeros(0, dtype=np.int64), labels).tolist() == []
    assert len(empty) == 0 and empty.nbytes == 0


def test_it_holds_sixteen_bytes_a_key() -> None:
    """(A dictionary of Python ints took ~106 bytes a key.)"""
    labels = np.arange(50_000, dtype=np.int64)
    assert KeyPositions.from_labels(labels).nbytes == BYTES_PER_KEY * 50_000 == 800_000
