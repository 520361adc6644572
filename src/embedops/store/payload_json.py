"""Payloads as the stores keep them: JSON text, read back into dicts."""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

# orjson reads an integer beyond 64 bits as a float (2**70 + 1 comes back as 2**70): text
# with a run of 19 or more digits, which such an integer needs, goes through ``json``,
# which keeps every integer exact. (A long string of digits or a long fraction takes the
# slower way too, with the same result.)
_LONG_DIGITS = re.compile(r"\d{19}")


def payload_of(text: str) -> dict[str, Any]:
    """The payload stored as ``text`` (``batch.payload_text``'s output), integers of any
    size exact."""
    if _LONG_DIGITS.search(text) is None:
        return orjson.loads(text)  # type: ignore[no-any-return]
    return json.loads(text)  # type: ignore[no-any-return]
