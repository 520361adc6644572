"""Scenario files (TOML) and the precedence of their values: flags over file over defaults."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Any

from embedops.cost.inputs import Scenario
from embedops.errors import InvalidCostInput

FIELD_NAMES: frozenset[str] = frozenset(f.name for f in fields(Scenario))
_THROUGHPUT = ("gpu_docs_per_second", "gpu_tokens_per_minute")


def read_scenario_file(path: Path) -> dict[str, Any]:
    """The key/value pairs of a TOML scenario file, keys checked against Scenario's fields.

    Keys may sit at the top level or under a ``[scenario]`` table. Raises
    ``InvalidCostInput`` for an unreadable file, invalid TOML or an unknown key.
    """
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InvalidCostInput("scenario", f"cannot read {path}: {exc.strerror}") from exc
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidCostInput("scenario", f"{path} is not valid TOML: {exc}") from exc
    table = data.get("scenario", data)
    if not isinstance(table, dict):
        raise InvalidCostInput("scenario", f"{path}: [scenario] must be a table")
    _check_names(table, str(path))
    return dict(table)


def scenario_from(file_values: Mapping[str, Any] | None = None,
                  overrides: Mapping[str, Any] | None = None) -> Scenario:
    """A validated Scenario: defaults, replaced by ``file_values``, replaced by ``overrides``.

    ``None`` in ``overrides`` means "not given". Throughput is one choice: when the
    overrides give either ``gpu_docs_per_second`` or ``gpu_tokens_per_minute``, the file's
    throughput values are dropped, so a flag always wins over the file. Raises
    ``InvalidCostInput`` for unknown names or invalid values.
    """
    merged = dict(file_values or {})
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    _check_names(merged, "scenario file")
    _check_names(given, "overrides")
    if any(name in given for name in _THROUGHPUT):
        for name in _THROUGHPUT:
            merged.pop(name, None)
    merged.update(given)
    return Scenario(**merged)


def load_scenario(path: Path | None = None, **overrides: Any) -> Scenario:
    """The Scenario of an optional TOML file with keyword overrides on top (see scenario_from)."""
    file_values = read_scenario_file(path) if path is not None else {}
    return scenario_from(file_values, overrides)


def _check_names(values: Mapping[str, Any], where: str) -> None:
    unknown = sorted(set(values) - FIELD_NAMES)
    if unknown:
        raise InvalidCostInput(unknown[0], f"unknown input in {where}; "
                                           f"known inputs: {', '.join(sorted(FIELD_NAMES))}")
