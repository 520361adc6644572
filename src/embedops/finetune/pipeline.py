"""``embedops finetune train`` end to end: split, mine, measure, train, measure, record,
register.

Order matters for honesty: the split is made first and only training queries get
negatives or gradient steps; the before/after metrics ask the held-out queries only.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from embedops.embedders.local import LocalModel
from embedops.embedders.named_models import check_name, register
from embedops.embedders.weights import resolve_model_dir
from embedops.errors import ConfigError, InputRejected
from embedops.finetune.evaluate import retrieval_metrics
from embedops.finetune.lineage import file_sha256, training_record, write_record
from embedops.finetune.negatives import (
    Negatives,
    fill_negatives,
    mine_hard_negatives,
    negatives_digest,
)
from embedops.finetune.pairs import (
    Corpus,
    beir_corpus,
    corpus_from_pairs,
    read_corpus,
    read_pairs,
)
from embedops.finetune.split import Split, split_pairs
from embedops.finetune.trainer import Hyperparameters, fit, load_sentence_transformer

Notify = Callable[[str], None]
HELD_OUT_DIR = "heldout"  # inside the model directory


def load_extra_corpus(path: Path | None) -> Corpus:
    """Documents beyond the positives: a BEIR directory or a corpus JSONL file."""
    if path is None:
        return {}
    return beir_corpus(path) if path.is_dir() else read_corpus(path)


def train_model(pairs_path: Path, out: Path, cache_dir: Path, base: str = "all-MiniLM-L6-v2",
                params: Hyperparameters | None = None, eval_split: float = 0.1,
                name: str | None = None, corpus_path: Path | None = None,
                ablation: bool = False, progress: bool = True,
                notify: Notify = lambda _: None) -> dict[str, Any]:
    """Fine-tune ``base`` on the pairs in ``pairs_path``, save the model and its
    ``training.json`` in ``out``, register it as ``name`` (default: the directory name).

    Returns the training record. Raises ConfigError for bad settings or a name that is
    taken by a shipped model, InputRejected for unreadable pairs, ModelNotFound for a
    missing base model. ``out`` is replaced only after training succeeded."""
    params = params or Hyperparameters()
    params.check()
    name = check_name(name or out.name)
    _check_out(out)
    pairs = read_pairs(pairs_path)
    corpus = corpus_from_pairs(pairs, load_extra_corpus(corpus_path))
    split = split_pairs(pairs, eval_split, params.seed)
    base_model = LocalModel.resolve(base, cache_dir)
    base_dir = resolve_model_dir(base, cache_dir)
    notify(f"{len(split.train)} training pairs, {len(split.held_out_query_ids)} held-out "
           f"queries, {len(corpus)} documents; mining {params.hard_negatives} BM25 "
           "negatives per training query")
    mined, negatives, random_fill = _negatives(split, corpus, params)
    model, metrics, seconds = _train_and_measure(base_dir, split, corpus, negatives, params,
                                                 ablation, progress, notify)
    _save(model, out)
    weights = LocalModel.resolve(str(out), cache_dir).digest
    register(name, out, cache_dir)
    own = LocalModel.resolve(name, cache_dir).info("torch", "fp32").fingerprint
    record = training_record(
        name=name, fingerprint=own,
        base={"name": base_model.name, "directory": str(base_dir),
              "fingerprint": base_model.info("torch", "fp32").fingerprint,
              "weights_sha256": base_model.digest},
        data=_data_version(pairs_path, pairs, split, corpus, mined, negatives, random_fill,
                           corpus_path, weights),
        params=params, metrics={"eval_split": eval_split, **metrics}, seconds=seconds,
        device=str(model.device), split=_split_ids(split))
    write_record(out, record)
    write_held_out(split, out / HELD_OUT_DIR)
    return record


def write_held_out(split: Split, directory: Path) -> Path:
    """The held-out queries as a BEIR query set (``queries.jsonl``, ``qrels/test.tsv``):
    ``embedops migrate evaluate ALIAS --dataset DIR`` gates the rollout on queries the
    model never trained on."""
    (directory / "qrels").mkdir(parents=True, exist_ok=True)
    queries = split.held_out_queries()
    (directory / "queries.jsonl").write_text(
        "".join(json.dumps({"_id": q, "text": t}, ensure_ascii=False) + "\n"
                for q, t in sorted(queries.items())), encoding="utf-8")
    rows = [f"{q}\t{d}\t{s}" for q, docs in sorted(split.held_out_qrels().items())
            for d, s in sorted(docs.items())]
    (directory / "qrels" / "test.tsv").write_text(
        "query-id\tcorpus-id\tscore\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return directory


def _negatives(split: Split, corpus: Corpus, params: Hyperparameters
               ) -> tuple[Negatives, Negatives, int]:
    """BM25 negatives of the training queries (mined, then topped up to the asked count)."""
    mined = mine_hard_negatives(split.train, corpus, params.hard_negatives)
    negatives, random_fill = fill_negatives(mined, split.train, corpus, params.hard_negatives,
                                            params.seed)
    if any(len(found) < params.hard_negatives for found in negatives.values()):
        raise InputRejected("too_small", f"the corpus has too few documents for "
                            f"{params.hard_negatives} negatives per query; lower "
                            "--hard-negatives or add documents with --corpus")
    return mined, negatives, random_fill


def _train_and_measure(base_dir: Path, split: Split, corpus: Corpus, negatives: Negatives,
                       params: Hyperparameters, ablation: bool, progress: bool,
                       notify: Notify) -> tuple[Any, dict[str, Any], dict[str, float]]:
    """Held-out metrics of the base, the trained model and (``ablation``) a model trained
    without hard negatives; returns the trained model, the metrics and the times."""
    queries, qrels = split.held_out_queries(), split.held_out_qrels()
    seconds: dict[str, float] = {}
    metrics = {"before": _measure(base_dir, split, corpus, params.seed)}
    notify(f"before: recall@10 {metrics['before']['recall@10']:.4f} "
           f"nDCG@10 {metrics['before']['ndcg@10']:.4f} on held-out queries")
    model, seconds["train"] = _timed(lambda: fit(
        base_dir, split.train, negatives, corpus, params, params.hard_negatives > 0, progress))
    metrics["after"] = retrieval_metrics(model, queries, qrels, corpus)
    if ablation and params.hard_negatives > 0:
        notify("ablation: training again without hard negatives")
        plain, seconds["train_without_hard_negatives"] = _timed(lambda: fit(
            base_dir, split.train, negatives, corpus, params, False, progress))
        metrics["after_without_hard_negatives"] = retrieval_metrics(plain, queries, qrels,
                                                                    corpus)
    return model, metrics, seconds


def _check_out(out: Path) -> None:
    """Refuse to replace a directory that holds something other than a model."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir())
                                              and not (out / "config.json").is_file())):
        raise ConfigError(f"--out {out} exists and is not a model directory; choose a new "
                          "directory (an earlier model there is replaced)")


def _measure(model_dir: Path, split: Split, corpus: Corpus, seed: int) -> dict[str, float]:
    model = load_sentence_transformer(model_dir, seed)
    return retrieval_metrics(model, split.held_out_queries(), split.held_out_qrels(), corpus)


def _timed(step: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = step()
    return result, round(time.perf_counter() - started, 2)


def _save(model: Any, out: Path) -> None:
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    model.save(str(staging))
    shutil.rmtree(out, ignore_errors=True)
    staging.rename(out)


def _data_version(pairs_path: Path, pairs: list[Any], split: Split, corpus: Corpus,
                  mined: dict[str, list[str]], negatives: dict[str, list[str]],
                  random_fill: int, corpus_path: Path | None, weights: str) -> dict[str, Any]:
    return {
        "pairs_file": str(pairs_path.resolve()),
        "pairs_sha256": file_sha256(pairs_path),
        "negatives_sha256": negatives_digest(negatives),
        "negatives_mined": sum(len(v) for v in mined.values()),
        "negatives_random_fill": random_fill,
        "corpus_file": str(corpus_path.resolve()) if corpus_path else None,
        "corpus_documents": len(corpus),
        "pairs": len(pairs),
        "synthetic_pairs": sum(1 for p in pairs if p.synthetic),
        "train_pairs": len(split.train),
        "held_out_pairs": len(split.held_out),
        "weights_sha256": weights,
    }


def _split_ids(split: Split) -> dict[str, list[str]]:
    return {"train_query_ids": sorted(split.train_query_ids),
            "held_out_query_ids": sorted(split.held_out_query_ids)}
