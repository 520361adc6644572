"""Documents: write (one or bulk), delete, and status. Writes are queued durably in the
ledger and answered 202 with a status URL; ``?wait=true`` answers once the write is
searchable (or failed), or 202 after ``server_wait_timeout_s``."""

from __future__ import annotations

import asyncio
import base64
import binascii
import json
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, model_validator
from starlette.concurrency import run_in_threadpool

from embedops.embedders.media_registry import document_modalities
from embedops.errors import CollectionNotFound, DocumentNotFound, InputRejected, PayloadTooLarge
from embedops.payload_schema import apply_schema
from embedops.preprocess.media import content_modality
from embedops.server.dependencies import READ, WRITE, ServiceDep
from embedops.server.service import Service

router = APIRouter(tags=["documents"])
DOC_ID = Path(..., min_length=1, max_length=512, description="The document's id.")
WAIT = Query(False, description="Answer once the write is searchable (or failed).")
WAIT_POLL_S = 0.25  # ?wait=true: how often the ledger is asked about other replicas' work


class DocumentBody(BaseModel):
    """``text``, or ``content_base64`` (bytes of a text, HTML, Markdown or PDF file, or of
    an image or audio file for a collection whose model embeds it)."""

    text: str | None = None
    content_base64: str | None = None
    title: str | None = Field(None, max_length=1000)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_content(self) -> DocumentBody:
        if (self.text is None) == (self.content_base64 is None):
            raise ValueError("give exactly one of `text` and `content_base64`")
        if self.content_base64 is not None:
            try:
                base64.b64decode(self.content_base64, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ValueError(f"content_base64 is not valid base64: {exc}") from exc
        try:  # payloads are strict JSON: NaN/Infinity would fail later, in the store
            json.dumps(self.metadata, allow_nan=False)
        except ValueError as exc:
            raise ValueError(f"metadata must be plain JSON (no NaN or Infinity): {exc}") from exc
        return self

    def queued(self) -> dict[str, Any]:
        return self.model_dump(exclude_none=True)

    def content_bytes(self) -> int:
        """Bytes of the content: UTF-8 of ``text``, or what ``content_base64`` decodes to."""
        if self.text is not None:
            return len(self.text.encode("utf-8", "surrogatepass"))
        encoded = self.content_base64 or ""
        return len(encoded) * 3 // 4 - (len(encoded) - len(encoded.rstrip("=")))


class BulkDocument(DocumentBody):
    id: str = Field(..., min_length=1, max_length=512)


class BulkBody(BaseModel):
    documents: list[BulkDocument] = Field(..., min_length=1)


def _check_id(doc_id: str) -> None:
    if any(ord(c) < 32 for c in doc_id):
        raise InputRejected("document_id", "document ids cannot hold control characters")


def _check_size(service: Service, doc_id: str, body: DocumentBody) -> None:
    """413 for a document over ``server_max_document_bytes``, naming the limit."""
    limit = service.settings.server_max_document_bytes
    size = body.content_bytes()
    if size > limit:
        raise PayloadTooLarge(
            f"document {doc_id!r} has {size} bytes; the largest document this service "
            f"accepts is {limit} bytes (server_max_document_bytes)")


def _body_modality(doc_id: str, body: dict[str, Any]) -> str | None:
    """``image`` or ``audio`` for a ``content_base64`` body of media bytes, else None."""
    encoded = body.get("content_base64")
    if not encoded:
        return None
    return content_modality(doc_id, base64.b64decode(str(encoded)))


def _check_modalities(service: Service, collection: str,
                      writes: list[tuple[str, str, dict[str, Any]]]) -> None:
    """422 ``unsupported_modality``, before anything is queued, for an image or audio
    body written into a collection whose model does not embed that modality."""
    media = [(doc_id, modality) for doc_id, op, body in writes
             if op == "put" and (modality := _body_modality(doc_id, body))]
    if not media:
        return
    try:
        info = service.store.get_collection(collection)
        name, model = info.name, info.model
    except CollectionNotFound:  # created on this write with the served model
        served = service.served
        name, model = collection, served.embedder.info.name if served else ""
    accepted = document_modalities(model)
    for doc_id, modality in media:
        if modality not in accepted:
            raise InputRejected(
                "unsupported_modality",
                f"document {doc_id!r} is an {modality} file, but collection {name!r} embeds "
                f"{' and '.join(accepted)} documents ({model}); write it to a collection "
                f"of a model that embeds {modality} (see docs/multimodal.md)")


def status_url(collection: str, doc_id: str) -> str:
    return f"/collections/{quote(collection, safe='')}/documents/{quote(doc_id, safe='/')}"


async def _accept(service: Service, collection: str,
                  writes: list[tuple[str, str, dict[str, Any]]],
                  wait: bool) -> tuple[list[dict[str, Any]], int]:
    """Queue ``writes``; returns one status item per write and the HTTP status."""
    for doc_id, _, _ in writes:
        _check_id(doc_id)
    await run_in_threadpool(_check_modalities, service, collection, writes)
    info = await run_in_threadpool(service.collection_for_write, collection)
    fields = await run_in_threadpool(service.ledger.payload_fields, info.name)
    for _, op, body in writes:  # declared payload fields: a wrong type is a 422 now
        if op == "put" and fields:
            apply_schema(fields, body.get("metadata") or {})
    if info.name != collection:  # an alias: resolved again when the write is applied
        writes = [(d, op, {**body, "alias": collection} if op == "put" else body)
                  for d, op, body in writes]
    versions = await run_in_threadpool(service.ledger.enqueue, info.name, writes)
    futures = [service.waiters.register(info.name, d, v)
               for (d, _, _), v in zip(writes, versions, strict=True)] if wait else []
    assert service.worker is not None
    service.worker.wake()
    done = await _wait(service, info.name, writes, versions, futures) if wait else False
    items = []
    for (doc_id, _, _), version in zip(writes, versions, strict=True):
        item = await run_in_threadpool(_settled_status, service, info.name, doc_id) \
            if done else {"collection": info.name, "id": doc_id, "status": "queued"}
        items.append({**item, "version": version,
                      "status_url": status_url(info.name, doc_id)})
    return items, 200 if done else 202


async def _wait(service: Service, collection: str, writes: list[tuple[str, str, Any]],
                versions: list[int], futures: list[asyncio.Future[Any]]) -> bool:
    """Until every write is applied (True) or ``server_wait_timeout_s`` passed (False).
    This process's worker resolves ``futures``; every ``WAIT_POLL_S`` the ledger is
    asked too, for writes another replica on the same ledger applied."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + service.settings.server_wait_timeout_s
    pending = set(futures)
    try:
        while pending:
            left = deadline - loop.time()
            if left <= 0:
                return False
            _, pending = await asyncio.wait(pending, timeout=min(WAIT_POLL_S, left))
            if pending and await run_in_threadpool(_applied, service, collection, writes,
                                                   versions):
                return True
        return True
    finally:
        for (doc_id, _, _), future in zip(writes, futures, strict=True):
            service.waiters.discard(collection, doc_id, future)


def _applied(service: Service, collection: str, writes: list[tuple[str, str, Any]],
             versions: list[int]) -> bool:
    """Has every write (or a newer one to its document) been applied, by any process?"""
    doc_ids = [doc_id for doc_id, _, _ in writes]
    known = service.ledger.latest_versions(collection, doc_ids)
    return all(known.get(doc_id, (0, 0))[1] >= version
               for doc_id, version in zip(doc_ids, versions, strict=True))


@router.put("/collections/{collection}/documents/{doc_id:path}", dependencies=[WRITE],
            status_code=202, summary="Write one document")
async def put_document(collection: str, body: DocumentBody, service: ServiceDep,
                       doc_id: str = DOC_ID, wait: bool = WAIT) -> JSONResponse:
    """Queue the document (the collection is created with the served model on first
    write). 202 with ``status_url`` once durable; with ``wait``, 200 when done. 413 over
    ``server_max_document_bytes``."""
    _check_size(service, doc_id, body)
    items, code = await _accept(service, collection, [(doc_id, "put", body.queued())], wait)
    return JSONResponse(items[0], status_code=code,
                        headers={"Location": items[0]["status_url"]})


@router.post("/collections/{collection}/documents", dependencies=[WRITE], status_code=202,
             summary="Write many documents")
async def post_documents(collection: str, body: BulkBody, service: ServiceDep,
                         wait: bool = WAIT) -> JSONResponse:
    """Queue up to ``server_max_bulk_documents`` documents in one transaction (413 when
    one is over ``server_max_document_bytes``: none is queued)."""
    limit = service.settings.server_max_bulk_documents
    if len(body.documents) > limit:
        raise InputRejected("too_many", f"{len(body.documents)} documents; at most {limit}")
    for document in body.documents:
        _check_size(service, document.id, document)
    writes = [(d.id, "put", d.model_dump(exclude_none=True, exclude={"id"}))
              for d in body.documents]
    items, code = await _accept(service, collection, writes, wait)
    return JSONResponse({"documents": items}, status_code=code)


@router.delete("/collections/{collection}/documents/{doc_id:path}", dependencies=[WRITE],
               status_code=202, summary="Delete one document")
async def delete_document(collection: str, service: ServiceDep, doc_id: str = DOC_ID,
                          wait: bool = WAIT) -> JSONResponse:
    """Queue the removal of every chunk of the document."""
    await run_in_threadpool(service.store.get_collection, collection)
    items, code = await _accept(service, collection, [(doc_id, "delete", {})], wait)
    return JSONResponse(items[0], status_code=code)


@router.get("/collections/{collection}/documents/{doc_id:path}", dependencies=[READ],
            summary="One document: status, content and chunks")
def get_document(collection: str, service: ServiceDep,
                 doc_id: str = DOC_ID) -> dict[str, Any]:
    """``status``: queued, embedded or failed (with ``reason``); ``last_embedded_at`` of
    the version in the store; ``text``, ``metadata`` and ``chunks`` (each with its span,
    text, ``fingerprint`` and ``last_embedded_at``) as the ledger keeps them.
    ``chunk_count`` is the number of chunks. 404 for unknown or deleted documents."""
    name = service.store.get_collection(collection).name
    status = document_status(service, name, doc_id)
    stored = service.ledger.stored(name, doc_id)
    content = stored.to_dict() if stored is not None else {
        "text": None, "metadata": None, "title": None, "source": None, "modality": None,
        "fingerprint": None, "chunks": []}
    content.pop("last_embedded_at", None)
    return {**content, **status, "chunk_count": status["chunks"],
            "chunks": content["chunks"]}


def _settled_status(service: Service, collection: str, doc_id: str) -> dict[str, Any]:
    try:
        return document_status(service, collection, doc_id)
    except DocumentNotFound:
        return {"collection": collection, "id": doc_id, "status": "deleted"}


def document_status(service: Service, collection: str, doc_id: str) -> dict[str, Any]:
    version = service.ledger.version_status(collection, doc_id)
    record = service.ledger.documents(collection, [doc_id]).get(doc_id)
    if (version is None and record is None) or (version and version["status"] == "deleted"):
        raise DocumentNotFound(f"no document {doc_id!r} in collection {collection!r}")
    status = version["status"] if version else "embedded"
    return {"collection": collection, "id": doc_id, "status": status,
            "reason": version["reason"] if version else None,
            "version": version["latest_seq"] if version else None,
            "applied_version": version["applied_seq"] if version else None,
            "origin": version["origin"] if version else "batch",
            "last_embedded_at": record.last_embedded_at if record else None,
            "chunks": record.chunk_count if record else 0,
            "content_hash": record.content_hash if record else None}
