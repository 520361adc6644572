"""The OpenAPI document: FastAPI's, plus what it cannot see from the route signatures.

* every operation lists the error statuses it can answer, with the error body schema
  (:class:`ErrorResponse`, or OpenAI's under ``/v1/``);
* document writes list their ``200``: with ``?wait=true`` they answer once the write is
  searchable or failed (``202`` otherwise);
* ``{collection}`` and ``{alias}`` path parameters carry the naming rule as a pattern.

Statuses follow from the shape of the route (a scope → 401/403; a body → 400/413; a
named thing in the path → 404; the store → 409/423; a model → 502/503) plus the few
listed in :data:`EXTRA`. ``tests/server/test_fuzz_openapi.py`` fails on any status an
operation answers that its entry here does not list.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from embedops.server.errors import ErrorResponse, OpenAIErrorResponse, is_openai
from embedops.store.names import NAME_PATTERN

DESCRIPTIONS = {
    400: "Bad request: a body that is not JSON, an invalid filter; under /v1/ any "
         "invalid request",
    401: "Missing, unknown or revoked API key (once keys exist)",
    403: "The API key lacks the scope, or the collection",
    404: "Unknown collection, alias, document or model",
    405: "Method not allowed",
    409: "Conflict: the name exists, the collection is aliased, or it holds another "
         "model; or a run's collection was dropped or renamed while it waited to write "
         "(collection_changed)",
    413: "Request body over server_max_body_bytes",
    422: "Invalid field, name or parameter (the failing fields are in `detail`)",
    423: "Another process writes the store (store_locked)",
    500: "Internal error",
    502: "The model failed on this input",
    503: "Starting, or the model is temporarily unavailable",
}
# Statuses that the route shape does not tell, by (method, path).
EXTRA: dict[tuple[str, str], set[int]] = {
    ("POST", "/collections"): {404, 409, 502, 503},
    ("POST", "/aliases"): {404},
    ("POST", "/collections/{collection}/search"): {400, 502, 503},
    ("POST", "/v1/embeddings"): {404, 502, 503},
    ("GET", "/readyz"): {503},
    ("POST", "/admin/migrations/{alias}/plan"): {502},
    ("POST", "/admin/migrations/{alias}/start"): {502},
    ("POST", "/admin/migrations/{alias}/evaluate"): {502},
    # (a batch run of the sources: its collection dropped or renamed meanwhile)
    ("POST", "/ui/api/dead-letters/retry"): {409},
}
WAIT_200 = "With `wait=true`: the write is searchable, or failed (the item's `status`)"
STORE_PREFIXES = ("/collections", "/aliases", "/admin/migrations")
NAME_PARAMS = ("collection", "alias")


def install(app: FastAPI, routers: Sequence[APIRouter]) -> None:
    """Make ``app.openapi()`` return the completed document (built once). ``routers``
    are those ``app`` includes, without a prefix of the include's own."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version,
                                 description=app.description, routes=app.routes)
            complete(schema, [r for router in routers for r in router.routes
                              if isinstance(r, APIRoute)])
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def complete(schema: dict[str, Any], routes: list[APIRoute]) -> None:
    """Add error responses, the ``?wait=true`` 200 and name patterns to ``schema``."""
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    for model in (ErrorResponse, OpenAIErrorResponse):
        body = model.model_json_schema(ref_template="#/components/schemas/{model}")
        components.update(body.pop("$defs", {}))
        components[model.__name__] = body
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    for route in routes:
        if not route.include_in_schema:
            continue
        for method in route.methods or ():
            operation = schema["paths"].get(route.path_format, {}).get(method.lower())
            if operation is not None:
                _complete_operation(operation, route, method)


def _complete_operation(operation: dict[str, Any], route: APIRoute, method: str) -> None:
    path = route.path_format
    ref = "OpenAIErrorResponse" if is_openai(path) else "ErrorResponse"
    responses = operation.setdefault("responses", {})
    responses.pop("422", None)  # FastAPI's, with its own body: replaced below
    for status in sorted(error_statuses(route, method)):
        responses[str(status)] = {
            "description": DESCRIPTIONS[status],
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}},
        }
    if "wait" in _params(route) and "202" in responses:
        responses["200"] = {"description": WAIT_200, "content": responses["202"].get(
            "content", {"application/json": {"schema": {}}})}
    for param in operation.get("parameters", []):
        if param.get("in") == "path" and param.get("name") in NAME_PARAMS:
            param["schema"] = {**param.get("schema", {}), "pattern": NAME_PATTERN,
                               "maxLength": 128}


def error_statuses(route: APIRoute, method: str) -> set[int]:
    """The error statuses one operation can answer."""
    path = route.path_format
    statuses = {500} | EXTRA.get((method, path), set())
    params = _params(route)
    has_body = route.body_field is not None
    if path not in ("/healthz", "/readyz"):
        statuses.add(401)
    if _scoped(route):
        statuses.add(403)
    if has_body:
        statuses |= {400, 413}
    if params or has_body:
        statuses.add(400 if is_openai(path) else 422)
    if any(p in params for p in ("collection", "alias", "doc_id", "model_id")):
        statuses.add(404)
    if path.startswith(STORE_PREFIXES):
        statuses |= {423, 503}
        if method != "GET":
            statuses.add(409)
    return statuses


def _params(route: APIRoute) -> set[str]:
    dependant = route.dependant
    names = {p.name for p in (*dependant.path_params, *dependant.query_params)}
    for sub in dependant.dependencies:
        names |= {p.name for p in (*sub.path_params, *sub.query_params)}
    return names


def _scoped(route: APIRoute) -> bool:
    return any(getattr(sub.call, "scope", None) for sub in route.dependant.dependencies)
