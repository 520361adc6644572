"""`embedops jobs list|run`: the scheduled jobs `embedops serve` runs, and running one
now (what cron or a Kubernetes CronJob calls instead of the service)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

import typer
from rich.table import Table

from embedops.cli.context import (
    JsonOption,
    StoreOption,
    console,
    handle_errors,
    open_client,
    print_json,
    settings_from,
    wants_json,
)

app = typer.Typer(help="Scheduled jobs: list them, or run one now.", no_args_is_help=True)


@app.command("list")
def list_(ctx: typer.Context, store: StoreOption = None, json_out: JsonOption = False) -> None:
    """Configured jobs: cron, kind, next run, and how the last run ended."""
    from embedops.jobs.schedule import job_specs

    settings = settings_from(ctx, store=store)
    with handle_errors():
        specs = job_specs(settings.jobs)
        with open_client(settings, read_only=True) as client:
            last = client.ledger.last_job_runs() if client.ledger else {}
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = [
        {"name": s.name, "cron": s.cron, "kind": s.kind, "args": s.args,
         "next_run": s.next_run(now).isoformat(), **last.get(s.name, {})} for s in specs]
    if wants_json(ctx, json_out):
        print_json(rows)
        return
    table = Table(title=f"{len(rows)} scheduled jobs")
    for column in ("name", "cron", "kind", "next run", "last run", "outcome", "seconds"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["name"], r["cron"], r["kind"], r["next_run"], r.get("last_run", "-"),
                      r.get("outcome", "-"), str(r.get("seconds", "-")))
    console.print(table)


@app.command("run")
def run(ctx: typer.Context, name: Annotated[str, typer.Argument(help="The job's name.")],
        store: StoreOption = None, json_out: JsonOption = False) -> None:
    """Run a configured job now; exit 1 when it fails or raises an alert."""
    from embedops.errors import ConfigError
    from embedops.jobs.kinds import JobContext
    from embedops.jobs.schedule import job_specs, run_job

    settings = settings_from(ctx, store=store)
    with handle_errors():
        specs = {s.name: s for s in job_specs(settings.jobs)}
        if name not in specs:
            raise ConfigError(f"no job named {name!r}; configured: {', '.join(specs) or 'none'}")
        with open_client(settings) as client:
            assert client.ledger is not None
            result = run_job(specs[name], JobContext(client, client.ledger))
    if wants_json(ctx, json_out):
        print_json(result)
    else:
        console.print(f"{result['job']}: {result['outcome']} in {result['seconds']} s — "
                      f"{result['detail']}", highlight=False)
    if result["outcome"] != "ok":
        raise typer.Exit(1)
