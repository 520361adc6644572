"""The train / held-out split: by query, so no query is both trained on and evaluated."""

from __future__ import annotations

import random
from dataclasses import dataclass

from embedops.errors import ConfigError, InputRejected
from embedops.finetune.pairs import Pair


@dataclass(frozen=True)
class Split:
    """Training pairs and held-out pairs; no query id and no query text is in both."""

    train: list[Pair]
    held_out: list[Pair]

    @property
    def train_query_ids(self) -> set[str]:
        return {p.query_id for p in self.train}

    @property
    def held_out_query_ids(self) -> set[str]:
        return {p.query_id for p in self.held_out}

    def held_out_qrels(self) -> dict[str, dict[str, int]]:
        """Held-out query id -> {relevant document id: 1}, for trec_eval."""
        qrels: dict[str, dict[str, int]] = {}
        for pair in self.held_out:
            for doc_id in {*pair.relevant_ids, pair.positive_id}:
                qrels.setdefault(pair.query_id, {})[doc_id] = 1
        return qrels

    def held_out_queries(self) -> dict[str, str]:
        return {p.query_id: p.query for p in self.held_out}


def split_pairs(pairs: list[Pair], eval_fraction: float, seed: int = 0) -> Split:
    """Hold out ``eval_fraction`` of the distinct queries (at least one), chosen with
    ``seed``. A training pair whose query text equals a held-out query's is dropped, so
    the same question asked under two ids cannot leak. Raises ConfigError for a fraction
    outside (0, 1) and InputRejected when fewer than two queries are given."""
    if not 0 < eval_fraction < 1:
        raise ConfigError(f"--eval-split must be between 0 and 1, got {eval_fraction}")
    query_ids = sorted({p.query_id for p in pairs})
    if len(query_ids) < 2:
        raise InputRejected("too_small", "need at least two distinct queries to hold one out")
    random.Random(seed).shuffle(query_ids)
    n_eval = min(len(query_ids) - 1, max(1, round(len(query_ids) * eval_fraction)))
    held = set(query_ids[:n_eval])
    held_out = [p for p in pairs if p.query_id in held]
    held_texts = {_norm(p.query) for p in held_out}
    train = [p for p in pairs if p.query_id not in held and _norm(p.query) not in held_texts]
    if not train:
        raise InputRejected("too_small", "no training pairs remain after holding out queries")
    return Split(train, held_out)


def _norm(text: str) -> str:
    return " ".join(text.split()).casefold()
