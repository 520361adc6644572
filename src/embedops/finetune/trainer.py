"""Contrastive training with sentence-transformers' trainer.

MultipleNegativesRankingLoss (InfoNCE): each query's positive against the other positives
of its batch, plus its own hard negatives when given. Batches never hold the same text
twice (``NO_DUPLICATES``), so a duplicated positive is not pushed away from itself.
Runs on the CPU unless CUDA is available; the trainer's progress bar shows the ETA.
"""

from __future__ import annotations

import math
import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from embedops.errors import ConfigError
from embedops.finetune.negatives import Negatives
from embedops.finetune.pairs import Corpus, Pair


@dataclass(frozen=True)
class Hyperparameters:
    """What a training run is configured with; recorded in ``training.json``."""

    epochs: float = 3.0
    lr: float = 2e-5
    batch_size: int = 32
    hard_negatives: int = 5
    warmup_fraction: float = 0.1
    seed: int = 0
    loss: str = "MultipleNegativesRankingLoss"

    def check(self) -> None:
        """Raises ConfigError for values no run can use."""
        if self.epochs <= 0 or self.lr <= 0 or self.batch_size < 2:
            raise ConfigError("need epochs > 0, lr > 0 and batch size >= 2 (in-batch "
                              "negatives need company)")
        if not 0 <= self.hard_negatives <= 50:
            raise ConfigError("--hard-negatives must be between 0 and 50")


def load_sentence_transformer(directory: Path, seed: int | None = None) -> Any:
    """A SentenceTransformer from a local directory, offline."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        from sentence_transformers import SentenceTransformer
        from transformers import set_seed
    except ImportError as exc:
        raise ConfigError("fine-tuning needs sentence-transformers: "
                          "pip install 'embedops[finetune]'") from exc
    if seed is not None:
        set_seed(seed)
    return SentenceTransformer(str(directory), device=_device())


def _device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def training_rows(pairs: Sequence[Pair], negatives: Negatives, corpus: Corpus,
                  k: int) -> dict[str, list[str]]:
    """Columns anchor, positive, negative_1..k (the loss reads them by position)."""
    columns: dict[str, list[str]] = {"anchor": [p.query for p in pairs],
                                     "positive": [p.positive for p in pairs]}
    for i in range(k):
        columns[f"negative_{i + 1}"] = [corpus[negatives[p.query_id][i]] for p in pairs]
    return columns


def fit(base_dir: Path, pairs: Sequence[Pair], negatives: Negatives, corpus: Corpus,
        params: Hyperparameters, use_negatives: bool, progress: bool = True) -> Any:
    """Train a copy of the model in ``base_dir`` and return it (not saved). With
    ``use_negatives`` every row carries ``params.hard_negatives`` negatives."""
    params.check()
    from datasets import Dataset
    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )

    loss_class, samplers = _training_parts()
    model = load_sentence_transformer(base_dir, params.seed)
    k = params.hard_negatives if use_negatives else 0
    dataset = Dataset.from_dict(training_rows(pairs, negatives, corpus, k))
    batch = min(params.batch_size, len(pairs))
    steps = math.ceil(len(pairs) / batch) * params.epochs
    with tempfile.TemporaryDirectory(prefix="embedops-finetune-") as scratch:
        args = SentenceTransformerTrainingArguments(
            output_dir=scratch, num_train_epochs=params.epochs, learning_rate=params.lr,
            per_device_train_batch_size=batch, warmup_steps=int(steps * params.warmup_fraction),
            seed=params.seed, data_seed=params.seed, batch_sampler=samplers.NO_DUPLICATES,
            save_strategy="no", report_to="none", logging_strategy="no",
            disable_tqdm=not progress, use_cpu=_device() == "cpu", dataloader_num_workers=0)
        trainer = SentenceTransformerTrainer(
            model=model, args=args, train_dataset=dataset,
            loss=loss_class(model))
        trainer.train()
    return model


def _training_parts() -> tuple[Any, Any]:
    """The loss class and the batch samplers, from where this sentence-transformers
    version keeps them (6.x moved them under ``sentence_transformer``)."""
    try:
        from sentence_transformers.sentence_transformer.losses import (
            MultipleNegativesRankingLoss,
        )
        from sentence_transformers.sentence_transformer.training_args import BatchSamplers
    except ImportError:
        from sentence_transformers.losses import MultipleNegativesRankingLoss
        from sentence_transformers.training_args import BatchSamplers
    return MultipleNegativesRankingLoss, BatchSamplers
