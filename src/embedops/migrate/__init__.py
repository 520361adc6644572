"""Model upgrades run like schema migrations: a shadow collection for the new model,
a backfill from the ledger's stored content, dual-write, an evaluation gate, an atomic
alias swap and a rollback window. See docs/migrations.md."""

from embedops.migrate.manager import Migrations
from embedops.migrate.state import PHASES

__all__ = ["PHASES", "Migrations"]
