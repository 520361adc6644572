"""Store fixtures: every contract test runs against each VectorStore implementation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from embedops.store import VectorStore, open_store, store_backends

from .storedata import StoreFactory


def store_url(scheme: str, path: Path) -> str:
    """Where a test store of backend ``scheme`` lives. A backend whose tests need a
    server adds its own location here (with the fixture that starts it)."""
    return f"{scheme}://{path.resolve()}" if scheme == "embedded" else f"{scheme}://{path}"


# Every backend registered with the store factory (the embedded one and plugins under
# the ``embedops.stores`` entry points) runs the same contract suite.
BACKENDS: tuple[str, ...] = tuple(sorted(store_backends()))


def opener(scheme: str) -> Callable[..., VectorStore]:
    def open_backend(path: Path, read_only: bool = False) -> VectorStore:
        return open_store(store_url(scheme, path), read_only=read_only)

    return open_backend


@pytest.fixture(params=BACKENDS)
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens stores of the parametrised backend, through the URL factory; closes them
    all afterwards."""
    opened: list[VectorStore] = []
    impl = opener(request.param)

    def factory(read_only: bool = False, path: Path | None = None) -> VectorStore:
        store = impl(path or tmp_path / "store", read_only=read_only)
        opened.append(store)
        return store

    yield factory
    for store in reversed(opened):
        store.close()


@pytest.fixture
def store(make_store: StoreFactory) -> VectorStore:
    return make_store()
