"""When a broad filter's matches are worth reading: the costs of its two search plans.

A filter too many points match to score them all is searched one of two ways
(``Searcher``): oversampled (the graph searched for more candidates than asked for, the
candidates checked against the filter in SQLite), or kept within its matches (their
keys read out of SQLite once, then every graph search confined to their nodes). The
second is faster a search (every candidate matches, so fewer rows are read back), but
reading the keys costs what several oversampled searches do, and a write makes the
next search read them again.

So the choice is rent-or-buy: the searches of a filter since its collection last
changed take the oversampled plan until the time they have spent on it reaches what
reading the keys costs; then the keys are read and kept, and the searches that follow
stay within them until the next write. A batch whose oversampled searches would cost
that much reads them at once. Whatever the sequence of searches and writes, that
spends at most about twice what the better choice made in hindsight would have.

What a read costs is measured on each read of a filter's keys; before the first, it is
estimated at ``READ_S_PER_KEY`` a match (a filter on a payload index; a filter on a
field without one reads every point, and its measured cost then takes over). What an
oversampled search costs is measured on each (a moving average). Safe from any number
of threads: a search that read the catalog before a write counts toward the time spent
since the write.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from embedops.store.filter_matches import Filter, filter_key

# A match's key read through a payload index and its node set in the bitmap, measured on
# the store's 2-core development machine: 3.2 µs (100k matches of 1M points), 4.4 µs
# (1M of 10M).
READ_S_PER_KEY = 3e-6
AVERAGE_WEIGHT = 0.2  # of the latest oversampled search in the moving average
MAX_FILTERS = 256


@dataclass
class _Costs:
    read_s: float | None = None  # the last read of the filter's keys
    search_s: float | None = None  # one oversampled search, averaged
    seq: int = -1  # the change sequence ``spent_s`` was spent at
    spent_s: float = 0.0
    reading: bool = False  # a search is reading the filter's keys now
    bitmap_to_come: bool = False  # keys read before the search: ``read_more`` to come


class FilterCosts:
    """Per (collection, filter): the measured costs of its plans, and the time spent on
    oversampled searches of it at the collection's current change sequence."""

    def __init__(self) -> None:
        self._held: OrderedDict[Filter, _Costs] = OrderedDict()
        self._lock = threading.Lock()

    def read_due(self, cid: int, seq: int, where: tuple[str, list[Any]], matches: int,
                 queries: int) -> bool:
        """Whether ``queries`` more searches of the filter at ``seq`` should read its
        ``matches`` keys now: what the oversampled searches at ``seq`` have spent, and
        what these would spend, reaches what the read costs."""
        with self._lock:
            return _due(self._costs(cid, seq, where), matches, queries)

    def due_before_search(self, cid: int, seq: int, where: tuple[str, list[Any]],
                          matches: int, queries: int) -> bool:
        """``read_due``, for a filter whose searches at ``seq`` have been oversampled
        already (the plan is chosen under the index lock: a filter not searched at
        ``seq`` yet is left to its search)."""
        with self._lock:
            costs = self._held.get(filter_key(cid, where))
            if costs is None or costs.seq != seq or costs.spent_s <= 0.0:
                return False
            return _due(costs, matches, queries)

    def read_more(self, cid: int, where: tuple[str, list[Any]], seconds: float) -> None:
        """The read of the filter's keys, made before the search, took ``seconds`` more
        under it (the bitmap of their nodes). Counted once a read: a bitmap made again
        for keys still kept (dropped from ``match_nodes``) is not."""
        with self._lock:
            costs = self._costs(cid, None, where)
            if costs.bitmap_to_come:
                costs.read_s = (costs.read_s or 0.0) + seconds
                costs.bitmap_to_come = False

    def searched(self, cid: int, seq: int, where: tuple[str, list[Any]], seconds: float,
                 queries: int) -> None:
        """``queries`` oversampled searches of the filter at ``seq`` took ``seconds``."""
        with self._lock:
            costs = self._costs(cid, seq, where)
            costs.spent_s += seconds
            each = seconds / max(queries, 1)
            costs.search_s = each if costs.search_s is None else (
                (1 - AVERAGE_WEIGHT) * costs.search_s + AVERAGE_WEIGHT * each)

    def start_read(self, cid: int, where: tuple[str, list[Any]]) -> bool:
        """Claim the read of the filter's keys: False while another search reads them
        (it goes on oversampled meanwhile, rather than reading them a second time).
        Every True is followed by ``read``."""
        with self._lock:
            costs = self._costs(cid, None, where)
            if costs.reading:
                return False
            costs.reading = True
            return True

    def read(self, cid: int, where: tuple[str, list[Any]], seconds: float | None,
             bitmap_to_come: bool = False) -> None:
        """The claimed read of the filter's matching keys took ``seconds`` (None: it did
        not finish); with ``bitmap_to_come``, the bitmap of their nodes is still to make
        (``read_more``). The time spent is paid for: should the keys be dropped before
        the next write, the next read is due once the searches have spent as much
        again."""
        with self._lock:
            costs = self._costs(cid, None, where)
            costs.reading = False
            if seconds is not None:
                costs.read_s, costs.spent_s = seconds, 0.0
                costs.bitmap_to_come = bitmap_to_come

    def _costs(self, cid: int, seq: int | None, where: tuple[str, list[Any]]) -> _Costs:
        """The filter's entry (made if new, most recently used now); with ``seq``, its
        time spent reset when the collection has changed since."""
        key = filter_key(cid, where)
        costs = self._held.pop(key, None) or _Costs()
        self._held[key] = costs
        if len(self._held) > MAX_FILTERS:
            self._held.popitem(last=False)
        if seq is not None and seq > costs.seq:  # (an older row's search counts on)
            costs.seq, costs.spent_s = seq, 0.0
        return costs


def _due(costs: _Costs, matches: int, queries: int) -> bool:
    """Whether what ``costs`` has spent, and ``queries`` more oversampled searches would
    spend, reaches what reading the filter's ``matches`` keys costs."""
    read_s = costs.read_s if costs.read_s is not None else READ_S_PER_KEY * matches
    coming = queries * costs.search_s if costs.search_s is not None else 0.0
    return costs.spent_s + coming >= read_s
