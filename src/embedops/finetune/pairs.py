"""Training pairs (query, positive passage) and the corpus they come from.

Sources: a BEIR directory (queries + qrels + corpus), a JSONL of ``{query, positive}``,
click logs of ``{query, clicked_id}`` (with a corpus to resolve the ids), or a corpus alone
(``synthetic_pairs``: a distinctive title asks for its text, a sentence asks for the rest of
its passage).

A pairs file is JSONL, one pair a line: ``query_id``, ``query``, ``positive_id``,
``positive``, ``relevant_ids`` (every document known relevant to the query, the positive
included) and ``synthetic``. Rows with the same ``query_id`` are one query with several
positives; the train/eval split keeps them together.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from embedops.errors import InputRejected
from embedops.preprocess.chunk_sentences import sentence_spans
from embedops.quality.beir import load_corpus, load_qrels, load_queries, passage_text

MIN_SENTENCE_WORDS, MAX_SENTENCE_WORDS = 5, 40
_NUMBERS = re.compile(r"\d+")


@dataclass(frozen=True)
class Pair:
    """One (query, positive) example; ``relevant_ids`` lists every document known to be
    relevant to the query (never mined as a negative)."""

    query_id: str
    query: str
    positive_id: str
    positive: str
    relevant_ids: tuple[str, ...] = field(default=())
    synthetic: bool = False

    def to_json(self) -> str:
        row = asdict(self)
        row["relevant_ids"] = sorted(set(self.relevant_ids) | {self.positive_id})
        return json.dumps(row, ensure_ascii=False, sort_keys=True)


Corpus = dict[str, str]  # document id -> the text that is embedded


def text_id(text: str, prefix: str) -> str:
    """A stable id for a text that came without one (the same text, the same id)."""
    return prefix + hashlib.sha256(" ".join(text.split()).casefold().encode()).hexdigest()[:16]


def beir_corpus(directory: Path) -> Corpus:
    return {doc_id: passage_text(doc) for doc_id, doc in load_corpus(directory).items()}


def pairs_from_beir(directory: Path, split: str = "test") -> list[Pair]:
    """One pair per (query, relevant document) of ``qrels/<split>.tsv`` (score > 0)."""
    corpus, queries = beir_corpus(directory), load_queries(directory)
    pairs = []
    for qid, judged in sorted(load_qrels(directory, split).items()):
        relevant = tuple(sorted(d for d, s in judged.items() if s > 0 and d in corpus))
        if qid not in queries or not relevant:
            continue
        pairs += [Pair(qid, queries[qid], d, corpus[d], relevant) for d in relevant]
    if not pairs:
        raise InputRejected("empty", f"no judged (query, document) pairs in {directory}")
    return pairs


def pairs_from_jsonl(path: Path, corpus: Corpus | None = None) -> list[Pair]:
    """Rows of ``{query, positive}`` or click logs of ``{query, clicked_id}`` (ids looked
    up in ``corpus``). Every clicked or given positive of one query text is relevant to it."""
    grouped: dict[str, list[tuple[str, str]]] = {}
    texts: dict[str, str] = {}
    for n, row in enumerate(_rows(path), start=1):
        query = str(row.get("query") or "").strip()
        if not query:
            raise InputRejected("empty", f"{path}:{n}: no query")
        positive_id, positive = _positive(row, corpus, f"{path}:{n}")
        qid = str(row.get("query_id") or text_id(query, "q-"))
        texts.setdefault(qid, query)
        grouped.setdefault(qid, []).append((positive_id, positive))
    pairs = []
    for qid, positives in grouped.items():
        relevant = tuple(sorted({pid for pid, _ in positives}))
        seen: set[str] = set()
        for pid, text in positives:
            if pid not in seen:
                seen.add(pid)
                pairs.append(Pair(qid, texts[qid], pid, text, relevant))
    if not pairs:
        raise InputRejected("empty", f"no pairs in {path}")
    return pairs


def _positive(row: dict[str, object], corpus: Corpus | None, where: str) -> tuple[str, str]:
    if row.get("positive"):
        text = str(row["positive"]).strip()
        return str(row.get("positive_id") or text_id(text, "d-")), text
    if row.get("clicked_id") is None:
        raise InputRejected("malformed", f"{where}: needs 'positive' or 'clicked_id'")
    clicked = str(row["clicked_id"])
    if corpus is None:
        raise InputRejected("malformed", f"{where}: click logs need --corpus to find "
                                         f"document {clicked!r}")
    if clicked not in corpus:
        raise InputRejected("malformed", f"{where}: clicked_id {clicked!r} is not in the corpus")
    return clicked, corpus[clicked]


def synthetic_pairs(corpus_path: Path, seed: int = 0, per_document: int = 1) -> list[Pair]:
    """Pairs from a corpus alone (BEIR ``corpus.jsonl`` rows: ``_id``/``id``, ``title``,
    ``text``): a document's title asks for its text when that title tells it from the
    others; else one of its sentences asks for the passage without that sentence. Marked
    ``synthetic``; the same seed, the same pairs.

    A title is not distinctive when another document's title differs from it only in
    numbers — the chunks of one report titled "Annual review (Part 3/23)": such a query
    cannot say which part it means, and training on it (with the other parts as hard
    negatives) teaches the model to tell apart what nothing in the query distinguishes."""
    rng = random.Random(seed)
    rows = list(_rows(corpus_path))
    shapes = Counter(_title_shape(row) for row in rows)
    pairs = []
    for n, row in enumerate(rows, start=1):
        doc_id = str(row.get("_id") or row.get("id") or f"doc-{n}")
        title = " ".join(str(row.get("title") or "").split())
        text = " ".join(str(row.get("text") or "").split())
        distinctive = shapes[_title_shape(row)] == 1
        for query, positive in _synthetic_examples(title, text, rng, distinctive)[:per_document]:
            pairs.append(Pair(text_id(query, "syn-"), query, doc_id, positive, (doc_id,), True))
    if not pairs:
        raise InputRejected("empty", f"{corpus_path}: no document gives a title or a sentence "
                                     f"of {MIN_SENTENCE_WORDS}-{MAX_SENTENCE_WORDS} words")
    return pairs


def _title_shape(row: dict[str, Any]) -> str:
    """A title with its numbers blanked and its case and spacing folded."""
    return _NUMBERS.sub("#", " ".join(str(row.get("title") or "").lower().split()))


def _synthetic_examples(title: str, text: str, rng: random.Random,
                        distinctive: bool = True) -> list[tuple[str, str]]:
    out = []
    if distinctive and title and text and len(title.split()) >= 2:
        out.append((title, text))
    sentences = [text[a:b].strip() for a, b in sentence_spans(text)]
    usable = [s for s in sentences
              if MIN_SENTENCE_WORDS <= len(s.split()) <= MAX_SENTENCE_WORDS]
    rng.shuffle(usable)
    for sentence in usable:
        rest = " ".join(s for s in sentences if s != sentence).strip()
        if len(rest.split()) >= MIN_SENTENCE_WORDS:
            out.append((sentence, f"{title} {rest}".strip()))
    return out


def read_corpus(path: Path) -> Corpus:
    """A corpus JSONL (BEIR rows: ``_id`` or ``id``, ``title``, ``text``) as id -> text."""
    corpus = {}
    for n, row in enumerate(_rows(path), start=1):
        doc_id = row.get("_id") or row.get("id")
        if doc_id is None:
            raise InputRejected("malformed", f"{path}:{n}: no '_id' or 'id'")
        corpus[str(doc_id)] = passage_text({"title": str(row.get("title") or ""),
                                            "text": str(row.get("text") or "")})
    return corpus


def corpus_from_pairs(pairs: Iterable[Pair], extra: Corpus | None = None) -> Corpus:
    """Every positive of ``pairs`` plus ``extra`` documents: the corpus negatives are
    mined from and held-out queries search."""
    corpus = dict(extra or {})
    for pair in pairs:
        corpus.setdefault(pair.positive_id, pair.positive)
    return corpus


def write_pairs(pairs: Iterable[Pair], path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with path.open("w", encoding="utf-8") as out:
        for pair in pairs:
            out.write(pair.to_json() + "\n")
            count += 1
    return count


def read_pairs(path: Path) -> list[Pair]:
    """Pairs written by ``write_pairs``; raises InputRejected naming the bad line."""
    pairs = []
    for n, row in enumerate(_rows(path), start=1):
        try:
            pairs.append(Pair(str(row["query_id"]), str(row["query"]), str(row["positive_id"]),
                              str(row["positive"]), tuple(map(str, row.get("relevant_ids") or [])),
                              bool(row.get("synthetic", False))))
        except KeyError as exc:
            raise InputRejected("malformed", f"{path}:{n}: missing field {exc}") from exc
    if not pairs:
        raise InputRejected("empty", f"no pairs in {path}")
    return pairs


def _rows(path: Path) -> Iterator[dict[str, object]]:
    if not path.is_file():
        raise InputRejected("missing_file", f"file not found: {path}")
    with path.open(encoding="utf-8") as handle:
        for n, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except ValueError as exc:
                raise InputRejected("malformed", f"{path}:{n}: not JSON ({exc})") from exc
            if not isinstance(row, dict):
                raise InputRejected("malformed", f"{path}:{n}: not a JSON object")
            yield row
