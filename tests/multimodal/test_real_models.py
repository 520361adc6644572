"""The real offline media models, loaded from their packages: EfficientNet-Lite0 (images),
resemblyzer and aisfx (audio). Each gives normalised vectors of its dimension with a
stable fingerprint, and finds a transformed copy of a file among others."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import embedops
from embedops.embedders import load_embedder, load_matching_embedder
from tests.multimodal.media_files import audio_bytes, encode, picture, tone

pytestmark = pytest.mark.slow


def _require(module: str) -> None:
    pytest.importorskip(module, reason=f"{module} is not installed (pip install -e '.[media]')")


def _recall_at_1(originals: np.ndarray, copies: np.ndarray) -> float:
    return float(np.mean((copies @ originals.T).argmax(axis=1) == np.arange(len(copies))))


def test_efficientnet_lite0_finds_transformed_copies(model_cache: Path) -> None:
    _require("efficientnet_lite_pytorch")
    embedder = load_embedder("efficientnet-lite0", model_cache)
    assert (embedder.info.dim, embedder.info.modality) == (1280, "image")
    pictures = [picture(i, (160, 120)) for i in range(10)]
    originals = embedder.embed([encode(p, "PNG") for p in pictures], "document")
    copies = embedder.embed([encode(p.resize((120, 90)).crop((6, 4, 114, 86)), "JPEG",
                                    quality=70) for p in pictures], "query")
    assert np.allclose(np.linalg.norm(originals, axis=1), 1, atol=1e-5)
    assert _recall_at_1(originals, copies) >= 0.9
    again = load_matching_embedder("efficientnet-lite0", embedder.info.fingerprint,
                                   model_cache)
    assert np.allclose(again.embed([encode(pictures[0], "PNG")], "document"), originals[:1],
                       atol=1e-5)


@pytest.mark.parametrize(("name", "dim", "rate"), [("resemblyzer", 256, 16000),
                                                   ("aisfx", 512, 44100)])
def test_audio_models_embed_clips_and_ignore_gain(model_cache: Path, name: str, dim: int,
                                                  rate: int) -> None:
    _require(name)
    embedder = load_embedder(name, model_cache)
    assert (embedder.info.dim, embedder.info.modality) == (dim, "audio")
    clips = [tone(150 + 170 * i, seconds=2.5, rate=rate, noise=0.03, seed=i)
             for i in range(5)]
    originals = embedder.embed([audio_bytes(c, rate) for c in clips], "document")
    assert originals.shape == (5, dim)
    assert np.allclose(np.linalg.norm(originals, axis=1), 1, atol=1e-5)
    quieter = embedder.embed([audio_bytes(c * 0.5, rate) for c in clips], "query")
    assert float(np.diag(quieter @ originals.T).min()) > 0.98
    assert _recall_at_1(originals, quieter) == 1.0


def test_ingest_images_with_efficientnet_and_search_by_image(tmp_path: Path) -> None:
    _require("efficientnet_lite_pytorch")
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(6):
        (folder / f"p{i}.jpg").write_bytes(encode(picture(i, (128, 96)), "JPEG", quality=90))
    with embedops.open(tmp_path / "store") as client:
        summary = client.ingest([folder], "images", model="efficientnet-lite0")
        assert summary.documents_new == 6
        info = client.get_collection("images")
        assert (info.model, info.dim) == ("efficientnet-lite0", 1280)
        query = picture(4, (128, 96)).rotate(3, resample=Image.Resampling.BICUBIC)
        hits = client.search(encode(query, "PNG"), "images", k=3)
        assert hits[0].doc_id == "p4.jpg" and hits[0].payload["width"] == 128
