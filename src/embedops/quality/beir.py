"""Read BEIR-format datasets: corpus.jsonl, queries.jsonl, qrels/<split>.tsv.

A dataset is named by its directory, or by the name of a set shipped inside the package
(``embedops/datasets/<name>/``, e.g. ``docs-qa``), so examples work from any install.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

from embedops.errors import InputRejected

SHIPPED_DIR = Path(__file__).resolve().parents[1] / "datasets"


def shipped_datasets() -> list[str]:
    """Names of the BEIR datasets shipped with embedops, sorted."""
    if not SHIPPED_DIR.is_dir():
        return []
    return sorted(p.name for p in SHIPPED_DIR.iterdir() if (p / "corpus.jsonl").is_file())


def resolve_dataset(dataset: Path | str) -> Path:
    """The directory of ``dataset``: the path itself when it is a directory, else the
    shipped dataset of that name.

    An existing directory always wins over a shipped name. Raises ``InputRejected``
    (``missing_file``) naming the shipped datasets when neither exists.
    """
    path = Path(dataset)
    if path.is_dir():
        return path
    if str(dataset) in shipped_datasets():
        return SHIPPED_DIR / str(dataset)
    shipped = ", ".join(shipped_datasets()) or "none"
    raise InputRejected("missing_file", f"dataset not found: {dataset} is neither a directory "
                                        f"nor a shipped dataset (shipped: {shipped})")


def iter_jsonl(path: Path) -> Iterator[dict[str, object]]:
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield json.loads(line)


def load_corpus(directory: Path) -> dict[str, dict[str, str]]:
    """doc id -> {"title", "text"}."""
    return {
        str(r["_id"]): {"title": str(r.get("title") or ""), "text": str(r.get("text") or "")}
        for r in iter_jsonl(_need(directory / "corpus.jsonl"))
    }


def load_queries(directory: Path) -> dict[str, str]:
    return {str(r["_id"]): str(r["text"]) for r in iter_jsonl(_need(directory / "queries.jsonl"))}


def load_qrels(directory: Path, split: str = "test") -> dict[str, dict[str, int]]:
    """query id -> {doc id: graded relevance}; a header line is skipped if present."""
    qrels: dict[str, dict[str, int]] = {}
    with _need(directory / "qrels" / f"{split}.tsv").open(encoding="utf-8") as handle:
        for row in csv.reader(handle, delimiter="\t"):
            if len(row) < 3 or not row[2].strip().lstrip("-").isdigit():
                continue  # header or malformed line
            qrels.setdefault(row[0], {})[row[1]] = int(row[2])
    return qrels


def passage_text(doc: dict[str, str]) -> str:
    """BEIR convention: the embedded text is the title followed by the text."""
    return f"{doc['title']} {doc['text']}".strip()


def _need(path: Path) -> Path:
    if not path.is_file():
        raise InputRejected("missing_file", f"BEIR dataset file not found: {path}")
    return path
