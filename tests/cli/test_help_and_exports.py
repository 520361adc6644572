"""Every command has help text; every public name is exported on purpose."""

from __future__ import annotations

import importlib
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from embedops.cli.app import app


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, command in group.commands.items():
        path = (*prefix, name)
        out.append(path)
        if hasattr(command, "commands"):  # a sub-group (typer vendors its own click)
            out += _commands(command, path)
    return out


COMMANDS = _commands(typer.main.get_command(app))


def test_the_documented_commands_exist() -> None:
    names = {" ".join(c) for c in COMMANDS}
    assert {"models", "embed", "chunk", "ingest", "search", "eval", "collections", "verify",
            "dlq list", "dlq show", "dlq retry", "dlq purge", "store rebuild", "cost", "serve",
            "status", "keys create", "keys revoke", "get", "stale", "reembed", "backfill",
            "schema show", "schema add-field", "migrate plan", "migrate start",
            "migrate status", "migrate list", "migrate pause", "migrate resume",
            "migrate evaluate", "migrate swap", "migrate rollback", "migrate finalize"} <= names


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help(command: tuple[str, ...]) -> None:
    result = CliRunner().invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    group = typer.main.get_command(app)
    for part in command:
        group = group.commands[part]  # type: ignore[attr-defined]
    assert group.help and len(group.help.strip()) > 10


NO_RESULTS = {("dlq",), ("store",), ("schema",), ("migrate",), ("jobs",), ("canary",),
              ("finetune",), ("serve",)}  # groups, and
# the long-running server


@pytest.mark.parametrize("command", [c for c in COMMANDS if c not in NO_RESULTS],
                         ids=" ".join)
def test_result_commands_accept_json(command: tuple[str, ...]) -> None:
    group = typer.main.get_command(app)
    for part in command:
        group = group.commands[part]  # type: ignore[attr-defined]
    options = {opt for param in group.params for opt in getattr(param, "opts", [])}
    assert "--json" in options, f"{' '.join(command)} lacks --json"


@pytest.mark.parametrize("module", [
    "embedops", "embedops.embedders", "embedops.preprocess", "embedops.store",
    "embedops.ledger", "embedops.cost",
])
def test_public_names_are_exported_on_purpose(module: str) -> None:
    mod = importlib.import_module(module)
    exported = getattr(mod, "__all__", None)
    assert exported, f"{module} has no __all__"
    for name in exported:
        assert hasattr(mod, name), f"{module}.__all__ names missing {name}"
    assert len(exported) == len(set(exported))
