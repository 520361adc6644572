"""Pairs from each source, and a train/held-out split that never shares a query."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from embedops.errors import ConfigError, InputRejected
from embedops.finetune.pairs import (
    Pair,
    pairs_from_beir,
    pairs_from_jsonl,
    read_pairs,
    synthetic_pairs,
    text_id,
    write_pairs,
)
from embedops.finetune.split import split_pairs


def test_beir_pairs_carry_every_relevant_document(domain: Path) -> None:
    pairs = pairs_from_beir(domain)
    assert len(pairs) == 60 and not any(p.synthetic for p in pairs)
    assert all(p.positive_id in p.relevant_ids for p in pairs)
    assert pairs[0].positive.startswith("PX-")  # title + text, the BEIR passage


def test_jsonl_pairs_and_click_logs(tmp_path: Path) -> None:
    given = tmp_path / "given.jsonl"
    given.write_text(json.dumps({"query": "torque spec", "positive": "Torque is 40 Nm."}) + "\n"
                     + json.dumps({"query": "torque spec", "positive": "Use 40 Nm."}) + "\n")
    pairs = pairs_from_jsonl(given)
    assert len(pairs) == 2 and len({p.query_id for p in pairs}) == 1
    assert set(pairs[0].relevant_ids) == {p.positive_id for p in pairs}

    clicks = tmp_path / "clicks.jsonl"
    clicks.write_text(json.dumps({"query": "torque spec", "clicked_id": "a"}) + "\n")
    assert pairs_from_jsonl(clicks, {"a": "Torque is 40 Nm."})[0].positive == "Torque is 40 Nm."
    with pytest.raises(InputRejected, match="need --corpus"):
        pairs_from_jsonl(clicks)
    with pytest.raises(InputRejected, match="not in the corpus"):
        pairs_from_jsonl(clicks, {"b": "other"})


def test_synthetic_pairs_are_marked_and_reproducible(domain: Path) -> None:
    first = synthetic_pairs(domain / "corpus.jsonl", seed=3)
    assert first == synthetic_pairs(domain / "corpus.jsonl", seed=3)
    assert len(first) == 60 and all(p.synthetic for p in first)
    assert all(p.query not in p.positive for p in first)  # the answer lacks the question


def test_titles_that_differ_only_in_numbers_ask_with_a_sentence(tmp_path: Path) -> None:
    """The chunks of one report titled "Annual review (Part N/3)" cannot be told apart by
    their titles: they get sentence queries; a distinctive title still asks for its text."""
    body = ("Revenue grew strongly in the northern region this year. Costs fell as the "
            "new plant opened in spring. Margins widened for the third quarter running.")
    rows = [{"_id": f"r{n}", "title": f"Annual review (Part {n}/3)",
             "text": body.replace("third", ["first", "second", "third"][n - 1])}
            for n in (1, 2, 3)]
    rows.append({"_id": "solo", "title": "Fleet maintenance handbook", "text": body})
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps(r) + "\n" for r in rows))
    pairs = {p.positive_id: p for p in synthetic_pairs(corpus, seed=1)}
    assert pairs["solo"].query == "Fleet maintenance handbook"
    for doc_id in ("r1", "r2", "r3"):
        assert "Part" not in pairs[doc_id].query and pairs[doc_id].query in body.replace(
            "third", ["first", "second", "third"][int(doc_id[1]) - 1])


def test_pairs_file_round_trips_and_bad_lines_are_named(tmp_path: Path) -> None:
    pairs = [Pair("q1", "a question", "d1", "an answer", ("d1", "d2"))]
    path = tmp_path / "pairs.jsonl"
    write_pairs(pairs, path)
    assert read_pairs(path) == pairs
    path.write_text('{"query": "x"}\n')
    with pytest.raises(InputRejected, match=r"pairs\.jsonl:1: missing field"):
        read_pairs(path)
    path.write_text("not json\n")
    with pytest.raises(InputRejected, match="not JSON"):
        read_pairs(path)


def test_split_never_shares_a_query_between_train_and_held_out(domain: Path) -> None:
    pairs = pairs_from_beir(domain)
    # the same question under a second id, and a query with two positives
    pairs.append(Pair("q-dup", pairs[0].query, "d0101", "dup", ("d0101",)))
    pairs.append(Pair(pairs[1].query_id, pairs[1].query, "d0202", "x", pairs[1].relevant_ids))
    for seed in range(5):
        split = split_pairs(pairs, 0.2, seed)
        assert not split.train_query_ids & split.held_out_query_ids
        held_texts = {p.query.casefold() for p in split.held_out}
        assert not any(p.query.casefold() in held_texts for p in split.train)
        assert set(split.held_out_qrels()) == split.held_out_query_ids
        assert split.held_out_query_ids | split.train_query_ids <= {p.query_id for p in pairs}
    assert split_pairs(pairs, 0.2, 1) == split_pairs(pairs, 0.2, 1)


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1])
def test_split_rejects_a_fraction_outside_zero_one(fraction: float) -> None:
    pairs = [Pair("a", "q a", "d", "x"), Pair("b", "q b", "e", "y")]
    with pytest.raises(ConfigError):
        split_pairs(pairs, fraction)


def test_split_needs_two_queries() -> None:
    with pytest.raises(InputRejected, match="two distinct queries"):
        split_pairs([Pair("a", "q", "d", "x")], 0.5)


def test_text_ids_are_stable_across_whitespace_and_case() -> None:
    assert text_id("Torque  Spec", "q-") == text_id("torque spec", "q-")
