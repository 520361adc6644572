"""Store fixtures: every contract test runs against each VectorStore implementation."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from embedops.store import VectorStore, open_store

from .storedata import StoreFactory


def _embedded(path: Path, read_only: bool = False) -> VectorStore:
    return open_store(path, read_only=read_only)


# A remote adapter registers here (with its own server fixture) to run the same suite.
IMPLEMENTATIONS: dict[str, Callable[..., VectorStore]] = {"embedded": _embedded}


@pytest.fixture(params=sorted(IMPLEMENTATIONS))
def make_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[StoreFactory]:
    """Opens stores of the parametrised implementation; closes them all afterwards."""
    opened: list[VectorStore] = []
    impl = IMPLEMENTATIONS[request.param]

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
