"""Open a vector store by URL: the one place that maps a location to a backend.

A plain path (``./.embedops``, ``/srv/vectors``) or ``embedded:///abs/path`` is the
embedded store. Other schemes come from backends registered under the entry-point group
``embedops.stores`` (name = scheme, value = a callable ``(location, read_only) ->
VectorStore``). An unknown scheme is a ``ConfigError`` that lists the known ones, and
nothing is created.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from urllib.parse import unquote, urlsplit

from embedops.errors import ConfigError
from embedops.store.protocol import VectorStore

StoreOpener = Callable[[str, bool], VectorStore]
ENTRY_POINT_GROUP = "embedops.stores"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*):")


def _open_embedded(location: str, read_only: bool) -> VectorStore:
    from embedops.store.embedded import EmbeddedStore

    return EmbeddedStore(location, read_only=read_only)


def store_backends() -> dict[str, StoreOpener]:
    """Scheme -> opener: the embedded store plus every registered plugin. A plugin is
    imported only when its scheme is opened, so one that fails to import (its extra not
    installed) breaks its own scheme alone, with an error that says so."""
    backends: dict[str, StoreOpener] = {"embedded": _open_embedded}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        backends.setdefault(ep.name, _lazy(ep))
    return backends


def _lazy(ep: EntryPoint) -> StoreOpener:
    def open_plugin(location: str, read_only: bool) -> VectorStore:
        try:
            opener = ep.load()
        except ImportError as exc:
            raise ConfigError(f"the {ep.name!r} store backend cannot be loaded ({exc}): "
                              "install its extra, e.g. pip install 'embedops[remote]'") from exc
        return opener(location, read_only)  # type: ignore[no-any-return]

    return open_plugin


def parse_store_url(value: str | Path) -> tuple[str, str]:
    """``(scheme, location)`` of a store setting. Raises ConfigError for an unknown
    scheme or a malformed URL."""
    text = str(value)
    match = _SCHEME.match(text)
    if match is None or len(match.group(1)) == 1:  # no scheme (a drive letter is a path)
        return "embedded", text
    scheme = match.group(1).lower()
    known = store_backends()
    if scheme not in known:
        raise ConfigError(f"unknown store scheme {scheme!r} in {text!r}; known schemes: "
                          f"{', '.join(sorted(known))} (or a plain directory path)")
    if scheme == "embedded":
        parts = urlsplit(text)
        if parts.netloc not in ("", "localhost") or not parts.path:
            raise ConfigError(f"{text!r}: write the embedded store as embedded:///abs/path")
        return scheme, unquote(parts.path)
    return scheme, text


def open_store(value: str | Path, read_only: bool = False,
               memory_budget_bytes: int | None = None,
               hit_cache_bytes: int | None = None) -> VectorStore:
    """Open the store a setting names (creating an embedded one unless ``read_only``).
    ``memory_budget_bytes`` and ``hit_cache_bytes`` reach backends that keep their index
    (and a cache of returned points) in this process."""
    scheme, location = parse_store_url(value)
    store = store_backends()[scheme](location, read_only)
    if memory_budget_bytes is not None and hasattr(store, "memory_budget_bytes"):
        store.memory_budget_bytes = memory_budget_bytes
    if hit_cache_bytes is not None and hasattr(store, "hit_cache_bytes"):
        store.hit_cache_bytes = hit_cache_bytes
    return store


def local_directory(value: str | Path) -> Path | None:
    """The directory of an embedded store setting; None for a remote store."""
    scheme, location = parse_store_url(value)
    return Path(location) if scheme == "embedded" else None
