"""One entry point for every migration step, by name: the CLI calls it on a store it
owns, the service calls it for its admin endpoints and for the requests commands leave
in the ledger while the service owns the store."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from embedops.client import Client
from embedops.errors import MigrationError
from embedops.migrate.manager import Migrations

ACTIONS = ("plan", "start", "pause", "resume", "evaluate", "swap", "rollback", "finalize",
           "status")


def apply_request(client: Client, alias: str, action: str, args: dict[str, Any],
                  migrations: Migrations | None = None) -> dict[str, Any]:
    """Run ``action`` on ``alias``'s migration; returns a JSON-able result (the status
    after the step; the plan; the evaluation report)."""
    m = migrations or Migrations(client)
    if action not in ACTIONS:
        raise MigrationError(f"unknown migration action {action!r}; one of {ACTIONS}")
    m.finalize_expired()
    if action == "plan":
        return m.plan(alias, args["to"], args.get("dtype"), args.get("max_rate"))
    if action == "start":
        m.start(alias, args["to"], args.get("dtype"), args.get("max_rate"))
    elif action == "evaluate":
        return m.evaluate(alias, Path(args["dataset"]), args.get("split", "test"))
    elif action == "swap":
        m.swap(alias, bool(args.get("force")))
    elif action == "resume":
        m.resume(alias, args.get("max_rate"))
    elif action != "status":
        getattr(m, action)(alias)
    return m.status(alias)
