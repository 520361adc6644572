"""The phases of a migration and which action may move it where.

    planned → backfilling ⇄ paused → ready → swapped → finalized
                                        ↑        │
                                        └ rolled_back ← rollback (swap again, or
                                                         finalize to abandon)

``ready`` means the shadow holds every live document (dual-write keeps it so). ``swap``
needs a passed evaluation gate (or ``force``). ``finalize`` drops the collection the
alias no longer points at and ends dual-write.
"""

from __future__ import annotations

from embedops.errors import MigrationError

PHASES: tuple[str, ...] = ("planned", "backfilling", "paused", "ready", "swapped",
                           "rolled_back", "finalized")

# action -> phases it is allowed from
ALLOWED: dict[str, tuple[str, ...]] = {
    "backfill": ("planned", "backfilling"),
    "pause": ("backfilling",),
    "resume": ("paused", "backfilling"),
    "evaluate": ("ready", "swapped", "rolled_back"),
    "swap": ("ready", "rolled_back"),
    "rollback": ("swapped",),
    "finalize": ("swapped", "rolled_back"),
}


def check_action(action: str, phase: str, alias: str) -> None:
    """Raise MigrationError (409) unless ``action`` is allowed in ``phase``."""
    allowed = ALLOWED[action]
    if phase not in allowed:
        raise MigrationError(f"cannot {action} the migration of {alias!r}: it is {phase} "
                             f"(allowed from {', '.join(allowed)})")
