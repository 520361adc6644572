"""``POST /collections/{c}/search``: by ``query`` text (embedded with the collection's own
model, batched with concurrent queries), by ``vector``, or by an image or audio file
(``image_base64`` / ``audio_base64``, or the file itself as the body of
``POST /collections/{c}/search/media``). Aliases resolve to their current collection
inside the store's read, so a repoint never fails a search."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

import numpy as np
from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field, model_validator
from starlette.datastructures import UploadFile

from embedops.errors import InputRejected
from embedops.server.dependencies import READ, ServiceDep
from embedops.server.timing import in_thread
from embedops.server.vectors import float32_rows
from embedops.store.protocol import Hit

router = APIRouter(tags=["search"])


class SearchBody(BaseModel):
    query: str | None = Field(None, min_length=1, max_length=10000)
    vector: list[float] | None = Field(None, min_length=1, max_length=65536)
    image_base64: str | None = Field(
        None, min_length=1, description="An image file (JPEG, PNG, WebP, GIF), base64.")
    audio_base64: str | None = Field(
        None, min_length=1, description="An audio file (WAV, FLAC, Ogg, MP3), base64.")
    k: int = Field(10, ge=1)
    filter: dict[str, Any] | str | None = Field(
        None, description="Payload filter (dict or string form; see docs/store.md).")
    exact: bool = False

    @model_validator(mode="after")
    def _one_query(self) -> SearchBody:
        given = [x for x in (self.query, self.vector, self.image_base64, self.audio_base64)
                 if x is not None]
        if len(given) != 1:
            raise ValueError("give exactly one of `query`, `vector`, `image_base64` and "
                             "`audio_base64`")
        if self.query is not None and not self.query.strip():
            raise ValueError("`query` is blank")
        return self


@router.post("/collections/{collection}/search", dependencies=[READ],
             summary="Search a collection or alias")
async def search(collection: str, body: SearchBody, service: ServiceDep) -> dict[str, Any]:
    """Top-``k`` hits, best first: ``id``, ``doc_id``, ``score``, ``text``, ``payload``."""
    if body.k > service.settings.server_max_k:
        raise InputRejected("k", f"k={body.k}; at most {service.settings.server_max_k}")
    info = await in_thread("catalog", service.store.get_collection, collection)
    media = _media_of(body)
    if media is not None:
        return await _search_media(service, collection, media[0], media[1], body.k,
                                   body.filter, body.exact)
    if body.vector is not None:
        vector = float32_rows([body.vector])[0]  # (refuses NaN, inf and past float32)
        service.metrics.searches.labels("vector").inc()
    else:
        vectors, _ = await service.batcher_for(info).embed([str(body.query)])
        vector = vectors[0]
        service.metrics.searches.labels("text").inc()
        if not np.all(np.isfinite(vector)):
            raise InputRejected("vector", "the vector must hold finite numbers")
    hits = await in_thread("search", service.store.search, info.name, vector, body.k,
                           body.filter, None, body.exact)
    return {"collection": info.name, "hits": [_hit(h) for h in hits[0]]}


@router.post("/collections/{collection}/search/media", dependencies=[READ],
             summary="Search a collection with an uploaded image or audio file")
async def search_media(collection: str, request: Request, service: ServiceDep,
                       modality: Annotated[Literal["image", "audio"] | None, Query(
                           description="image or audio (else sniffed from the bytes)")]
                       = None,
                       k: Annotated[int, Query(ge=1)] = 10,
                       exact: bool = False) -> dict[str, Any]:
    """The request body is the file itself (``curl --data-binary @photo.jpg``) or a
    form with one file (``curl -F file=@photo.jpg``); hits as for ``/search``, with the
    media metadata (dimensions, duration) in their payload."""
    data = await _uploaded(request)
    if not data:
        raise InputRejected("empty", "the request body is empty: send the file's bytes")
    return await _search_media(service, collection, modality, data, k, None, exact)


async def _uploaded(request: Request) -> bytes:
    """The body, or the one file of a ``multipart/form-data`` body."""
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        return await request.body()
    try:
        form = await request.form()
    except AssertionError as exc:  # Starlette's check that python-multipart is installed
        raise InputRejected("multipart", "form uploads need python-multipart (the media "
                            "extra); send the file itself as the body") from exc
    files = [v for v in form.values() if isinstance(v, UploadFile)]
    if len(files) != 1:
        raise InputRejected("upload", f"the form holds {len(files)} files; send one")
    return await files[0].read()


def _media_of(body: SearchBody) -> tuple[str, bytes] | None:
    for modality, text in (("image", body.image_base64), ("audio", body.audio_base64)):
        if text is not None:
            try:
                return modality, base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise InputRejected(f"{modality}_base64", f"not valid base64: {exc}") from exc
    return None


async def _search_media(service: Any, collection: str, modality: str | None, data: bytes,
                        k: int, filter: Any, exact: bool) -> dict[str, Any]:
    from embedops.media_search import media_query_vector

    if k > service.settings.server_max_k:
        raise InputRejected("k", f"k={k}; at most {service.settings.server_max_k}")
    info = await in_thread("catalog", service.store.get_collection, collection)
    embedder = await in_thread("model", service.pool.get, info.model, info.fingerprint)

    def embed() -> np.ndarray:
        with service.pool.model_lock.interactive():
            return media_query_vector(embedder, info, data, modality)

    vector = await in_thread("embed", embed)
    service.metrics.searches.labels(modality or "media").inc()
    hits = await in_thread("search", service.store.search, info.name, vector, k, filter,
                           None, exact)
    return {"collection": info.name, "hits": [_hit(h) for h in hits[0]]}


def _hit(hit: Hit) -> dict[str, Any]:
    payload = {k: v for k, v in hit.payload.items() if k != "text"}
    return {"id": hit.id, "doc_id": hit.payload.get("doc_id", hit.id.rsplit("#", 1)[0]),
            "score": round(float(hit.score), 6), "text": hit.payload.get("text"),
            "payload": payload}
