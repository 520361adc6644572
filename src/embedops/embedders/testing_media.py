"""TEST-ONLY media embedders: deterministic, no weights, milliseconds per item.

``testing/pixels-N`` (images; N = 3·s², e.g. 48 for a 4x4 grid): the mean colour of each
cell of an s x s grid, centred. ``testing/audio-N`` (audio): the log energy of N equal
frequency bands of the clip at 16 kHz, centred. They have no semantic quality: they
exist so tests of routing, search by media and dead letters run without a model.
"""

from __future__ import annotations

import math

import numpy as np

from embedops.embedders.base import EmbedderInfo, make_fingerprint
from embedops.embedders.media_base import MediaEmbedder, decode_or_refuse
from embedops.errors import ModelNotFound
from embedops.preprocess.audio import load_mono
from embedops.preprocess.images import load_rgb


class PixelGridEmbedder(MediaEmbedder):
    """Mean colours of an s x s grid of the image (dim 3·s²)."""

    def __init__(self, dim: int = 48) -> None:
        super().__init__(batch_size=64)
        side = math.isqrt(dim // 3)
        if dim < 3 or 3 * side * side != dim:
            raise ModelNotFound(f"testing/pixels-{dim}: the dimension must be 3·s² (12, 48, 192)")
        self.side = side
        fingerprint = make_fingerprint({"name": f"testing/pixels-{dim}", "grid": side})
        self.info = EmbedderInfo(f"testing/pixels-{dim}", "1", dim, 0, "image", "numpy",
                                 "embedops.embedders.testing_media", fingerprint,
                                 inputs={"document": ("image",), "query": ("image",)})

    def _embed_media(self, items: list[bytes]) -> np.ndarray:
        from PIL import Image

        rows = []
        for data in items:
            rgb = decode_or_refuse(self.info.name, load_rgb, data)
            small = rgb.resize((self.side, self.side), Image.Resampling.BOX)
            vector = np.asarray(small, dtype=np.float32).reshape(-1) / 255.0
            rows.append(vector - vector.mean() + 1e-3)
        return np.stack(rows)


class AudioBandsEmbedder(MediaEmbedder):
    """Log energy of ``dim`` equal frequency bands of the clip at 16 kHz."""

    def __init__(self, dim: int = 32) -> None:
        super().__init__(batch_size=64)
        if not 2 <= dim <= 1024:
            raise ModelNotFound(f"testing/audio-{dim}: the dimension must be 2..1024")
        fingerprint = make_fingerprint({"name": f"testing/audio-{dim}", "rate": 16000})
        self.info = EmbedderInfo(f"testing/audio-{dim}", "1", dim, 0, "audio", "numpy",
                                 "embedops.embedders.testing_media", fingerprint,
                                 inputs={"document": ("audio",), "query": ("audio",)})

    def _embed_media(self, items: list[bytes]) -> np.ndarray:
        rows = []
        for data in items:
            wav = decode_or_refuse(self.info.name, lambda d: load_mono(d, 16000), data)
            power = np.abs(np.fft.rfft(wav)) ** 2
            bands = np.array_split(power, self.info.dim)
            energy = np.log10(np.array([b.sum() for b in bands]) + 1e-9)
            rows.append((energy - energy.mean() + 1e-3).astype(np.float32))
        return np.stack(rows)


def test_media_embedder(name: str) -> MediaEmbedder:
    """``testing/pixels-N`` or ``testing/audio-N``; ModelNotFound for other names."""
    family, _, size = name.rpartition("-")
    if not size.isdigit():
        raise ModelNotFound(f"unknown test model {name!r}")
    if family == "testing/pixels":
        return PixelGridEmbedder(int(size))
    if family == "testing/audio":
        return AudioBandsEmbedder(int(size))
    raise ModelNotFound(f"unknown test model {name!r}")
