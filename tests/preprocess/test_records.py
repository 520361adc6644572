"""JSON / JSONL records: declared fields, per-record failures, metadata."""

from __future__ import annotations

import json

import pytest

from embedops.preprocess import PreprocessOptions, preprocess_bytes
from embedops.preprocess.records import (
    RawRecord,
    RecordFailure,
    RecordFields,
    parse_json,
    parse_jsonl,
    record_from_object,
)

FIELDS = RecordFields()


def _jsonl(*records: object) -> str:
    return "\n".join(r if isinstance(r, str) else json.dumps(r) for r in records)


def test_beir_fields_and_extra_metadata() -> None:
    record = record_from_object(
        {"_id": "x1", "title": "T", "text": "body", "lang": "en", "score": 2}, "f:1", FIELDS
    )
    assert record == RawRecord("x1", "body", "T", {"lang": "en", "score": 2}, "f:1")


def test_metadata_field_wins_over_extras() -> None:
    record = record_from_object(
        {"_id": 1, "text": "t", "metadata": {"a": 1}, "other": 2}, "f", FIELDS
    )
    assert isinstance(record, RawRecord)
    assert record.id == "1" and record.metadata == {"a": 1}


@pytest.mark.parametrize(
    ("obj", "reason"),
    [
        ({"text": "no id"}, "missing_field"),
        ({"_id": "", "text": "empty id"}, "missing_field"),
        ({"_id": "a"}, "missing_field"),
        ({"_id": "a", "text": None}, "missing_field"),
        ({"_id": "a", "text": 42}, "malformed_record"),
        ({"_id": {"nested": 1}, "text": "t"}, "malformed_record"),
        ({"_id": True, "text": "t"}, "malformed_record"),
        ({"_id": "a", "text": "t", "metadata": [1, 2]}, "malformed_record"),
        ([1, 2, 3], "malformed_record"),
        ("just a string", "malformed_record"),
    ],
)
def test_bad_records(obj: object, reason: str) -> None:
    failure = record_from_object(obj, "f:1", FIELDS)
    assert isinstance(failure, RecordFailure)
    assert failure.reason == reason and failure.locator == "f:1"


def test_jsonl_bad_line_does_not_stop_the_rest() -> None:
    text = _jsonl({"_id": "1", "text": "one"}, "{oops", "", {"_id": "3", "text": "three"})
    parsed = list(parse_jsonl(text, "c.jsonl", FIELDS))
    assert [type(p).__name__ for p in parsed] == ["RawRecord", "RecordFailure", "RawRecord"]
    assert parsed[1].locator == "c.jsonl:2"
    assert parsed[2].locator == "c.jsonl:4"


def test_duplicate_ids_keep_the_first() -> None:
    text = _jsonl({"_id": "1", "text": "first"}, {"_id": "1", "text": "second"})
    parsed = list(parse_jsonl(text, "d.jsonl", FIELDS))
    assert isinstance(parsed[0], RawRecord) and parsed[0].text == "first"
    assert isinstance(parsed[1], RecordFailure) and parsed[1].reason == "duplicate_id"


def test_nan_is_refused() -> None:
    (failure,) = parse_jsonl('{"_id": "1", "text": "t", "x": NaN}', "n.jsonl", FIELDS)
    assert isinstance(failure, RecordFailure) and failure.reason == "malformed_record"


def test_json_single_object_and_invalid_file() -> None:
    (single,) = parse_json('{"_id": "s", "text": "solo"}', "one.json", FIELDS)
    assert isinstance(single, RawRecord) and single.locator == "one.json"
    (bad,) = parse_json("{not json", "bad.json", FIELDS)
    assert isinstance(bad, RecordFailure) and bad.locator == "bad.json"


def test_declared_field_names() -> None:
    options = PreprocessOptions(id_field="doc_id", text_field="body", title_field="name",
                                metadata_field="meta")
    data = _jsonl({"doc_id": "q", "body": "Declared body text.", "name": "N",
                   "meta": {"k": "v"}, "id": "ignored"}).encode()
    result = preprocess_bytes(data, "custom.jsonl", options)
    (doc,) = result.documents
    assert (doc.id, doc.text, doc.title, doc.metadata) == ("q", "Declared body text.", "N",
                                                           {"k": "v"})
    assert doc.source == "custom.jsonl"


def test_plain_id_is_not_a_fallback_for_custom_id_field() -> None:
    options = PreprocessOptions(id_field="doc_id")
    result = preprocess_bytes(b'{"id": "x", "text": "words here"}', "c.jsonl", options)
    assert [r.reason for r in result.rejections] == ["missing_field"]


def test_record_text_is_cleaned_and_validated() -> None:
    data = _jsonl({"_id": "a", "text": "  caf\u00c3\u00a9  au   lait "},
                  {"_id": "b", "text": "\u200b\u200b"}).encode()
    result = preprocess_bytes(data, "r.jsonl")
    assert [d.text for d in result.documents] == ["café au lait"]
    assert [(r.source, r.reason, r.stage) for r in result.rejections] == [
        ("r.jsonl:2", "empty", "validate")
    ]
