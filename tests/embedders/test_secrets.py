"""An API key never shows: not in a repr of the settings, the endpoint config, the
embedder, its error messages, nor in any log line of a failing run."""

from __future__ import annotations

import logging
import random

import pytest

from embedops.config import load_settings
from embedops.embedders.http_api import build_api_embedder
from embedops.embedders.resilience import ManualClock
from embedops.errors import EmbedOpsError
from embedops.metrics import Metrics
from tests.server.fault_server import FaultServer

SECRET = "sk-live-0123456789abcdef-do-not-print"


def test_api_key_is_redacted_everywhere(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with FaultServer(script=["401"] + ["503"] * 6) as server:
        settings = load_settings(api_base=server.url, api_key=SECRET, retry_max_attempts=2,
                                 api_dimensions=64)
        with server.faults_off():
            embedder = build_api_embedder("openai-compatible/m", settings, metrics=Metrics(),
                                          clock=ManualClock(), rng=random.Random(1))
        seen = [repr(settings), str(settings), repr(settings.model_dump()),
                repr(embedder.endpoint.config), str(embedder.endpoint.config.headers),
                repr(embedder.info), repr(vars(embedder.endpoint))]
        for _ in range(2):
            with pytest.raises(EmbedOpsError) as failure:
                embedder.embed(["hello"])
            seen += [str(failure.value), repr(failure.value)]
        assert server.seen and server.seen[-1].authorization == f"Bearer {SECRET}"
    seen += [r.getMessage() for r in caplog.records] + [caplog.text]
    leaks = [text for text in seen if SECRET in text]
    assert leaks == []
    assert "'***'" in repr(embedder.endpoint.config)
