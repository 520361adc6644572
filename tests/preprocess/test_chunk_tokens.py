"""Token-window chunking invariants, property-tested with the real MiniLM tokenizer and
with the test tokenizer."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from embedops.embedders.testing import RegexTokenizer
from embedops.preprocess.chunk_tokens import TokenChunker, token_windows

WORDS = st.sampled_from(
    ["the", "model", "embeds", "unbelievably", "long", "tokenization", "café", "東京",
     "🚀", "end.", "Question?", "x", "3.14", "anti-disestablishmentarianism", "\n\n", ","]
)
TEXTS = st.one_of(
    st.lists(WORDS, min_size=0, max_size=400).map(" ".join),
    st.text(min_size=0, max_size=600),
)
CONFIGS = st.tuples(st.integers(8, 64), st.integers(0, 7))
SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture])


def _check(chunker: TokenChunker, text: str) -> None:
    chunks = chunker.chunk("doc", text)
    tok = chunker.tokenizer
    if not tok.offsets(text):
        assert chunks == []
        return
    assert [c.index for c in chunks] == list(range(len(chunks)))
    assert all(c.id == f"doc#{c.index}" for c in chunks)
    for c in chunks:
        assert text[c.start : c.end] == c.text
        assert 0 < c.tokens <= chunker.limit
        assert tok.count([c.text])[0] == c.tokens
    # every token of the text lies inside some chunk
    covered = set()
    for c in chunks:
        covered.update(range(c.start, c.end))
    for start, end in tok.offsets(text):
        assert start in covered and end - 1 in covered
    assert chunker.chunk("doc", text) == chunks  # deterministic


@SETTINGS
@given(text=TEXTS, config=CONFIGS)
# a window cut mid-word re-tokenizes into more tokens than its span held
@example(text="unbelievably anti-disestablishmentarianism", config=(8, 1))
def test_invariants_with_minilm_tokenizer(minilm_tokenizer, text: str, config) -> None:  # type: ignore[no-untyped-def]
    limit, overlap = config
    _check(TokenChunker(minilm_tokenizer, limit, overlap), text)


@SETTINGS
@given(text=TEXTS, config=CONFIGS)
def test_invariants_with_regex_tokenizer(text: str, config) -> None:  # type: ignore[no-untyped-def]
    limit, overlap = config
    _check(TokenChunker(RegexTokenizer(512), limit, overlap), text)


@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 2000), limit=st.integers(4, 300), data=st.data())
def test_windows_overlap_as_configured(n: int, limit: int, data: st.DataObject) -> None:
    overlap = data.draw(st.integers(0, max(0, limit // 2 - 1)))
    text = " ".join(["w"] * n)
    spans = [(2 * i, 2 * i + 1) for i in range(n)]
    windows = token_windows(text, spans, limit, overlap)
    assert windows[0][0] == 0 and windows[-1][1] == n
    for (a0, a1), (b0, _b1) in itertools.pairwise(windows):
        assert a0 < b0 <= a1  # progress, no gap
        assert a1 - b0 == overlap  # one-token words: exactly the configured overlap
        assert a1 - a0 <= limit


def test_window_never_exceeds_model_limit(minilm_tokenizer) -> None:  # type: ignore[no-untyped-def]
    chunker = TokenChunker(minilm_tokenizer, chunk_tokens=10_000, overlap=32)
    assert chunker.limit == minilm_tokenizer.max_content_tokens == 254
    chunks = chunker.chunk("d", "A sentence about embeddings. " * 400)
    assert max(c.tokens for c in chunks) <= 254


def test_boundaries_snap_to_sentence_ends(minilm_tokenizer) -> None:  # type: ignore[no-untyped-def]
    text = " ".join(f"Sentence number {i} talks about vector search." for i in range(200))
    chunks = TokenChunker(minilm_tokenizer, 64, 8).chunk("d", text)
    assert len(chunks) > 5
    assert all(c.text.endswith(".") for c in chunks[:-1])


def test_default_window_is_256_with_32_overlap(minilm_tokenizer) -> None:  # type: ignore[no-untyped-def]
    chunker = TokenChunker(minilm_tokenizer)
    assert (chunker.limit, chunker.overlap) == (254, 32)  # 256 capped by MiniLM's 256 - 2


def test_huge_single_word_is_cut_hard(minilm_tokenizer) -> None:  # type: ignore[no-untyped-def]
    text = "x" * 20_000 + " tail words here"
    chunks = TokenChunker(minilm_tokenizer, 64, 8).chunk("d", text)
    assert all(c.tokens <= 64 for c in chunks)
    assert chunks[-1].text.endswith("here")


@pytest.mark.parametrize(("limit", "overlap"), [(8, 8), (8, 9), (0, 0)])
def test_bad_configuration_is_refused(limit: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        TokenChunker(RegexTokenizer(), limit, overlap)
