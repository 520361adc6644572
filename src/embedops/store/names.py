"""Names of collections and aliases: the one rule, used by the store and the HTTP layer.

A name is 1-128 characters of ``[A-Za-z0-9_.-]`` starting with a letter or a digit, so
it is safe in a URL path segment, a file name and a log line, and cannot be ``.`` or
``..``.
"""

from __future__ import annotations

import re

from embedops.errors import StoreError

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,127}$"
NAME_RE = re.compile(NAME_PATTERN)


class InvalidName(StoreError):
    """A collection or alias name breaks the naming rule (a client error, never a 500)."""

    status_code = 422
    code = "invalid_name"


def check_name(name: object, what: str = "collection") -> str:
    """``name`` itself when it is a valid collection or alias name; raises
    :class:`InvalidName` (a ``StoreError``) otherwise. ``what`` names the kind in the
    message."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name):
        shown = name if not isinstance(name, str) or len(name) <= 140 else name[:140] + "…"
        raise InvalidName(f"invalid {what} name {shown!r}: use 1-128 characters of "
                          "[A-Za-z0-9_.-], starting with a letter or a digit")
    return name
