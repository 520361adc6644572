"""The shared model lock: requests go before background writes, writes are never starved,
and a background write takes the model one forward pass at a time without changing its
vectors. Real threads, real embedders."""

from __future__ import annotations

import threading
import time

import numpy as np

from embedops.config import load_settings
from embedops.embedders.scheduling import ModelLock
from embedops.embedders.testing import HashEmbedder
from embedops.ingest.targets import EmbedderPool


def test_interactive_waiter_goes_before_a_background_waiter_that_came_first() -> None:
    lock = ModelLock()
    order: list[str] = []
    holding = threading.Event()

    def holder() -> None:
        with lock.background():
            holding.set()
            time.sleep(0.3)

    def waiter(priority: str) -> None:
        with lock.hold(priority):  # type: ignore[arg-type]
            order.append(priority)

    threads = [threading.Thread(target=holder)]
    threads[0].start()
    assert holding.wait(5)
    for priority in ("background", "interactive"):  # the writer queues up first
        threads.append(threading.Thread(target=waiter, args=(priority,)))
        threads[-1].start()
        time.sleep(0.05)
    for thread in threads:
        thread.join()
    assert order == ["interactive", "background"]


def test_background_writer_is_not_starved_by_continuous_queries() -> None:
    lock = ModelLock(max_defer_s=0.2)
    stop = threading.Event()

    def query_loop() -> None:
        while not stop.is_set():
            with lock.interactive():
                time.sleep(0.01)

    queries = [threading.Thread(target=query_loop) for _ in range(3)]
    for thread in queries:
        thread.start()
    time.sleep(0.05)
    asked = time.monotonic()
    with lock.background():
        waited = time.monotonic() - asked
    stop.set()
    for thread in queries:
        thread.join()
    assert 0.15 <= waited < 1.5, waited  # queries went first, but only for max_defer_s


def test_wait_observer_sees_each_acquisition() -> None:
    seen: list[tuple[str, float]] = []
    lock = ModelLock(on_wait=lambda priority, seconds: seen.append((priority, seconds)))
    with lock.interactive():
        pass
    with lock.background():
        pass
    assert [p for p, _ in seen] == ["interactive", "background"]
    assert all(s >= 0 for _, s in seen)


class _CountingHash(HashEmbedder):
    """HashEmbedder that records the size of each forward pass."""

    def __init__(self, batch_size: int) -> None:
        super().__init__(batch_size=batch_size)
        self.passes: list[int] = []

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        self.passes.append(len(texts))
        return super()._embed_batch(texts)


def test_locked_embedder_takes_the_lock_once_per_forward_pass_same_vectors() -> None:
    inner = _CountingHash(batch_size=4)
    pool = EmbedderPool(load_settings(model="testing/hash-64"), [inner])
    holds: list[str] = []
    pool.model_lock.on_wait = lambda priority, _: holds.append(priority)
    texts = [f"document {i} " + "word " * (i % 7) for i in range(18)]
    locked = pool.locked(inner)
    vectors = locked.embed(texts, "document")
    assert holds == ["background"] * 5  # ceil(18 / 4) holds, one per forward pass
    assert inner.passes == [4, 4, 4, 4, 2]
    np.testing.assert_array_equal(vectors, inner.embed(texts, "document"))
    holds.clear()
    locked.embed(texts[:3], "query")  # a call within one pass: one hold
    assert holds == ["background"]


def test_a_background_instance_runs_one_forward_pass_at_a_time() -> None:
    """Background writers embed on their own model instance (``background_threads``),
    some with no write gate held (a migration's batch embedded ahead): the instance's
    passes never overlap, since a model's tokenizer is not re-entrant."""
    import threading
    import time

    import numpy as np

    from embedops.config import load_settings
    from embedops.embedders.testing import HashEmbedder
    from embedops.ingest.targets import EmbedderPool

    running, most = [0], [0]
    guard = threading.Lock()

    class Instance(HashEmbedder):
        def with_threads(self, threads: int) -> Instance:
            return Instance(batch_size=4)

        def _embed_batch(self, texts: list[str]) -> np.ndarray:
            with guard:
                running[0] += 1
                most[0] = max(most[0], running[0])
            time.sleep(0.01)
            with guard:
                running[0] -= 1
            return super()._embed_batch(texts)

    served = Instance(batch_size=4)
    pool = EmbedderPool(load_settings(model="testing/hash-64"), [served],
                        background_threads=1)
    own = pool.locked(served)
    texts = [f"text number {i}" for i in range(16)]
    writers = [threading.Thread(target=lambda: own.embed(texts)) for _ in range(3)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    assert most[0] == 1
    assert np.allclose(own.embed(texts), served.embed(texts))
