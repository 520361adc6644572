"""Sentence chunking: groups of N sentences, under the token limit, covering the text."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from embedops.embedders.testing import RegexTokenizer
from embedops.preprocess.chunk_sentences import SentenceChunker, sentence_spans

SENTENCES = st.lists(
    st.tuples(
        st.lists(st.sampled_from(["alpha", "beta", "vector", "index", "Zürich", "42"]),
                 min_size=1, max_size=30).map(" ".join),
        st.sampled_from([".", "!", "?", ".\n\n"]),
    ).map(lambda t: t[0] + t[1]),
    min_size=0, max_size=60,
).map(" ".join)


def test_sentence_spans_split_on_terminal_punctuation() -> None:
    text = 'First one. Second "quoted!" Third?\n\nFourth without end'
    assert [text[s:e] for s, e in sentence_spans(text)] == [
        "First one.", 'Second "quoted!"', "Third?", "Fourth without end"
    ]


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=SENTENCES, per_chunk=st.integers(1, 5), limit=st.integers(12, 80))
def test_invariants(minilm_tokenizer, text: str, per_chunk: int, limit: int) -> None:  # type: ignore[no-untyped-def]
    chunker = SentenceChunker(minilm_tokenizer, sentences=per_chunk, chunk_tokens=limit)
    chunks = chunker.chunk("d", text)
    sentences = sentence_spans(text)
    covered = set()
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert c.tokens <= chunker.limit
        inside = [s for s in sentences if c.start <= s[0] and s[1] <= c.end]
        assert len(inside) <= per_chunk
        covered.update(range(c.start, c.end))
    for start, end in sentences:
        assert all(i in covered for i in range(start, end) if not text[i].isspace())
    assert chunker.chunk("d", text) == chunks


def test_groups_of_four_by_default() -> None:
    text = " ".join(f"This is sentence {i}." for i in range(12))
    chunks = SentenceChunker(RegexTokenizer(512)).chunk("d", text)
    assert [c.text.count(".") for c in chunks] == [4, 4, 4]


def test_long_sentence_is_split_by_tokens(minilm_tokenizer) -> None:  # type: ignore[no-untyped-def]
    text = "Short one. " + " ".join(["word"] * 600) + ". Another short one."
    chunks = SentenceChunker(minilm_tokenizer, chunk_tokens=100).chunk("d", text)
    assert max(c.tokens for c in chunks) <= 100
    assert len(chunks) >= 6
