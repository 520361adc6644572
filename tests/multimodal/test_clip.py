"""CLIP from a local directory, on a tiny random CLIP built offline: the text tower embeds
text, the image tower images, into one space under one fingerprint whose halves are the
towers' versions; a tower of another version is refused by name."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from embedops.embedders import load_embedder, load_matching_embedder, load_tokenizer
from embedops.embedders.clip import ClipEmbedder, image_pixels
from embedops.errors import FingerprintMismatch, ModelNotFound, PermanentEmbedderError
from tests.multimodal.media_files import encode, picture
from tests.multimodal.tiny_clip import IMAGE_SIZE, PROJECTION, perturb_tower


def _reference(model_dir: Path, texts: list[str], images: list[bytes]) -> np.ndarray:
    """The same vectors computed with transformers directly."""
    import torch
    from transformers import CLIPModel

    from embedops.embedders.hf_tokenizer import HFTokenizer

    model = CLIPModel.from_pretrained(str(model_dir), local_files_only=True).eval()
    tokens = HFTokenizer(model_dir / "tokenizer.json", 77).model_inputs(texts)
    pixels = np.stack([image_pixels(d, IMAGE_SIZE, (0.5,) * 3, (0.25,) * 3) for d in images])
    with torch.no_grad():
        out = model(input_ids=torch.from_numpy(tokens["input_ids"]),
                    attention_mask=torch.from_numpy(tokens["attention_mask"]),
                    pixel_values=torch.from_numpy(pixels))
    rows = torch.cat([out.text_embeds, out.image_embeds]).numpy()
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_towers_embed_text_and_images_into_one_normalised_space(tiny_clip: Path,
                                                                 tmp_path: Path) -> None:
    embedder = load_embedder(f"clip:{tiny_clip}", tmp_path)
    assert isinstance(embedder, ClipEmbedder)
    info = embedder.info
    assert (info.dim, info.modality, info.max_tokens) == (PROJECTION, "image-text", 75)
    assert info.accepts("query", "text") and info.accepts("document", "image")
    assert not info.accepts("document", "audio")
    texts = ["a red car", "the striped cat"]
    images = [encode(picture(1), "PNG"), encode(picture(2), "JPEG")]
    mixed = embedder.embed([images[0], texts[0], images[1], texts[1]], "document")
    assert mixed.shape == (4, PROJECTION) and mixed.dtype == np.float32
    assert np.allclose(np.linalg.norm(mixed, axis=1), 1, atol=1e-5)
    expected = _reference(tiny_clip, texts, images)
    got = mixed[[1, 3, 0, 2]]
    assert np.allclose(got, expected, atol=1e-5)
    # roles only pick the tower: a text is the same vector as a query or a document
    assert np.allclose(embedder.embed(texts, "query"), got[:2], atol=1e-6)


def test_fingerprint_names_both_tower_versions(tiny_clip: Path, tmp_path: Path) -> None:
    embedder = load_embedder(f"clip:{tiny_clip}", tmp_path)
    towers = embedder.towers  # type: ignore[attr-defined]
    assert embedder.info.fingerprint == towers["text"] + towers["image"]
    assert embedder.info.revision == f"text-{towers['text']}+image-{towers['image']}"
    again = load_embedder(f"clip:{tiny_clip}", tmp_path / "other-cache")
    assert again.info.fingerprint == embedder.info.fingerprint  # from the weights, not the cache


@pytest.mark.parametrize("tower", ["text", "image"])
def test_a_tower_of_another_version_is_refused_by_name(tiny_clip: Path, tmp_path: Path,
                                                       tower: str) -> None:
    before = load_embedder(f"clip:{tiny_clip}", tmp_path)
    changed = tmp_path / "changed"
    shutil.copytree(tiny_clip, changed)
    perturb_tower(changed, tower)
    after = load_embedder(f"clip:{changed}", tmp_path)
    other = "image" if tower == "text" else "text"
    assert after.towers[tower] != before.towers[tower]  # type: ignore[attr-defined]
    assert after.towers[other] == before.towers[other]  # type: ignore[attr-defined]
    with pytest.raises(FingerprintMismatch, match=f"{tower} tower") as err:
        load_matching_embedder(f"clip:{changed}", before.info.fingerprint, tmp_path)
    assert f"{other} tower" not in str(err.value) and "repoint the alias" in str(err.value)
    same = load_matching_embedder(f"clip:{tiny_clip}", before.info.fingerprint, tmp_path)
    assert same.info.fingerprint == before.info.fingerprint


def test_clip_chunks_text_with_its_own_tokenizer(tiny_clip: Path, tmp_path: Path) -> None:
    tokenizer = load_tokenizer(f"clip:{tiny_clip}", tmp_path)
    assert tokenizer.max_content_tokens == 75
    assert tokenizer.count(["a red car"]) == [3]


def test_bad_inputs_are_refused(tiny_clip: Path, tmp_path: Path) -> None:
    embedder = load_embedder(f"clip:{tiny_clip}", tmp_path)
    with pytest.raises(PermanentEmbedderError, match="cannot decode"):
        embedder.embed([b"not an image"], "document")
    with pytest.raises(PermanentEmbedderError, match="empty"):
        embedder.embed([b""], "query")
    with pytest.raises(ModelNotFound, match="no CLIP model"):
        load_embedder(f"clip:{tmp_path / 'nowhere'}", tmp_path)
    empty = tmp_path / "bert"
    empty.mkdir()
    (empty / "config.json").write_text('{"model_type": "bert"}')
    with pytest.raises(ModelNotFound, match="not a CLIP model"):
        load_embedder(f"clip:{empty}", tmp_path)
