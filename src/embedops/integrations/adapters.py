"""Another framework's embeddings object as an embedops :class:`Embedder`.

The adapter's fingerprint hashes the framework, the object's class path, its settings
(what determines the vectors: model name, dimensions, model arguments; never keys,
clients, timeouts, retries or batch sizes) and the dimension of its vectors, so that a
collection written with one object is never searched or extended with another.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from embedops.embedders.base import BaseEmbedder, EmbedderInfo, Role, make_fingerprint
from embedops.embedders.http_api import EstimatingTokenizer
from embedops.errors import PermanentEmbedderError

# A foreign model's context is unknown: documents longer than this many (estimated,
# over-counted) tokens are split rather than sent whole. Override with ``max_tokens``.
DEFAULT_MAX_TOKENS = 8192
DIMENSION_PROBE = "dimension probe"

# Settings whose name holds one of these words change how a model is reached or paid
# for, not its vectors; they stay out of the fingerprint (and secrets out of the hash).
_OPERATIONAL_WORDS = frozenset({
    "key", "keys", "token", "secret", "password", "credential", "credentials", "auth",
    "header", "headers", "proxy", "client", "session", "timeout", "retries", "retry",
    "progress", "verbose", "callback", "callbacks", "manager", "batch", "workers",
    "concurrency", "cache", "organization", "async", "parallel",
})
_OPERATIONAL_NAMES = frozenset({"chunk_size", "show_progress", "num_workers"})
_SKIP = object()


def _operational(name: str) -> bool:
    words = set(re.split(r"[_\W]+", name.lower()))
    return name.lower() in _OPERATIONAL_NAMES or bool(words & _OPERATIONAL_WORDS)


def _plain(value: Any) -> Any:
    """``value`` as plain JSON data, or ``_SKIP`` for objects (clients, secrets, callables)
    whose text would not be stable from one process to the next."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            plain = _plain(item)
            if isinstance(key, str) and not _operational(key) and plain is not _SKIP:
                out[key] = plain
        return out
    if isinstance(value, list | tuple):
        items = [_plain(item) for item in value]
        return _SKIP if any(item is _SKIP for item in items) else items
    return _SKIP


def object_settings(model: object) -> dict[str, Any]:
    """The settings of ``model`` that determine its vectors, as plain data: the fields of a
    pydantic model (or the public attributes of another object) that hold JSON values,
    minus secrets and operational knobs (keys, clients, timeouts, retries, batch sizes)."""
    fields = getattr(type(model), "model_fields", None)
    if isinstance(fields, Mapping):
        raw = {name: getattr(model, name, None) for name in fields}
    else:
        raw = {k: v for k, v in vars(model).items() if not k.startswith("_")}
    settings = _plain(raw)
    return settings if isinstance(settings, dict) else {}


class ForeignEmbedder(BaseEmbedder):
    """An embedops ``Embedder`` over another framework's embeddings object.

    ``embed_documents(texts)`` and ``embed_query(text)`` are the framework's own calls
    for the document and query roles. ``info`` (name ``<framework>/<ClassName>``) is
    computed on first use: one query embedding probes the dimension. ``settings``
    overrides what :func:`object_settings` finds when the object's identity lives
    elsewhere. Errors of the framework's calls propagate unchanged; a vector of the
    wrong shape or with NaN raises ``PermanentEmbedderError``."""

    def __init__(self, framework: str, model: object,
                 embed_documents: Callable[[list[str]], Sequence[Sequence[float]]],
                 embed_query: Callable[[str], Sequence[float]], *,
                 settings: Mapping[str, Any] | None = None,
                 max_tokens: int = DEFAULT_MAX_TOKENS, batch_size: int = 64) -> None:
        super().__init__(batch_size)
        self.framework, self.model = framework, model
        self._embed_documents, self._embed_query = embed_documents, embed_query
        self.settings = dict(settings) if settings is not None else object_settings(model)
        self.tokenizer = EstimatingTokenizer(max_tokens)
        self.max_tokens = max_tokens
        self._info: EmbedderInfo | None = None
        self._probe_lock = threading.Lock()

    @property  # type: ignore[override]
    def info(self) -> EmbedderInfo:
        with self._probe_lock:
            if self._info is None:
                self._info = self._describe(len(self._embed_query(DIMENSION_PROBE)))
            return self._info

    def _describe(self, dim: int) -> EmbedderInfo:
        cls = type(self.model)
        class_path = f"{cls.__module__}.{cls.__qualname__}"
        fingerprint = make_fingerprint({"framework": self.framework, "class": class_path,
                                        "settings": self.settings, "dim": dim})
        revision = next((str(self.settings[k]) for k in ("model", "model_name", "model_id")
                         if self.settings.get(k)), "")
        return EmbedderInfo(name=f"{self.framework}/{cls.__name__}", revision=revision,
                            dim=dim, max_tokens=self.max_tokens, modality="text",
                            backend=self.framework, source=class_path,
                            fingerprint=fingerprint)

    def _embed_role(self, texts: list[str], role: Role) -> np.ndarray:
        if role == "query":
            rows: Sequence[Sequence[float]] = [self._embed_query(t) for t in texts]
        else:
            rows = self._embed_documents(texts)
        try:
            return np.asarray(rows, dtype=np.float32)
        except (TypeError, ValueError) as exc:  # ragged rows, or not numbers at all
            raise PermanentEmbedderError(
                f"{self.info.name} returned rows that are not one vector each: {exc}") from exc
