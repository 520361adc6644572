"""Transparent huge pages under the HNSW graph's large arrays (Linux).

A graph search or insert jumps from node to node across the whole graph: past a few
hundred thousand nodes most vectors and link lists it reads lie on a 4 KiB page whose
address translation is not in the CPU's TLB, and each miss walks the page tables before
the read itself. On 2 MiB pages the same arrays need 512 times fewer translations. Where
transparent huge pages are set to ``madvise`` (Debian's default, and many other
distributions'), the kernel backs memory with them only where a program asks: numpy asks
for its own large arrays, but faiss's arrays (the graph's vectors or codes, and its
links) are plain ``malloc`` memory. ``HugePages.advise`` asks for them, over the part
of an array written since it last asked:

* ``madvise(MADV_HUGEPAGE)``, so that the kernel may back the range with huge pages (its
  background ``khugepaged`` collapses such ranges over time), after every insert;
* ``madvise(MADV_COLLAPSE)`` (Linux 6.1 and later), which copies the range into huge
  pages there and then (~5 ms a MB here), where the graph is grown on a copy off the index
  lock (``HnswGraph.grown_copy``, every insert that outgrows the arrays at 50k nodes and
  more), never under a lock that searches wait for.

An array that moved (faiss's ``std::vector`` reallocates as it grows) is advised again
from its start; one that grew in place, from where the last advice ended, once it has
grown by ``STEP_BYTES``. Arrays under ``MIN_BYTES`` are left alone (too small for the TLB
to matter), and so is memory the graph does not own (a graph mapped from its checkpoint
file: ``mapped_files``). Where huge pages are set to ``never`` nothing is asked
(``MADV_COLLAPSE`` would collapse pages even then); where the kernel refuses the advice
(an older kernel, not Linux) nothing changes but speed. ``EMBEDOPS_HUGE_PAGES=advise``
asks with ``MADV_HUGEPAGE`` alone (no copying by the inserting thread; the kernel's
``khugepaged`` collapses the ranges in its own time), ``EMBEDOPS_HUGE_PAGES=0`` asks
nothing.

Measured with ``bench/huge_pages.py`` (docs/benchmarks-store.md, section “Huge pages
under the graph's arrays”), three builds each way side by side, the graph grown as the
store grows it: single searches at ef 64 of 1M clustered float32 vectors at 1.14×
(0.97–1.19×) the rate on 4 KiB pages, of 300k int8 codes at 1.17× (1.17–1.23×); builds
at 0.94× (0.87–1.01×) and 1.04× (0.96–1.07×): the collapses took 24–25 s of a 1M build's
~195 s (4.6 GB, each grown copy collapsed whole).
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

log = logging.getLogger(__name__)

MADV_HUGEPAGE = 14
MADV_COLLAPSE = 25
HUGE_PAGE = 2 << 20
MIN_BYTES = 32 << 20  # (~22k float32 vectors of 384 dimensions, 87k int8 ones)
STEP_BYTES = 8 * HUGE_PAGE  # an array advised before is advised again past this growth
SWITCH = "EMBEDOPS_HUGE_PAGES"
THP_SETTING = "/sys/kernel/mm/transparent_hugepage/enabled"
OFF_WORDS = ("0", "off", "false", "no", "never")  # values of SWITCH that ask nothing


def _libc_madvise() -> Callable[[int, int, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        madvise = ctypes.CDLL(None, use_errno=True).madvise
    except (OSError, AttributeError):
        return None
    madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    madvise.restype = ctypes.c_int
    return madvise  # type: ignore[no-any-return]


_madvise = _libc_madvise()


def mode() -> str:
    """What this process asks for: "off" (not Linux, ``SWITCH=0``, or the kernel's
    setting ``never``: ``MADV_COLLAPSE`` would collapse pages even then), "advise"
    (``SWITCH=advise``: ``MADV_HUGEPAGE`` alone, khugepaged collapses in its own time)
    or "collapse" (the default: grown copies collapsed at once as well)."""
    switch = os.environ.get(SWITCH, "1").strip().lower()
    if _madvise is None or switch in OFF_WORDS:
        return "off"
    try:
        if "[never]" in Path(THP_SETTING).read_text():
            return "off"
    except OSError:  # (no such file: a kernel without them refuses the advice itself)
        pass
    return "advise" if switch == "advise" else "collapse"


def _round_up(value: int) -> int:
    return (value + HUGE_PAGE - 1) & ~(HUGE_PAGE - 1)


def _round_down(value: int) -> int:
    return value & ~(HUGE_PAGE - 1)


class HugePages:
    """The advice given to one owner's arrays: for each array, its address and how far
    it was advised and collapsed."""

    def __init__(self) -> None:
        self._advised: dict[str, tuple[int, int, int]] = {}  # name -> (address, ends)
        self.collapsed_bytes = 0  # bytes the kernel collapsed into huge pages, in all
        self.refused_bytes = 0  # bytes it refused to collapse (no huge page free then)
        self.refusal_errno = 0  # the last refusal's errno (EAGAIN, ENOMEM: none free)
        self.seconds = 0.0  # spent advising, in all

    def advise(self, name: str, address: int, nbytes: int, collapse: bool) -> bool:
        """Ask for huge pages under the array ``name`` of ``nbytes`` at ``address``
        (written, and owned by the caller) from where it was advised last (its start, if
        it moved) to its end, once it has grown by ``STEP_BYTES`` since; with
        ``collapse``, have the kernel copy the part not collapsed yet into huge pages now
        (~5 ms a MB: never with a lock held that searches wait for). Nothing for arrays
        under ``MIN_BYTES``. True where the kernel took the advice."""
        if nbytes < MIN_BYTES or _madvise is None:
            return False
        last_address, advised, collapsed = self._advised.get(name, (0, 0, 0))
        if last_address != address:  # (moved, or first seen)
            advised = collapsed = _round_up(address)
        end = _round_down(address + nbytes)
        todo = end - advised >= STEP_BYTES
        collapsing = collapse and end - collapsed >= STEP_BYTES
        if not todo and not collapsing:  # (most inserts: the setting is not read)
            return False
        asked = mode()
        collapsing = collapsing and asked == "collapse"
        if asked == "off" or not (todo or collapsing):
            return False
        began = time.perf_counter()
        try:
            if todo:
                if _madvise(advised, end - advised, MADV_HUGEPAGE) != 0:
                    log.debug("MADV_HUGEPAGE refused: errno %d", ctypes.get_errno())
                    return False
                advised = end
            if collapsing:
                if _madvise(collapsed, end - collapsed, MADV_COLLAPSE) == 0:
                    self.collapsed_bytes += end - collapsed
                else:  # (before Linux 6.1, or no huge page free: khugepaged may, later)
                    self.refused_bytes += end - collapsed
                    self.refusal_errno = ctypes.get_errno()
                    log.debug("MADV_COLLAPSE refused: errno %d", self.refusal_errno)
                collapsed = end
            return True
        finally:
            self._advised[name] = (address, advised, collapsed)
            self.seconds += time.perf_counter() - began
