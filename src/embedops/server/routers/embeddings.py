"""``POST /v1/embeddings``, compatible with OpenAI's embeddings API, and ``GET
/v1/models``.

Accepted: ``input`` as a string or a list of strings (token-id arrays are refused),
``model`` (the served model, by its name), ``encoding_format`` float or base64
(little-endian float32, as OpenAI sends it), ``dimensions`` (the native size, or smaller
where the model supports truncation: the vector is truncated and renormalised). ``usage``
counts the model tokenizer's tokens.
"""

from __future__ import annotations

import base64
from typing import Literal

import numpy as np
from fastapi import APIRouter
from pydantic import BaseModel, Field

from embedops.embedders.base import EmbedderInfo, l2_normalise
from embedops.embedders.weights import canonical_name
from embedops.errors import InputRejected, ModelNotFound
from embedops.server.dependencies import BatcherDep, EmbedderDep, SettingsDep

router = APIRouter(prefix="/v1", tags=["embeddings"])
# Models trained for truncated (Matryoshka) vectors; others only with
# ``server_allow_truncation``. None of the built-in local models is one.
TRUNCATABLE_MODELS: frozenset[str] = frozenset()


class EmbeddingRequest(BaseModel):
    input: str | list[str] = Field(..., description="A text or a list of texts.")
    model: str = Field(..., description="The served model's name (see GET /v1/models).")
    encoding_format: Literal["float", "base64"] = "float"
    dimensions: int | None = Field(None, ge=1, description="Truncate to this many dims.")
    user: str | None = Field(None, description="Accepted for compatibility; unused.")


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
                            settings: SettingsDep) -> EmbeddingResponse:
    """Embed ``input`` with the served model. 404 for another model; 422 for empty
    inputs, too many inputs or unsupported ``dimensions``; 5xx if the model fails."""
    info = batcher.embedder.info
    _check_model(body.model, info)
    texts = [body.input] if isinstance(body.input, str) else body.input
    _check_inputs(texts, settings.server_max_inputs)
    dims = _check_dimensions(body.dimensions, info, settings.server_allow_truncation)
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
    info = embedder.info
    return ModelList(data=[ModelCard(id=info.name, dim=info.dim, max_tokens=info.max_tokens,
                                     fingerprint=info.fingerprint)])


def _check_model(requested: str, info: EmbedderInfo) -> None:
    if canonical_name(requested) != info.name:
        raise ModelNotFound(f"model {requested!r} is not served here; this server serves "
                            f"{info.name!r}")


def _check_inputs(texts: list[str], limit: int) -> None:
    if not texts:
        raise InputRejected("empty", "input is an empty list")
    if len(texts) > limit:
        raise InputRejected("too_many", f"{len(texts)} inputs; at most {limit} per request")
    for i, text in enumerate(texts):
        if not text.strip():
            raise InputRejected("empty", f"input {i} is empty or whitespace")


def _check_dimensions(dimensions: int | None, info: EmbedderInfo, allow: bool) -> int:
    if dimensions is None or dimensions == info.dim:
        return info.dim
    if dimensions > info.dim:
        raise InputRejected("dimensions", f"{info.name} has {info.dim} dimensions; "
                            f"cannot return {dimensions}")
    if not allow and info.name not in TRUNCATABLE_MODELS:
        raise InputRejected("dimensions", f"{info.name} was not trained for truncated "
                            "vectors; set server_allow_truncation to allow it anyway")
    return dimensions


def _encode(vector: np.ndarray, fmt: str) -> list[float] | str:
    if fmt == "base64":
        return base64.b64encode(vector.astype("<f4").tobytes()).decode("ascii")
    return vector.tolist()  # type: ignore[no-any-return]
