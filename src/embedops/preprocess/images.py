"""Decode and validate images with Pillow: JPEG, PNG, WebP, GIF (first frame).

Contract: :func:`decode_image` never raises. It returns a :class:`DecodedImage` (the
canonical RGB pixels, after the EXIF orientation is applied) or a
:class:`MediaFailure` with a machine-readable reason. The image size is read from the
header and checked *before* any pixel is decoded, so a decompression bomb (a small file
that claims billions of pixels) is refused without allocating its memory.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from dataclasses import dataclass
from typing import Final

import numpy as np
from PIL import Image, ImageOps

#: Formats accepted, by Pillow's name for them.
IMAGE_FORMATS: Final[frozenset[str]] = frozenset({"JPEG", "PNG", "WEBP", "GIF"})


@dataclass(frozen=True)
class ImageLimits:
    """Smallest side, largest side and largest pixel count an image may have."""

    min_side: int = 16
    max_side: int = 16_384
    max_pixels: int = 64_000_000


@dataclass(frozen=True)
class MediaFailure:
    """Why media bytes cannot become a document: ``reason``, ``stage``, ``detail``."""

    reason: str
    stage: str
    detail: str


@dataclass(frozen=True)
class DecodedImage:
    """An image decoded to RGB pixels (alpha composited onto white), with what the file
    said about itself. ``digest`` is the SHA-256 of the pixels: re-encoding the same
    pixels (another PNG compression level, lossless WebP, new metadata) keeps it."""

    image: Image.Image
    format: str
    width: int
    height: int
    frames: int
    has_alpha: bool
    digest: str
    description: str | None = None

    def metadata(self) -> dict[str, object]:
        return {"kind": "image", "format": self.format.lower(), "width": self.width,
                "height": self.height, "frames": self.frames,
                "content_sha256": self.digest}


DEFAULT_IMAGE_LIMITS: Final = ImageLimits()
#: What embedders decode with: bytes they get were validated against the configured
#: limits (settings ``image_*``, at most these ceilings), so only the ceilings apply
#: (Pillow itself refuses images of more than about 89 Mpx).
EMBED_IMAGE_LIMITS: Final = ImageLimits(min_side=1, max_side=65_535, max_pixels=89_000_000)


def decode_image(data: bytes, limits: ImageLimits = DEFAULT_IMAGE_LIMITS
                 ) -> DecodedImage | MediaFailure:
    """Decode ``data``; a failure names its reason (``corrupt_image``,
    ``truncated_image``, ``unsupported_codec``, ``image_too_small``,
    ``image_too_large``)."""
    if not data:
        return MediaFailure("empty", "decode", "zero bytes")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return _decode(data, limits)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        return MediaFailure("image_too_large", "decode", str(exc))
    except Exception as exc:  # Pillow's failure modes on hostile files are open-ended
        return _failure(exc)


def _decode(data: bytes, limits: ImageLimits) -> DecodedImage | MediaFailure:
    with Image.open(io.BytesIO(data)) as img:
        fmt = str(img.format or "")
        if fmt not in IMAGE_FORMATS:
            return MediaFailure("unsupported_codec", "decode",
                                f"{fmt or 'unknown'} images are not accepted; use "
                                f"{', '.join(sorted(IMAGE_FORMATS))}")
        width, height = img.size  # from the header: nothing decoded yet
        problem = _check_size(width, height, limits)
        if problem is not None:
            return problem
        frames = int(getattr(img, "n_frames", 1) or 1)
        img.seek(0)
        description = _description(img)
        img.load()
        upright = ImageOps.exif_transpose(img) or img
        has_alpha = upright.mode in ("RGBA", "LA", "PA") or (
            upright.mode == "P" and "transparency" in upright.info)
        rgb = _to_rgb(upright, has_alpha)
    problem = _check_size(rgb.width, rgb.height, limits)
    if problem is not None:
        return problem
    return DecodedImage(rgb, fmt, rgb.width, rgb.height, frames, has_alpha,
                        pixel_digest(rgb), description)


def _check_size(width: int, height: int, limits: ImageLimits) -> MediaFailure | None:
    if width < limits.min_side or height < limits.min_side:
        return MediaFailure("image_too_small", "validate",
                            f"{width}x{height} px; each side must be >= {limits.min_side}")
    if max(width, height) > limits.max_side or width * height > limits.max_pixels:
        return MediaFailure("image_too_large", "validate",
                            f"{width}x{height} px; limits: side <= {limits.max_side}, "
                            f"pixels <= {limits.max_pixels} (decompression bombs refused)")
    return None


def _to_rgb(img: Image.Image, has_alpha: bool) -> Image.Image:
    if not has_alpha:
        return img.convert("RGB")
    rgba = img.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _description(img: Image.Image) -> str | None:
    """A caption the file carries (PNG text ``Title``/``Description``, EXIF
    ImageDescription), if any."""
    for key in ("Title", "Description", "title", "description"):
        value = img.info.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()[:1000]
    value = img.getexif().get(0x010E)
    if isinstance(value, str) and value.strip():
        return value.strip()[:1000]
    return None


def pixel_digest(rgb: Image.Image) -> str:
    """SHA-256 of an RGB image's size and pixels (not of its file)."""
    digest = hashlib.sha256(f"RGB:{rgb.width}x{rgb.height}:".encode())
    digest.update(rgb.tobytes())
    return digest.hexdigest()


def _failure(exc: Exception) -> MediaFailure:
    detail = f"{type(exc).__name__}: {exc}"[:500]
    text = str(exc).lower()
    if isinstance(exc, Image.UnidentifiedImageError):
        return MediaFailure("corrupt_image", "decode", detail)
    if "truncated" in text or isinstance(exc, EOFError) or "premature end" in text:
        return MediaFailure("truncated_image", "decode", detail)
    if "decoder" in text and "not available" in text:
        return MediaFailure("unsupported_codec", "decode", detail)
    return MediaFailure("corrupt_image", "decode", detail)


def load_rgb(data: bytes, limits: ImageLimits = EMBED_IMAGE_LIMITS) -> Image.Image:
    """The RGB pixels of an image file; raises ValueError with the reason when it cannot
    be decoded (embedders call this on bytes that preprocessing already accepted, or on
    a query image)."""
    decoded = decode_image(data, limits)
    if isinstance(decoded, MediaFailure):
        raise ValueError(f"{decoded.reason}: {decoded.detail}")
    return decoded.image


def centre_square(data: bytes, size: int) -> np.ndarray:
    """``size`` x ``size`` x 3 float32 pixels in [0, 255] of an image file: its short side
    resized to ``size`` (bicubic), then centre-cropped (the input of CLIP and of
    EfficientNet-Lite; each model scales the values its own way)."""
    rgb = load_rgb(data)
    scale = size / min(rgb.size)
    w, h = max(size, round(rgb.width * scale)), max(size, round(rgb.height * scale))
    rgb = rgb.resize((w, h), Image.Resampling.BICUBIC)
    left, top = (w - size) // 2, (h - size) // 2
    return np.asarray(rgb.crop((left, top, left + size, top + size)), dtype=np.float32)
