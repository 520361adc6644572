"""Huge pages asked for under the graph's large arrays (``store/huge_pages.py``)."""

from __future__ import annotations

import ctypes
import errno
import sys
from pathlib import Path

import faiss
import numpy as np
import pytest

from embedops.store import huge_pages
from embedops.store.hnsw_graph import HnswGraph
from embedops.store.huge_pages import HUGE_PAGE, MIN_BYTES, HugePages

linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's madvise")
# MADV_COLLAPSE's refusals for want of a free huge page at that moment (the kernel's
# state, not the code's; EINVAL is a kernel without it, or a range the code got wrong)
NONE_FREE = (errno.EAGAIN, errno.ENOMEM)


@pytest.fixture(autouse=True)
def _default_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default setting, whatever the environment running the tests says."""
    monkeypatch.delenv(huge_pages.SWITCH, raising=False)


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


def _kernel_collapses() -> bool:
    """Does this kernel know MADV_COLLAPSE (Linux 6.1)? Asked directly, on an aligned
    range, apart from ``HugePages``: EINVAL means it does not; a collapse done, or
    refused for want of a free huge page, means it does."""
    array = np.ones((MIN_BYTES + 8 * HUGE_PAGE) // 8)
    start = (array.ctypes.data + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1)
    assert huge_pages._madvise is not None
    if huge_pages._madvise(start, 2 * HUGE_PAGE, huge_pages.MADV_COLLAPSE) == 0:
        return True
    return ctypes.get_errno() in NONE_FREE


def _unless_refused(advice: HugePages) -> None:
    """Skip the rest where the kernel refused a collapse the code asked for for want of
    a free huge page at that moment (EAGAIN or ENOMEM; memory fragmented by a large
    page cache, say): the kernel's state, not the code's. Any other refusal (EINVAL: a
    range the code got wrong) fails, as does a collapse the code did not ask for."""
    if advice.refused_bytes:
        assert advice.refusal_errno in NONE_FREE, advice.refusal_errno
        pytest.skip(f"the kernel found no huge page free for {advice.refused_bytes} bytes")


@linux
@pytest.mark.skipif(_thp_mode() not in ("always", "madvise"), reason="huge pages off")
def test_advice_backs_a_large_array_with_huge_pages_once_and_then_its_growth() -> None:
    array = np.ones((2 * MIN_BYTES) // 8, dtype=np.float64)  # (written)
    address, half = array.ctypes.data, array.nbytes // 2
    advice = HugePages()
    assert advice.advise("a", address, half, True)  # (as if half were written so far)
    if not _kernel_collapses():
        pytest.skip("this kernel has no MADV_COLLAPSE")
    _unless_refused(advice)
    first = advice.collapsed_bytes
    assert half - 2 * HUGE_PAGE <= first <= half
    assert _huge_kib_at(address + half // 2) >= 4 * HUGE_PAGE // 1024
    assert not advice.advise("a", address, half + HUGE_PAGE, True)  # (grown too little)
    assert advice.advise("a", address, array.nbytes, False)  # (advised, not collapsed)
    assert advice.collapsed_bytes == first
    assert advice.advise("a", address, array.nbytes, True)  # (the new part alone)
    _unless_refused(advice)
    assert abs(advice.collapsed_bytes - first - half) <= HUGE_PAGE
    assert array.sum() == array.size  # (the contents kept)
    assert advice.advise("a", address + 64, half, True)  # (moved: from its start again)
    _unless_refused(advice)
    assert advice.collapsed_bytes - first > half


def test_small_arrays_the_switch_and_a_kernel_set_to_never_are_left_alone(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    small = np.ones(1024)
    assert not HugePages().advise("a", small.ctypes.data, small.nbytes, True)
    array = _large_array()
    setting = tmp_path / "enabled"
    setting.write_text("always madvise [never]\n")
    monkeypatch.setattr(huge_pages, "THP_SETTING", str(setting))
    assert huge_pages.mode() == "off"
    assert not HugePages().advise("a", array.ctypes.data, array.nbytes, True)
    setting.write_text("always [madvise] never\n")
    assert (huge_pages.mode() != "off") == sys.platform.startswith("linux")
    for word in ("0", "off", "False"):
        monkeypatch.setenv(huge_pages.SWITCH, word)
        assert huge_pages.mode() == "off"
        assert not HugePages().advise("a", array.ctypes.data, array.nbytes, True)


@linux
@pytest.mark.skipif(_thp_mode() == "never", reason="huge pages off: nothing to advise")
def test_advise_alone_never_collapses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(huge_pages.SWITCH, "advise")
    array = _large_array()
    advice = HugePages()
    assert advice.advise("a", array.ctypes.data, array.nbytes, True) == (
        huge_pages.mode() == "advise")
    assert advice.collapsed_bytes == 0


def _address(array: faiss.MaybeOwnedVectorUInt8) -> int:
    return int(faiss.rev_swig_ptr(array.data(), 1).ctypes.data)


@linux
@pytest.mark.skipif(_thp_mode() not in ("always", "madvise"), reason="huge pages off")
def test_a_graph_advises_its_arrays_after_each_insert_that_moves_them() -> None:
    dim, rows = 1024, MIN_BYTES // 4096 + 512  # (vectors past MIN_BYTES)
    points = np.random.default_rng(0).standard_normal((rows, dim)).astype(np.float32)
    graph = HnswGraph(dim, "cosine", "float32", 4, 8)
    graph.add(np.arange(1000, dtype=np.int64), points[:1000])
    assert "vectors" not in graph._huge._advised  # (small yet)
    graph.add(np.arange(1000, rows, dtype=np.int64), points[1000:])
    codes = faiss.downcast_index(graph.graph.storage).codes
    assert graph._huge._advised["vectors"][0] == _address(codes)
    assert graph._huge.collapsed_bytes == 0  # (in place, under the index lock: no copying)
    copy = graph.grown_copy(points[:600])  # (a copy's arrays are its own: advised too)
    made, copy_advice = graph._copy_huge
    assert made == id(copy) and copy_advice is not graph._huge
    assert copy_advice._advised["vectors"][0] == _address(
        faiss.downcast_index(copy.storage).codes)
    # (asked, whether the kernel found huge pages free for it then or not)
    assert copy_advice.collapsed_bytes > 0 or not _kernel_collapses() or (
        copy_advice.refused_bytes and copy_advice.refusal_errno in NONE_FREE)
    graph.adopt(copy, np.arange(rows, rows + 600, dtype=np.int64), points[:600])
    assert graph._huge is copy_advice
    assert np.array_equal(graph.get(np.arange(rows, dtype=np.int64)), points)
    before = _address(faiss.downcast_index(graph.graph.storage).codes)
    graph.add(np.arange(rows + 600, 2 * rows + 600, dtype=np.int64), points)  # (moves)
    codes = faiss.downcast_index(graph.graph.storage).codes
    assert _address(codes) != before
    address, advised, _ = graph._huge._advised["vectors"]
    assert address == _address(codes)  # (advised again from the new start)
    assert advised >= address + codes.byte_size() - 2 * HUGE_PAGE


def test_only_the_copy_advised_last_hands_its_advice_over() -> None:
    points = np.random.default_rng(1).standard_normal((300, 16)).astype(np.float32)
    graph = HnswGraph(16, "cosine", "float32", 4, 8)
    graph.add(np.arange(200, dtype=np.int64), points[:200])
    first = graph.grown_copy(points[200:250])
    second = graph.grown_copy(points[200:250])
    made, advice = graph._copy_huge
    assert made == id(second)
    graph.adopt(first, np.arange(200, 250, dtype=np.int64), points[200:250])
    assert graph._huge is not advice  # (the first copy's arrays: asked afresh)
    assert len(graph) == 250
    del second


def test_advice_that_fails_never_fails_an_insert(monkeypatch: pytest.MonkeyPatch,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    def broken(*_: object) -> bool:
        raise OSError("no madvise here")

    monkeypatch.setattr(HugePages, "advise", broken)
    points = np.random.default_rng(2).standard_normal((100, 16)).astype(np.float32)
    graph = HnswGraph(16, "cosine", "float32", 4, 8)
    graph.add(np.arange(100, dtype=np.int64), points)
    assert len(graph) == 100 == graph.size
    assert np.array_equal(graph.get(np.arange(100, dtype=np.int64)), points)
    assert "huge pages not asked for" in caplog.text and "no madvise here" in caplog.text
