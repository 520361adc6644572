"""What every command shares: settings built once, and output as a rich table or JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from embedops.config import Settings, load_settings
from embedops.errors import EmbedOpsError

console = Console()
err_console = Console(stderr=True)

StoreOption = Annotated[
    Path | None,
    typer.Option("--store", help="Store directory (default ./.embedops, env EMBEDOPS_STORE)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
ModelOption = Annotated[
    str | None, typer.Option("--model", "-m", help="Embedding model (default all-MiniLM-L6-v2).")
]
BackendOption = Annotated[
    str | None,
    typer.Option("--backend", help="Local inference engine: auto, torch, onnx, onnx-int8."),
]


def settings_from(ctx: typer.Context, **overrides: Any) -> Settings:
    """Settings for this command: command flags win over global flags over env/toml."""
    root = ctx.find_root().obj or {}
    merged = {k: v for k, v in root.items() if v is not None}
    merged.update({k: v for k, v in overrides.items() if v is not None})
    return load_settings(**merged)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def wants_json(ctx: typer.Context, flag: bool) -> bool:
    root = ctx.find_root().obj or {}
    return flag or bool(root.get("json"))


@contextmanager
def handle_errors() -> Iterator[None]:
    """Turn EmbedOpsError into a one-line message and exit code 1 (2 for bad input)."""
    try:
        yield
    except EmbedOpsError as exc:
        err_console.print(f"[red]error[/red] ({exc.code}): {exc.message}")
        raise typer.Exit(2 if exc.status_code in (400, 404, 422) else 1) from exc


@contextmanager
def open_store_and_ledger(settings: Settings, read_only: bool = False) -> Iterator[Any]:
    """The store and its ledger for one command, closed (and unlocked) afterwards.
    Read-only: the ledger is None when nothing was ever ingested."""
    from embedops.ledger import Ledger
    from embedops.store import open_store

    if read_only and not settings.store.exists():
        from embedops.errors import StoreError

        raise StoreError(f"no store at {settings.store}: run `embedops ingest` first")
    store = open_store(settings.store, read_only=read_only)
    try:
        has_ledger = (settings.store / "ledger.db").exists()
        ledger = None if read_only and not has_ledger else Ledger(settings.store, read_only)
        try:
            yield store, ledger
        finally:
            if ledger is not None:
                ledger.close()
    finally:
        store.close()
