"""What keeping every document's content costs the ledger, per GB of source text.

Ingests each shared corpus with the TEST-ONLY hashing embedder (the ledger's size does
not depend on the model; chunk counts follow --chunk-tokens of that model's regex
tokenizer) into a fresh store, then reports the ledger file (after VACUUM), the
compressed content it holds and the source text, all per GB of source text. Prints JSON.

    .venv/bin/python bench/ledger_size.py
"""

from __future__ import annotations

import json
import os
import platform
import sqlite3
import tempfile
from pathlib import Path

os.environ["EMBEDOPS_ENABLE_TEST_MODELS"] = "1"

import embedops

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
GB = 1e9


def _source_bytes(path: Path) -> int:
    """UTF-8 bytes of the text users hand in (corpus.jsonl's title+text, or the files)."""
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*.txt"))
    total = 0
    for line in path.read_text(encoding="utf-8").split("\n"):
        if line:
            record = json.loads(line)
            total += len((record.get("title", "") + " " + record["text"]).encode())
    return total


def measure(name: str, path: Path, id_field: str | None) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "store"
        with embedops.open(store, model="testing/hash-64") as db:
            summary = db.ingest([path], collection=name, id_field=id_field)
            kept = db.ledger.content_bytes()  # type: ignore[union-attr]
        conn = sqlite3.connect(store / "ledger.db")
        conn.execute("VACUUM")
        conn.close()
        ledger_bytes = (store / "ledger.db").stat().st_size
        source = _source_bytes(path)
        return {
            "corpus": name, "documents": summary.documents_new,
            "chunks": summary.chunks_embedded, "source_bytes": source,
            "ledger_bytes": ledger_bytes, "content_compressed_bytes": kept["compressed_bytes"],
            "ledger_gb_per_gb_source": round(ledger_bytes / source, 3),
            "content_gb_per_gb_source": round(kept["compressed_bytes"] / source, 3),
            "ledger_bytes_per_gb_source": round(ledger_bytes / source * GB),
        }


def main() -> None:
    if not DATA.is_dir():
        raise SystemExit(f"{DATA} is missing")
    corpora = [("essays", DATA / "essays", None),
               ("msmarco-5k", DATA / "msmarco-5k" / "corpus.jsonl", "_id"),
               ("business-reports", DATA / "business-reports" / "corpus.jsonl", "_id")]
    print(json.dumps({"machine": platform.processor() or platform.machine(),
                      "results": [measure(*c) for c in corpora]}, indent=2))


if __name__ == "__main__":
    main()
