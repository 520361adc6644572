"""Every error outside ``/v1/`` has the embedops body ``{"error": {message, type, code}}``,
FastAPI's and Starlette's own (unknown path, wrong method, unreadable body) and the 413
of a chunked body included; the OpenAPI document lists each operation's error statuses
and the 200 of ``?wait=true``. Real HTTP on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from embedops.config import load_settings
from embedops.server import create_app
from tests.server.live import live_server

LIMIT = 50_000


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    store = tmp_path_factory.mktemp("bodies-store")
    settings = load_settings(model="testing/hash-64", store=store,
                             server_max_body_bytes=LIMIT)
    with live_server(create_app(settings, open_store=True)) as url, \
            httpx.Client(base_url=url, timeout=30) as http:
        yield http


def error_of(answer: httpx.Response, status: int) -> dict[str, Any]:
    assert answer.status_code == status, (answer.status_code, answer.text)
    body = answer.json()
    error = body["error"]
    assert set(error) == {"message", "type", "code"} and error["message"], body
    assert error["type"] == error["code"]
    return error  # type: ignore[no-any-return]


def test_framework_errors_have_the_embedops_body(client: httpx.Client) -> None:
    assert error_of(client.get("/no/such/path"), 404)["code"] == "not_found"
    wrong = client.delete("/healthz")
    assert error_of(wrong, 405)["code"] == "method_not_allowed"
    assert "GET" in wrong.headers["allow"]
    unreadable = client.post("/collections/notes/search", content=b'{"query": "\xff\xfe"}',
                             headers={"content-type": "application/json"})
    assert error_of(unreadable, 400)["code"] == "bad_request"
    invalid = client.post("/collections/notes/search", json={"query": "a", "k": 0})
    assert error_of(invalid, 422)["code"] == "invalid_request"
    assert invalid.json()["detail"][0]["loc"] == ["body", "k"]  # the failing field


def test_oversize_bodies_are_413_declared_or_chunked(client: httpx.Client) -> None:
    body = b'{"query": "' + b"word " * (LIMIT // 4) + b'"}'
    declared = client.post("/collections/notes/search", content=body,
                           headers={"content-type": "application/json"})
    assert error_of(declared, 413)["code"] == "payload_too_large"

    def chunks() -> Iterator[bytes]:  # no Content-Length: Transfer-Encoding: chunked
        for start in range(0, len(body), 4096):
            yield body[start:start + 4096]

    chunked = client.post("/collections/notes/search", content=chunks(),
                          headers={"content-type": "application/json"})
    assert "content-length" not in chunked.request.headers
    assert error_of(chunked, 413)["code"] == "payload_too_large"
    small = client.put("/collections/notes/documents/x", content=iter([b'{"text": "hi"}']),
                       headers={"content-type": "application/json"})
    assert small.status_code == 202, small.text  # a small chunked body is read as usual


def test_openapi_lists_error_statuses_and_the_wait_200(client: httpx.Client) -> None:
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    assert schemas["ErrorResponse"]["required"] == ["error"]
    assert "HTTPValidationError" not in schemas and "HTTPValidationError" not in str(spec)
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            responses = operation["responses"]
            assert "500" in responses, (method, path)
            wanted = "OpenAIErrorResponse" if path.startswith("/v1/") else "ErrorResponse"
            for status, response in responses.items():
                if int(status) >= 400:
                    ref = response["content"]["application/json"]["schema"]["$ref"]
                    assert ref.endswith(f"/{wanted}"), (method, path, status)
            if path not in ("/healthz", "/readyz"):
                assert "401" in responses, (method, path)
    paths = spec["paths"]
    put = paths["/collections/{collection}/documents/{doc_id}"]["put"]["responses"]
    assert {"200", "202", "401", "403", "404", "413", "422"} <= set(put)
    assert {"200", "202"} <= set(paths["/collections/{collection}/documents"]["post"]
                                 ["responses"])
    assert {"400", "404", "422"} <= set(paths["/collections/{collection}/search"]["post"]
                                        ["responses"])
    assert {"409", "422"} <= set(paths["/collections"]["post"]["responses"])
    retry = paths["/ui/api/dead-letters/retry"]["post"]["responses"]
    assert "409" in retry and "collection_changed" in retry["409"]["description"]
    embeddings = paths["/v1/embeddings"]["post"]["responses"]
    assert {"400", "404"} <= set(embeddings) and "422" not in embeddings
    parameter = paths["/collections/{collection}"]["get"]["parameters"][0]
    assert parameter["name"] == "collection" and parameter["schema"]["pattern"]
