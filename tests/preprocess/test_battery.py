"""The nasty-file battery: every file gets its expected outcome and nothing raises."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from embedops.preprocess import REJECTION_REASONS, preprocess_file
from embedops.preprocess.clean import clean_text
from tests.preprocess.nasty_files import NastyFile, battery, write_battery

BATTERY = battery()


def test_battery_is_large_enough() -> None:
    assert len(BATTERY) >= 20
    assert len({item.name for item in BATTERY}) == len(BATTERY)


@pytest.mark.parametrize("item", BATTERY, ids=lambda item: item.name)
def test_expected_outcome(item: NastyFile, tmp_path: Path) -> None:
    path = tmp_path / item.name
    path.write_bytes(item.data)
    result = preprocess_file(path, root=tmp_path)
    expect = item.expect
    assert sorted(r.reason for r in result.rejections) == sorted(expect.rejected), (
        result.rejections
    )
    assert len(result.documents) == expect.documents
    texts = "\n".join(doc.text for doc in result.documents)
    for needle in expect.contains:
        assert needle in texts
    for needle in expect.absent:
        assert needle not in texts
    if expect.encoding is not None:
        assert result.documents[0].metadata["encoding"] == expect.encoding
    if expect.title is not None:
        assert result.documents[0].title == expect.title
    if expect.ids:
        assert tuple(doc.id for doc in result.documents) == expect.ids


@pytest.mark.parametrize("item", BATTERY, ids=lambda item: item.name)
def test_outcome_invariants(item: NastyFile, tmp_path: Path) -> None:
    path = tmp_path / item.name
    path.write_bytes(item.data)
    result = preprocess_file(path, root=tmp_path)
    assert result.documents or result.rejections
    for doc in result.documents:
        assert doc.text and clean_text(doc.text) == doc.text
        assert doc.source == item.name
    for rejection in result.rejections:
        assert rejection.reason in REJECTION_REASONS
        assert rejection.stage in ("decode", "parse", "validate")
        assert rejection.source.startswith(item.name)
        assert rejection.detail


def test_plain_file_document_shape(tmp_path: Path) -> None:
    paths = write_battery(tmp_path)
    (doc,) = preprocess_file(paths["latin1.txt"], root=tmp_path).documents
    assert doc.id == "latin1.txt"
    assert doc.metadata["kind"] == "text"
    assert doc.metadata["encoding"] == "cp1252"
    assert doc.title is None


def test_relative_id_in_subdirectory(tmp_path: Path) -> None:
    nested = tmp_path / "sub" / "dir"
    nested.mkdir(parents=True)
    path = nested / "note.md"
    path.write_text("A note in a nested folder.", encoding="utf-8")
    (doc,) = preprocess_file(path, root=tmp_path).documents
    assert doc.id == "sub/dir/note.md"
    assert doc.metadata["kind"] == "markdown"


def test_one_megabyte_line_is_fast(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_bytes(("quick brown fox " * 62500).encode())
    started = time.perf_counter()
    result = preprocess_file(path, root=tmp_path)
    elapsed = time.perf_counter() - started
    assert len(result.documents) == 1
    assert len(result.documents[0].text) == 62500 * 16 - 1
    assert elapsed < 2.0, f"{elapsed:.2f}s for a 1 MB line"


def test_missing_file_is_unreadable(tmp_path: Path) -> None:
    result = preprocess_file(tmp_path / "nope.txt", root=tmp_path)
    assert [(r.reason, r.stage, r.source) for r in result.rejections] == [
        ("unreadable", "decode", "nope.txt")
    ]


def test_directory_is_unreadable(tmp_path: Path) -> None:
    (tmp_path / "folder.txt").mkdir()
    result = preprocess_file(tmp_path / "folder.txt", root=tmp_path)
    assert [r.reason for r in result.rejections] == ["unreadable"]
