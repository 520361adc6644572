"""`embedops serve`: embeddings, collections, real-time ingestion and search over HTTP."""

from __future__ import annotations

import ipaddress
from typing import TYPE_CHECKING, Annotated

import typer

from embedops.cli.context import (
    ApiBaseOption,
    BackendOption,
    ModelOption,
    StoreOption,
    console,
    handle_errors,
    settings_from,
)

if TYPE_CHECKING:  # (imported when a command runs)
    from embedops.config import Settings
from embedops.errors import ConfigError

LOOPBACK_NAMES = ("localhost",)


def is_loopback(host: str) -> bool:
    if host.lower() in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_loopback(host: str, keys_configured: bool = False) -> None:
    """Refuse a non-loopback host unless API keys are configured (then every request
    but /healthz and /readyz needs a key)."""
    if keys_configured or is_loopback(host):
        return
    raise ConfigError(
        f"refusing to bind to {host}: no API key exists, so the server has no "
        "authentication and only listens on a loopback address (127.0.0.1, ::1, "
        "localhost). Create a key with `embedops keys create` to serve other machines.")


def keys_configured(settings: Settings) -> bool:
    """True once any API key was created for the store (its ledger exists and has one)."""
    from embedops.client import ledger_location
    from embedops.ledger.postgres import ledger_exists, open_ledger

    location = ledger_location(settings)
    if not ledger_exists(location):
        return False
    ledger = open_ledger(location)
    try:
        return ledger.keys_configured()
    finally:
        ledger.close()


def serve(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(
        "--host", help="Address to bind (non-loopback only once API keys exist).")] = (
        "127.0.0.1"),
    port: Annotated[int, typer.Option("--port", help="TCP port.")] = 8000,
    model: ModelOption = None,
    backend: BackendOption = None,
    api_base: ApiBaseOption = None,
    store: StoreOption = None,
    max_batch_size: Annotated[int | None, typer.Option(
        "--max-batch-size", help="Texts per dynamic batch (default 64).")] = None,
    max_wait_ms: Annotated[float | None, typer.Option(
        "--max-wait-ms", help="How long a batch waits for more requests (default 5).")] = None,
) -> None:
    """Serve /v1/embeddings, /collections (documents, points, search), /aliases,
    /healthz, /readyz and /metrics; OpenAPI at /docs. Holds the store's writer lock."""
    import uvicorn

    from embedops.server import create_app
    from embedops.server.app import load_served

    with handle_errors():
        settings = settings_from(ctx, store=store, model=model, backend=backend,
                                 api_base=api_base, server_max_batch_size=max_batch_size,
                                 server_max_wait_ms=max_wait_ms)
        check_loopback(host, keys_configured(settings))
        from embedops.jobs.schedule import job_specs

        job_specs(settings.jobs)  # a bad job definition stops the start, not a job later
        embedder = load_served(settings)
        app = create_app(settings, embedder, open_store=True)
    console.print(f"serving [bold]{settings.model}[/bold] and store {settings.store} on "
                  f"http://{host}:{port} (docs at /docs)")
    uvicorn.run(app, host=host, port=port, log_level="warning")
