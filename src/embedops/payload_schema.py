"""Declared payload fields: a field's type and default, checked on every write.

A collection may declare fields (``embedops schema add-field``). A write whose metadata
gives a declared field a value of another type is refused, naming the field; a write that
lacks a field with a default gets the default, so a filter on a new field matches old and
new documents alike once the old ones are backfilled.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from embedops.errors import InputRejected

FIELD_TYPES: dict[str, tuple[type, ...]] = {
    "str": (str,), "int": (int,), "float": (int, float), "bool": (bool,), "list": (list,),
}


class SchemaViolation(InputRejected):
    """A write gives a declared payload field a value of the wrong type."""

    code = "schema_violation"

    def __init__(self, field: str, message: str) -> None:
        super().__init__("schema_violation", f"field {field!r}: {message}")
        self.field = field


@dataclass(frozen=True)
class FieldSpec:
    """One declared field: name, type (one of ``FIELD_TYPES``), default, indexed."""

    field: str
    type: str
    default: Any = None
    indexed: bool = False

    def __post_init__(self) -> None:
        if self.type not in FIELD_TYPES:
            raise InputRejected("field_type", f"field {self.field!r}: type must be one of "
                                f"{', '.join(FIELD_TYPES)}, not {self.type!r}")
        if self.default is not None:
            check_value(self, self.default)

    def to_dict(self) -> dict[str, Any]:
        return {"field": self.field, "type": self.type, "default": self.default,
                "indexed": self.indexed}


def check_value(spec: FieldSpec, value: Any) -> None:
    """Raise SchemaViolation unless ``value`` has ``spec``'s type (None is no value)."""
    if value is None:
        return
    wanted = FIELD_TYPES[spec.type]
    if isinstance(value, bool) and bool not in wanted:  # True is an int in Python
        raise SchemaViolation(spec.field, f"expected {spec.type}, got a bool")
    if not isinstance(value, wanted):
        raise SchemaViolation(spec.field,
                              f"expected {spec.type}, got {type(value).__name__} {value!r:.60}")


def parse_default(spec_type: str, text: str) -> Any:
    """A default given as text on the command line, as a value of ``spec_type``."""
    import json

    if spec_type == "str":
        return text
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise InputRejected("default", f"{text!r} is not a {spec_type} value") from exc
    return value


def apply_schema(specs: Sequence[FieldSpec], metadata: Mapping[str, Any]) -> dict[str, Any]:
    """``metadata`` checked against ``specs``, with defaults for declared fields it lacks.
    Raises SchemaViolation naming the first field of the wrong type."""
    out = dict(metadata)
    for spec in specs:
        if out.get(spec.field) is None:
            if spec.default is not None:
                out[spec.field] = spec.default
        else:
            check_value(spec, out[spec.field])
    return out
