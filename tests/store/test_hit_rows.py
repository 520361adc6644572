"""A search's hits made from the hit cache's rows (store/hit_rows.py): the compiled
version against the Python one, rows of any sequence type, keys not cached, arguments
refused, and no reference leaked."""

from __future__ import annotations

import gc
import pickle
import sqlite3
import sys
from dataclasses import FrozenInstanceError

import pytest

from embedops.store import _graph_search, hit_rows
from embedops.store.protocol import Hit


def _rows() -> dict[int, tuple[int, str, str]]:
    return {7: (7, "doc-7", '{"title": "seven", "n": 7}'),
            3: (3, "doc-3", '{"title": "three", "tags": ["a", "b"]}'),
            11: (11, "doc-11", "{}")}


def test_the_compiled_version_is_built() -> None:
    assert hit_rows.compiled()


def test_both_versions_make_equal_hits() -> None:
    keys, scores = [3, 11, 7], [0.9, 0.5, 0.25]
    made = hit_rows.cached_hits(_rows(), keys, scores, 2.0)
    python = hit_rows.python_hits(_rows(), keys, scores, 2.0)
    assert made is not None and python is not None
    assert made == python
    assert [type(h) for h in made] == [Hit] * 3
    assert [(h.id, h.score) for h in made] == [("doc-3", 1.8), ("doc-11", 1.0), ("doc-7", 0.5)]
    assert made[0].payload == {"title": "three", "tags": ["a", "b"]}
    assert made[1].payload == {}
    assert repr(made[2]) == "Hit(id='doc-7', score=0.5, payload={'title': 'seven', 'n': 7})"
    assert pickle.loads(pickle.dumps(made[0])) == made[0]
    with pytest.raises(FrozenInstanceError):
        made[0].score = 3.0  # type: ignore[misc]
    assert hit_rows.cached_hits(_rows(), [], [], 1.0) == []


def test_a_key_not_cached_gives_none_and_rows_of_any_sequence_work() -> None:
    for make in (hit_rows.cached_hits, hit_rows.python_hits):
        assert make(_rows(), [3, 4], [1.0, 0.5], 1.0) is None
        assert make(_rows(), [3, -1], [1.0, float("-inf")], 1.0) is None  # (padding)
    conn = sqlite3.connect(":memory:")
    conn.row_factory = sqlite3.Row
    row = conn.execute("SELECT 5 AS rowkey, 'doc-5' AS id, '{\"a\": 1}' AS payload").fetchone()
    (hit,) = hit_rows.cached_hits({5: row}, [5], [0.75], 1.0) or []
    assert (hit.id, hit.score, hit.payload) == ("doc-5", 0.75, {"a": 1})


def test_no_reference_is_kept_or_lost() -> None:
    rows = _rows()
    ident, text = rows[7][1], rows[7][2]
    before = (sys.getrefcount(ident), sys.getrefcount(text))
    for _ in range(1000):
        hits = hit_rows.cached_hits(rows, [7, 7, 3], [0.5, 0.4, 0.3], 1.0)
        assert hits is not None and hits[1].payload == {"title": "seven", "n": 7}
        del hits
    gc.collect()
    assert (sys.getrefcount(ident), sys.getrefcount(text)) == before


def test_scores_that_change_the_cache_or_the_lists_while_converting() -> None:
    """A score is converted before its row is looked up: a number written in Python
    that empties the cache as it converts finds no row (a borrowed row freed meanwhile
    would be read after it was freed); one that empties the list of scores stops the
    call with an error instead of reading past the list's end."""
    rows = _rows()

    class Dropping:
        def __float__(self) -> float:
            rows.clear()
            return 0.5

    assert _graph_search.hits(rows, [3], [Dropping()], 1.0) is None

    scores: list[object] = []

    class Shrinking:  # (empties the list of scores it is read from)
        def __float__(self) -> float:
            scores.clear()
            return 0.5

    scores += [Shrinking(), 0.25]
    with pytest.raises(RuntimeError, match="changed size"):
        _graph_search.hits(_rows(), [3, 7], scores, 1.0)


def test_bad_arguments_are_refused() -> None:
    rows = _rows()
    with pytest.raises(TypeError):
        _graph_search.hits(list(rows.values()), [3], [1.0], 1.0)  # not a dict
    with pytest.raises(TypeError):
        _graph_search.hits(rows, [3, 7], [1.0], 1.0)  # lengths differ
    with pytest.raises(TypeError):
        _graph_search.hits(rows, (3,), (1.0,), 1.0)  # not lists
    with pytest.raises(TypeError):
        _graph_search.hits({3: 42}, [3], [1.0], 1.0)  # a row that is no sequence
    with pytest.raises(IndexError):
        _graph_search.hits({3: (3, "x")}, [3], [1.0], 1.0)  # a row too short
    with pytest.raises(TypeError):
        _graph_search.hits(rows, [3], ["high"], 1.0)  # a score that is no number
    with pytest.raises(TypeError):
        _graph_search.hits(rows, [3], [1.0])

    class Plain:
        id = "not a slot"

    class Partial:  # (two of the four slots, laid out elsewhere than Hit's)
        __slots__ = ("x", "id", "score")  # noqa: RUF023 (laid out after x)

    class Small:  # (Hit's own descriptors, on instances too small for their offsets)
        __slots__ = ()

    for name in ("_payload", "_text", "id", "score"):
        setattr(Small, name, Hit.__dict__[name])

    class Roomy:  # (Hit's descriptors on instances large enough, of no Hit subclass)
        __slots__ = ("a", "b", "c", "d", "e", "f")

    for name in ("_payload", "_text", "id", "score"):
        setattr(Roomy, name, Hit.__dict__[name])

    for wrong in (Plain, Partial, Small, Roomy):
        with pytest.raises((TypeError, AttributeError)):
            _graph_search.use(wrong)
    (hit,) = hit_rows.cached_hits(rows, [3], [1.0], 1.0) or []  # (Hit still in use, as
    assert (hit.id, hit.score, hit.payload["title"]) == ("doc-3", 1.0, "three")  # laid out)
