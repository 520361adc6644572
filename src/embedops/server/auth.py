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
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from embedops.errors import EmbedOpsError, Forbidden, PayloadTooLarge, Unauthorized
from embedops.ledger.keys import ApiKey
from embedops.server.errors import error_response
from embedops.server.timing import in_thread

OPEN_PATHS = frozenset({"/healthz", "/readyz"})


def authenticate() -> Callable[..., Awaitable[Response]]:
    """HTTP middleware: resolve the bearer key into ``request.state.api_key``."""

    async def middleware(request: Request,
                         call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        request.state.api_key = None
        if request.url.path not in OPEN_PATHS:
            service = request.app.state.service
            if await in_thread("auth", service.auth_required):
                scheme, _, token = request.headers.get("authorization", "").partition(" ")
                if scheme.lower() != "bearer" or not token.strip():
                    return error_response(Unauthorized(
                        "missing API key: send `Authorization: Bearer KEY`"), request.url.path)
                key = await in_thread("auth", service.lookup_key, token.strip())
                if key is None:
                    return error_response(Unauthorized("unknown or revoked API key"),
                                          request.url.path)
                request.state.api_key = key
        return await call_next(request)

    return middleware


def require(scope: str) -> Callable[[Request], None]:
    """A dependency: the request's key (if auth is on) grants ``scope`` on the
    collection named in the path. The returned function carries ``scope`` as an
    attribute, so the OpenAPI document can list 401 and 403 where they apply."""

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
        if not _allowed(request, key, scope, collection):
            where = f" on collection {collection!r}" if collection else ""
            raise Forbidden(f"API key {key.key_id} lacks the {scope!r} scope{where}")

    check.scope = scope  # type: ignore[attr-defined]
    return check


def _allowed(request: Request, key: ApiKey, scope: str, collection: str | None) -> bool:
    """A per-collection key is checked against the collection a path name resolves to
    (an alias's target), and against the name itself when that is an alias it lists."""
    if key.allows(scope, collection) and (collection is None or key.collections is None):
        return True
    if collection is None or not key.allows(scope, None):
        return False
    allowed = set(key.collections or ())
    if collection in allowed:
        return True
    try:
        target = request.app.state.service.store.resolve(collection)
    except EmbedOpsError:
        return False
    return target in allowed


class BodyLimit:
    """ASGI middleware: 413 for bodies over ``limit`` bytes, declared or streamed.

    A declared ``Content-Length`` over the limit is answered before anything is read. A
    chunked body is counted as the app reads it; once over, the read fails and whatever
    the app answers instead (FastAPI makes it a 400) is replaced by the 413."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_big = PayloadTooLarge(f"request body over {self.limit} bytes")
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await error_response(too_big, scope["path"])(scope, receive, send)
            return
        seen, over, started = 0, False, False

        async def limited() -> Message:
            nonlocal seen, over
            message: dict[str, Any] = dict(await receive())
            seen += len(message.get("body", b""))
            if seen > self.limit:
                over = True
                raise too_big
            return message  # type: ignore[return-value]

        async def replied(message: Message) -> None:
            nonlocal started
            if over and not started:
                return  # the app's answer to a body it could not read: the 413 goes instead
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, replied)
        except Exception:
            if not over or started:
                raise
        if over and not started:
            await error_response(too_big, scope["path"])(scope, receive, send)
