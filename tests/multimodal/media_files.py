"""Media files generated in memory: images with structure, tones and noises, and a
battery of broken media. Nothing binary is committed."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image, PngImagePlugin


def picture(seed: int, size: tuple[int, int] = (96, 72)) -> Image.Image:
    """An RGB picture with gradients, rectangles and a disc, different for every seed."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    base = rng.uniform(0, 255, 3)
    grad = rng.uniform(-1.5, 1.5, (2, 3))
    img = base + x[..., None] * grad[0] + y[..., None] * grad[1]
    for _ in range(4):
        x0, y0 = rng.integers(0, w - 8), rng.integers(0, h - 8)
        img[y0:y0 + rng.integers(6, h // 2), x0:x0 + rng.integers(6, w // 2)] = \
            rng.uniform(0, 255, 3)
    cx, cy, r = rng.uniform(0, w), rng.uniform(0, h), rng.uniform(6, min(w, h) / 3)
    img[(x - cx) ** 2 + (y - cy) ** 2 < r * r] = rng.uniform(0, 255, 3)
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


def encode(img: Image.Image, fmt: str = "PNG", **params: object) -> bytes:
    out = io.BytesIO()
    img.save(out, format=fmt, **params)
    return out.getvalue()


def png_with_text(img: Image.Image, key: str, value: str, level: int = 9) -> bytes:
    """The same pixels as PNG at another compression level, with a text chunk."""
    info = PngImagePlugin.PngInfo()
    info.add_text(key, value)
    return encode(img, "PNG", pnginfo=info, compress_level=level)


def tone(freq: float, seconds: float = 1.0, rate: int = 16000, amp: float = 0.4,
         noise: float = 0.0, seed: int = 0) -> np.ndarray:
    t = np.arange(int(seconds * rate)) / rate
    wave = amp * np.sin(2 * np.pi * freq * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))
    if noise:
        wave += noise * np.random.default_rng(seed).standard_normal(len(t))
    return wave.astype(np.float32)


def audio_bytes(samples: np.ndarray, rate: int = 16000, fmt: str = "WAV",
                subtype: str = "PCM_16", title: str | None = None) -> bytes:
    import soundfile as sf

    out = io.BytesIO()
    with sf.SoundFile(out, "w", rate, 1 if samples.ndim == 1 else samples.shape[1],
                      subtype, format=fmt) as handle:
        if title:
            handle.title = title
        if subtype == "PCM_16":  # exact integers: every container stores the same samples
            handle.write(np.round(np.clip(samples, -1, 1) * 32767).astype(np.int16))
        else:
            handle.write(samples)
    return out.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` pixels (a decompression bomb
    would decode to that many)."""
    data = encode(Image.new("L", (1, 1)), "PNG")
    ihdr = struct.pack(">II", width, height) + data[24:29]
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return data[:16] + ihdr + crc + data[33:]


def bad_media() -> dict[str, tuple[bytes, str]]:
    """name -> (bytes, expected rejection reason)."""
    good_png = encode(picture(1), "PNG")
    good_jpg = encode(picture(2), "JPEG", quality=90)
    wav = audio_bytes(tone(440))
    return {
        "random.png": (np.random.default_rng(0).bytes(2000), "corrupt_image"),
        "text.jpg": (b"this is not a picture at all\n" * 20, "corrupt_image"),
        "zero.png": (b"", "empty"),
        "cut.png": (good_png[: len(good_png) // 2], "truncated_image"),
        "cut.jpg": (good_jpg[: len(good_jpg) // 2], "truncated_image"),
        "tiny.png": (encode(Image.new("RGB", (4, 4), "red")), "image_too_small"),
        "bomb.png": (png_claiming(100_000, 100_000), "image_too_large"),
        "long-side.png": (png_claiming(20_000, 20), "image_too_large"),
        "bitmap.png": (encode(picture(3), "BMP"), "unsupported_codec"),
        "tiff.gif": (encode(picture(4), "TIFF"), "unsupported_codec"),
        "random.wav": (np.random.default_rng(1).bytes(3000), "corrupt_audio"),
        "zero.wav": (b"", "empty"),
        "no-frames.wav": (audio_bytes(np.zeros(0, np.float32)), "empty"),
        "silent.wav": (audio_bytes(np.zeros(16000, np.float32)), "silent"),
        "blip.wav": (audio_bytes(tone(440, seconds=0.02)), "audio_too_short"),
        "cut.wav": (wav[: len(wav) // 2], "truncated_audio"),
        "claims-hours.wav": (_wav_claiming(16000 * 3600 * 2), "truncated_audio"),
        "au.flac": (audio_bytes(tone(300), fmt="AU", subtype="PCM_16"), "unsupported_codec"),
        "text.mp3": (b"ID3" + b"\x00" * 7 + b"no audio frames here" * 10,
                     "unsupported_codec"),
    }


def _wav_claiming(frames: int) -> bytes:
    """A 16-bit mono WAV header claiming ``frames`` samples, followed by one second."""
    body = (tone(440) * 32767).astype("<i2").tobytes()
    size = frames * 2
    header = (b"RIFF" + struct.pack("<I", 36 + size) + b"WAVEfmt "
              + struct.pack("<IHHIIHH", 16, 1, 1, 16000, 32000, 2, 16)
              + b"data" + struct.pack("<I", size))
    return header + body
