"""``POST /v1/embeddings``, compatible with OpenAI's embeddings API, and ``GET
/v1/models`` and ``GET /v1/models/{id}``.

Accepted: ``input`` as a string, a list of strings, a token-id array or a list of them
(ids of the served model's tokenizer, decoded with it; a model whose tokenizer cannot
decode answers 400), ``model`` (the served model, by its name), ``encoding_format`` float
or base64 (little-endian float32, as OpenAI sends it), ``dimensions`` (the native size,
or smaller where the model supports truncation: the vector is truncated and
renormalised). An input longer than the model's context is refused with 400, as OpenAI
does, unless ``truncate`` (an embedops extension) asks for its first tokens to be
embedded. ``usage`` counts the model tokenizer's tokens of what was embedded.

Errors use OpenAI's body and statuses (see ``server/errors.py``): an invalid request is
400 with ``param`` naming the field, so OpenAI's SDKs raise ``BadRequestError``.
"""

from __future__ import annotations

import base64
import functools
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from embedops.embedders.base import EmbedderInfo, Role, Tokenizer, l2_normalise
from embedops.embedders.weights import canonical_name
from embedops.errors import ModelNotFound
from embedops.server.dependencies import (
    EMBED,
    BatcherDep,
    EmbedderDep,
    ServiceDep,
    SettingsDep,
)
from embedops.server.errors import InvalidRequest

router = APIRouter(prefix="/v1", tags=["embeddings"], dependencies=[EMBED])
# Models trained for truncated (Matryoshka) vectors; others only with
# ``server_allow_truncation``. None of the built-in local models is one.
TRUNCATABLE_MODELS: frozenset[str] = frozenset()
# No text averages more characters per token; an input longer than its model's context
# times this is refused (or cut) without tokenizing more of it than that: a 15 MiB input
# costs a few kB of tokenizer memory, not its whole encoding.
MAX_CHARS_PER_TOKEN = 64
_STARTED = int(time.time())

TokenIds = list[Annotated[int, Field(ge=0, lt=2**31, strict=True)]]


class EmbeddingRequest(BaseModel):
    input: str | list[str] | TokenIds | list[TokenIds] = Field(
        ..., description="A text, a list of texts, a token-id array (ids of the served "
        "model's tokenizer) or a list of token-id arrays.")
    model: str = Field(..., description="The served model's name (see GET /v1/models).")
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1, description="Truncate to this many dims.")
    user: str | None = Field(None, description="Accepted for compatibility; unused.")
    truncate: bool = Field(
        False, description="embedops extension: embed the first tokens of an input "
        "longer than the model's context instead of refusing it with 400.")
    input_type: Literal["document", "query", "search_document", "search_query"] | None = (
        Field(None, description="embedops extension: the role to embed in — `query` "
              "(alias `search_query`) for search queries, `document` (alias "
              "`search_document`, the default) for texts to store. Models with roles (E5 "
              "prefixes, Cohere input types) embed the two differently."))

    @property
    def role(self) -> Role:
        return "query" if self.input_type in ("query", "search_query") else "document"


class EmbeddingItem(BaseModel):
    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class Usage(BaseModel):
    prompt_tokens: int
    total_tokens: int


class EmbeddingResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[EmbeddingItem]
    model: str
    usage: Usage


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(..., description="Unix time of the model's files (or of the "
                         "server's start, for a model without files).")
    owned_by: str = "embedops"
    dim: int
    max_tokens: int
    fingerprint: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


@router.post("/embeddings", response_model=EmbeddingResponse,
             summary="Create embeddings (OpenAI-compatible)")
async def create_embeddings(body: EmbeddingRequest, batcher: BatcherDep,
                            settings: SettingsDep, service: ServiceDep) -> EmbeddingResponse:
    """Embed ``input`` with the served model. 404 for another model; 400 for empty
    inputs, too many inputs, inputs over the model's context, token ids the model
    cannot decode or unsupported ``dimensions``; 5xx if the model fails."""
    info = batcher.embedder.info
    _check_model(body.model, info)
    _check_count(body.input, settings.server_max_inputs)
    dims = _check_dimensions(body.dimensions, info, settings.server_allow_truncation)
    texts = await run_in_threadpool(_prepare, body.input, batcher.embedder.tokenizer, info,
                                    body.truncate)
    if body.role != batcher.role:  # one dynamic batcher per (fingerprint, role)
        batcher = service.batcher(batcher.embedder, body.role)
    vectors, counts = await batcher.embed(texts)
    if dims < info.dim:
        vectors = l2_normalise(np.ascontiguousarray(vectors[:, :dims]))
    data = [EmbeddingItem(index=i, embedding=_encode(v, body.encoding_format))
            for i, v in enumerate(vectors)]
    tokens = int(sum(counts))
    return EmbeddingResponse(data=data, model=info.name,
                             usage=Usage(prompt_tokens=tokens, total_tokens=tokens))


@router.get("/models", response_model=ModelList, summary="The served model")
def list_served_models(embedder: EmbedderDep) -> ModelList:
    """The one model this server embeds with, with its dimension and fingerprint."""
    return ModelList(data=[_card(embedder.info)])


@router.get("/models/{model_id:path}", response_model=ModelCard,
            summary="One served model (OpenAI's models.retrieve)")
def retrieve_model(model_id: str, embedder: EmbedderDep) -> ModelCard:
    """The served model by its name; 404 for any other."""
    _check_model(model_id, embedder.info)
    return _card(embedder.info)


def _card(info: EmbedderInfo) -> ModelCard:
    return ModelCard(id=info.name, created=_created(info.source), dim=info.dim,
                     max_tokens=info.max_tokens, fingerprint=info.fingerprint)


@functools.lru_cache(maxsize=16)
def _created(source: str) -> int:
    try:
        return int(Path(source).stat().st_mtime)
    except (OSError, ValueError):
        return _STARTED


def _check_model(requested: str, info: EmbedderInfo) -> None:
    if canonical_name(requested) != info.name:
        raise ModelNotFound(f"model {requested!r} is not served here; this server serves "
                            f"{info.name!r}")


def _check_count(inputs: str | list[str] | list[int] | list[list[int]], limit: int) -> None:
    if isinstance(inputs, str):
        return
    if not inputs:
        raise InvalidRequest("empty", "input is an empty list")
    if not isinstance(inputs[0], int) and len(inputs) > limit:  # (one id array is one input)
        raise InvalidRequest("too_many", f"{len(inputs)} inputs; at most {limit} per request")


def _prepare(inputs: str | list[str] | list[int] | list[list[int]], tokenizer: Tokenizer,
             info: EmbedderInfo, truncate: bool) -> list[str]:
    """The texts to embed: decoded from token ids where ids were sent, each within the
    model's context (cut to it with ``truncate``). Raises ``InvalidRequest``."""
    if isinstance(inputs, str):
        items: Sequence[str | list[int]] = [inputs]
    elif inputs and isinstance(inputs[0], int):
        items = [inputs]  # type: ignore[list-item]  # one token-id array
    else:
        items = inputs  # type: ignore[assignment]
    limit = tokenizer.max_content_tokens
    texts = []
    for i, item in enumerate(items):
        if isinstance(item, list):
            if len(item) > limit and not truncate:
                raise InvalidRequest("too_long", f"input {i} has {len(item)} tokens; "
                                     f"{_context(info, limit)}")
            text = _decode(item[:limit], tokenizer, info, i)
        else:
            text = _fit(item, tokenizer, info, limit, truncate, i)
        if not text.strip():
            raise InvalidRequest("empty", f"input {i} is empty or whitespace")
        texts.append(text)
    return texts


def _decode(ids: list[int], tokenizer: Tokenizer, info: EmbedderInfo, index: int) -> str:
    decode: Callable[[list[int]], str] | None = getattr(tokenizer, "decode", None)
    if decode is None:
        raise InvalidRequest("token_ids", f"{info.name} cannot take token ids (its tokenizer "
                             "does not decode); send the input as text")
    vocab = getattr(tokenizer, "vocab_size", None)
    if isinstance(vocab, int) and any(t >= vocab for t in ids):
        raise InvalidRequest("token_ids", f"input {index} holds token ids outside "
                             f"{info.name}'s vocabulary of {vocab}: token ids must come "
                             "from this model's tokenizer (langchain-openai: set "
                             "check_embedding_ctx_length=False to send text)")
    try:
        return decode(ids)
    except (OverflowError, TypeError, ValueError) as exc:  # the tokenizer library's refusal
        raise InvalidRequest("token_ids", f"input {index}: {info.name}'s tokenizer cannot "
                             f"decode these token ids: {exc}") from exc


def _fit(text: str, tokenizer: Tokenizer, info: EmbedderInfo, limit: int, truncate: bool,
         index: int) -> str:
    """``text`` when it has at most ``limit`` tokens (and at most ``limit *
    MAX_CHARS_PER_TOKEN`` characters); else its first tokens with ``truncate``, or
    ``InvalidRequest`` naming the limit. Only that many characters are ever tokenized."""
    if not text.strip():
        raise InvalidRequest("empty", f"input {index} is empty or whitespace")
    cap = limit * MAX_CHARS_PER_TOKEN
    head = text[:cap]
    count = tokenizer.count([head])[0]
    if count <= limit and len(text) <= cap:
        return text
    if truncate:
        ends = [end for _, end in tokenizer.offsets(head)]
        keep = min(limit, len(ends))
        cut = head[: ends[keep - 1]] if keep else head
        # a tokenizer may count tokens that have no span (word boundaries): re-check,
        # and drop tokens until the cut text fits, as the chunkers do
        while keep > 1 and tokenizer.count([cut])[0] > limit:
            keep -= 1
            cut = head[: ends[keep - 1]]
        return cut
    if count <= limit:
        has = (f"{len(text)} characters, more than the {cap} ({MAX_CHARS_PER_TOKEN} per "
               "token of context) an input may have")
    else:
        has = f"{count} tokens" if len(text) <= cap else f"at least {count} tokens"
    raise InvalidRequest("too_long", f"input {index} has {has}; {_context(info, limit)}")


def _context(info: EmbedderInfo, limit: int) -> str:
    return (f"{info.name} takes at most {limit} tokens per input (its maximum context "
            f"length is {info.max_tokens} tokens). Shorten it, or send `truncate: true` "
            "to embed its first tokens")


def _check_dimensions(dimensions: int | None, info: EmbedderInfo, allow: bool) -> int:
    if dimensions is None or dimensions == info.dim:
        return info.dim
    if dimensions > info.dim:
        raise InvalidRequest("dimensions", f"{info.name} has {info.dim} dimensions; "
                             f"cannot return {dimensions}", param="dimensions")
    if not allow and info.name not in TRUNCATABLE_MODELS:
        raise InvalidRequest("dimensions", f"{info.name} was not trained for truncated "
                             "vectors; set server_allow_truncation to allow it anyway",
                             param="dimensions")
    return dimensions


def _encode(vector: np.ndarray, fmt: str) -> list[float] | str:
    if fmt == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return vector.tolist()  # type: ignore[no-any-return]
