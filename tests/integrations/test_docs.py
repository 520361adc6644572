"""The examples of docs/integrations.md run as written: the two ten-line retrievers (on the
real default model) and the ``cleanup="full"`` recipe."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import embedops

DOC = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"


def _block(marker: str) -> str:
    blocks = [b for b in re.findall(r"```python\n(.*?)```", DOC.read_text(), flags=re.S)
              if marker in b]
    assert len(blocks) == 1, f"one example with {marker!r} expected"
    return blocks[0]


def _run(code: str, namespace: dict[str, object]) -> None:
    exec(compile(code, str(DOC), "exec"), namespace)  # our own documentation, run as written


@pytest.mark.slow
@pytest.mark.parametrize("framework", ["langchain_core", "llama_index"])
def test_retriever_examples_run_as_written(framework: str, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip(framework)
    monkeypatch.chdir(tmp_path)
    _run(_block(f"from {framework}"), {})
    with embedops.open(tmp_path / "kb-store", read_only=True) as db:
        assert db.count("kb" if framework == "langchain_core" else "kb-llama") == 2


def test_full_cleanup_recipe_deletes_what_the_run_did_not_see(tmp_path: Path) -> None:
    pytest.importorskip("langchain_core")
    from langchain_core.documents import Document

    from embedops.integrations.langchain import EmbedopsVectorStore

    with embedops.open(tmp_path / "store", model="testing/hash-64") as db:
        store = EmbedopsVectorStore(db, "kb")
        store.add_texts(["Old news.", "Kept news.", "Was fine."], ids=["old", "kept", "bad"])
        docs = [Document(id="kept", page_content="Kept news."),
                Document(id="new", page_content="New news."),
                Document(id="bad", page_content="   ")]  # becomes a dead letter
        _run(_block("store.delete("), {"store": store, "docs": docs, "db": db})
        assert sorted(db.ledger.documents("kb")) == ["bad", "kept", "new"]
        assert store.get_by_ids(["bad"])[0].page_content == "Was fine."
