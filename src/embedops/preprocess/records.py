"""JSON and JSON Lines records with declared id / text / title / metadata fields.

The defaults follow the BEIR corpus convention (``_id``, ``text``, ``title``,
``metadata``); with the default id field, ``id`` is accepted too. Parsing never raises and
never stops at a bad record: each one yields either a :class:`RawRecord` or a
:class:`RecordFailure` whose reason is

- ``malformed_record``: the line or file is not JSON, the record is not an object, or a
  field has the wrong type;
- ``missing_field``: the id or text field is absent, null or empty;
- ``duplicate_id``: an earlier record of the same file has this id (the first one wins).

When a record has no metadata field, its fields other than id, text and title become its
metadata. NaN and Infinity are refused: metadata must stay valid JSON.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class RecordFields:
    """Names of the fields that hold each part of a record."""

    id_field: str = "_id"
    text_field: str = "text"
    title_field: str = "title"
    metadata_field: str = "metadata"

    def id_candidates(self) -> tuple[str, ...]:
        """The declared id field, plus ``id`` when the declared one is the BEIR ``_id``."""
        return (self.id_field, "id") if self.id_field == "_id" else (self.id_field,)


@dataclass(frozen=True)
class RawRecord:
    """One record before cleaning. ``locator`` says where it was (``file:line``)."""

    id: str
    text: str
    title: str | None
    metadata: dict[str, Any]
    locator: str


@dataclass(frozen=True)
class RecordFailure:
    """A record that cannot become a document, and why."""

    locator: str
    reason: str
    detail: str


Parsed = RawRecord | RecordFailure


def parse_jsonl(text: str, source: str, fields: RecordFields) -> Iterator[Parsed]:
    """One record per non-blank line; ``locator`` is ``source:line`` (1-based)."""
    numbered = (
        (f"{source}:{number}", line)
        for number, line in enumerate(text.split("\n"), start=1)
        if line.strip()
    )
    return _unique(_from_json(line, locator, fields) for locator, line in numbered)


def parse_json(text: str, source: str, fields: RecordFields) -> Iterator[Parsed]:
    """A JSON array of records (``source[i]``) or a single record object (``source``)."""
    value = _loads(text)
    if isinstance(value, RecordFailure):
        return iter([RecordFailure(source, value.reason, value.detail)])
    if isinstance(value, list):
        items = ((f"{source}[{i}]", item) for i, item in enumerate(value))
        return _unique(record_from_object(item, locator, fields) for locator, item in items)
    return iter([record_from_object(value, source, fields)])


def record_from_object(obj: object, locator: str, fields: RecordFields) -> Parsed:
    """Build a record from one decoded JSON value."""
    if not isinstance(obj, dict):
        return RecordFailure(locator, "malformed_record", f"expected an object, got {_kind(obj)}")
    doc_id = _record_id(obj, locator, fields)
    if isinstance(doc_id, RecordFailure):
        return doc_id
    text = obj.get(fields.text_field)
    if text is None or text == "":
        return RecordFailure(locator, "missing_field", f"no {fields.text_field!r} (id {doc_id})")
    if not isinstance(text, str):
        return RecordFailure(locator, "malformed_record",
                             f"{fields.text_field!r} is {_kind(text)}, not a string")
    metadata = _metadata(obj, fields)
    if metadata is None:
        return RecordFailure(locator, "malformed_record",
                             f"{fields.metadata_field!r} is not an object")
    title = obj.get(fields.title_field)
    return RawRecord(doc_id, text, title if isinstance(title, str) else None, metadata, locator)


def _from_json(line: str, locator: str, fields: RecordFields) -> Parsed:
    value = _loads(line)
    if isinstance(value, RecordFailure):
        return RecordFailure(locator, value.reason, value.detail)
    return record_from_object(value, locator, fields)


def _refuse_constant(name: str) -> object:
    raise ValueError(f"{name} is not valid JSON")


def _loads(text: str) -> object:
    """Decoded JSON, or a failure (without locator) naming the error."""
    try:
        return json.loads(text, parse_constant=_refuse_constant)
    except ValueError as exc:  # JSONDecodeError, NaN/Infinity, over-long integers
        return RecordFailure("", "malformed_record", f"{type(exc).__name__}: {exc}"[:300])
    except RecursionError:
        return RecordFailure("", "malformed_record", "JSON nested too deeply")


def _record_id(obj: dict[str, Any], locator: str, fields: RecordFields) -> str | RecordFailure:
    for name in fields.id_candidates():
        value = obj.get(name)
        if value is None or value == "":
            continue
        if isinstance(value, bool) or not isinstance(value, str | int):
            return RecordFailure(locator, "malformed_record",
                                 f"{name!r} is {_kind(value)}, not a string or integer")
        return str(value)
    return RecordFailure(locator, "missing_field", f"no {fields.id_field!r}")


def _metadata(obj: dict[str, Any], fields: RecordFields) -> dict[str, Any] | None:
    """The metadata field if present (None if it is not an object), else the other fields."""
    if fields.metadata_field in obj:
        value = obj[fields.metadata_field]
        if value is None:
            return {}
        return dict(value) if isinstance(value, dict) else None
    taken = {*fields.id_candidates(), fields.text_field, fields.title_field}
    return {key: value for key, value in obj.items() if key not in taken}


def _unique(parsed: Iterable[Parsed]) -> Iterator[Parsed]:
    """Pass records through, turning a repeated id into a ``duplicate_id`` failure."""
    seen: dict[str, str] = {}
    for item in parsed:
        if isinstance(item, RawRecord):
            if item.id in seen:
                item = RecordFailure(item.locator, "duplicate_id",
                                     f"id {item.id!r} already used at {seen[item.id]}")
            else:
                seen[item.id] = item.locator
        yield item


def _kind(value: object) -> str:
    return "null" if value is None else type(value).__name__
