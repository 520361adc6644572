"""API keys on every request, and the request size limit.

Once any key exists in the ledger, every request except ``/healthz`` and ``/readyz``
needs ``Authorization: Bearer KEY``: a missing, unknown or revoked key is 401. Routes
then demand a scope (and, for per-collection keys, the collection in the path) through
:func:`require`; a key without it is 403.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from embedops.errors import EmbedOpsError, Forbidden, PayloadTooLarge, Unauthorized
from embedops.ledger.keys import ApiKey

OPEN_PATHS = frozenset({"/healthz", "/readyz"})


def error_response(exc: EmbedOpsError) -> JSONResponse:
    """The one error body of the service: ``{"error": {message, type, code}}``."""
    body = {"error": {"message": exc.message, "type": exc.code, "code": exc.code}}
    headers = {"WWW-Authenticate": "Bearer"} if exc.status_code == 401 else None
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


def authenticate() -> Callable[..., Awaitable[Response]]:
    """HTTP middleware: resolve the bearer key into ``request.state.api_key``."""

    async def middleware(request: Request,
                         call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        request.state.api_key = None
        if request.url.path not in OPEN_PATHS:
            service = request.app.state.service
            if await run_in_threadpool(service.auth_required):
                scheme, _, token = request.headers.get("authorization", "").partition(" ")
                if scheme.lower() != "bearer" or not token.strip():
                    return error_response(Unauthorized(
                        "missing API key: send `Authorization: Bearer KEY`"))
                key = await run_in_threadpool(service.lookup_key, token.strip())
                if key is None:
                    return error_response(Unauthorized("unknown or revoked API key"))
                request.state.api_key = key
        return await call_next(request)

    return middleware


def require(scope: str) -> Callable[[Request], None]:
    """A dependency: the request's key (if auth is on) grants ``scope`` on the
    collection named in the path."""

    def check(request: Request) -> None:
        key: ApiKey | None = getattr(request.state, "api_key", None)
        if key is None:
            return
        collection = request.path_params.get("collection")
        if collection is None and key.collections is not None and scope != "read":
            # Creating collections and pointing aliases reach beyond the key's collections
            # (an alias it may read could be pointed anywhere): unrestricted keys only.
            raise Forbidden(f"API key {key.key_id} is limited to collections "
                            f"{sorted(key.collections)}; managing collections and aliases "
                            "needs a key without a collection limit")
        if not key.allows(scope, collection):
            where = f" on collection {collection!r}" if collection else ""
            raise Forbidden(f"API key {key.key_id} lacks the {scope!r} scope{where}")

    return check


class BodyLimit:
    """ASGI middleware: 413 for bodies over ``limit`` bytes, declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            too_big = PayloadTooLarge(f"request body over {self.limit} bytes")
            await error_response(too_big)(scope, receive, send)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message: dict[str, Any] = dict(await receive())
            seen += len(message.get("body", b""))
            if seen > self.limit:
                raise PayloadTooLarge(f"request body over {self.limit} bytes")
            return message  # type: ignore[return-value]

        await self.app(scope, limited, send)
