"""Images and audio: which files are media, and media bytes -> a document or a rejection.

A media document carries the file's bytes in ``Document.data`` (embedders decode them
again, the same way), metadata from decoding (``kind``, ``format``, dimensions or
duration, ``content_sha256``) and, for images, a caption the file carries as its
title. Its identity for idempotency is the SHA-256 of the *decoded* content
(:func:`media_content_hash`): re-encoding the same pixels or samples is not a change,
and the file's other properties are metadata (a payload update).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Final

from embedops.preprocess.audio import DEFAULT_AUDIO_LIMITS, AudioLimits, decode_audio
from embedops.preprocess.images import (
    DEFAULT_IMAGE_LIMITS,
    ImageLimits,
    MediaFailure,
    decode_image,
)
from embedops.types import Document, Rejection

#: File suffix -> modality, for every media type embedops reads.
MEDIA_SUFFIXES: Final[dict[str, str]] = {
    ".jpg": "image", ".jpeg": "image", ".png": "image", ".webp": "image", ".gif": "image",
    ".wav": "audio", ".wave": "audio", ".flac": "audio", ".ogg": "audio", ".oga": "audio",
    ".opus": "audio", ".mp3": "audio", ".aif": "audio", ".aiff": "audio",
}

#: Every reason a media rejection can carry, with its stage.
MEDIA_REJECTION_REASONS: Final[dict[str, str]] = {
    "corrupt_image": "decode",
    "truncated_image": "decode",
    "image_too_small": "validate",
    "image_too_large": "decode or validate",
    "corrupt_audio": "decode",
    "truncated_audio": "decode",
    "unsupported_codec": "decode",
    "silent": "validate",
    "audio_too_short": "validate",
    "audio_too_long": "validate",
}

_SIGNATURES: Final[tuple[tuple[bytes, int, str], ...]] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image"), (b"\xff\xd8\xff", 0, "image"),
    (b"GIF87a", 0, "image"), (b"GIF89a", 0, "image"), (b"WEBP", 8, "image"),
    (b"WAVE", 8, "audio"), (b"fLaC", 0, "audio"), (b"OggS", 0, "audio"),
    (b"ID3", 0, "audio"), (b"FORM", 0, "audio"),
)


@dataclass(frozen=True)
class MediaLimits:
    """Validation limits of images and audio."""

    image: ImageLimits = field(default_factory=ImageLimits)
    audio: AudioLimits = field(default_factory=AudioLimits)


DEFAULT_MEDIA_LIMITS: Final = MediaLimits(DEFAULT_IMAGE_LIMITS, DEFAULT_AUDIO_LIMITS)


def media_modality(source: str) -> str | None:
    """``image`` or ``audio`` when ``source``'s suffix is a media type, else None."""
    name = source.replace("\\", "/").rsplit("/", 1)[-1].lower()
    dot = name.rfind(".")
    return MEDIA_SUFFIXES.get(name[dot:]) if dot > 0 else None


def sniff_modality(data: bytes) -> str | None:
    """``image`` or ``audio`` from the first bytes (PNG, JPEG, GIF, WebP, WAV, FLAC,
    Ogg, MP3, AIFF), else None."""
    for magic, offset, modality in _SIGNATURES:
        if data[offset:offset + len(magic)] == magic:
            return modality
    if len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0:  # MPEG audio frame
        return "audio"
    return None


def content_modality(source: str, data: bytes) -> str | None:
    """The media modality of a file's bytes: by ``source``'s suffix, else (a document
    written over HTTP under an id without a suffix) by their signature. The signatures
    that text could start with (``ID3``, ``FORM``, an MPEG frame header, which a UTF-16
    byte-order mark resembles) count only for bytes that are not text."""
    by_name = media_modality(source)
    if by_name is not None:
        return by_name
    sniffed = sniff_modality(data)
    if sniffed is None or data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        return None
    weak = data[:3] == b"ID3" or data[:4] == b"FORM" or (
        data[0] == 0xFF and data[:3] != b"\xff\xd8\xff")  # not JPEG: an MPEG frame
    if weak:
        from embedops.preprocess.decode import DecodeFailure, decode_bytes

        return sniffed if isinstance(decode_bytes(data), DecodeFailure) else None
    return sniffed


def media_document(data: bytes, source: str, modality: str,
                   limits: MediaLimits = DEFAULT_MEDIA_LIMITS) -> Document | Rejection:
    """Decode and validate ``data`` as ``modality``; never raises."""
    if modality == "image":
        image = decode_image(data, limits.image)
        if isinstance(image, MediaFailure):
            return Rejection(source, image.reason, image.stage, image.detail)
        metadata = {**image.metadata(), "bytes": len(data)}
        return Document(id=source, text="", metadata=metadata, title=image.description,
                        source=source, modality="image", data=data)
    if modality == "audio":
        audio = decode_audio(data, limits.audio)
        if isinstance(audio, MediaFailure):
            return Rejection(source, audio.reason, audio.stage, audio.detail)
        metadata = {**audio.metadata(), "bytes": len(data)}
        return Document(id=source, text="", metadata=metadata, source=source,
                        modality="audio", data=data)
    return Rejection(source, "unsupported_codec", "decode", f"unknown modality {modality!r}")


def media_content_hash(doc: Document) -> str:
    """The idempotency hash of a media document: the decoded content's SHA-256 that
    preprocessing recorded, else (a document built elsewhere) that of its bytes or uri."""
    recorded = doc.metadata.get("content_sha256")
    if isinstance(recorded, str) and len(recorded) == 64:
        return recorded
    if doc.data is not None:
        return hashlib.sha256(doc.data).hexdigest()
    return hashlib.sha256((doc.uri or doc.text).encode("utf-8")).hexdigest()
