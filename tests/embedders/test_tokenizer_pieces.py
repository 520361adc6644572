"""A long text is tokenized for chunking in pieces (so the serving process' other threads
are not held up behind one long tokenizer call): the tokens and their offsets must be
exactly those of one call, for every pre-tokenizer family the models use."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from embedops.embedders import hf_tokenizer
from embedops.embedders.hf_tokenizer import HFTokenizer, piece_starts
from embedops.embedders.weights import resolve_model_dir

FRAGMENTS = ("Vector search", "re-embedding", "  double  spaces", "\ttabs\t", "\n\nnew paragraph",
             "Crème brûlée à la française", "東京は日本の首都です。", "emoji 👩‍🔬 test",
             "don't", "U.S.A.", "x" * 40, "3.14159", "e-mail@example.com", "   ", "\n",
             "Straße", "naïve café", "—dash—", "(parens)", "ÅNGSTRÖM")


def _text(seed: int, n: int = 3000) -> str:
    rng = random.Random(seed)
    return "".join(rng.choice(FRAGMENTS) + rng.choice(("", " ", "  ", "\n", ", "))
                   for _ in range(n))


def _trained(tmp_path: Path, family: str) -> Path:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if family == "byte-level-bpe":
        tokenizer = Tokenizer(models.BPE())
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tokenizer.decoder = decoders.ByteLevel()
        trainer = trainers.BpeTrainer(vocab_size=400,
                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    else:  # sentencepiece-style
        tokenizer = Tokenizer(models.Unigram())
        tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first")
        tokenizer.decoder = decoders.Metaspace(prepend_scheme="first")
        trainer = trainers.UnigramTrainer(vocab_size=300, unk_token="<unk>",
                                          special_tokens=["<unk>"])
    tokenizer.train_from_iterator([_text(seed, 200) for seed in range(20)], trainer)
    path = tmp_path / f"{family}.json"
    tokenizer.save(str(path))
    return path


@pytest.fixture(params=["all-MiniLM-L6-v2", "byte-level-bpe", "metaspace-unigram"])
def tokenizer(request: pytest.FixtureRequest, tmp_path: Path) -> HFTokenizer:
    if request.param == "all-MiniLM-L6-v2":
        path = resolve_model_dir(request.param, tmp_path) / "tokenizer.json"
    else:
        path = _trained(tmp_path, request.param)
    return HFTokenizer(path, 512)


@pytest.mark.parametrize("size", [7, 64, 1000])
def test_pieces_give_the_offsets_of_one_call(tokenizer: HFTokenizer, size: int,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    text = _text(size)
    whole = [(s, e) for s, e in tokenizer._plain.encode(text, add_special_tokens=False).offsets
             if e > s]
    monkeypatch.setattr(hf_tokenizer, "PIECE_CHARS", size)
    assert len(piece_starts(text, size)) > len(text) // (size + 200)  # really in pieces
    assert tokenizer.offsets(text) == whole


def test_piece_starts_cut_where_a_run_of_spaces_begins() -> None:
    text = "aaaa  bbbb cccc\n\ndddd eeee"
    starts = piece_starts(text, 3)
    assert starts == [0, 4, 10, 21]
    assert all(text[i] == " " and not text[i - 1].isspace() for i in starts[1:])
    assert piece_starts("x" * 100, 10) == [0]  # nowhere to cut: one piece
    assert piece_starts("", 10) == [0]


def test_a_tokenizer_that_may_join_across_spaces_gets_one_call(tmp_path: Path) -> None:
    """Metaspace without ``split`` lets a token span a space: no pieces then."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    base = Tokenizer(models.WordLevel({"<unk>": 0, "▁a▁b": 1, "▁a": 2, "▁b": 3},
                                      unk_token="<unk>"))
    base.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first", split=False)
    path = tmp_path / "joined.json"
    base.save(str(path))
    assert not HFTokenizer(path, 512)._cuttable
    assert HFTokenizer(_trained(tmp_path, "metaspace-unigram"), 512)._cuttable
