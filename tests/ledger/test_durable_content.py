"""The ledger keeps every document's content: compressed, once per distinct text,
forgotten with the last document that refers to it; metadata-only changes keep spans."""

from __future__ import annotations

from pathlib import Path

from embedops.ledger import DocContent, DocRecord, Ledger


def _record(doc_id: str, text: str, digest: str, spans: list[tuple[int, int, int]] | None,
            metadata: dict[str, object] | None = None) -> DocRecord:
    return DocRecord(doc_id, digest, "m", len(spans or [(0, 0, 0)]), doc_id, "fp",
                     "2026-01-01T00:00:00", "plan",
                     DocContent(text, metadata or {}, "A title", spans))


def test_content_is_kept_compressed_once_and_forgotten_with_its_documents(
        tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    text = "the same boilerplate paragraph. " * 500
    ledger.commit_documents("a", [_record("d1", text, "h1", [(0, 32, 6), (16, 64, 6)])])
    ledger.commit_documents("b", [_record("d1", text, "h1", [(0, 64, 12)])])
    ledger.commit_documents("a", [_record("d2", text, "h1", [(0, 64, 12)])])
    size = ledger.content_bytes()
    assert size["text_chars"] == len(text)  # one copy for three documents
    assert size["compressed_bytes"] < len(text) / 20
    stored = ledger.stored("a", "d1")
    assert stored is not None and stored.text == text and stored.title == "A title"
    assert [c["text"] for c in stored.chunks()] == [text[0:32], text[16:64]]
    ledger.remove_documents("a", ["d1", "d2"])
    assert ledger.content_bytes()["text_chars"] == len(text)  # still held by b/d1
    ledger.drop_collection("b")
    assert ledger.content_bytes() == {"compressed_bytes": 0, "text_chars": 0}
    ledger.close()


def test_changed_text_replaces_the_old_and_metadata_only_keeps_spans(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path)
    ledger.commit_documents("a", [_record("d", "old text here", "h-old", [(0, 13, 3)])])
    ledger.commit_documents("a", [_record("d", "new text, longer", "h-new",
                                          [(0, 8, 2), (5, 16, 3)], {"v": 1})])
    assert ledger.content_bytes()["text_chars"] == len("new text, longer")
    ledger.commit_documents("a", [_record("d", "new text, longer", "h-new", None, {"v": 2})])
    stored = ledger.stored("a", "d")
    assert stored is not None and stored.metadata == {"v": 2}
    assert stored.spans == [(0, 8, 2), (5, 16, 3)]
    assert [d.doc_id for d in ledger.iter_stored("a", page_size=1)] == ["d"]
    ledger.close()
