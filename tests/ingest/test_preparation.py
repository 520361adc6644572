"""Large queued documents are prepared in a spawned child process: the same result as in
the worker thread; a child killed mid-document (SIGKILL) or running past its timeout
fails that document alone and is replaced; a chunker that cannot be pickled prepares in
the thread; and the service writes a large document through the child end to end."""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from embedops.config import load_settings
from embedops.ingest.chunking import Chunker, make_chunker
from embedops.ingest.preparation import DocumentPreparer, prepare
from embedops.ingest.stages import Work
from embedops.preprocess.pipeline import PreprocessOptions
from embedops.server import create_app
from tests.server.live import live_server

WORDS = ("vector", "index", "query", "ledger", "replica", "kernel", "shard", "recall")


def _text(n_words: int, seed: int = 0) -> str:
    words = [WORDS[(i * 7 + seed + i // 13) % len(WORDS)] for i in range(n_words)]
    return ". ".join(" ".join(words[i:i + 12]) for i in range(0, n_words, 12)) + "."


@pytest.fixture(scope="module")
def chunker() -> Chunker:
    return make_chunker(load_settings(model="testing/hash-64", chunk_tokens=32,
                                      chunk_overlap=4))


@pytest.fixture
def preparer() -> Iterator[DocumentPreparer]:
    made = DocumentPreparer(PreprocessOptions(), process_bytes=1000, timeout_s=60)
    yield made
    made.close()


def _child_pids(preparer: DocumentPreparer) -> list[int]:
    pool = preparer._pool
    return [p.pid for p in (getattr(pool, "_processes", None) or {}).values()
            if p.pid is not None] if pool is not None else []


def test_the_child_prepares_exactly_what_the_thread_would(
        preparer: DocumentPreparer, chunker: Chunker) -> None:
    body = {"text": _text(6000), "metadata": {"team": "search"}, "title": "Report"}
    inline = prepare("doc-1", body, PreprocessOptions(), None, chunker)
    assert isinstance(inline, Work) and len(inline.chunks) > 100
    offloaded = preparer.prepare("doc-1", body, None, chunker)
    assert _child_pids(preparer), "a document over process_bytes goes to the child"
    assert isinstance(offloaded, Work)
    assert offloaded.doc == inline.doc and offloaded.chunks == inline.chunks
    assert (offloaded.status, offloaded.digest, offloaded.meta_digest, offloaded.plan) == (
        inline.status, inline.digest, inline.meta_digest, inline.plan)
    # a second document reuses the child and the chunker it already holds
    pid = _child_pids(preparer)
    again = preparer.prepare("doc-2", {"text": _text(3000, seed=3)}, None, chunker)
    assert isinstance(again, Work) and _child_pids(preparer) == pid
    # failures come back as (stage, reason, detail), as in the thread
    bad = preparer.prepare("doc-3", {"content_base64": "not base64!" * 200}, None, chunker)
    assert isinstance(bad, tuple) and bad[1] == "invalid_base64"


def test_small_documents_stay_in_the_thread(preparer: DocumentPreparer,
                                            chunker: Chunker) -> None:
    small = preparer.prepare("s", {"text": "a short note about vectors"}, None, chunker)
    assert isinstance(small, Work) and small.chunks
    assert preparer._pool is None


@pytest.mark.slow
def test_a_killed_child_fails_its_document_alone_and_is_replaced(
        preparer: DocumentPreparer, chunker: Chunker) -> None:
    warm = preparer.prepare("warm", {"text": _text(2000)}, None, chunker)
    assert isinstance(warm, Work)
    (victim,) = _child_pids(preparer)
    results: list[object] = []
    worker = threading.Thread(target=lambda: results.append(
        preparer.prepare("huge", {"text": _text(600_000)}, None, chunker)))
    worker.start()
    time.sleep(0.5)  # the child is busy with the huge document (several seconds of work)
    os.kill(victim, signal.SIGKILL)
    worker.join(60)
    assert results and isinstance(results[0], tuple), results
    assert results[0][:2] == ("preprocess", "prepare_crashed")
    after = preparer.prepare("after", {"text": _text(2000, seed=5)}, None, chunker)
    assert isinstance(after, Work) and after.chunks
    assert _child_pids(preparer) and _child_pids(preparer) != [victim]


@pytest.mark.slow
def test_a_child_past_its_timeout_is_replaced(chunker: Chunker) -> None:
    preparer = DocumentPreparer(PreprocessOptions(), process_bytes=1000, timeout_s=0.3)
    try:
        slow = preparer.prepare("huge", {"text": _text(600_000)}, None, chunker)
        assert isinstance(slow, tuple) and slow[1] == "prepare_timeout"
        assert "realtime_prepare_timeout_s" in slow[2]
        preparer.timeout_s = 60
        fine = preparer.prepare("fine", {"text": _text(2000)}, None, chunker)
        assert isinstance(fine, Work) and fine.chunks
    finally:
        preparer.close()


class _Unpicklable:
    """A chunker holding a lock (as an engine-backed tokenizer does)."""

    def __init__(self, inner: Chunker) -> None:
        self.inner, self.plan, self._lock = inner, inner.plan, threading.Lock()

    def chunk(self, doc_id: str, text: str) -> list:  # type: ignore[type-arg]
        return self.inner.chunk(doc_id, text)


def test_a_chunker_that_cannot_be_pickled_prepares_in_the_thread(
        preparer: DocumentPreparer, chunker: Chunker) -> None:
    held = _Unpicklable(chunker)
    work = preparer.prepare("doc", {"text": _text(3000)}, None, held)  # type: ignore[arg-type]
    assert isinstance(work, Work) and work.chunks
    assert preparer._pool is None


@pytest.mark.slow
def test_the_service_writes_a_large_document_through_the_child(tmp_path: Path) -> None:
    settings = load_settings(model="testing/hash-64", store=tmp_path / "store",
                             chunk_tokens=32, chunk_overlap=4,
                             realtime_prepare_process_bytes=10_000)
    text = _text(8000)
    inline = prepare("big", {"text": text}, PreprocessOptions.from_settings(settings), None,
                     make_chunker(settings))
    assert isinstance(inline, Work)
    with live_server(create_app(settings, open_store=True)) as url, \
            httpx.Client(base_url=url, timeout=60) as client:
        small = client.put("/collections/c/documents/small", params={"wait": "true"},
                           json={"text": "a small document about shards"})
        assert small.status_code == 200, small.text
        big = client.put("/collections/c/documents/big", params={"wait": "true"},
                         json={"text": text})
        assert big.status_code == 200, big.text
        assert big.json()["status"] == "embedded"
        assert big.json()["chunks"] == len(inline.chunks)
        hits = client.post("/collections/c/search",
                           json={"query": inline.chunks[3].text, "k": 5}).json()["hits"]
        assert hits[0]["score"] > 0.999  # the chunk itself (or one with the same text)
        assert hits[0]["text"] == inline.chunks[3].text
