"""Build or check the corpus of the shipped `docs-qa` evaluation set.

The corpus is this project's README and docs split into one passage per section (id
``<page>/<heading-slug>``); the queries and their judgments (qrels) are written by hand
against those ids. The committed files are a frozen snapshot: edits to the docs do not
change the set until this script is run with ``--write``, after which the judgments must be
checked by hand again.

    .venv/bin/python bench/docs_qa.py           # compare the docs with the snapshot
    .venv/bin/python bench/docs_qa.py --write   # re-split the docs into corpus.jsonl
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATASET = ROOT / "src" / "embedops" / "datasets" / "docs-qa"
# The detail pages of individual benchmark runs are tables of numbers; their summary
# (docs/benchmarks.md) is in the set.
SKIP = ("benchmarks-",)
_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def pages(root: Path) -> list[Path]:
    """README.md and docs/*.md, in a stable order."""
    docs = sorted(p for p in (root / "docs").glob("*.md") if not p.name.startswith(SKIP))
    return [root / "README.md", *docs]


def slug(heading: str) -> str:
    """``Retry policy (`resilience/retry.py`)`` -> ``retry-policy``."""
    text = re.sub(r"\([^)]*\)", " ", heading).strip() or heading
    words = re.findall(r"[a-z0-9]+", text.lower().replace("'", ""))
    return "-".join(words) or "section"


def sections(text: str) -> list[tuple[str, str]]:
    """(heading, body) per heading outside code fences; text before any heading is dropped."""
    out: list[tuple[str, list[str]]] = []
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        match = None if fenced else _HEADING.match(line)
        if match:
            out.append((match.group(2).strip(), []))
        elif out:
            out[-1][1].append(line)
    return [(heading, "\n".join(body).strip()) for heading, body in out]


def passages(root: Path) -> list[dict[str, str]]:
    """One passage per section with a body; ids unique within the set."""
    rows: list[dict[str, str]] = []
    seen: set[str] = set()
    for path in pages(root):
        page = path.stem.lower()
        found = sections(path.read_text(encoding="utf-8"))
        page_title = found[0][0] if found else page
        for heading, body in found:
            if not body:
                continue
            doc_id = f"{page}/{slug(heading)}"
            n = 2
            while doc_id in seen:
                doc_id = f"{page}/{slug(heading)}-{n}"
                n += 1
            seen.add(doc_id)
            title = page_title if heading == page_title else f"{page_title}: {heading}"
            rows.append({"_id": doc_id, "title": title, "text": body})
    return rows


def check_judgments(dataset: Path, ids: set[str]) -> list[str]:
    """Problems with the hand-written queries and qrels against the corpus ids."""
    queries = {json.loads(line)["_id"] for line in
               (dataset / "queries.jsonl").read_text(encoding="utf-8").splitlines() if line}
    problems = []
    judged = set()
    for line in (dataset / "qrels" / "test.tsv").read_text(encoding="utf-8").splitlines()[1:]:
        qid, doc_id, _score = line.split("\t")
        judged.add(qid)
        if doc_id not in ids:
            problems.append(f"qrels: {qid} judges unknown passage {doc_id}")
        if qid not in queries:
            problems.append(f"qrels: unknown query {qid}")
    problems += [f"queries: {q} has no judgment" for q in sorted(queries - judged)]
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--write", action="store_true", help="rewrite corpus.jsonl")
    args = parser.parse_args()
    rows = passages(ROOT)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    corpus = DATASET / "corpus.jsonl"
    if args.write:
        corpus.write_text(text, encoding="utf-8")
    problems = check_judgments(DATASET, {r["_id"] for r in json.loads(
        "[" + ",".join(corpus.read_text(encoding="utf-8").splitlines()) + "]")})
    stale = corpus.read_text(encoding="utf-8") != text
    print(json.dumps({"passages": len(rows), "snapshot_matches_docs": not stale,
                      "problems": problems}, indent=2))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
