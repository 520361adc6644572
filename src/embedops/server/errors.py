"""Error bodies of the service, and the handlers that make every error use them.

Two formats, chosen by path:

* everywhere: ``{"error": {"message", "type", "code"}}`` with the status of the
  :class:`EmbedOpsError` (``type`` equals ``code``); request-shape errors are 422 with
  ``detail`` naming the failing fields;
* under ``/v1/`` (the OpenAI-compatible API): OpenAI's
  ``{"error": {"message", "type", "param", "code"}}``, where an invalid request is 400
  and ``type`` is ``invalid_request_error`` (``server_error`` for 5xx), so OpenAI's
  SDKs raise ``BadRequestError``, ``NotFoundError``, ... as they do against OpenAI.

Handlers cover embedops errors, request validation, Starlette's own HTTP errors (404,
405, a body that cannot be read) and anything unexpected (500, logged).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException

from embedops.errors import EmbedOpsError, InputRejected

log = logging.getLogger(__name__)
OPENAI_PREFIX = "/v1/"
HTTP_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
              405: "method_not_allowed", 413: "payload_too_large", 415: "unsupported_media",
              422: "invalid_request", 429: "rate_limited", 500: "internal",
              503: "unavailable"}


class InvalidRequest(InputRejected):
    """An invalid request to the OpenAI-compatible API (400); ``param`` names the field
    at fault, as OpenAI's error body does."""

    status_code = 400

    def __init__(self, reason: str, message: str, param: str | None = "input") -> None:
        EmbedOpsError.__init__(self, message)  # OpenAI's messages carry no reason prefix
        self.reason, self.param = reason, param


class ErrorDetail(BaseModel):
    message: str = Field(..., description="What went wrong, for a person.")
    type: str = Field(..., description="The error code again (kept for OpenAI clients).")
    code: str = Field(..., description="Machine-readable error code.")


class ErrorResponse(BaseModel):
    """The body of every embedops error. A 422 also lists the failing fields."""

    error: ErrorDetail
    detail: list[dict[str, Any]] | None = Field(
        None, description="422 only: each failing field (`loc`, `msg`, `type`).")


class OpenAIErrorDetail(BaseModel):
    message: str
    type: str = Field(..., description="`invalid_request_error`, or `server_error`.")
    param: str | None = Field(None, description="The request field at fault.")
    code: str | None = None


class OpenAIErrorResponse(BaseModel):
    """The body of every error under ``/v1/``: OpenAI's error object."""

    error: OpenAIErrorDetail


def is_openai(path: str) -> bool:
    return path.startswith(OPENAI_PREFIX) or path == OPENAI_PREFIX.rstrip("/")


def error_response(exc: EmbedOpsError, path: str = "",
                   headers: dict[str, str] | None = None) -> JSONResponse:
    """The response for ``exc`` in the format of ``path`` (OpenAI's under ``/v1/``)."""
    if exc.status_code == 401:
        headers = {**(headers or {}), "WWW-Authenticate": "Bearer"}
    if is_openai(path):
        return openai_response(exc.status_code, exc.message, exc.code,
                               getattr(exc, "param", None), headers)
    body = {"error": {"message": exc.message, "type": exc.code, "code": exc.code}}
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


def openai_response(status: int, message: str, code: str | None, param: str | None = None,
                    headers: dict[str, str] | None = None) -> JSONResponse:
    """OpenAI's error object; a 422 (an invalid request) is answered 400, as OpenAI does."""
    status = 400 if status == 422 else status
    kind = "server_error" if status >= 500 else "invalid_request_error"
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


async def _embedops_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, EmbedOpsError)
    return error_response(exc, request.url.path)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    """422 for a body or parameter that fails validation (400 under ``/v1/``). The
    offending input is not echoed back: it may not even be representable as JSON (NaN),
    and it may be large."""
    assert isinstance(exc, RequestValidationError)
    detail = [{"loc": list(e.get("loc", ())), "msg": str(e.get("msg", "")),
               "type": str(e.get("type", ""))} for e in exc.errors()]
    message = "; ".join(f"{'.'.join(map(str, d['loc']))}: {d['msg']}" for d in detail)
    message = message or "invalid request"
    if is_openai(request.url.path):
        fields = [str(p) for p in (detail[0]["loc"] if detail else [])[1:]
                  if not isinstance(p, int)]
        return openai_response(400, message, "invalid_request", fields[0] if fields else None)
    return JSONResponse({"error": {"message": message, "type": "invalid_request",
                                   "code": "invalid_request"}, "detail": detail},
                        status_code=422)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's and FastAPI's own errors: unknown path, method not allowed, a body
    that cannot be read."""
    assert isinstance(exc, HTTPException)
    code = HTTP_CODES.get(exc.status_code, "http_error")
    message = str(exc.detail)
    headers = dict(exc.headers) if exc.headers else None
    if is_openai(request.url.path):
        return openai_response(exc.status_code, message, code, None, headers)
    return JSONResponse({"error": {"message": message, "type": code, "code": code}},
                        status_code=exc.status_code, headers=headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    """500 for a bug: logged with its traceback, answered without internals."""
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    message = "internal error; the server log has the details"
    if is_openai(request.url.path):
        return openai_response(500, message, "internal")
    return JSONResponse({"error": {"message": message, "type": "internal",
                                   "code": "internal"}}, status_code=500)


def install(app: FastAPI) -> None:
    """Register the handlers on ``app``."""
    app.add_exception_handler(EmbedOpsError, _embedops_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)
