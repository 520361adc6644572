"""Alerts: one error log line, and a JSON POST to the configured webhook.

An alert never fails the work that raised it: a webhook that is down, slow or answers
an error is logged (without its URL, which often carries a token) and reported back as
the delivery outcome.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
from pydantic import SecretStr

from embedops.config import Settings

log = logging.getLogger("embedops.alerts")


def raise_alert(settings: Settings, kind: str, message: str,
                body: dict[str, Any]) -> str:
    """Log ``message`` as an error and POST ``{"kind": kind, "message": message, **body}``
    to ``settings.alert_webhook``. Returns the delivery outcome: ``delivered``,
    ``failed`` or ``not_configured``. Never raises for a delivery failure."""
    log.error("alert (%s): %s", kind, message)
    if settings.alert_webhook is None:
        return "not_configured"
    payload = {"kind": kind, "message": message, **body}
    hook = settings.alert_webhook
    url = hook.get_secret_value() if isinstance(hook, SecretStr) else str(hook)
    return post_webhook(url, payload, settings.alert_webhook_timeout_s)


def post_webhook(url: str, payload: dict[str, Any], timeout_s: float) -> str:
    """POST ``payload`` as JSON; ``delivered`` on a 2xx answer, else ``failed`` (logged)."""
    try:
        response = httpx.post(url, json=payload, timeout=timeout_s,
                              headers={"User-Agent": "embedops-alerts"})
    except httpx.HTTPError as exc:
        log.warning("alert webhook not reached: %s", type(exc).__name__)
        return "failed"
    if not response.is_success:
        log.warning("alert webhook answered HTTP %d", response.status_code)
        return "failed"
    return "delivered"
