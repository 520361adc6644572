"""BM25 hard negatives never include a positive or any document known relevant."""

from __future__ import annotations

from pathlib import Path

from embedops.finetune.negatives import fill_negatives, mine_hard_negatives, negatives_digest
from embedops.finetune.pairs import Pair, beir_corpus, pairs_from_beir


def test_negatives_exclude_positives_relevant_documents_and_their_duplicates() -> None:
    corpus = {
        "rel-a": "hydraulic pump seal for the excavator",
        "rel-b": "excavator hydraulic pump seal kit",
        "copy-of-a": "Hydraulic  pump seal for the EXCAVATOR",  # same text, another id
        "near-1": "hydraulic pump for the excavator arm",
        "near-2": "seal for the excavator bucket",
        "far": "conveyor belt tensioner spring",
    }
    pairs = [Pair("q", "excavator hydraulic pump seal", "rel-a", corpus["rel-a"],
                  ("rel-a", "rel-b"))]
    mined = mine_hard_negatives(pairs, corpus, k=5)
    assert mined["q"] and set(mined["q"]) <= {"near-1", "near-2", "far"}
    assert mined["q"][0] in {"near-1", "near-2"}  # the ones sharing words rank first
    filled, _ = fill_negatives(mined, pairs, corpus, k=3, seed=0)
    assert len(filled["q"]) == 3 and not set(filled["q"]) & {"rel-a", "rel-b", "copy-of-a"}


def test_negatives_on_a_domain_are_deterministic_and_never_relevant(domain: Path) -> None:
    pairs, corpus = pairs_from_beir(domain), beir_corpus(domain)
    first = mine_hard_negatives(pairs, corpus, k=5)
    assert first == mine_hard_negatives(pairs, corpus, k=5)
    filled, added = fill_negatives(first, pairs, corpus, k=5, seed=1)
    assert negatives_digest(filled) == negatives_digest(fill_negatives(first, pairs, corpus, 5,
                                                                       seed=1)[0])
    for pair in pairs:
        assert len(filled[pair.query_id]) == 5
        assert pair.positive_id not in filled[pair.query_id]
        assert not set(pair.relevant_ids) & set(filled[pair.query_id])
    assert added == sum(5 - len(v) for v in first.values())


def test_a_query_bm25_cannot_match_gets_random_negatives_only() -> None:
    corpus = {"a": "alpha beta", "b": "gamma delta", "c": "epsilon zeta"}
    pairs = [Pair("q", "zzzz qqqq", "a", "alpha beta", ("a",))]
    assert mine_hard_negatives(pairs, corpus, k=2) == {"q": []}
    filled, added = fill_negatives({"q": []}, pairs, corpus, k=2)
    assert sorted(filled["q"]) == ["b", "c"] and added == 2


def test_no_negatives_asked_mines_nothing() -> None:
    assert mine_hard_negatives([Pair("q", "x", "a", "y")], {"a": "y"}, k=0) == {}
