"""PostgreSQL URLs with embedops' own ``schema`` query parameter.

The pgvector store and the PostgreSQL ledger each live in one schema of a database,
named by ``?schema=`` in their URL (``postgresql://host/db?schema=embedops``). libpq
does not know the parameter, so it is taken out before the URL is given to the driver.
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from embedops.errors import ConfigError

SCHEMA_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")


def check_schema(schema: str, what: str) -> None:
    """Refuse a schema name that is not a lowercase SQL identifier (``ConfigError``)."""
    if not SCHEMA_NAME.fullmatch(schema):
        raise ConfigError(f"schema {schema!r} in the {what} URL: use a lowercase SQL "
                          "identifier")


def split_url(url: str, default_schema: str, what: str) -> tuple[str, str]:
    """``(libpq URL, schema)`` of ``url``: the ``schema`` parameter (else
    ``default_schema``) taken out and checked; ``what`` names the URL in errors."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), default_schema)
    check_schema(schema, what)
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema
