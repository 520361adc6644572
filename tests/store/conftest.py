"""Store fixtures: every contract test runs against each VectorStore engine."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from embedops.store import VectorStore, open_store, store_backends

from . import servers
from .storedata import StoreFactory


def store_url(scheme: str, path: Path) -> str:
    """Where a test store of backend ``scheme`` lives. A backend whose tests need a
    server adds its own location here (``servers.py`` starts the server). A backend
    whose client library is not installed skips."""
    servers.require(scheme)
    if scheme == "postgresql":
        return servers.postgres_url(path)
    if scheme == "milvus":
        return servers.milvus_url(path)
    return f"{scheme}://{path.resolve()}" if scheme == "embedded" else f"{scheme}://{path}"


# Every backend registered with the store factory (the embedded one and plugins under
# the ``embedops.stores`` entry points).
BACKENDS: tuple[str, ...] = tuple(sorted(store_backends()))
# URL schemes that reach the engine of another scheme: ``milvus-lite`` (in-process) and
# ``milvus`` (a server URL, served here by milvus-lite) are one engine reached two ways.
SAME_ENGINE: dict[str, str] = {"milvus-lite": "milvus"}
# One scheme an engine: these run the whole contract suite. A scheme in SAME_ENGINE runs
# the tests of how a store is reached (``make_store_any_url``, or a test parametrised
# over BACKENDS): opening, closing and reopening, read-only handles, handles sharing a path.
ENGINES: tuple[str, ...] = tuple(b for b in BACKENDS if SAME_ENGINE.get(b) not in BACKENDS)


# What an engine lacks, reported by its adapter instead of imitated (docs/scale-out.md):
# (backend, test function, text in the test id) -> why the contract test fails there.
_ESTIMATE = ("estimate_memory() models the embedded store's HNSW index; the server's "
             "index memory is the engine's own")
KNOWN_GAPS: dict[tuple[str, str, str], tuple[str, bool]] = {
    **{(b, "test_estimate_memory_brackets_actual", ""): (_ESTIMATE, True)
       for b in ("milvus", "milvus-lite")},
    # not strict: pgvector's index size (pg_relation_size of its HNSW index) may fall
    # within the embedded store's bracket by chance, as it does at 3,000 × 64
    ("postgresql", "test_estimate_memory_brackets_actual", ""): (_ESTIMATE, False),
    **{(b, "test_stats_report_index_and_disk", ""): (
        "Milvus reports no tombstone count, index memory or disk size per collection "
        "(stats() says None)", True) for b in ("milvus", "milvus-lite")},
    # not strict: the count comes from PostgreSQL's statistics system, which lags writes
    # and drops as pages are pruned; it may read 2 here, or 0
    ("postgresql", "test_stats_report_index_and_disk", ""): (
        "pgvector keeps no count of deleted graph entries; stats()['deleted'] is the "
        "server's dead-row estimate", False),
    ("postgresql", "test_int8_rescored_within_one_point_of_float32", ""): (
        "pgvector has no 8-bit vector type: int8 collections are refused", True),
    ("postgresql", "test_filtered_recall_against_exact_filtered", "int8"): (
        "pgvector has no 8-bit vector type: int8 collections are refused", True),
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        backend = next((params[p] for p in ("make_store", "make_store_any_url", "filled")
                        if p in params), None)
        for (name, test, part), (reason, strict) in KNOWN_GAPS.items():
            if (backend == name and getattr(item, "originalname", "") == test
                    and part in item.name):
                item.add_marker(pytest.mark.xfail(reason=reason, strict=strict))


def opener(scheme: str) -> Callable[..., VectorStore]:
    def open_backend(path: Path, read_only: bool = False) -> VectorStore:
        return open_store(store_url(scheme, path), read_only=read_only)

    return open_backend


def _stores(scheme: str, tmp_path: Path) -> Iterator[StoreFactory]:
    opened: list[VectorStore] = []
    impl = opener(scheme)

    def factory(read_only: bool = False, path: Path | None = None) -> VectorStore:
        store = impl(path or tmp_path / "store", read_only=read_only)
        opened.append(store)
        return store

    yield factory
    for store in reversed(opened):
        store.close()


@pytest.fixture(params=ENGINES)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens stores of the parametrised engine, through the URL factory; closes them
    all afterwards."""
    yield from _stores(request.param, tmp_path)


@pytest.fixture(params=BACKENDS)
def make_store_any_url(request: pytest.FixtureRequest, tmp_path: Path
                       ) -> Iterator[StoreFactory]:
    """``make_store`` over every URL scheme, for the tests of how a store is reached."""
    yield from _stores(request.param, tmp_path)


@pytest.fixture
def store(make_store: StoreFactory) -> VectorStore:
    return make_store()
