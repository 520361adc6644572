"""Assumptions are stated in both outputs; the self-hosted speed follows the scenario's model."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from embedops.cost import MEASURED, build_report, load_scenario, speed_for_dim
from tests.cost.test_cli import _app, _json

MINILM = next(m for m in MEASURED if m.model == "all-MiniLM-L6-v2")
MPNET = next(m for m in MEASURED if m.model == "all-mpnet-base-v2")
STATED = ("api_price_per_mtok", "tokens_per_doc", "gpu_price_per_hour",
          "self_hosted_docs_per_second")


def test_json_carries_the_assumptions_with_values_units_and_sources() -> None:
    data = _json("--documents", "1B", "--dim", "768")
    assumptions = data["assumptions"]
    assert set(STATED) <= set(assumptions)
    for entry in assumptions.values():
        assert set(entry) == {"label", "value", "unit", "source", "default"}
        assert entry["source"]
    assert assumptions["api_price_per_mtok"]["value"] == 0.02
    assert "text-embedding-3-small" in assumptions["api_price_per_mtok"]["source"]
    assert assumptions["tokens_per_doc"]["value"] == 200
    assert "c7i.large" in assumptions["gpu_price_per_hour"]["source"]
    speed = assumptions["self_hosted_docs_per_second"]
    assert speed["value"] == pytest.approx(data["generation"]["docs_per_second"])
    assert "all-mpnet-base-v2" in speed["source"] and speed["default"] is True
    assert "RAM" in data["units"]["index_footprint_vs_ram"]
    for key in ("units", "inputs", "generation", "storage", "query", "what_ifs"):
        assert key in data  # the keys that were there before stay


def test_values_the_scenario_sets_are_labelled_as_such() -> None:
    data = _json("--api-price-per-mtok", "0.13", "--gpu-docs-per-second", "500")
    assumptions = data["assumptions"]
    assert assumptions["api_price_per_mtok"] == {
        "label": "API price", "value": 0.13, "unit": "USD per 1M tokens",
        "source": "set by the scenario", "default": False}
    assert assumptions["self_hosted_docs_per_second"]["value"] == 500
    assert assumptions["self_hosted_docs_per_second"]["source"] == "set by the scenario"
    assert assumptions["tokens_per_doc"]["default"] is True


def test_tables_print_the_assumptions_first_and_explain_footprint_vs_ram() -> None:
    # Wide enough that no table cell wraps (the console follows COLUMNS).
    result = CliRunner().invoke(_app(), ["cost", "--documents", "1B", "--dim", "768"],
                                env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    out = result.stdout
    first, generation, storage = ("assumptions", "tokens per pass", "RAM nodes per month")
    assert out.index(first) < out.index(generation) < out.index(storage)
    head = out[: out.index(generation)]
    for words in ("API price", "0.02 USD per 1M tokens", "tokens per document", "200 tokens",
                  "self-hosted worker price", "0.08925 USD per hour", "self-hosted speed",
                  "all-mpnet-base-v2"):
        assert words in head, words
    assert "index footprint = raw x (1 + overhead)" in out
    assert "sizes the RAM nodes" in out


def test_a_768_d_scenario_uses_the_mpnet_speed_not_minilms() -> None:
    g = build_report(load_scenario(dim=768, tokens_per_doc=200)).generation
    assert g.docs_per_second == pytest.approx(MPNET.tokens_per_second / 200)
    assert g.docs_per_second != pytest.approx(MINILM.tokens_per_second / 200)
    small = build_report(load_scenario(dim=384, tokens_per_doc=200)).generation
    assert small.docs_per_second == pytest.approx(MINILM.tokens_per_second / 200)
    # The bigger model is slower, so the same corpus costs more to self-host.
    assert g.gpu_cost_usd > small.gpu_cost_usd


def test_the_measured_speed_scales_with_tokens_per_doc() -> None:
    short = build_report(load_scenario(dim=768, tokens_per_doc=100)).generation
    long = build_report(load_scenario(dim=768, tokens_per_doc=400)).generation
    assert short.docs_per_second == pytest.approx(4 * long.docs_per_second)
    assert short.tokens == pytest.approx(long.tokens / 4)
    assert short.gpu_hours == pytest.approx(long.gpu_hours / 4)  # same tokens/s


@pytest.mark.parametrize(("dim", "model", "words"), [
    (384, "all-MiniLM-L6-v2", "all-MiniLM-L6-v2 (384-d)"),
    (768, "all-mpnet-base-v2", "all-mpnet-base-v2 (768-d)"),
    (256, "all-MiniLM-L6-v2", "no measured model at 256-d"),
    (512, "all-MiniLM-L6-v2", "no measured model at 512-d"),
    (576, "all-mpnet-base-v2", "no measured model at 576-d"),  # a tie goes to the slower
    (1536, "all-mpnet-base-v2", "overstates their speed"),
])
def test_dims_without_a_measured_model_say_which_figure_is_used(
        dim: int, model: str, words: str) -> None:
    assert speed_for_dim(dim).model == model
    speed = build_report(load_scenario(dim=dim)).assumptions["self_hosted_docs_per_second"]
    assert model in speed.source and words in speed.source


def test_given_throughput_replaces_the_measured_speed() -> None:
    by_docs = build_report(load_scenario(dim=768, gpu_docs_per_second=2000))
    assert by_docs.generation.docs_per_second == 2000
    by_tokens = build_report(load_scenario(dim=768, tokens_per_doc=200,
                                           gpu_tokens_per_minute=1_200_000))
    assert by_tokens.generation.docs_per_second == pytest.approx(100)
    assert "tokens/min" in by_tokens.assumptions["self_hosted_docs_per_second"].source


def test_inputs_show_the_throughput_used() -> None:
    data = build_report(load_scenario(dim=768)).to_dict()
    assert data["inputs"]["gpu_docs_per_second"] == pytest.approx(MPNET.tokens_per_second / 200)
    assert data["inputs"]["gpu_tokens_per_minute"] is None
