"""Read a canary's labelled queries from files: a BEIR directory (queries.jsonl and
qrels/<split>.tsv) or a JSONL file of ``{"query": ..., "relevant_ids": [...]}`` lines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from embedops.errors import InputRejected
from embedops.ledger.canaries import CanaryQuery
from embedops.quality.beir import load_qrels, load_queries


def load_query_set(path: Path, split: str = "test") -> list[CanaryQuery]:
    """The judged queries of a BEIR directory (those with at least one relevant
    document), or every line of a JSONL file. Raises ``InputRejected`` for a missing
    file, a malformed line or a set without a single judged query."""
    queries = _from_beir(path, split) if path.is_dir() else _from_jsonl(path)
    if not queries:
        raise InputRejected("empty", f"{path} holds no query with a relevant document")
    return queries


def _from_beir(directory: Path, split: str) -> list[CanaryQuery]:
    texts = load_queries(directory)
    qrels = load_qrels(directory, split)
    return [CanaryQuery(qid, texts[qid], dict(judged)) for qid, judged in sorted(qrels.items())
            if qid in texts and texts[qid].strip() and any(g > 0 for g in judged.values())]


def _from_jsonl(path: Path) -> list[CanaryQuery]:
    if not path.is_file():
        raise InputRejected("missing_file", f"query set not found: {path} (a BEIR directory "
                            "or a JSONL file of {query, relevant_ids})")
    queries: list[CanaryQuery] = []
    with path.open(encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                queries.append(_query(json.loads(line), number))
            except (ValueError, TypeError, AttributeError) as exc:
                raise InputRejected("malformed", f"{path} line {number}: {exc}; expected "
                                    '{"query": "...", "relevant_ids": ["doc id", ...]}'
                                    ) from exc
    ids = [q.query_id for q in queries]
    if len(set(ids)) != len(ids):
        raise InputRejected("malformed", f"{path}: query ids repeat")
    return [q for q in queries if any(g > 0 for g in q.relevant.values())]


def _query(record: dict[str, Any], number: int) -> CanaryQuery:
    text = record.get("query", record.get("text"))
    if not isinstance(text, str) or not text.strip():
        raise ValueError("no query text")
    relevant = record.get("relevant_ids")
    if isinstance(relevant, dict):
        graded = {str(k): int(v) for k, v in relevant.items()}
    elif isinstance(relevant, list):
        graded = {str(k): 1 for k in relevant}
    else:
        raise ValueError("relevant_ids must be a list of ids or an {id: grade} object")
    query_id = record.get("id", record.get("_id", f"q{number:05d}"))
    return CanaryQuery(str(query_id), text.strip(), graded)
