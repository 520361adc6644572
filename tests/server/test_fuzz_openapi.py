"""A fuzzer replays the OpenAPI document against a real server on 127.0.0.1
(schemathesis; valid and invalid requests to every operation, a fixed, bounded set of
examples so CI is repeatable): no request may get a 5xx, every status must be one the
document lists for that operation, and every body must match its documented schema."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from embedops.config import load_settings
from embedops.server import create_app
from tests.server.live import live_server

EXAMPLES = 300
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    store = tmp_path_factory.mktemp("fuzz-store")
    settings = load_settings(model="testing/hash-64", store=store, server_wait_timeout_s=2,
                             server_max_body_bytes=200_000)
    with live_server(create_app(settings, open_store=True)) as base:
        yield base


def test_fuzzed_requests_get_documented_answers_and_never_a_5xx(url: str) -> None:
    schema = schemathesis.openapi.from_dict(httpx.get(f"{url}/openapi.json").json())
    cases = (schema.as_strategy(GenerationMode.POSITIVE)
             | schema.as_strategy(GenerationMode.NEGATIVE))
    failures: list[str] = []
    statuses: set[int] = set()

    @settings(max_examples=EXAMPLES, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(case=cases)
    def replay(case: schemathesis.Case) -> None:
        response = case.call(base_url=url, timeout=30)
        statuses.add(response.status_code)
        try:
            case.validate_response(response, checks=CHECKS)
        except BaseException as exc:  # a FailureGroup: collected, so none is shrunk
            failures.append(f"{case.method} {case.formatted_path} -> {response.status_code} "
                            f"{response.text[:200]}\n{str(exc)[:600]}")

    replay()
    assert not failures, f"{len(failures)} failures; first:\n" + "\n\n".join(failures[:3])
    assert {200, 404, 422} <= statuses  # the fuzzer reached real answers
