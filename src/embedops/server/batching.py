"""Dynamic batching: concurrent requests share model forward passes.

Requests put their texts on a queue and await a future. One collector task takes the
first waiting request, then keeps adding requests until ``max_batch_size`` texts are
gathered or ``max_wait_ms`` has passed since the first, and hands the batch to a single
worker thread (the model is not re-entrant, and one thread keeps the tokenizer on one
thread). While the worker embeds, the next batch is already gathering. A request larger
than ``max_batch_size`` forms a batch of its own; requests are never split, so each gets
its rows back in order. A failure of the model fails every request of that batch.

Every batch takes the process's model lock at interactive priority: a request is
answered before the real-time writer's next forward pass (``embedders/scheduling.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass

import numpy as np

from embedops.embedders.base import Embedder, Role, check_role
from embedops.embedders.scheduling import ModelLock
from embedops.metrics import Metrics
from embedops.server import timing


@dataclass
class _Pending:
    texts: list[str]
    future: asyncio.Future[tuple[np.ndarray, list[int]]]
    lock_wait: float = 0.0  # seconds the batch waited for the model lock
    run: float = 0.0  # seconds of the batch's model call


class DynamicBatcher:
    """Embed texts of concurrent callers in shared batches, in one role of one model
    (a service keeps one batcher per fingerprint and role). Start with ``start()``
    inside a running event loop; ``stop()`` fails whatever is still waiting."""

    def __init__(self, embedder: Embedder, max_batch_size: int = 64,
                 max_wait_ms: float = 5.0, metrics: Metrics | None = None,
                 lock: ModelLock | None = None, role: Role = "document") -> None:
        """``lock`` is held (interactive priority) around each model call, to share the
        model with other threads of the process (the real-time worker)."""
        self.embedder = embedder
        self.role = check_role(role)
        self._model_lock = lock or ModelLock()
        self.max_batch_size = max_batch_size
        self.max_wait = max_wait_ms / 1000.0
        self.metrics = metrics or Metrics()
        self._queue: asyncio.Queue[_Pending] | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._queue = asyncio.Queue()
        self._task = asyncio.get_running_loop().create_task(self._collect())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        while self._queue is not None and not self._queue.empty():
            pending = self._queue.get_nowait()
            if not pending.future.done():
                pending.future.set_exception(RuntimeError("server shutting down"))

    async def embed(self, texts: list[str]) -> tuple[np.ndarray, list[int]]:
        """Vectors (one row per text, L2-normalised) and token counts of ``texts``.
        Raises whatever the embedder raised for the batch these texts joined."""
        if self._queue is None:
            raise RuntimeError("DynamicBatcher.start() was not called")
        future: asyncio.Future[tuple[np.ndarray, list[int]]] = (
            asyncio.get_running_loop().create_future())
        pending = _Pending(texts, future)
        started = time.perf_counter()
        await self._queue.put(pending)
        try:
            return await future
        finally:  # the request's Server-Timing: queued (gathering, an earlier batch
            # running), waiting for the model lock, running
            waited = time.perf_counter() - started - pending.lock_wait - pending.run
            timing.record("embed-queue", max(waited, 0.0))
            timing.record("embed-lock", pending.lock_wait)
            timing.record("embed", pending.run)

    async def _collect(self) -> None:
        assert self._queue is not None
        while True:
            batch = [await self._queue.get()]
            size = len(batch[0].texts)
            deadline = asyncio.get_running_loop().time() + self.max_wait
            while size < self.max_batch_size:
                left = deadline - asyncio.get_running_loop().time()
                try:
                    item = (self._queue.get_nowait() if left <= 0
                            else await asyncio.wait_for(self._queue.get(), left))
                except (asyncio.QueueEmpty, TimeoutError):
                    break
                batch.append(item)
                size += len(item.texts)
            await self._run(batch)

    async def _run(self, batch: list[_Pending]) -> None:
        texts = [t for p in batch for t in p.texts]
        self.metrics.batch_size.observe(len(texts))
        try:
            vectors, counts, lock_wait, run = await asyncio.to_thread(self._embed_sync,
                                                                      texts)
        except Exception as exc:  # handed to every waiting request, which re-raises it
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        self.metrics.items_embedded.inc(len(texts))
        row = 0
        for pending in batch:
            pending.lock_wait, pending.run = lock_wait, run
            n = len(pending.texts)
            if not pending.future.done():
                pending.future.set_result((vectors[row : row + n], counts[row : row + n]))
            row += n

    def _embed_sync(self, texts: list[str]) -> tuple[np.ndarray, list[int], float, float]:
        """Vectors, token counts, seconds waited for the model lock, seconds run."""
        asked = time.perf_counter()
        with self._model_lock.interactive():
            got = time.perf_counter()
            vectors = self.embedder.embed(texts, self.role)
            counts = self.embedder.tokenizer.count(texts)
        return vectors, counts, got - asked, time.perf_counter() - got
