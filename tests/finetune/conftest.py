"""A tiny BERT-like model built offline (MiniLM's tokenizer, two small layers) and a small
synthetic domain: machine parts with codes, asked about in other words."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from embedops.errors import ModelNotFound

for module in ("sentence_transformers", "datasets", "accelerate", "bm25s"):
    pytest.importorskip(module)

COMPONENTS = ["seal", "bearing", "valve", "filter", "pump", "gear", "hose", "sensor", "spring",
              "bracket"]
MACHINES = [("excavator", "digger"), ("compressor", "air unit"), ("forklift", "lift truck"),
            ("turbine", "rotor engine"), ("conveyor", "belt line"), ("boiler", "steam vessel")]


def write_domain(root: Path, seed: int = 7) -> Path:
    """A BEIR directory: one document per (component, machine), one query per document
    that names the component but the machine in other words (so word overlap finds the
    six documents of a component, and BM25's best are hard negatives)."""
    rng = random.Random(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / "qrels").mkdir(exist_ok=True)
    docs, queries, qrels = [], [], []
    for c, component in enumerate(COMPONENTS):
        for m, (machine, m_syn) in enumerate(MACHINES):
            doc_id, code = f"d{c:02d}{m:02d}", f"PX-{rng.randint(1000, 9999)}"
            docs.append({"_id": doc_id, "title": f"{code} {component} for the {machine}",
                         "text": f"Part {code} is the {component} fitted to every {machine}. "
                                 f"Replace the {component} of the {machine} yearly."})
            queries.append({"_id": f"q{c:02d}{m:02d}",
                            "text": f"which {component} goes in the {m_syn}"})
            qrels.append(f"q{c:02d}{m:02d}\t{doc_id}\t1")
    _jsonl(root / "corpus.jsonl", docs)
    _jsonl(root / "queries.jsonl", queries)
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\n"
                                             + "\n".join(qrels) + "\n")
    return root


def _jsonl(path: Path, rows: list[dict[str, str]]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def build_tiny_model(target: Path) -> Path:
    """A randomly initialised 2-layer BERT (hidden 32) with mean pooling, saved as a
    sentence-transformers directory; the tokenizer is the installed MiniLM's."""
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel, set_seed

    from embedops.embedders.weights import resolve_model_dir

    minilm = resolve_model_dir("all-MiniLM-L6-v2", target.parent)
    hf_dir = target.parent / "tiny-hf"
    hf_dir.mkdir(parents=True, exist_ok=True)
    set_seed(0)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64,
                        max_position_embeddings=128)
    BertModel(config).save_pretrained(hf_dir)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt",
                 "special_tokens_map.json"):
        if (minilm / name).is_file():
            shutil.copy(minilm / name, hf_dir / name)
    word = Transformer(str(hf_dir), max_seq_length=64)
    pooling = Pooling(word.get_embedding_dimension(), "mean")
    SentenceTransformer(modules=[word, pooling], device="cpu").save(str(target))
    return target


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    try:
        return build_tiny_model(tmp_path_factory.mktemp("tiny") / "tiny-bert")
    except ModelNotFound as exc:  # MiniLM (whose tokenizer it borrows) is not installed
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def domain(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_domain(tmp_path_factory.mktemp("domain") / "parts")
