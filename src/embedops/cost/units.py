"""Units of the cost model: decimal bytes, a 730-hour month, and count parsing.

Every byte figure is decimal (SI): 1 GB = 1e9 bytes, 1 TB = 1e12 bytes. Prices per
GB-month are taken per decimal GB, as cloud price lists quote them.
"""

from __future__ import annotations

import math
import re

from embedops.errors import InvalidCostInput

BYTES_PER_GB = 1e9
BYTES_PER_TB = 1e12
TOKENS_PER_MTOK = 1e6
SECONDS_PER_HOUR = 3600.0
HOURS_PER_MONTH = 730.0  # 8,760 hours a year / 12, the convention of cloud price lists

DTYPE_BYTES: dict[str, int] = {"float32": 4, "float16": 2, "int8": 1}
INDEX_TYPES: tuple[str, ...] = ("hnsw", "ivf", "flat")

_SUFFIXES = {"": 1, "k": 10**3, "m": 10**6, "b": 10**9, "g": 10**9, "t": 10**12}
_COUNT = re.compile(
    r"^\s*([-+]?[0-9][0-9_,]*(?:\.[0-9]*)?(?:e[+-]?[0-9]+)?)\s*([kmbgt]?)\s*$", re.I)


def parse_count(field: str, text: str) -> int:
    """A whole count from ``text``: ``500000000``, ``500_000_000``, ``5e8``, ``500M``, ``1B``.

    Suffixes are decimal (K = 1e3, M = 1e6, B or G = 1e9, T = 1e12). Raises
    ``InvalidCostInput`` naming ``field`` when the text is not a whole, finite number.
    """
    match = _COUNT.match(text)
    if match is None:
        raise InvalidCostInput(field, f"{text!r} is not a count (examples: 5e8, 500M, 1B)")
    number, suffix = match.groups()
    value = float(number.replace("_", "").replace(",", "")) * _SUFFIXES[suffix.lower()]
    if not math.isfinite(value) or value != int(value):
        raise InvalidCostInput(field, f"{text!r} is not a whole number")
    return int(value)


def format_bytes(n: float) -> str:
    """``n`` bytes in decimal units for people: ``1.54 TB``, ``384 MB``."""
    for unit, size in (("PB", 1e15), ("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:,.3g} {unit}"
    return f"{n:,.0f} B"
