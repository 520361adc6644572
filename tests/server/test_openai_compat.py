"""``/v1`` as OpenAI's own SDK sees it, against a real server on 127.0.0.1: invalid
requests raise ``BadRequestError`` (400, OpenAI's error body with ``param``), inputs
over the model's context are refused (or cut with ``truncate``), ``models.retrieve``
works and model objects carry ``created``, token-id arrays are decoded with the model's
tokenizer. The slow test checks that a 15 MiB input does not grow the server."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import openai
import pytest

from embedops.config import load_settings
from embedops.embedders.testing import HashEmbedder, RegexTokenizer
from embedops.ledger import Ledger
from embedops.server import create_app
from tests.server.live import live_server
from tests.server.proc import serving

MODEL = "testing/hash-64"
WORDS = ["[pad]", "the", "quick", "brown", "fox", "jumps", "over", "lazy", "dog", "again"]


class VocabTokenizer(RegexTokenizer):
    """The test tokenizer with a vocabulary, so that token ids decode (as a model's own
    tokenizer does)."""

    vocab_size = len(WORDS)

    def decode(self, ids: Sequence[int]) -> str:
        return " ".join(WORDS[i] for i in ids if i)


class DecodingHashEmbedder(HashEmbedder):
    """TEST-ONLY: the hashing embedder whose tokenizer decodes token ids."""

    def __init__(self) -> None:
        super().__init__()
        self.tokenizer = VocabTokenizer(self.info.max_tokens)


def sdk(url: str, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=60)


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with live_server(create_app(load_settings(model=MODEL))) as base:
        yield base


def embed(client: openai.OpenAI, **kwargs: Any) -> Any:
    return client.embeddings.create(model=kwargs.pop("model", MODEL), **kwargs)


@pytest.mark.parametrize(("kwargs", "param"), [
    ({"input": []}, "input"),
    ({"input": "   "}, "input"),
    ({"input": ["fine", ""]}, "input"),
    ({"input": ["x"] * 2049}, "input"),
    ({"input": [[1, 2, 3]]}, "input"),  # this model's tokenizer cannot decode ids
    ({"input": [1.5]}, "input"),
    ({"input": "x", "dimensions": 65}, "dimensions"),
    ({"input": "x", "dimensions": 16}, "dimensions"),
    ({"input": "x", "dimensions": 0}, "dimensions"),
])
def test_invalid_requests_raise_bad_request(url: str, kwargs: dict[str, Any],
                                            param: str) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        embed(sdk(url), **kwargs)
    error = caught.value.response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert error["type"] == "invalid_request_error" and error["param"] == param
    assert error["message"]


def test_other_models_and_paths_are_not_found_with_openai_bodies(url: str) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        embed(sdk(url), model="text-embedding-3-small", input="x")
    assert caught.value.response.json()["error"]["code"] == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        sdk(url).models.retrieve("text-embedding-3-small")
    missing = httpx.get(f"{url}/v1/nothing/here").json()["error"]
    assert missing["type"] == "invalid_request_error" and "param" in missing


def test_models_retrieve_and_created(url: str) -> None:
    model = sdk(url).models.retrieve(MODEL)
    assert model.id == MODEL and model.object == "model" and model.owned_by == "embedops"
    assert isinstance(model.created, int) and model.created > 1_600_000_000
    listed = sdk(url).models.list().data
    assert [m.id for m in listed] == [MODEL] and listed[0].created == model.created


def test_inputs_over_the_context_are_refused_unless_truncated(url: str) -> None:
    long = " ".join(f"w{i}" for i in range(200))  # 200 tokens; the model takes 128
    with pytest.raises(openai.BadRequestError) as caught:
        embed(sdk(url), input=["short", long])
    message = caught.value.response.json()["error"]["message"]
    assert "input 1 has 200 tokens" in message and "at most 128 tokens" in message
    with pytest.raises(openai.BadRequestError) as huge:
        embed(sdk(url), input="word " * (3 * 1024 * 1024))  # 15 MiB
    assert "at most 128 tokens" in huge.value.response.json()["error"]["message"]
    cut = embed(sdk(url), input=["short", long], extra_body={"truncate": True})
    first = " ".join(f"w{i}" for i in range(128))
    assert cut.usage.prompt_tokens == 1 + 128
    expected = HashEmbedder().embed([first])[0]
    assert np.allclose(cut.data[1].embedding, expected, atol=1e-6)


def test_token_id_arrays_are_decoded_with_the_model_tokenizer() -> None:
    with live_server(create_app(load_settings(model=MODEL),
                                DecodingHashEmbedder())) as base:
        client = sdk(base)
        answer = embed(client, input=[[1, 2, 3, 4], [5, 6, 7, 8, 9]])
        expected = HashEmbedder().embed(["the quick brown fox", "jumps over lazy dog again"])
        got = np.array([d.embedding for d in answer.data], dtype=np.float32)
        assert np.allclose(got, expected, atol=1e-6) and answer.usage.prompt_tokens == 9
        single = embed(client, input=[2, 3, 4], encoding_format="float")
        assert np.allclose(single.data[0].embedding,
                           HashEmbedder().embed(["quick brown fox"])[0], atol=1e-6)
        with pytest.raises(openai.BadRequestError) as caught:
            embed(client, input=[[1, 2, 100_000]])  # an id of another tokenizer
        assert "vocabulary of 10" in caught.value.response.json()["error"]["message"]
        with pytest.raises(openai.BadRequestError):
            embed(client, input=[[1] * 129])  # longer than the context


def test_api_key_errors_use_the_openai_body(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "embedops", "--store", str(tmp_path), "keys",
                           "create", "--scope", "embed", "--json"], capture_output=True,
                          text=True, timeout=60,
                          env={**os.environ, "EMBEDOPS_ENABLE_TEST_MODELS": "1"})
    assert done.returncode == 0, done.stderr
    key = json.loads(done.stdout)["key"]
    settings = load_settings(model=MODEL, store=tmp_path)
    with live_server(create_app(settings)) as base:
        with pytest.raises(openai.AuthenticationError) as caught:
            embed(sdk(base, "eo_wrong"), input="x")
        error = caught.value.response.json()["error"]
        assert error["type"] == "invalid_request_error" and error["code"] == "unauthorized"
        assert embed(sdk(base, key), input="x").data[0].embedding
        reader, _ = Ledger(tmp_path).create_key(["read"], None, "reads only")
        with pytest.raises(openai.PermissionDeniedError) as denied:
            embed(sdk(base, reader), input="x")
        assert denied.value.response.json()["error"]["code"] == "forbidden"


def _peak_kib(pid: int) -> int:
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text()
                  .splitlines() if ":" in line)
    return int(fields["VmHWM"].split()[0])


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_a_15_mib_input_is_refused_without_growing_the_server(tmp_path: Path,
                                                             model_cache: Path) -> None:
    model = "all-MiniLM-L6-v2"
    # the session's cache: the model is prepared for the CPU once, not again here
    with serving(tmp_path / "store", model=model,
                 env={"EMBEDOPS_CACHE_DIR": str(model_cache)}) as server:
        Path(f"/proc/{server.proc.pid}/clear_refs").write_text("5")  # peak := now
        before = _peak_kib(server.proc.pid)
        text = ("lorem ipsum dolor sit amet " * (15 * 1024 * 1024 // 27))
        started = time.monotonic()
        answer = httpx.post(f"{server.url}/v1/embeddings", json={"model": model, "input": text},
                            timeout=120)
        took = time.monotonic() - started
        grown_mib = (_peak_kib(server.proc.pid) - before) / 1024
    assert answer.status_code == 400, answer.text[:300]
    assert "at most 254 tokens" in answer.json()["error"]["message"]
    assert took < 20 and grown_mib < 200, (took, grown_mib)
