"""The boundary between httpx and embedops: every transport exception and every bad HTTP
status becomes a typed :class:`EmbedderError`, with API keys redacted from the message.

Retryable: 408, 425, 429, 5xx, timeouts, connection errors and resets.
Permanent: every other 4xx (bad request, bad key, unknown model), except a batch the API
calls too large (413, or a 400 saying so), which is :class:`BatchTooLarge` so the caller
can split it.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from embedops.errors import (
    BatchTooLarge,
    PermanentEmbedderError,
    RateLimited,
    ServerError,
)

_TOO_LARGE = re.compile(
    r"too (large|long|many)|maximum (context|batch|request)|exceeds? .*(limit|maximum)|"
    r"batch size", re.IGNORECASE)
_KEYLIKE = re.compile(r"\b(sk|pk|rk|key|co)[-_][A-Za-z0-9_\-]{8,}\b")








def redact(text: str, secrets: tuple[str, ...] = ()) -> str:
    """``text`` with every given secret, and anything shaped like an API key, masked."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return _KEYLIKE.sub("***", text)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date);
    None when absent or unparseable. Never negative."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(float(value), 0.0)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value).timestamp()
    except (TypeError, ValueError, IndexError):
        return None
    return max(when - (time.time() if now is None else now), 0.0)


def classify_response(response: httpx.Response, endpoint: str,
                      secrets: tuple[str, ...] = ()) -> None:
    """Return if ``response`` succeeded (2xx); otherwise raise the matching error."""
    status = response.status_code
    if 200 <= status < 300:
        return
    body = redact(response.text[:300], secrets)
    where = f"{endpoint} answered HTTP {status}: {body}"
    retry_after = parse_retry_after(response.headers.get("retry-after"))
    if status == 429:
        raise RateLimited(where, retry_after)
    if status >= 500 or status in (408, 425):
        raise ServerError(where, status, retry_after)
    if status == 413 or (status == 400 and _TOO_LARGE.search(body)):
        raise BatchTooLarge(where)
    raise PermanentEmbedderError(where)


@contextmanager
def map_transport_errors(endpoint: str, secrets: tuple[str, ...] = ()) -> Iterator[None]:
    """Translate httpx transport exceptions raised inside the block."""
    try:
        yield
    except httpx.TimeoutException as exc:
        raise ServerError(f"{endpoint} timed out: {type(exc).__name__}") from None
    except (httpx.NetworkError, httpx.RemoteProtocolError) as exc:
        detail = redact(str(exc), secrets)
        raise ServerError(f"{endpoint} connection failed: {type(exc).__name__} {detail}") \
            from None
    except httpx.HTTPError as exc:
        raise PermanentEmbedderError(
            f"{endpoint} request failed: {type(exc).__name__} {redact(str(exc), secrets)}"
        ) from None
