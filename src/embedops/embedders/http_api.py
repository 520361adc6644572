"""Embedders behind hosted or self-hosted HTTP APIs.

Providers (model names as given to ``load_embedder``):

- ``openai/text-embedding-3-small`` (1536-d), ``openai/text-embedding-3-large`` (3072-d);
  ``dimensions`` is sent when set (the API truncates and renormalises).
- ``cohere/embed-english-v3.0`` (1024-d); the document role is sent with
  ``input_type=search_document``, the query role with ``search_query``.
- ``openai-compatible/<model>``: any server speaking OpenAI's ``/embeddings`` (TEI, vLLM,
  infinity, ``embedops serve``) at ``api_base``. The embedder embeds a fixed probe text
  once when it is built: the probe's vector gives the dimension (unless ``dimensions``
  is set) and, rounded, enters the fingerprint together with the endpoint, the model
  name and ``dimensions``, so a model swapped behind the same URL gets another
  fingerprint and is refused by the collections of the old one.

Every request goes through :class:`ResilientEndpoint` (retry, pacing, breaker, metrics).
Requests are packed by item count and by an estimate of tokens (:class:`EstimatingTokenizer`),
and sent with bounded concurrency. Answers are validated: count, indices, dimension and
finiteness; a bad answer is a typed error, never a silent bad vector.
"""

from __future__ import annotations

import os
import random
import re
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from embedops.config import Settings
from embedops.embedders.base import BaseEmbedder, EmbedderInfo, Role, make_fingerprint
from embedops.embedders.resilience.clock import Clock
from embedops.embedders.resilience.endpoint import (
    EndpointConfig,
    MalformedResponse,
    ResilientEndpoint,
)
from embedops.embedders.resilience.retry import RetryPolicy
from embedops.embedders.resilience.split import embed_splitting
from embedops.errors import ConfigError, PermanentEmbedderError
from embedops.metrics import Metrics

# Conservative token estimate: runs of at most 4 ASCII letters, 3 digits, or any single
# other non-space character count as one token each. BPE tokenizers (cl100k, Cohere's)
# give English ~4.5 chars per token, so this over-counts English by ~1.3-2x; it can
# under-count some CJK or emoji (2+ BPE tokens per char), hence the request budget below
# keeps headroom.
_ESTIMATE = re.compile(r"[A-Za-z]{1,4}|[0-9]{1,3}|[^\sA-Za-z0-9]")
REQUEST_TOKEN_HEADROOM = 0.75


class EstimatingTokenizer:
    """A Tokenizer (protocol of ``embedders.base``) for models without a local tokenizer:
    a conservative estimate whose tokens carry char offsets, so chunkers work."""

    def __init__(self, max_content_tokens: int) -> None:
        self._max = max_content_tokens

    @property
    def max_content_tokens(self) -> int:
        return self._max

    def offsets(self, text: str) -> list[tuple[int, int]]:
        return [m.span() for m in _ESTIMATE.finditer(text)]

    def count(self, texts: Sequence[str]) -> list[int]:
        return [sum(1 for _ in _ESTIMATE.finditer(t)) for t in texts]


@dataclass(frozen=True)
class Provider:
    """What differs between API families."""

    kind: str
    default_base: str | None
    path: str
    max_items: int
    max_request_tokens: int
    build: Callable[[str, list[str], int | None, str], dict[str, Any]]
    extract: Callable[[Any], list[Any]]


def _openai_body(model: str, texts: list[str], dims: int | None, _: str) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "input": texts, "encoding_format": "float"}
    if dims is not None:
        body["dimensions"] = dims
    return body


def _openai_rows(payload: Any) -> list[Any]:
    data = payload.get("data") if isinstance(payload, dict) else None
    if not isinstance(data, list) or not all(isinstance(d, dict) for d in data):
        raise MalformedResponse("answer has no 'data' list of embedding objects")
    if sorted(d.get("index", -1) for d in data) != list(range(len(data))):
        raise PermanentEmbedderError("answer indices are not 0..n-1")
    return [d.get("embedding") for d in sorted(data, key=lambda d: d["index"])]


def _cohere_body(model: str, texts: list[str], _: int | None, kind: str) -> dict[str, Any]:
    return {"model": model, "texts": texts, "input_type": kind,
            "embedding_types": ["float"], "truncate": "END"}


def _cohere_rows(payload: Any) -> list[Any]:
    rows = payload.get("embeddings") if isinstance(payload, dict) else None
    if isinstance(rows, dict):
        rows = rows.get("float")
    if not isinstance(rows, list):
        raise MalformedResponse("answer has no 'embeddings' list")
    return rows


OPENAI = Provider("openai", "https://api.openai.com/v1", "/embeddings", 2048, 250_000,
                  _openai_body, _openai_rows)
COHERE = Provider("cohere", "https://api.cohere.com", "/v1/embed", 96, 100_000,
                  _cohere_body, _cohere_rows)
COMPATIBLE = Provider("openai-compatible", None, "/embeddings", 256, 100_000,
                      _openai_body, _openai_rows)
PROVIDERS = {p.kind: p for p in (OPENAI, COHERE, COMPATIBLE)}
# (native dim, max input tokens) of the hosted models.
HOSTED_MODELS: dict[str, tuple[int, int]] = {
    "openai/text-embedding-3-small": (1536, 8191),
    "openai/text-embedding-3-large": (3072, 8191),
    "cohere/embed-english-v3.0": (1024, 512),
}


@dataclass(frozen=True)
class ApiOptions:
    """Per-embedder choices beyond the endpoint's settings."""

    dimensions: int | None = None
    max_input_tokens: int = 512
    max_batch_items: int | None = None
    max_batch_tokens: int | None = None


# What each role sends as Cohere's ``input_type``.
COHERE_INPUT_TYPES: dict[str, str] = {"document": "search_document", "query": "search_query"}
PROBE_TEXT = "embedops fingerprint probe: the quick brown fox jumps over the lazy dog."


def probe_digest(vector: np.ndarray) -> str:
    """A digest of a probe vector, rounded to one decimal so that float noise between
    runs of the same model leaves it unchanged while another model changes it."""
    rounded = np.round(np.asarray(vector, dtype=np.float64), 1) + 0.0  # no -0.0
    return make_fingerprint({"probe": rounded.tolist()})


class ApiEmbedder(BaseEmbedder):
    """An :class:`Embedder` whose ``_embed_batch`` calls an HTTP API.

    Raises RetryableEmbedderError when the retry budget is spent (or the breaker is
    open), PermanentEmbedderError for refusals and invalid answers, ConfigError for an
    unknown provider or a model whose dimension cannot be learned.
    """

    def __init__(self, name: str, endpoint: ResilientEndpoint,
                 options: ApiOptions | None = None) -> None:
        kind, _, model = name.partition("/")
        if kind not in PROVIDERS or not model:
            raise ConfigError(f"{name!r} is not an API model: use one of "
                              f"{sorted(PROVIDERS)} followed by /<model>")
        self.provider, self.model, self.endpoint = PROVIDERS[kind], model, endpoint
        self.options = options or ApiOptions()
        self.max_items = self.options.max_batch_items or self.provider.max_items
        self.max_tokens = self.options.max_batch_tokens or self.provider.max_request_tokens
        concurrency = endpoint.config.max_concurrency
        super().__init__(batch_size=self.max_items * concurrency)
        native, max_input = HOSTED_MODELS.get(name, (None, self.options.max_input_tokens))
        self.tokenizer = EstimatingTokenizer(max_input)
        self._pool = ThreadPoolExecutor(concurrency, thread_name_prefix="embedops-api")
        probe = None
        if self.provider is COMPATIBLE or not (self.options.dimensions or native):
            probe = self._request([PROBE_TEXT], COHERE_INPUT_TYPES["document"], None)[0]
        dim = self.options.dimensions or native or int(probe.shape[0])  # type: ignore[union-attr]
        self.info = self._make_info(name, dim, max_input, probe)

    def _make_info(self, name: str, dim: int, max_input: int,
                   probe: np.ndarray | None) -> EmbedderInfo:
        parts: dict[str, object] = {"api": self.provider.kind, "model": self.model,
                                    "dimensions": dim, "normalize": True}
        if self.provider is COMPATIBLE:
            # A self-hosted server can swap the model behind its URL: the endpoint and
            # the probe's vector identify what actually answers.
            assert probe is not None
            parts.update(endpoint=self.endpoint.name.rstrip("/"),
                         requested_dimensions=self.options.dimensions,
                         probe=probe_digest(probe / max(float(np.linalg.norm(probe)), 1e-12)))
        if self.provider is COHERE:
            parts["input_types"] = COHERE_INPUT_TYPES
        return EmbedderInfo(name=name, revision="api", dim=dim, max_tokens=max_input,
                            modality="text", backend=f"api:{self.provider.kind}",
                            source=self.endpoint.name, fingerprint=make_fingerprint(parts))

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        return self._embed_as(texts, COHERE_INPUT_TYPES["document"])

    def _embed_role(self, texts: list[str], role: Role) -> np.ndarray:
        """Cohere is told the role (``input_type``); OpenAI APIs have no roles."""
        return self._embed_as(texts, COHERE_INPUT_TYPES[role])

    def _embed_as(self, texts: list[str], input_type: str) -> np.ndarray:
        groups, dim = self.pack(texts), self.info.dim

        def send_group(group: list[int]) -> np.ndarray:
            return embed_splitting(lambda items: self._request(items, input_type, dim),
                                   [texts[i] for i in group])

        out = np.empty((len(texts), self.info.dim), dtype=np.float32)
        for group, rows in zip(groups, self._pool.map(send_group, groups), strict=True):
            out[group] = rows
        return out

    def pack(self, texts: Sequence[str]) -> list[list[int]]:
        """Indices of ``texts`` grouped into requests within the item limit and the token
        budget (estimated, with headroom). A single text above the budget goes alone."""
        budget = max(int(self.max_tokens * REQUEST_TOKEN_HEADROOM), 1)
        groups: list[list[int]] = [[]]
        used = 0
        for i, tokens in enumerate(self.tokenizer.count(texts)):
            if groups[-1] and (len(groups[-1]) >= self.max_items or used + tokens > budget):
                groups.append([])
                used = 0
            groups[-1].append(i)
            used += tokens
        return [g for g in groups if g]

    def _request(self, texts: list[str], input_type: str, dim: int | None) -> np.ndarray:
        """One request (retried per the policy); ``dim`` None accepts any dimension."""
        body = self.provider.build(self.model, texts, self.options.dimensions, input_type)
        tokens = sum(self.tokenizer.count(texts))
        return self.endpoint.post_json(self.provider.path, body, tokens,
                                       lambda p: self._parse(p, len(texts), dim))

    def _parse(self, payload: Any, count: int, dim: int | None) -> np.ndarray:
        rows = self.provider.extract(payload)
        if len(rows) != count:
            raise PermanentEmbedderError(
                f"{self.endpoint.name} returned {len(rows)} embeddings for {count} inputs")
        try:
            matrix = np.asarray(rows, dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise PermanentEmbedderError(f"embeddings are not numeric rows: {exc}") from None
        if matrix.ndim != 2 or (dim is not None and matrix.shape[1] != dim):
            raise PermanentEmbedderError(
                f"{self.endpoint.name} returned vectors of shape {matrix.shape}; expected "
                f"dimension {dim}: the server serves another model or dimensions setting")
        if not np.isfinite(matrix).all():
            raise PermanentEmbedderError(f"{self.endpoint.name} returned NaN or inf values")
        return matrix

    def close(self) -> None:
        """Release the worker threads and the connection pool."""
        self._pool.shutdown(wait=True)
        self.endpoint.close()



_KEY_ENV = {"openai": ("OPENAI_API_KEY",), "cohere": ("CO_API_KEY", "COHERE_API_KEY"),
            "openai-compatible": ()}


def _api_key(kind: str, settings: Settings) -> str | None:
    if settings.api_key is not None:
        return settings.api_key.get_secret_value()
    for var in _KEY_ENV[kind]:
        if os.environ.get(var):
            return os.environ[var]
    return None


def endpoint_config(name: str, settings: Settings, api_base: str | None = None) -> \
        tuple[EndpointConfig, tuple[str, ...]]:
    """The endpoint settings of API model ``name``, and the secrets to redact. Raises
    ConfigError when a hosted provider has no key or an openai-compatible one no base."""
    kind = name.split("/", 1)[0]
    provider = PROVIDERS[kind]
    base = api_base or settings.api_base or provider.default_base
    if not base:
        raise ConfigError(f"{name} needs an API base URL: set api_base (--api-base, "
                          "EMBEDOPS_API_BASE), e.g. http://127.0.0.1:8000/v1")
    key = _api_key(kind, settings)
    if key is None and kind != "openai-compatible":
        wanted = " or ".join(_KEY_ENV[kind])
        raise ConfigError(f"{name} needs an API key: set {wanted} or EMBEDOPS_API_KEY")
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    policy = RetryPolicy(settings.retry_max_attempts, settings.retry_base_delay_s,
                         max(settings.retry_max_delay_s, settings.retry_base_delay_s),
                         settings.retry_max_retry_after_s)
    config = EndpointConfig(base, headers, settings.api_timeout_s,
                            settings.api_max_concurrency, policy,
                            settings.pacing_requests_per_minute,
                            settings.pacing_tokens_per_minute,
                            settings.breaker_failure_threshold, settings.breaker_open_s)
    return config, (key,) if key else ()


def build_api_embedder(name: str, settings: Settings, api_base: str | None = None,
                       metrics: Metrics | None = None, clock: Clock | None = None,
                       rng: random.Random | None = None) -> ApiEmbedder:
    """An :class:`ApiEmbedder` for ``name`` configured from ``settings``."""
    config, secrets = endpoint_config(name, settings, api_base)
    endpoint = ResilientEndpoint(config, metrics, clock, rng, secrets)
    options = ApiOptions(settings.api_dimensions, settings.api_max_input_tokens,
                         settings.api_max_batch_items, settings.api_max_batch_tokens)
    try:
        return ApiEmbedder(name, endpoint, options)
    except BaseException:
        endpoint.close()
        raise


def api_tokenizer(name: str, max_input_tokens: int = 512) -> EstimatingTokenizer:
    """The tokenizer of API model ``name`` without contacting its API."""
    return EstimatingTokenizer(HOSTED_MODELS.get(name, (0, max_input_tokens))[1])
