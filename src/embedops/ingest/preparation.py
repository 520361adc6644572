"""Preparing queued documents (decode, clean, validate, chunk) for the real-time worker,
large ones in a process of their own.

Preparing a document is pure Python and regular-expression work: it holds the
interpreter lock. In the serving process every query needs that lock too, so a 1 MB
document prepared in the worker thread adds hundreds of milliseconds to the queries that
arrive meanwhile (each hand-over of the lock between a busy thread and a waiting one
takes up to the interpreter's switch interval). Documents of at least
``realtime_prepare_process_bytes`` are therefore prepared in one spawned child process
(spawn, not fork: a forked copy of a process whose fast tokenizer has run can deadlock);
smaller ones, whose preparation is short, in the worker thread as before.

The child also contains what a hostile document could do: one that crashes it or runs
past ``realtime_prepare_timeout_s`` fails alone (``prepare_crashed`` /
``prepare_timeout``, a dead letter like any other failure), the child is replaced, and
the service goes on.

A chunker is sent to the child once (pickled) and kept there by its plan and model; a
chunker that cannot be pickled (an engine handle) prepares its documents in the thread.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import logging
import multiprocessing
import pickle
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from embedops.ingest.chunking import Chunker
from embedops.ingest.stages import Failure, Work, classify
from embedops.ledger.ledger import DocRecord
from embedops.preprocess.pipeline import PreprocessOptions, preprocess_bytes, preprocess_text
from embedops.types import Document

_log = logging.getLogger(__name__)


def document_from_body(doc_id: str, body: dict[str, Any],
                       options: PreprocessOptions) -> Document | Failure:
    """The document a queued ``put`` describes, or ``(stage, reason, detail)``."""
    metadata = dict(body.get("metadata") or {})
    if body.get("text") is not None:
        result = preprocess_text(str(body["text"]), doc_id, options,
                                 title=body.get("title"), metadata=metadata)
    else:
        try:
            data = base64.b64decode(str(body.get("content_base64", "")), validate=True)
        except (binascii.Error, ValueError) as exc:
            return "decode", "invalid_base64", str(exc)
        result = preprocess_bytes(data, doc_id, options)
    if result.rejections or len(result.documents) != 1:
        if result.rejections:
            r = result.rejections[0]
            return r.stage, r.reason, r.detail
        return "decode", "not_one_document", f"{len(result.documents)} documents in one body"
    doc = result.documents[0]
    return dataclasses.replace(doc, id=doc_id, source=doc_id,
                               metadata={**doc.metadata, **metadata})


def prepare(doc_id: str, body: dict[str, Any], options: PreprocessOptions,
            previous: DocRecord | None, chunker: Chunker) -> Work | Failure:
    """The document a queued ``put`` body describes, classified against its ledger
    record and chunked; or why it cannot be (``(stage, reason, detail)``)."""
    doc = document_from_body(doc_id, body, options)
    if isinstance(doc, tuple):
        return doc
    return classify(doc, previous, chunker, lambda: None)


def body_bytes(body: dict[str, Any]) -> int:
    """The size of a queued body's content (characters of text, or base64 characters)."""
    return len(body.get("text") or "") + len(body.get("content_base64") or "")


class DocumentPreparer:
    """Prepares documents in the calling thread, or, from ``process_bytes`` up, in a
    spawned child process (started on first use, replaced after a crash or timeout)."""

    def __init__(self, options: PreprocessOptions, process_bytes: int,
                 timeout_s: float) -> None:
        self.options = options
        self.process_bytes = process_bytes
        self.timeout_s = timeout_s
        self._pool: ProcessPoolExecutor | None = None
        self._sent: set[str] = set()
        self._unpicklable: set[str] = set()
        self._lock = threading.Lock()

    def prepare(self, doc_id: str, body: dict[str, Any], previous: DocRecord | None,
                chunker: Chunker) -> Work | Failure:
        key = _chunker_key(chunker)
        if (self.process_bytes <= 0 or body_bytes(body) < self.process_bytes
                or key in self._unpicklable):
            return prepare(doc_id, body, self.options, previous, chunker)
        with self._lock:
            payload = self._chunker_payload(key, chunker)
            if payload is False:
                return prepare(doc_id, body, self.options, previous, chunker)
            pool = self._started()
            future = pool.submit(_prepare_in_child, doc_id, body, self.options, previous,
                                 key, payload)
            try:
                return future.result(timeout=self.timeout_s)
            except FutureTimeout:
                self._replace("timed out")
                return ("preprocess", "prepare_timeout",
                        f"preparing the document took longer than {self.timeout_s:g} s "
                        "(realtime_prepare_timeout_s)")
            except BrokenProcessPool:
                self._replace("crashed")
                return ("preprocess", "prepare_crashed",
                        "the process preparing the document ended abnormally")

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                _stop(self._pool)
                self._pool = None
                self._sent.clear()

    def _chunker_payload(self, key: str, chunker: Chunker) -> bytes | bool | None:
        """The pickled chunker when the child has not got it yet, None when it has,
        False when it cannot be pickled."""
        if key in self._sent:
            return None
        try:
            data = pickle.dumps(chunker)
        except Exception:  # an engine handle or a lock: prepare in the thread
            _log.info("chunker %s cannot be sent to a child process; preparing its "
                      "documents in the worker thread", key)
            self._unpicklable.add(key)
            return False
        self._sent.add(key)
        return data

    def _started(self) -> ProcessPoolExecutor:
        if self._pool is None:
            self._pool = ProcessPoolExecutor(
                max_workers=1, mp_context=multiprocessing.get_context("spawn"))
        return self._pool

    def _replace(self, why: str) -> None:
        _log.warning("the document preparation process %s; starting a new one", why)
        if self._pool is not None:
            _stop(self._pool)
        self._pool = None
        self._sent.clear()


def _stop(pool: ProcessPoolExecutor) -> None:
    """Stop the pool now, killing a child that is still busy."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    for process in processes:
        if process.is_alive():
            process.kill()
    pool.shutdown(wait=False, cancel_futures=True)
    for process in processes:
        process.join(timeout=5)


def _chunker_key(chunker: Chunker) -> str:
    return f"{chunker.plan}@{id(chunker)}"


_CHUNKERS: dict[str, Chunker] = {}  # in the child: chunkers by key


def _prepare_in_child(doc_id: str, body: dict[str, Any], options: PreprocessOptions,
                      previous: DocRecord | None, key: str,
                      chunker_data: bytes | None) -> Work | Failure:
    if chunker_data is not None:
        _CHUNKERS[key] = pickle.loads(chunker_data)
    return prepare(doc_id, body, options, previous, _CHUNKERS[key])


