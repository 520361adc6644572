"""Huge pages asked for under the graph's large arrays (``store/huge_pages.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

import faiss
import numpy as np
import pytest

from embedops.store import huge_pages
from embedops.store.hnsw_graph import HnswGraph
from embedops.store.huge_pages import HUGE_PAGE, MIN_BYTES, HugePages

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's madvise")


def _thp_mode() -> str:
    """The kernel's transparent huge page setting (the bracketed word), or ''."""
    try:
        text = Path("/sys/kernel/mm/transparent_hugepage/enabled").read_text()
    except OSError:
        return ""
    return text.split("[", 1)[1].split("]", 1)[0] if "[" in text else ""


def _huge_kib_at(address: int) -> int:
    """AnonHugePages of the mapping holding ``address``, from /proc/self/smaps."""
    inside = False
    for line in Path("/proc/self/smaps").read_text().splitlines():
        head = line.split()[0]
        if "-" in head and ":" not in head:
            start, end = (int(part, 16) for part in head.split("-"))
            inside = start <= address < end
        elif inside and line.startswith("AnonHugePages:"):
            return int(line.split()[1])
    return 0


def _large_array() -> np.ndarray:
    array = np.ones((MIN_BYTES + 8 * HUGE_PAGE) // 8, dtype=np.float64)  # (written)
    assert array.nbytes >= MIN_BYTES
    return array


@linux
@pytest.mark.skipif(_thp_mode() not in ("always", "madvise"), reason="huge pages off")
def test_advice_backs_a_large_array_with_huge_pages_once_and_then_its_growth() -> None:
    array = np.ones((2 * MIN_BYTES) // 8, dtype=np.float64)  # (written)
    address, half = array.ctypes.data, array.nbytes // 2
    advice = HugePages()
    assert advice.advise("a", address, half)  # (as if half were written so far)
    if advice.collapsed_bytes == 0:
        pytest.skip("this kernel has no MADV_COLLAPSE")
    first = advice.collapsed_bytes
    assert half - 2 * HUGE_PAGE <= first <= half
    assert _huge_kib_at(address + half // 2) >= 4 * HUGE_PAGE // 1024
    assert not advice.advise("a", address, half + HUGE_PAGE)  # (grown too little)
    assert advice.advise("a", address, array.nbytes)  # (the new part alone)
    assert abs(advice.collapsed_bytes - first - half) <= HUGE_PAGE
    assert array.sum() == array.size  # (the contents kept)
    assert advice.advise("a", address + 64, half)  # (moved: advised from its start again)


def test_small_arrays_and_the_switch_are_left_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    small = np.ones(1024)
    assert not HugePages().advise("a", small.ctypes.data, small.nbytes)
    monkeypatch.setenv(huge_pages.SWITCH, "0")
    array = _large_array()
    assert not huge_pages.enabled()
    assert not HugePages().advise("a", array.ctypes.data, array.nbytes)


def _address(array: faiss.MaybeOwnedVectorUInt8) -> int:
    return int(faiss.rev_swig_ptr(array.data(), 1).ctypes.data)


@linux
def test_a_graph_advises_its_arrays_after_each_insert_that_moves_them() -> None:
    dim, rows = 1024, MIN_BYTES // 4096 + 512  # (vectors past MIN_BYTES)
    points = np.random.default_rng(0).standard_normal((rows, dim)).astype(np.float32)
    graph = HnswGraph(dim, "cosine", "float32", 4, 8)
    graph.add(np.arange(1000, dtype=np.int64), points[:1000])
    assert "vectors" not in graph._huge._advised  # (small yet)
    graph.add(np.arange(1000, rows, dtype=np.int64), points[1000:])
    codes = faiss.downcast_index(graph.graph.storage).codes
    assert graph._huge._advised["vectors"][0] == _address(codes)
    copy = graph.grown_copy(points[:600])  # (a copy's arrays are its own: advised too)
    assert graph._huge._advised["vectors"][0] == _address(
        faiss.downcast_index(copy.storage).codes)
    assert np.array_equal(graph.get(np.arange(rows, dtype=np.int64)), points)
